"""Torch baselines for the decode grid of PERF_TARGETS.md (bf16, head_dim 128, one new token).

torch.nn.functional.scaled_dot_product_attention with one backend at a time (FLASH_ATTENTION,
CUDNN_ATTENTION) on q [b, h, 1, d] and k/v [b, h_kv, kv, d] with enable_gqa=True; a backend that
refuses GQA is timed on k/v with repeated heads instead (marked "repeat"). Timed like
decode_fast_timing: CUDA events around one call, the L2 flushed by a 256 MB write before each,
median of --reps. GB/s = bytes of the original K and V / time.

usage: python3 decode_fast_torch.py [--reps N] [--csv FILE] [--quick] [--points b/h/hkv/kv,...]
"""
import argparse
import csv
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

HEAD_DIM = 128
FLUSH_BYTES = 256 << 20


def grid(quick):
    if quick:
        return [(1, 32, 8, 1024), (16, 32, 8, 8192)]
    rows = [(1, 32, 8, 131072), (16, 32, 8, 131072), (64, 32, 8, 32768), (1, 32, 32, 131072),
            (16, 32, 32, 32768), (1, 64, 8, 131072), (16, 64, 8, 32768)]
    return [(b, h, hkv, kv) for b, h, hkv, max_kv in rows for kv in (1024, 8192, 32768, 131072) if kv <= max_kv]


def time_call(fn, flush, reps):
    for _ in range(3):
        fn()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(reps):
        flush.zero_()
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) * 1e3)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--csv", default="decode_fast_torch.csv")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--points", default="", help="only these grid points, b/h/hkv/kv,... (as decode_fast_timing)")
    args = parser.parse_args()
    only = {tuple(int(x) for x in p.split("/")) for p in args.points.split(",") if p}
    flush = torch.empty(FLUSH_BYTES, dtype=torch.uint8, device="cuda")
    backends = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
    with open(args.csv, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["batch", "heads", "heads_kv", "kv", "backend", "gqa_mode", "us", "gbps"])
        print(f"{'batch':>6} {'heads':>6} {'kv':>7} | {'flash GB/s':>11} {'cudnn GB/s':>11}")
        for b, h, hkv, kv in grid(args.quick):
            if only and (b, h, hkv, kv) not in only:
                continue
            q = torch.randn(b, h, 1, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
            k = torch.randn(b, hkv, kv, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
            v = torch.randn(b, hkv, kv, HEAD_DIM, device="cuda", dtype=torch.bfloat16)
            nbytes = 2 * k.numel() * k.element_size()
            line = {}
            for name, backend in backends.items():
                us, mode = float("nan"), "failed"
                try:
                    with sdpa_kernel(backend):
                        fn = lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
                        fn()
                        torch.cuda.synchronize()
                        us, mode = time_call(fn, flush, args.reps), "gqa"
                except RuntimeError:
                    try:
                        kr = k.repeat_interleave(h // hkv, dim=1)
                        vr = v.repeat_interleave(h // hkv, dim=1)
                        with sdpa_kernel(backend):
                            fn = lambda: F.scaled_dot_product_attention(q, kr, vr)
                            fn()
                            torch.cuda.synchronize()
                            us, mode = time_call(fn, flush, args.reps), "repeat"
                        del kr, vr
                    except (RuntimeError, torch.OutOfMemoryError) as e:
                        print(f"  {name} failed at {b},{h}/{hkv},{kv}: {str(e).splitlines()[0][:100]}")
                gbps = nbytes / us / 1e3 if us == us else float("nan")
                out.writerow([b, h, hkv, kv, name, mode, f"{us:.3f}", f"{gbps:.1f}"])
                line[name] = f"{gbps:8.0f}{'r' if mode == 'repeat' else ' '}"
            print(f"{b:6d} {h:3d}/{hkv:<2d} {kv:7d} | {line['flash']:>11} {line['cudnn']:>11}", flush=True)
            del q, k, v
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
