#!/usr/bin/env python3
"""Sum Nsight Compute's per-kernel durations by kernel (scripts/gpu-check.sh, GPU_CHECK_NCU_STEP).

    ncu --csv --metrics gpu__time_duration.sum ... > kernels.csv
    ncu_sum.py kernels.csv [--top N]

Prints the total GPU time of the kernels (one after another, as ncu serialises them, so gaps
between kernels are not in it), the kernel count, and the kernels by total time: where a step's
GPU time goes without the synchronisations of BERTC_CUDA_PROFILE.
"""
import argparse
import csv
import sys

SCALE = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    rows = []
    with open(a.csv, newline="") as f:
        lines = [ln for ln in f if ln.startswith('"')]  # ncu's own messages are not quoted
    for r in csv.DictReader(lines):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        try:
            us = float(r["Metric Value"].replace(",", "")) * SCALE.get(r.get("Metric Unit", "nsecond"), 1e-3)
        except (KeyError, ValueError):
            continue
        rows.append((r.get("Kernel Name", "?").split("(")[0][:70], us))
    if not rows:
        print("no kernel durations in", a.csv)
        return 1
    total = sum(us for _, us in rows)
    print(f"{len(rows)} kernels, {total / 1e3:.2f} ms of GPU time back to back")
    by = {}
    for name, us in rows:
        t, c = by.get(name, (0.0, 0))
        by[name] = (t + us, c + 1)
    print(f"{'kernel':72s} {'calls':>6s} {'total us':>10s} {'%':>6s} {'mean us':>8s}")
    for name, (t, c) in sorted(by.items(), key=lambda x: -x[1][0])[: a.top]:
        print(f"{name:72s} {c:6d} {t:10.1f} {100 * t / total:6.1f} {t / c:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
