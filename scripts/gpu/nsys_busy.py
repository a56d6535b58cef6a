#!/usr/bin/env python3
"""How busy the GPU was in an Nsight Systems capture, and on what (scripts/gpu-check.sh).

    nsys_busy.py CAPTURE.sqlite [--last-seconds S]

Prints the span of the kernels, the time at least one kernel ran (the union of their
intervals, so overlaps count once), that share of the span, the kernel count, the kernels by
total time, the copies, and the CUDA runtime calls by total time. With --last-seconds only the
last S seconds of kernel activity count (a benchmark's timed repetitions after its warm-up).
The tables are those `nsys export --type sqlite` writes (CUPTI_ACTIVITY_KIND_*, StringIds).
"""
import argparse
import sqlite3
import sys


def union_ns(intervals):
    total, cur_s, cur_e = 0, None, None
    for s, e in sorted(intervals):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        total += cur_e - cur_s
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sqlite")
    ap.add_argument("--last-seconds", type=float, default=0.0)
    ap.add_argument("--top", type=int, default=25)
    a = ap.parse_args()
    db = sqlite3.connect(a.sqlite)
    names = dict(db.execute("SELECT id, value FROM StringIds"))
    kern = db.execute("SELECT start, end, demangledName FROM CUPTI_ACTIVITY_KIND_KERNEL").fetchall()
    if not kern:
        print("no kernels in the capture")
        return 1
    t_end = max(e for _, e, _ in kern)
    t0 = t_end - int(a.last_seconds * 1e9) if a.last_seconds > 0 else min(s for s, _, _ in kern)
    kern = [k for k in kern if k[0] >= t0]
    span = t_end - min(s for s, _, _ in kern)
    busy = union_ns([(s, e) for s, e, _ in kern])
    print(f"window {span / 1e6:.2f} ms: kernels ran {busy / 1e6:.2f} ms ({100 * busy / span:.1f}%), "
          f"idle {(span - busy) / 1e6:.2f} ms; {len(kern)} kernels, mean {busy / len(kern) / 1e3:.1f} us")
    by = {}
    for s, e, n in kern:
        name = names.get(n, str(n)).split("(")[0][:70]
        t, c = by.get(name, (0, 0))
        by[name] = (t + e - s, c + 1)
    print(f"{'kernel':72s} {'calls':>7s} {'total ms':>9s} {'%':>6s} {'mean us':>8s}")
    for name, (t, c) in sorted(by.items(), key=lambda x: -x[1][0])[: a.top]:
        print(f"{name:72s} {c:7d} {t / 1e6:9.2f} {100 * t / busy:6.1f} {t / c / 1e3:8.1f}")
    try:
        mem = db.execute("SELECT start, end, bytes, copyKind FROM CUPTI_ACTIVITY_KIND_MEMCPY WHERE start >= ?",
                         (t0,)).fetchall()
        kinds = {1: "HtoD", 2: "DtoH", 8: "DtoD"}
        agg = {}
        for s, e, b, k in mem:
            t, c, by_ = agg.get(k, (0, 0, 0))
            agg[k] = (t + e - s, c + 1, by_ + b)
        for k, (t, c, b) in sorted(agg.items()):
            print(f"memcpy {kinds.get(k, k)}: {c} copies, {b / 1e6:.1f} MB, {t / 1e6:.2f} ms")
    except sqlite3.Error as e:
        print(f"(no memcpy table: {e})")
    try:
        rt = db.execute("SELECT start, end, nameId FROM CUPTI_ACTIVITY_KIND_RUNTIME").fetchall()
        agg = {}
        for s, e, n in rt:
            name = names.get(n, str(n))
            t, c = agg.get(name, (0, 0))
            agg[name] = (t + e - s, c + 1)
        print(f"{'CUDA runtime call (whole run)':40s} {'calls':>7s} {'total ms':>9s} {'mean us':>8s}")
        for name, (t, c) in sorted(agg.items(), key=lambda x: -x[1][0])[:15]:
            print(f"{name[:40]:40s} {c:7d} {t / 1e6:9.2f} {t / c / 1e3:8.1f}")
    except sqlite3.Error as e:
        print(f"(no runtime table: {e})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
