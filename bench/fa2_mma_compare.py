"""fa2_mma against PyTorch's FlashAttention-2 and cuDNN attention, shape by shape, interleaved.

For every standard shape (seqlen 512..16k, batch = 16384 / seqlen, heads = 2048 / head_dim;
head_dim 64/128/256 in bf16, 128 in fp16; causal and not) the script alternates, ROUNDS times,
one sample of torch.nn.functional.scaled_dot_product_attention with SDPBackend.FLASH_ATTENTION,
one with SDPBackend.CUDNN_ATTENTION and one of each fa2_mma kernel of bench/fa2_mma_tuning (the
shipped configuration through sfa::attention, then the tile variants compiled for that shape),
which runs as a server process beside this one. The order of the three sides alternates from
round to round. A sample is CALLS back-to-back calls between two CUDA events, queued behind a
short spin kernel so that the GPU never waits for the host inside it; each side's number is the
median of its samples. The whole pass is made RUNS times; every run is reported.

usage: python3 bench/fa2_mma_compare.py <fa2_mma_tuning binary> [out_dir]
           [--runs N] [--rounds R] [--calls K] [--configs bf16:64,bf16:128,bf16:256,fp16:128]
Writes fa2_mma_compare.md (tables), fa2_mma_compare.json (every sample) and
fa2_mma_vs_torch.png into out_dir; prints the tables.
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

TOKENS, HIDDEN = 16384, 2048
SEQLENS = [512, 1024, 2048, 4096, 8192, 16384]
CONFIGS = [("bf16", 64), ("bf16", 128), ("bf16", 256), ("fp16", 128)]
BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}
SPIN_CYCLES = 200000  # about 0.1 ms: covers the host's launch of a sample
WARMUP = 2
RAMP_SECONDS = 3.0


class Server:
    """bench/fa2_mma_tuning in server mode (see its header for the protocol)."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().split()
        if not reply:
            raise RuntimeError(f"fa2_mma_tuning gave no answer to '{line}' (exit code {self.proc.poll()})")
        return reply

    def close(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


def torch_sample(fn, backend, calls):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    with sdpa_kernel(backend):
        torch.cuda._sleep(SPIN_CYCLES)
        start.record()
        for _ in range(calls):
            fn()
        stop.record()
    stop.synchronize()
    return start.elapsed_time(stop) / calls


def measure_shape(server, dt, d, causal, s, rounds, calls):
    """Samples (ms) of every side at one shape: {name: [ms, ...]}, and the variants' max |diff|."""
    b, h = TOKENS // s, HIDDEN // d
    dtype = torch.bfloat16 if dt == "bf16" else torch.float16
    q, k, v = (torch.rand(b, h, s, d, device="cuda", dtype=dtype) * 2 - 1 for _ in range(3))
    def fn():
        return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    torch_backends = {}
    for name, backend in BACKENDS.items():
        try:
            torch_sample(fn, backend, WARMUP)
            torch_backends[name] = backend
        except RuntimeError as e:
            print(f"torch {name} {dt} d{d} causal={causal} s{s}: {e}")
    ours = server.ask(f"shape {dt} {d} {int(causal)} {s}")[1:]
    server.ask(f"time {WARMUP}")
    samples = {name: [] for name in list(torch_backends) + ours}
    for r in range(rounds):
        sides = ["torch", "ours"] if r % 2 == 0 else ["ours", "torch"]
        for side in sides:
            if side == "torch":
                for name, backend in torch_backends.items():
                    samples[name].append(torch_sample(fn, backend, calls))
            else:
                for name, ms in zip(ours, server.ask(f"time {calls}")[1:]):
                    samples[name].append(float(ms))
    diffs = dict(zip(ours[1:], (float(x) for x in server.ask("diff")[1:])))
    del q, k, v
    return samples, diffs


def flops(d, causal, s):
    return 4.0 * (TOKENS // s) * (HIDDEN // d) * s * s * d * (0.5 if causal else 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("out_dir", nargs="?", default=".")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--configs", default=",".join(f"{dt}:{d}" for dt, d in CONFIGS))
    args = ap.parse_args()
    configs = [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    shapes = [(dt, d, causal, s) for dt, d in configs for causal in (False, True) for s in SEQLENS]

    server = Server(args.binary)
    # The GPU idles at a low clock: ramp it up before the first sample.
    x = torch.rand(4, 16, 4096, 128, device="cuda", dtype=torch.bfloat16)
    ramp_start = time.time()
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        while time.time() - ramp_start < RAMP_SECONDS:
            F.scaled_dot_product_attention(x, x, x)
            torch.cuda.synchronize()
    del x
    runs = []  # per run: {shape key: {"tflops": {name: value}, "samples": {...}, "diffs": {...}}}
    for run in range(args.runs):
        res = {}
        for dt, d, causal, s in shapes:
            samples, diffs = measure_shape(server, dt, d, causal, s, args.rounds, args.calls)
            tf = {name: flops(d, causal, s) / statistics.median(ms) * 1e-9 for name, ms in samples.items()}
            res[(dt, d, causal, s)] = {"tflops": tf, "samples": samples, "diffs": diffs}
            print(f"run {run + 1} {dt} d{d} {'causal' if causal else 'full'} {s}: "
                  + " ".join(f"{n}={t:.0f}" for n, t in tf.items()), flush=True)
        runs.append(res)
    server.close()

    gpu = torch.cuda.get_device_name()
    nr = len(runs)
    head = "| dtype | d | causal | seqlen | " + " | ".join(
        f"fa2_mma ({i}) | flash ({i}) | cuDNN ({i}) | ratio ({i})" for i in range(1, nr + 1)) + " |"
    lines = [f"GPU: {gpu}; torch {torch.__version__}; cuDNN {torch.backends.cudnn.version()}; "
             f"{args.rounds} interleaved rounds of {args.calls} calls per side and shape, medians", "",
             head, "|---|---|---|---|" + "---|---|---|---|" * nr]
    ratios = [[] for _ in runs]
    for key in shapes:
        dt, d, causal, s = key
        cells = []
        for i, res in enumerate(runs):
            tf = res[key]["tflops"]
            ours, fl, cu = tf.get("shipped", float("nan")), tf.get("flash", float("nan")), tf.get("cudnn", float("nan"))
            ratios[i].append(ours / fl)
            cells.append(f"{ours:.0f} | {fl:.0f} | {cu:.0f} | {ours / fl:.3f}")
        lines.append(f"| {dt} | {d} | {'yes' if causal else 'no'} | {s} | " + " | ".join(cells) + " |")
    lines += ["", "median fa2_mma / flash: " + ", ".join(f"{statistics.median(r):.3f} (run {i + 1})" for i, r in enumerate(ratios))
              + "; min " + ", ".join(f"{min(r):.3f}" for r in ratios)]
    below = [f"{dt} d{d} {'causal' if c else 'full'} {s}" for j, (dt, d, c, s) in enumerate(shapes)
             if all(r[j] < 1.0 for r in ratios)]
    lines += ["below 1.0 in every run: " + (", ".join(below) if below else "none"), ""]
    variants = sorted({n for res in runs for v in res.values() for n in v["tflops"]} - {"shipped", "flash", "cudnn"})
    if variants:
        lines += ["Variants (TFLOP/s per run; max |out - shipped|):", "",
                  "| dtype | d | causal | seqlen | shipped | " + " | ".join(variants) + " |",
                  "|---|---|---|---|---|" + "---|" * len(variants)]
        for key in shapes:
            if not any(v in runs[0][key]["tflops"] for v in variants):
                continue
            dt, d, causal, s = key
            ship = " / ".join(f"{res[key]['tflops']['shipped']:.0f}" for res in runs)
            cells = []
            for var in variants:
                if var not in runs[0][key]["tflops"]:
                    cells.append("-")
                    continue
                vals = " / ".join(f"{res[key]['tflops'][var]:.0f}" for res in runs)
                cells.append(f"{vals} ({runs[0][key]['diffs'].get(var, 0):.2g})")
            lines.append(f"| {dt} | {d} | {'yes' if causal else 'no'} | {s} | {ship} | " + " | ".join(cells) + " |")
    text = "\n".join(lines)
    print(text)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "fa2_mma_compare.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.out_dir, "fa2_mma_compare.json"), "w") as f:
        json.dump([{f"{dt}/{d}/{int(c)}/{s}": v for (dt, d, c, s), v in res.items()} for res in runs], f)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(2, len(configs), figsize=(5 * len(configs), 8), sharex=True, squeeze=False)
        for col, (dt, d) in enumerate(configs):
            for row, causal in enumerate((False, True)):
                ax = axes[row][col]
                for name, label in (("shipped", "fa2_mma"), ("flash", "torch flash"), ("cudnn", "cuDNN")):
                    for i, res in enumerate(runs):
                        ax.plot(SEQLENS, [res[(dt, d, causal, s)]["tflops"].get(name, float("nan")) for s in SEQLENS],
                                marker="o", linestyle="-" if i == 0 else "--", color=f"C{['shipped', 'flash', 'cudnn'].index(name)}",
                                label=f"{label} (run {i + 1})")
                ax.set_xscale("log", base=2)
                ax.set_title(f"{dt} d={d} {'causal' if causal else 'non-causal'}")
                ax.set_ylabel("TFLOP/s")
                ax.legend(fontsize=7)
        fig.suptitle(f"fa2_mma vs PyTorch SDPA backends, interleaved ({gpu})")
        fig.tight_layout()
        fig.savefig(os.path.join(args.out_dir, "fa2_mma_vs_torch.png"), dpi=80)
    except ImportError:
        print("matplotlib not available: no plot")


if __name__ == "__main__":
    main()
