"""sfa's kernels beside PyTorch's attention backends, in one process, on one GPU.

    python -m sfa.bench [--prefill] [--decode] [--quick] [--out DIR] [--kernels fa2_mma,decode_fast]

Prefill: the standard shapes (seqlen 512..16k, batch = 16384 / seqlen, heads = 2048 / head_dim,
head_dim 64/128/256, causal and not, bf16; fp16 at head_dim 128) in TFLOP/s, FLOPs =
4 * batch * heads * seqlen^2 * head_dim, halved for causal. Decode: the grid of
shared/PERF_TARGETS.md (one query token, bf16, head_dim 128) in GB/s of K and V read.

Backends: each sfa kernel that serves the shape (the teaching kernels only up to seqlen 1024),
torch SDPA's flash, cudnn and mem-efficient backends, and plain attention (matmul, softmax,
matmul in the input dtype). Times are medians of CUDA-event timings after warm-up
(triton.testing.do_bench when present), with L2 flushed before every run. Every sfa result is
compared with torch's (flash, else the first torch backend that ran) and the relative error is
recorded. Writes compare_<tag>.md (table), .json (every number), _prefill.png and _decode.png.
"""

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import sfa

try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # torch < 2.3
    SDPBackend = sdpa_kernel = None

SEQLENS = [512, 1024, 2048, 4096, 8192, 16384]
QUICK_SEQLENS = [1024, 4096]
TOKENS = 16384
MODEL_DIM = 2048
TEACHING = ("fa1", "fa2", "decode")
TEACHING_MAX_SEQLEN = 1024
# `standard` materialises float32 scores: batch * heads * seqlen^2 * 4 bytes of workspace, 17 GB at
# the 8k standard shape and 34 GB at 16k. Above this length it is not run.
STANDARD_MAX_SEQLEN = 4096
PREFILL_KERNELS = ("fa2_mma", "standard", "fa2", "fa1", "cpu-flash")
DECODE_KERNELS = ("decode_fast", "decode", "cpu-decode")
TORCH_BACKENDS = ("flash", "cudnn", "efficient", "plain")
# (batch, heads, heads_kv) x kv lengths of PERF_TARGETS.md; None marks a cell it leaves out.
DECODE_GRID = [
    (1, 32, 8, [1024, 8192, 32768, 131072]),
    (16, 32, 8, [1024, 8192, 32768, 131072]),
    (64, 32, 8, [1024, 8192, 32768]),
    (1, 32, 32, [1024, 8192, 32768, 131072]),
    (16, 32, 32, [1024, 8192, 32768]),
    (1, 64, 8, [1024, 8192, 32768, 131072]),
    (16, 64, 8, [1024, 8192, 32768]),
]
QUICK_DECODE_GRID = [(1, 32, 8, [1024, 32768]), (16, 32, 8, [1024, 32768])]
ERROR_FLAG = 2e-2  # sfa vs torch, relative: two bf16 roundings stay far below this
L2_FLUSH_BYTES = 256 << 20
DEVICE = "cuda"


# ---- timing ------------------------------------------------------------------------------------

def _median_ms(fn, warmup_ms, rep_ms):
    """Median milliseconds of fn() with L2 flushed before each run."""
    if DEVICE == "cpu":  # a dry run of the script itself: wall clock, few runs
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1e3)
        return sorted(times)[1]
    try:
        from triton.testing import do_bench

        return float(do_bench(fn, warmup=warmup_ms, rep=rep_ms, return_mode="median"))
    except ImportError:
        pass
    flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.uint8, device=DEVICE)
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        fn()
    end.record()
    torch.cuda.synchronize()
    estimate = max(start.elapsed_time(end) / 5, 1e-3)
    for _ in range(max(1, int(warmup_ms / estimate))):
        fn()
    runs = max(5, int(rep_ms / estimate))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(runs)]
    for i in range(runs):
        flush.zero_()
        starts[i].record()
        fn()
        ends[i].record()
    torch.cuda.synchronize()
    times = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return times[len(times) // 2]


# ---- the contenders ------------------------------------------------------------------------------

def _sdpa(backend_name):
    backend = {"flash": "FLASH_ATTENTION", "cudnn": "CUDNN_ATTENTION", "efficient": "EFFICIENT_ATTENTION"}[backend_name]

    def run(q, k, v, causal, gqa):
        with sdpa_kernel(getattr(SDPBackend, backend)):
            if gqa:
                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)

    return run


def _plain(q, k, v, causal, gqa):
    """matmul, softmax, matmul in the input dtype (BHSD). With GQA the query heads of one KV head
    become extra rows, so K and V are read once."""
    b, h, s_q, d = q.shape
    h_kv, s_k = k.shape[1], k.shape[2]
    if gqa:
        q = q.reshape(b, h_kv, (h // h_kv) * s_q, d)
    scores = torch.matmul(q, k.transpose(-1, -2)) * (d ** -0.5)
    if causal:
        scores = scores.masked_fill(_causal_mask(s_q, s_k, q.device), float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v).reshape(b, h, s_q, d)


_masks = {}


def _causal_mask(s_q, s_k, device):
    key = (s_q, s_k)
    if key not in _masks:
        _masks.clear()
        i = torch.arange(s_q, device=device)[:, None]
        j = torch.arange(s_k, device=device)[None, :]
        _masks[key] = j > i + (s_k - s_q)
    return _masks[key]


def _torch_backend(name):
    return _plain if name == "plain" else _sdpa(name)


# ---- one configuration ----------------------------------------------------------------------------

def _rel_error(a, b):
    a, b = a.float(), b.float()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def _synchronize():
    if DEVICE != "cpu":
        torch.cuda.synchronize()


def _empty_cache():
    if DEVICE != "cpu":
        torch.cuda.empty_cache()


def _measure(fn, args):
    """(ms, output) or (None, reason). A failure while timing (e.g. out of memory on a repeat)
    is a result of its own, not the end of the run."""
    try:
        out = fn()
        _synchronize()
        ms = _median_ms(fn, args.warmup, args.rep)
    except torch.cuda.OutOfMemoryError:
        _empty_cache()
        return None, "out of memory"
    except (RuntimeError, NotImplementedError, ValueError) as e:
        return None, str(e).splitlines()[0][:120]
    return ms, out


def _prefill_case(cfg, kernels, backends, args, tick):
    dtype = getattr(torch, cfg["dtype"])
    b, s, h, d, causal = cfg["batch"], cfg["seqlen"], cfg["heads"], cfg["head_dim"], cfg["causal"]
    gen = torch.Generator(device=DEVICE).manual_seed(s * 1000 + d)
    q, k, v = (torch.randn(b, s, h, d, device=DEVICE, dtype=dtype, generator=gen) for _ in range(3))
    qt, kt, vt = (x.transpose(1, 2).contiguous() for x in (q, k, v))  # torch's own layout
    flops = 4.0 * b * h * s * s * d / (2 if causal else 1)
    rows, reference = [], None
    for name in backends:
        tick(f"{cfg['label']} torch-{name}")
        fn = _torch_backend(name)
        ms, out = _measure(lambda: fn(qt, kt, vt, causal, False), args)
        rows.append(_row(cfg, "torch-" + name, ms, out, flops=flops))
        if ms is not None and reference is None:
            reference = out.transpose(1, 2)
        out = None
    for kernel in kernels:
        tick(f"{cfg['label']} sfa-{kernel}")
        if kernel in TEACHING and s > TEACHING_MAX_SEQLEN:
            rows.append(_row(cfg, "sfa-" + kernel, None, "teaching kernel: seqlen above 1024 not run", flops=flops))
            continue
        if kernel == "standard" and s > STANDARD_MAX_SEQLEN:
            rows.append(_row(cfg, "sfa-" + kernel, None,
                             f"standard: seqlen above {STANDARD_MAX_SEQLEN} not run (seqlen^2 workspace)", flops=flops))
            continue
        ms, out = _measure(lambda: sfa.attention(q, k, v, causal=causal, kernel=kernel), args)
        row = _row(cfg, "sfa-" + kernel, ms, out, flops=flops)
        if ms is not None and reference is not None:
            row["error_vs_torch"] = _rel_error(out, reference)
        rows.append(row)
        out = None
    del q, k, v, qt, kt, vt, reference
    _empty_cache()
    return rows


def _decode_case(cfg, kernels, backends, args, tick):
    dtype = getattr(torch, cfg["dtype"])
    b, h, h_kv, d, n = cfg["batch"], cfg["heads"], cfg["heads_kv"], cfg["head_dim"], cfg["kv_len"]
    gen = torch.Generator(device=DEVICE).manual_seed(n + h)
    q = torch.randn(b, 1, h, d, device=DEVICE, dtype=dtype, generator=gen)
    kc, vc = (torch.randn(b, n, h_kv, d, device=DEVICE, dtype=dtype, generator=gen) for _ in range(2))
    qt, kt, vt = q.transpose(1, 2), kc.transpose(1, 2).contiguous(), vc.transpose(1, 2).contiguous()
    nbytes = 2.0 * b * n * h_kv * d * q.element_size()
    gqa = h != h_kv
    rows, reference = [], None
    for name in backends:
        tick(f"{cfg['label']} torch-{name}")
        fn = _torch_backend(name)
        ms, out = _measure(lambda: fn(qt, kt, vt, False, gqa), args)
        rows.append(_row(cfg, "torch-" + name, ms, out, nbytes=nbytes))
        if ms is not None and reference is None:
            reference = out.transpose(1, 2)
        out = None
    del kt, vt
    for kernel in kernels:
        tick(f"{cfg['label']} sfa-{kernel}")
        ms, out = _measure(lambda: sfa.decode(q, kc, vc, kernel=kernel), args)
        row = _row(cfg, "sfa-" + kernel, ms, out, nbytes=nbytes)
        if ms is not None and reference is not None:
            row["error_vs_torch"] = _rel_error(out, reference)
        rows.append(row)
        out = None
    del q, kc, vc, reference
    _empty_cache()
    return rows


def _row(cfg, backend, ms, out_or_reason, flops=None, nbytes=None):
    row = {k: v for k, v in cfg.items() if k != "label"}
    row["backend"] = backend
    row["ms"] = ms
    if ms is None:
        row["status"] = out_or_reason
    elif flops is not None:
        row["tflops"] = flops / ms / 1e9
    else:
        row["gbps"] = nbytes / ms / 1e6
    return row


# ---- configurations -------------------------------------------------------------------------------

def prefill_configs(quick):
    seqlens = QUICK_SEQLENS if quick else SEQLENS
    plan = [("bfloat16", 128)] if quick else [("bfloat16", 64), ("bfloat16", 128), ("bfloat16", 256),
                                              ("float16", 128)]
    configs = []
    for dtype, d in plan:
        for causal in (False, True):
            for s in seqlens:
                short = "bf16" if dtype == "bfloat16" else "fp16"
                configs.append(dict(kind="prefill", dtype=dtype, head_dim=d, causal=causal, seqlen=s,
                                    batch=TOKENS // s, heads=MODEL_DIM // d,
                                    label=f"{short} d{d}{' causal' if causal else ''} s{s}"))
    return configs


def decode_configs(quick):
    configs = []
    for b, h, h_kv, lengths in QUICK_DECODE_GRID if quick else DECODE_GRID:
        for n in lengths:
            configs.append(dict(kind="decode", dtype="bfloat16", head_dim=128, batch=b, heads=h, heads_kv=h_kv,
                                kv_len=n, label=f"b{b} h{h}/{h_kv} kv{n}"))
    return configs


# ---- reporting ------------------------------------------------------------------------------------

def _metric(row):
    return row.get("tflops", row.get("gbps"))


def _group_key(row):
    if row["kind"] == "prefill":
        return (row["kind"], row["dtype"], row["head_dim"], row["causal"], row["seqlen"])
    return (row["kind"], row["batch"], row["heads"], row["heads_kv"], row["kv_len"])


def _config_name(row):
    if row["kind"] == "prefill":
        short = "bf16" if row["dtype"] == "bfloat16" else "fp16"
        return f"{short} d{row['head_dim']}{' causal' if row['causal'] else ''}", f"{row['seqlen']}"
    return f"b{row['batch']} h{row['heads']}/{row['heads_kv']}", f"{row['kv_len']}"


def table(rows, kind):
    rows = [r for r in rows if r["kind"] == kind]
    if not rows:
        return ""
    backends = list(dict.fromkeys(r["backend"] for r in rows))
    unit = "TFLOP/s" if kind == "prefill" else "GB/s"
    size = "seqlen" if kind == "prefill" else "kv"
    groups = {}
    for r in rows:
        groups.setdefault(_group_key(r), []).append(r)
    head = ["config", size] + backends + ["sfa best / flash", "sfa best / best torch"]
    lines = [f"{kind} ({unit}; '!' marks an error vs torch above {ERROR_FLAG:g}; — unsupported, "
             f"n/r not run: teaching kernel above seqlen {TEACHING_MAX_SEQLEN})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, members in groups.items():
        by = {r["backend"]: r for r in members}
        cells = []
        for name in backends:
            r = by.get(name)
            value = None if r is None else _metric(r)
            flag = "!" if r is not None and r.get("error_vs_torch", 0) > ERROR_FLAG else ""
            status = "" if r is None else r.get("status", "")
            missing = "oom" if status == "out of memory" else "n/r" if status.startswith("teaching") else "—"
            cells.append(missing if value is None else f"{value:.0f}{flag}")
        sfa_best = max((_metric(r) or 0 for r in members if r["backend"].startswith("sfa-")), default=0)
        torch_best = max((_metric(r) or 0 for r in members if r["backend"].startswith("torch-")), default=0)
        flash = _metric(by["torch-flash"]) if "torch-flash" in by and _metric(by["torch-flash"]) else 0
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "—"  # noqa: E731
        name, size_value = _config_name(members[0])
        lines.append("| " + " | ".join([name, size_value] + cells + [ratio(sfa_best, flash),
                                                                     ratio(sfa_best, torch_best)]) + " |")
    return "\n".join(lines) + "\n"


def plot(rows, path, kind):
    """One subplot per configuration: metric against seqlen / kv length, a line per backend."""
    rows = [r for r in rows if r["kind"] == kind and _metric(r)]
    if not rows:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: matplotlib is not installed; no plot (run again with --plot-from the .json)", file=sys.stderr)
        return None
    panels = {}
    for r in rows:
        panels.setdefault(_config_name(r)[0], []).append(r)
    cols = min(4, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), squeeze=False)
    x_of = (lambda r: r["seqlen"]) if kind == "prefill" else (lambda r: r["kv_len"])
    for ax, (title, members) in zip(axes.flat, panels.items()):
        for backend in dict.fromkeys(r["backend"] for r in members):
            points = sorted((x_of(r), _metric(r)) for r in members if r["backend"] == backend)
            style = "-o" if backend.startswith("sfa-") else "--s"
            ax.plot([p[0] for p in points], [p[1] for p in points], style, markersize=3, label=backend)
        ax.set_xscale("log", base=2)
        xs = sorted({x_of(r) for r in members})
        ax.set_xticks(xs, [f"{x // 1024}k" if x >= 1024 else str(x) for x in xs])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("seqlen" if kind == "prefill" else "kv length", fontsize=8)
        ax.set_ylabel("TFLOP/s" if kind == "prefill" else "GB/s", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    ncol = min(len(labels), 2 * cols)
    legend_inches = 0.3 + 0.25 * math.ceil(len(labels) / ncol)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8)
    fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _commit():
    """SFA_COMMIT when set, else the git commit of the working directory or of this file."""
    if os.environ.get("SFA_COMMIT"):
        return os.environ["SFA_COMMIT"]
    for where in (os.getcwd(), os.path.dirname(os.path.abspath(__file__))):
        try:
            commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=where, timeout=5).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            commit = ""
        if commit:
            return commit
    return "unknown"


def write_reports(result, out_dir, tag):
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, f"compare_{tag}")
    with open(base + ".json", "w") as f:
        json.dump(result, f, indent=1)
    meta = result["meta"]
    text = [f"# sfa vs torch attention backends — {meta['gpu']}", "",
            f"date {meta['date']}, sfa commit {meta['commit']}, torch {meta['torch']}, "
            f"CUDA {meta['cuda']}, timing {meta['timer']}", f"command: `{meta['command']}`", ""]
    for kind in ("prefill", "decode"):
        t = table(result["rows"], kind)
        if t:
            text += [t]
    with open(base + ".md", "w") as f:
        f.write("\n".join(text))
    written = [base + ".json", base + ".md"]
    for kind in ("prefill", "decode"):
        path = plot(result["rows"], f"{base}_{kind}.png", kind)
        if path:
            written.append(path)
    return written


# ---- main ---------------------------------------------------------------------------------------

class _Progress:
    def __init__(self, total):
        try:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="run", dynamic_ncols=True)
        except ImportError:
            self.bar = None
        self.total, self.done, self.start = total, 0, time.time()

    def __call__(self, label):
        self.done += 1
        if self.bar is not None:
            self.bar.set_description_str(label[:40])
            self.bar.update(1)
        else:
            print(f"[{self.done}/{self.total}] {time.time() - self.start:6.1f}s {label}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sfa.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--prefill", action="store_true", help="prefill shapes (default: both)")
    parser.add_argument("--decode", action="store_true", help="decode grid (default: both)")
    parser.add_argument("--quick", action="store_true", help="a few shapes of each, for a smoke run")
    parser.add_argument("--out", default="bench/results", help="folder for the table, JSON and plots")
    parser.add_argument("--tag", default=None, help="file name tag (default: <date>_<gpu>)")
    parser.add_argument("--kernels", default=None,
                        help="comma-separated sfa kernels (default: every built one that fits the shapes)")
    parser.add_argument("--backends", default=",".join(TORCH_BACKENDS), help="torch backends to compare")
    parser.add_argument("--no-teaching", action="store_true", help="skip the teaching kernels fa1, fa2, decode")
    parser.add_argument("--warmup", type=float, default=25.0, help="warm-up per measurement, ms")
    parser.add_argument("--rep", type=float, default=100.0, help="timed repetitions per measurement, ms")
    parser.add_argument("--plot-from", default=None, help="only redraw table and plots from a results .json")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"),
                        help="cpu: a dry run of the script on tiny shapes (its numbers mean nothing)")
    args = parser.parse_args(argv)

    if args.plot_from:
        with open(args.plot_from) as f:
            result = json.load(f)
        tag = args.tag or os.path.basename(args.plot_from)[len("compare_"):-len(".json")]
        for path in write_reports(result, args.out, tag):
            print(path)
        return 0
    global DEVICE, TOKENS, MODEL_DIM, QUICK_SEQLENS, QUICK_DECODE_GRID
    DEVICE = args.device
    if DEVICE == "cpu":
        TOKENS, MODEL_DIM, QUICK_SEQLENS, QUICK_DECODE_GRID = 64, 128, [32, 64], [(2, 8, 2, [64, 256])]
        args.quick = True
    elif not torch.cuda.is_available() or not sfa.built_with_cuda():
        print("bench: needs a CUDA device and sfa built with CUDA", file=sys.stderr)
        return 1

    built = [k for k in sfa.kernels() if not k.startswith("cpu-")] if DEVICE == "cuda" else ["cpu-flash", "cpu-decode"]
    wanted = args.kernels.split(",") if args.kernels else None
    pick = lambda names: [k for k in names if k in built and (wanted is None or k in wanted)  # noqa: E731
                          and not (args.no_teaching and k in TEACHING)]
    backends = [b for b in args.backends.split(",") if b]
    if sdpa_kernel is None:
        backends = [b for b in backends if b == "plain"]
    do_prefill = args.prefill or not args.decode
    do_decode = args.decode or not args.prefill
    jobs = []
    if do_prefill:
        jobs += [(c, _prefill_case, pick(PREFILL_KERNELS)) for c in prefill_configs(args.quick)]
    if do_decode:
        jobs += [(c, _decode_case, pick(DECODE_KERNELS)) for c in decode_configs(args.quick)]
    progress = _Progress(sum(len(kernels) + len(backends) for _, _, kernels in jobs))
    rows = []
    try:
        for cfg, run, kernels in jobs:
            rows += run(cfg, kernels, backends, args, progress)
    finally:
        progress.close()

    gpu = torch.cuda.get_device_name() if DEVICE == "cuda" else "cpu (dry run)"
    meta = dict(gpu=gpu, date=datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), commit=_commit(),
                torch=torch.__version__, cuda=torch.version.cuda, host=platform.node(), device=DEVICE,
                timer="triton.testing.do_bench median" if _has_triton() else "CUDA events median",
                command="python -m sfa.bench " + " ".join(argv if argv is not None else sys.argv[1:]))
    tag = args.tag or datetime.date.today().isoformat() + "_" + "".join(c if c.isalnum() else "_" for c in gpu).lower()
    written = write_reports(dict(meta=meta, rows=rows), args.out, tag)
    for kind in ("prefill", "decode"):
        t = table(rows, kind)
        if t:
            print(t)
    bad = [r for r in rows if r.get("error_vs_torch", 0) > ERROR_FLAG]
    for r in bad:
        print(f"bench: {r['backend']} differs from torch by {r['error_vs_torch']:.3g} at {_config_name(r)}",
              file=sys.stderr)
    print("written: " + ", ".join(written))
    return 1 if bad else 0


def _has_triton():
    try:
        import triton.testing  # noqa: F401

        return True
    except ImportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
