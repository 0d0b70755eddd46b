"""sfa — Simple Flash-Attention: exact, fused attention for CUDA and the CPU.

    import torch, sfa
    q = torch.randn(2, 1024, 16, 128, device="cuda", dtype=torch.bfloat16)   # [batch, seqlen, heads, head_dim]
    out = sfa.attention(q, q, q, causal=True)

Works with torch tensors (as custom ops: torch.compile and CUDA graphs see them), and with NumPy,
CuPy and JAX arrays through DLPack; outputs come back from the caller's framework. Importing sfa
does not import torch.
"""

import sys

from ._api import (
    __all__,
    attention,
    attention_varlen,
    built_with_cuda,
    cuda_device_count,
    decode,
    kernels,
    select_decode_kernel,
    select_kernel,
)

__version__ = "0.1.0"

# With torch already imported, register the custom ops now, so that a first call made while
# torch.compile traces finds them in place; otherwise the first torch tensor registers them.
if "torch" in sys.modules:
    from . import _torch  # noqa: F401
