#!/usr/bin/env python3
"""sfa's kernels beside PyTorch's attention backends: python bench/compare.py --help.

The same as `python -m sfa.bench` (the implementation lives in the installed package,
python/sfa/bench.py); results go to bench/results/ by default."""

import sys

from sfa.bench import main

if __name__ == "__main__":
    sys.exit(main())
