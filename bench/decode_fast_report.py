"""Joins decode_fast_timing.csv and decode_fast_torch.csv into the decode grid table (markdown)
and a plot (PNG, when matplotlib is present), and checks the decode_fast targets of
PERF_TARGETS.md: >= 1.0x the better of torch flash / cudnn at every point, >= 95% of the copy
ceiling when K+V >= 512 MB, <= 12 us at batch 1 / kv 1k, paged (page 16) within 10% of contiguous.

usage: python3 decode_fast_report.py TIMING_CSV TORCH_CSV MARKDOWN_OUT [PNG_OUT] [--previous CSV]
  --previous: another build's decode_fast_timing CSV of the same run, shown as a column
"""
import csv
import sys


def load(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def main():
    args = sys.argv[1:]
    previous_path = None
    if "--previous" in args:
        i = args.index("--previous")
        previous_path = args[i + 1]
        del args[i:i + 2]
    timing, torch_rows, md_path = load(args[0]), load(args[1]), args[2]
    png_path = args[3] if len(args) > 3 else None
    copy_gbps = next(float(r["gbps"]) for r in timing if r["mode"] == "copy")
    key = lambda r: (int(r["batch"]), int(r["heads"]), int(r["heads_kv"]), int(r["kv"]))
    ours = {}
    for r in timing:
        if r["mode"] not in ("copy", "copy_size"):
            ours.setdefault(key(r), {})[r["mode"] if r["mode"] != "splits" else f"s{r['splits']}"] = r
    # the copy of the same bytes after the same L2 flush (points of K+V >= 512 MB)
    copy_size = {key(r): float(r["gbps"]) for r in timing if r["mode"] == "copy_size"}
    previous = {}
    if previous_path:
        for r in load(previous_path):
            if r["mode"] == "auto":
                previous[key(r)] = r
    base = {}
    for r in torch_rows:
        base.setdefault(key(r), {})[r["backend"]] = r
    lines = [
        f"Copy ceiling (device-to-device, read + write): {copy_gbps:.0f} GB/s",
        "",
        "| batch | heads q/kv | kv | K+V MB | flash GB/s | cudnn GB/s | decode_fast GB/s (us, splits) | ratio vs best | best split GB/s (splits) | paged16 GB/s (vs contig) | paged256 GB/s | previous build GB/s (us) | checks |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    failures = []
    plot = []
    for k in sorted(ours):
        b, h, hkv, kv = k
        o = ours[k]
        auto = o["auto"]
        mb = 2 * b * kv * hkv * 128 * 2 / 1e6
        g = float(auto["gbps"])
        us = float(auto["us"])
        t = base.get(k, {})
        fl = float(t["flash"]["gbps"]) if "flash" in t else float("nan")
        cu = float(t["cudnn"]["gbps"]) if "cudnn" in t else float("nan")
        fl_mode = " (rep)" if "flash" in t and t["flash"]["gqa_mode"] == "repeat" else ""
        cu_mode = " (rep)" if "cudnn" in t and t["cudnn"]["gqa_mode"] == "repeat" else ""
        best = max(x for x in (fl, cu, 0.0) if x == x)
        ratio = g / best if best > 0 else float("nan")
        pr = previous.get(k)
        prev = f"{float(pr['gbps']):.0f} ({float(pr['us']):.1f})" if pr else "-"
        p16 = float(o["paged16"]["gbps"])
        p256 = float(o["paged256"]["gbps"])
        checks = []
        if not ratio >= 1.0:
            checks.append("below torch")
        if mb >= 512 and g < 0.95 * copy_gbps:
            same = f" ({g / copy_size[k]:.1%} of a same-size copy)" if k in copy_size else ""
            checks.append(f"{g / copy_gbps:.1%} of copy{same}")
        if b == 1 and kv == 1024 and us > 12.0:
            checks.append(f"{us:.1f} us > 12")
        if p16 < 0.9 * g:
            checks.append("paged16 > 10% slower")
        if checks:
            failures.append(f"{b},{h}/{hkv},{kv}: " + "; ".join(checks))
        lines.append(
            f"| {b} | {h}/{hkv} | {kv} | {mb:.0f} | {fl:.0f}{fl_mode} | {cu:.0f}{cu_mode} | {g:.0f} ({us:.1f}, {auto['splits']}) | "
            f"{ratio:.3f}x | {float(o['best']['gbps']):.0f} ({o['best']['splits']}) | {p16:.0f} ({p16 / g:.0%}) | {p256:.0f} | "
            f"{prev} | {'ok' if not checks else '; '.join(checks)} |")
        plot.append((f"{b},{h}/{hkv},{kv // 1024}k", fl, cu, g, p16))
    if copy_size:
        lines += ["", "Copies of the same bytes (half of K+V read, as much written) after the same L2 flush:"]
        lines += [f"- {b},{h}/{hkv},{kv}: {gb:.0f} GB/s ({gb / copy_gbps:.0%} of the ceiling); decode_fast "
                  f"{float(ours[(b, h, hkv, kv)]['auto']['gbps']) / gb:.1%} of it"
                  for (b, h, hkv, kv), gb in sorted(copy_size.items()) if (b, h, hkv, kv) in ours]
    lines += ["", f"Points failing a target: {len(failures)}"] + [f"- {x}" for x in failures]
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    if png_path:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib not available: no plot")
            return
        fig, ax = plt.subplots(figsize=(16, 6))
        xs = range(len(plot))
        width = 0.2
        for i, (name, col) in enumerate([("torch flash", 1), ("torch cudnn", 2), ("decode_fast", 3),
                                         ("decode_fast paged16", 4)]):
            ax.bar([x + (i - 1.5) * width for x in xs], [p[col] for p in plot], width, label=name)
        ax.axhline(copy_gbps, color="k", linestyle="--", linewidth=1, label="copy ceiling")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([p[0] for p in plot], rotation=60, ha="right", fontsize=8)
        ax.set_ylabel("GB/s of K+V read")
        ax.set_title("decode, bf16, head_dim 128, one new token (batch, heads q/kv, kv)")
        ax.legend()
        fig.tight_layout()
        fig.savefig(png_path, dpi=120)


if __name__ == "__main__":
    main()
