"""Table of a decode_fast_ab.sh run: per grid point, each build's contiguous (auto) time in every
round and its median over the rounds, paged-16 of each build, the torch baselines, and the
candidate's ratio to the better baseline (GB/s, so time of the better torch backend / time).

usage: python3 decode_fast_ab.py WORK_DIR BUILD_DIR...   (the first build is the candidate)
"""
import csv
import glob
import os
import statistics
import sys


def main():
    work, builds = sys.argv[1], [os.path.basename(b) for b in sys.argv[2:]]
    auto, paged = {}, {}  # (point, build) -> [us per round]
    sweep = {}  # (point, splits) -> [us per round], the candidate's explicit split counts
    for b in builds:
        for path in sorted(glob.glob(os.path.join(work, f"t_{b}_*.csv"))):
            for row in csv.DictReader(open(path)):
                pt = (int(row["batch"]), int(row["heads"]), int(row["heads_kv"]), int(row["kv"]))
                if row["mode"] == "auto":
                    auto.setdefault((pt, b), []).append(float(row["us"]))
                elif row["mode"] == "paged16":
                    paged.setdefault((pt, b), []).append(float(row["us"]))
                elif row["mode"] == "splits" and b == builds[0]:
                    sweep.setdefault((pt, int(row["splits"])), []).append(float(row["us"]))
    torch = {}  # (point, backend) -> [us]
    for path in sorted(glob.glob(os.path.join(work, "torch_*.csv"))):
        for row in csv.DictReader(open(path)):
            pt = (int(row["batch"]), int(row["heads"]), int(row["heads_kv"]), int(row["kv"]))
            if row["us"] != "nan":
                torch.setdefault((pt, row["backend"]), []).append(float(row["us"]))
    points = sorted({pt for pt, _ in auto})
    head = " | ".join(f"{b} us (rounds; median)" for b in builds)
    print(f"| point | {head} | {builds[0]} vs {builds[-1]} | paged16 {builds[0]} | flash us | cudnn us | "
          f"{builds[0]} vs best torch |")
    print("|" + "---|" * (len(builds) + 6))
    for pt in points:
        cells, med = [], {}
        for b in builds:
            v = auto.get((pt, b), [])
            med[b] = statistics.median(v) if v else float("nan")
            cells.append(" ".join(f"{x:.1f}" for x in v) + f"; **{med[b]:.1f}**")
        fl = statistics.median(torch[(pt, "flash")]) if (pt, "flash") in torch else float("nan")
        cu = statistics.median(torch[(pt, "cudnn")]) if (pt, "cudnn") in torch else float("nan")
        best = min(x for x in (fl, cu, float("inf")) if x == x)
        pg = paged.get((pt, builds[0]), [])
        pg_s = f"{statistics.median(pg):.1f} ({med[builds[0]] / statistics.median(pg):.0%})" if pg else "-"
        print(f"| {pt[0]}, {pt[1]}/{pt[2]}, {pt[3]} | " + " | ".join(cells) +
              f" | {med[builds[-1]] / med[builds[0]]:.3f}x | {pg_s} | {fl:.1f} | {cu:.1f} | "
              f"{best / med[builds[0]]:.3f}x |")
    counts = sorted({n for _, n in sweep})
    if counts:
        print(f"\n{builds[0]} split sweep, median us over the rounds (1 = the unsplit reference run)\n")
        print("| point | " + " | ".join(str(n) for n in counts) + " |")
        print("|" + "---|" * (len(counts) + 1))
        for pt in points:
            cells = [f"{statistics.median(sweep[(pt, n)]):.1f}" if (pt, n) in sweep else "-" for n in counts]
            print(f"| {pt[0]}, {pt[1]}/{pt[2]}, {pt[3]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
