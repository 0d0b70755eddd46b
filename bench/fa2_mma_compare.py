"""fa2_mma against PyTorch's FlashAttention-2 and cuDNN attention, same run, same card.

Times torch.nn.functional.scaled_dot_product_attention with one backend at a time
(SDPBackend.FLASH_ATTENTION, SDPBackend.CUDNN_ATTENTION) at the standard shapes (seqlen 512..16k,
batch = 16384 / seqlen, heads = 2048 / head_dim; head_dim 64/128/256 in bf16, 128 in fp16; causal
and not) and runs bench/fa2_mma_tuning (the shipped fa2_mma configuration plus tile variants), one
configuration (dtype, head_dim) after the other, and prints TFLOP/s and the ratio to torch flash
per shape, the median ratio, and a markdown table.

usage: python3 bench/fa2_mma_compare.py <fa2_mma_tuning binary> [out_dir] [novariants]
"""
import os
import statistics
import subprocess
import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F

TOKENS, HIDDEN = 16384, 2048
SEQLENS = [512, 1024, 2048, 4096, 8192, 16384]
CONFIGS = [("bf16", 64), ("bf16", 128), ("bf16", 256), ("fp16", 128)]
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


def time_ms(fn, warmup=3, repeats=15):
    for _ in range(warmup):
        fn()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(repeats):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def torch_results(configs):
    res = {}
    for dtype_name, d in configs:
        dtype = torch.bfloat16 if dtype_name == "bf16" else torch.float16
        for causal in (False, True):
            for s in SEQLENS:
                b, h = TOKENS // s, HIDDEN // d
                q, k, v = (torch.rand(b, h, s, d, device="cuda", dtype=dtype) * 2 - 1 for _ in range(3))
                flops = 4.0 * b * h * s * s * d * (0.5 if causal else 1.0)
                for name, backend in BACKENDS.items():
                    try:
                        with sdpa_kernel(backend):
                            ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
                        res[(name, dtype_name, d, causal, s)] = flops / ms * 1e-9
                    except RuntimeError as e:
                        print(f"torch {name} {dtype_name} d{d} causal={causal} s{s}: {e}", file=sys.stderr)
                del q, k, v
    return res


def sfa_results(binary, args):
    out = subprocess.run([binary] + args, check=True, capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        if not line.startswith("RESULT "):
            continue
        _, variant, dt, d, causal, s, ms, tflops, diff = line.split()
        res[(variant, dt, int(d), causal == "1", int(s))] = (float(tflops), float(diff))
    return res


def main():
    binary = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) > 2 else "."
    # One configuration at a time, torch then fa2_mma, so that both sides of a ratio are measured
    # seconds apart (the card's clock drifts over a long run).
    torch_res, sfa_res = {}, {}
    for dt, d in CONFIGS:
        torch_res.update(torch_results([(dt, d)]))
        sfa_res.update(sfa_results(binary, [f"{dt}:{d}"] + sys.argv[3:]))
    gpu = torch.cuda.get_device_name()
    lines = [f"GPU: {gpu}; torch {torch.__version__}; cuDNN {torch.backends.cudnn.version()}", "",
             "| dtype | d | causal | seqlen | fa2_mma | torch flash | cudnn | fa2_mma / flash |",
             "|---|---|---|---|---|---|---|---|"]
    ratios = []
    for dt, d in CONFIGS:
        for causal in (False, True):
            for s in SEQLENS:
                ours = sfa_res.get(("shipped", dt, d, causal, s), (float("nan"), 0))[0]
                fl = torch_res.get(("flash", dt, d, causal, s), float("nan"))
                cu = torch_res.get(("cudnn", dt, d, causal, s), float("nan"))
                ratio = ours / fl
                ratios.append(ratio)
                lines.append(f"| {dt} | {d} | {'yes' if causal else 'no'} | {s} | {ours:.0f} | {fl:.0f} | {cu:.0f} | {ratio:.3f} |")
    lines += ["", f"median fa2_mma / flash: {statistics.median(ratios):.3f}; min {min(ratios):.3f}", ""]
    variants = sorted({k[0] for k in sfa_res if k[0] != "shipped"})
    if variants:
        lines += ["Tile variants (TFLOP/s; max |out - shipped|):", "",
                  "| dtype | d | causal | seqlen | shipped | " + " | ".join(variants) + " |",
                  "|---|---|---|---|---|" + "---|" * len(variants)]
        for (v, dt, d, causal, s), (tf, _) in sorted(sfa_res.items(), key=lambda kv: (kv[0][2], kv[0][3], kv[0][4])):
            if v != "shipped":
                continue
            cells = []
            for var in variants:
                r = sfa_res.get((var, dt, d, causal, s))
                cells.append(f"{r[0]:.0f} ({r[1]:.2g})" if r else "-")
            lines.append(f"| {dt} | {d} | {'yes' if causal else 'no'} | {s} | {tf:.0f} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    with open(os.path.join(out_dir, "fa2_mma_compare.md"), "w") as f:
        f.write(text + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(2, 4, figsize=(20, 8), sharex=True)
        for col, (dt, d) in enumerate(CONFIGS):
            for row, causal in enumerate((False, True)):
                ax = axes[row][col]
                for name, get in (("fa2_mma", lambda s: sfa_res.get(("shipped", dt, d, causal, s), (float("nan"),))[0]),
                                  ("torch flash", lambda s: torch_res.get(("flash", dt, d, causal, s), float("nan"))),
                                  ("cudnn", lambda s: torch_res.get(("cudnn", dt, d, causal, s), float("nan")))):
                    ax.plot(SEQLENS, [get(s) for s in SEQLENS], marker="o", label=name)
                ax.set_xscale("log", base=2)
                ax.set_title(f"{dt} d={d} {'causal' if causal else 'non-causal'}")
                ax.set_ylabel("TFLOP/s")
                ax.legend()
        fig.suptitle(f"fa2_mma vs PyTorch SDPA backends ({gpu})")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "fa2_mma_vs_torch.png"), dpi=80)
    except ImportError:
        print("matplotlib not available: no plot", file=sys.stderr)


if __name__ == "__main__":
    main()
