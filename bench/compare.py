#!/usr/bin/env python3
"""Reads the JSON Lines of `bertc bench` (and `bertc bench --peak`) and `bench/bench_torch.py`
and prints one Markdown report: per shape, measurement and precision, both tools' seconds,
examples/s, model GFLOP/s, % of the measured sgemm peak, peak RSS, the ratio bertc/PyTorch, and
the issue's targets as pass/miss.

usage: python bench/compare.py RESULTS.jsonl [--out FILE] [--title TEXT]

Ratios: "speed-up" is PyTorch's median seconds / bertc's (> 1: bertc faster); "RSS ratio" is
bertc's peak RSS / PyTorch's. Rows a tool did not produce show "n/a".

Rows carry the hypervisor's steal share during their process's run ("steal_pct", bench/run.sh),
shown in the header and per round. With `bench/run.sh --rounds N` every row carries its round: each tool's figure is then the median
over the rounds (seconds; peak RSS is the largest), the speed-up the ratio of those medians, and a
column lists each round's own speed-up (PyTorch's seconds / bertc's in that round).

Rows measured on a GPU ("device" other than "cpu": `bertc bench --device cuda`,
`bench/bench_torch.py --device cuda`) get a table of their own, after the CPU's, with the GPU
issue's target: bertc's bf16 training step at least 3x PyTorch AMP bf16 on the same card.
"""
import argparse
import json
import sys

WHATS = [("train_step", "training step"), ("eval_forward", "evaluation"), ("latency", "latency (batch 1)")]
WHAT_NAMES = dict(WHATS + [("matmul_step", "matrix products")])
PRECISIONS = ["fp32", "bf16"]


def load(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"compare.py: {path}: line {n}: not JSON ({e})")
    return rows


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def target_cells(shape, what, prec, b, p, p_fp32, peak):
    """The issue's targets for this row: a list of 'text: pass|miss|n/a'."""
    out = []

    def ratio_check(label, need, mine, theirs):
        if mine is None or theirs is None:
            out.append(f"{label} >= {need}x: n/a")
        else:
            r = theirs["seconds_median"] / mine["seconds_median"]
            out.append(f"{label} >= {need}x: {'pass' if r >= need else 'miss'} ({r:.2f}x)")

    if what == "train_step":
        ratio_check("vs PyTorch " + prec, 1.3, b, p)
        if prec == "fp32":
            if b is None or peak is None:
                out.append(">= 80% of peak: n/a")
            else:
                pct = 100 * b["gflop_per_s"] / peak
                out.append(f">= 80% of peak: {'pass' if pct >= 80 else 'miss'} ({pct:.0f}%)")
        else:
            ratio_check("vs PyTorch fp32", 2.4, b, p_fp32)
        if shape == "bert-base":
            if b is None or p is None:
                out.append("RSS <= PyTorch: n/a")
            else:
                ok = b["peak_rss_mib"] <= p["peak_rss_mib"]
                out.append(f"RSS <= PyTorch: {'pass' if ok else 'miss'}")
    elif what == "eval_forward":
        ratio_check("vs PyTorch " + prec, 1.3, b, p)
    elif what == "latency":
        ratio_check("vs PyTorch " + prec, 1.5, b, p)
    return out


def gpu_report(rows):
    """The GPU rows: per device name, shape, measurement and precision, both tools side by side."""
    by, keys = {}, []
    for r in rows:
        if r.get("what") not in ("train_step", "eval_forward", "latency"):
            continue
        k = (r.get("device"), r["shape"], r["what"], r["precision"])
        by[(r["tool"],) + k] = r
        if k not in keys:
            keys.append(k)
    L = ["## GPU", "",
         "| device | shape | measurement | precision | bertc s | PyTorch s | bertc ex/s | PyTorch ex/s "
         "| bertc GFLOP/s | PyTorch GFLOP/s | speed-up | target |",
         "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    label = dict(WHATS)
    for k in sorted(keys, key=lambda k: (k[0], k[1], [w for w, _ in WHATS].index(k[2]), PRECISIONS.index(k[3]))):
        b, p = by.get(("bertc",) + k), by.get(("pytorch",) + k)
        name = (p or {}).get("device_name") or k[0]
        speed = None if b is None or p is None else p["seconds_median"] / b["seconds_median"]
        target = ""
        if k[2] == "train_step" and k[3] == "bf16":
            target = ">= 3x PyTorch AMP bf16: " + ("n/a" if speed is None else
                                                  f"{'pass' if speed >= 3 else 'miss'} ({speed:.2f}x)")

        def g(r, key, spec):
            return fmt(None if r is None else r.get(key), spec)

        L.append(f"| {name} | {k[1]} | {label[k[2]]} | {k[3]} | {g(b, 'seconds_median', '.5f')} "
                 f"| {g(p, 'seconds_median', '.5f')} | {g(b, 'examples_per_s', '.1f')} | {g(p, 'examples_per_s', '.1f')} "
                 f"| {g(b, 'gflop_per_s', '.0f')} | {g(p, 'gflop_per_s', '.0f')} "
                 f"| {fmt(speed, '.2f')}{'x' if speed else ''} | {target} |")
    L.append("")
    return L


def merge_rounds(rows):
    """Rows of several rounds (bench/run.sh --rounds) -> one row per (tool, shape, what, precision)
    with the median seconds over rounds, plus {key: {round: seconds}} for the per-round ratios."""
    groups, order, per_round = {}, [], {}
    for r in rows:
        if ("round" not in r or "seconds_median" not in r or
                r.get("what") not in ("train_step", "eval_forward", "latency", "matmul_step")):
            order.append(r)
            continue
        k = (r["tool"], r["shape"], r["what"], r["precision"])
        if k not in groups:
            groups[k] = []
            order.append(k)
        groups[k].append(r)
        per_round.setdefault(k, {})[r["round"]] = r["seconds_median"]
    out = []
    for item in order:
        if not isinstance(item, tuple):
            out.append(item)
            continue
        g = sorted(groups[item], key=lambda r: r["seconds_median"])
        m = dict(g[(len(g) - 1) // 2])
        secs = sorted(r["seconds_median"] for r in g)
        n = len(secs)
        med = secs[n // 2] if n % 2 else 0.5 * (secs[n // 2 - 1] + secs[n // 2])
        scale = m["seconds_median"] / med
        m["seconds_median"] = med
        for key in ("examples_per_s", "gflop_per_s"):
            if key in m:
                m[key] *= scale
        if "peak_rss_mib" in m:
            m["peak_rss_mib"] = max(r.get("peak_rss_mib", 0) for r in g)
        for r in g:  # bench_torch.py probes OMP_WAIT_POLICY in the first round only
            for k in ("wait_policy_probe_s", "wait_policy_probe_of"):
                if k in r:
                    m.setdefault(k, r[k])
        m["rounds"] = n
        out.append(m)
    return out, per_round


def round_ratios(per_round, shape, what, prec, steal=None):
    """Each round's PyTorch seconds / bertc seconds, as text (with the hypervisor's steal share
    during bertc's and PyTorch's runs of that round, where the rows recorded it)."""
    b = per_round.get(("bertc", shape, what, prec), {})
    p = per_round.get(("pytorch", shape, what, prec), {})
    out = []
    for k in sorted(b):
        if k in p and b[k] > 0:
            text = f"{p[k] / b[k]:.2f}"
            sb = (steal or {}).get(("bertc", shape, what, prec, k))
            sp = (steal or {}).get(("pytorch", shape, what, prec, k))
            if sb is not None and sp is not None:
                text += f" (steal {sb}/{sp}%)"
            out.append(text)
    return ", ".join(out) if out else "n/a"


def report(rows, title):
    gpu = [r for r in rows if r.get("device", "cpu") != "cpu"]
    rows = [r for r in rows if r.get("device", "cpu") == "cpu"]
    # per measurement: a key without "what" kept only the last measurement's steal of each round
    steal = {(r["tool"], r["shape"], r.get("what"), r["precision"], r.get("round", 1)): r["steal_pct"]
             for r in rows if "steal_pct" in r and "shape" in r and "precision" in r}
    rows, per_round = merge_rounds(rows)
    rounds = max((r.get("rounds", 1) for r in rows), default=1)
    if not rows and gpu:
        return "\n".join([f"# {title}", ""] + gpu_report(gpu))
    by = {}
    for r in rows:
        if r.get("what") in ("train_step", "eval_forward", "latency", "matmul_step"):
            by[(r["tool"], r["shape"], r["what"], r["precision"])] = r
    # The best of the run's peak measurements per precision (bench/run.sh measures it before, between
    # and after the rounds: one measurement alone can catch a slow spell of a shared machine).
    peaks, peak_all = {}, {}
    for r in rows:
        if r.get("what") == "peak":
            prec = r.get("precision", "fp32")
            peak_all.setdefault(prec, []).append(r["gflop_per_s"])
            if prec not in peaks or r["gflop_per_s"] > peaks[prec]["gflop_per_s"]:
                peaks[prec] = r
    peak_fp32 = peaks.get("fp32", {}).get("gflop_per_s")
    shapes = []
    for r in rows:
        if r.get("what") in ("train_step", "eval_forward", "latency") and r["shape"] not in shapes:
            shapes.append(r["shape"])
    bertc_bf16 = any(k[0] == "bertc" and k[3] == "bf16" for k in by)
    L = [f"# {title}", ""]
    any_row = next((r for r in rows if r.get("what") in ("train_step", "eval_forward", "latency")), {})
    torch_row = next((r for r in rows if r.get("tool") == "pytorch"), None)
    L.append(f"- threads: {any_row.get('threads', 'n/a')}; timed runs per measurement: {any_row.get('reps', 'n/a')} "
             f"(after {any_row.get('warmup', 'n/a')} warm-up); seconds are medians")
    if steal:
        L.append(f"- hypervisor steal during the runs (share of the machine's CPU time taken by the host, per tool "
                 f"process): {min(steal.values())}-{max(steal.values())}%; where it differs much between the two "
                 f"tools' runs of a round, that round's ratio says more about the machine than the code")
    if rounds > 1:
        L.append(f"- {rounds} rounds, bertc and PyTorch alternating per (shape, precision, measurement), bertc first in odd "
                 f"rounds and PyTorch in even ones (bench/run.sh in the runs after 2026-11-28T0933Z): each figure is the median "
                 f"over the rounds (RSS: the largest), the speed-up the ratio of the medians; the last column "
                 f"gives each round's own speed-up")
    if peak_fp32:
        p = peaks["fp32"]
        L.append(f"- measured fp32 sgemm peak: **{peak_fp32:.1f} GFLOP/s** with {p.get('threads')} threads "
                 f"(best of: {p.get('best_of')}; {p.get('library')})")
        if len(peak_all["fp32"]) > 1:
            L.append(f"- the best of {len(peak_all['fp32'])} peak measurements in this run (before, between and after "
                     f"the rounds): " + ", ".join(f"{v:.1f}" for v in peak_all["fp32"]) + " GFLOP/s")
    else:
        L.append("- measured fp32 sgemm peak: n/a (no `bertc bench --peak` row)")
    if "bf16" not in peaks:
        L.append("- no bf16 peak measured: bf16 rows' % of peak are against the fp32 peak (marked *)")
    if torch_row:
        L.append(f"- PyTorch {torch_row.get('torch_version')}, transformers {torch_row.get('transformers_version')}, "
                 f"attention {torch_row.get('attn_implementation')}, torch.compile {torch_row.get('compile')}; "
                 f"OMP_WAIT_POLICY in the PyTorch probe table below")
    else:
        L.append("- PyTorch: not run (torch or transformers not installed): bertc rows only")
    pol = {}
    for r in rows:
        if r.get("tool") == "bertc" and "omp_wait_policy" in r and r.get("what") in WHAT_NAMES:
            pol.setdefault(r["omp_wait_policy"], []).append(f"{r['shape']} {WHAT_NAMES[r['what']]}")
    if pol:
        L.append("- bertc OMP_WAIT_POLICY, by measurement: "
                 + "; ".join(f"{k}: {', '.join(dict.fromkeys(v))}" for k, v in sorted(pol.items())))
    hp = {}
    for r in rows:
        if r.get("tool") in ("bertc", "pytorch") and "huge_pages" in r and r.get("what") in WHAT_NAMES:
            hp.setdefault(r["tool"], set()).add("on" if r["huge_pages"] else "off")
    if hp:
        L.append("- transparent huge pages asked for (madvise) for large buffers: "
                 + "; ".join(f"{'PyTorch' if k == 'pytorch' else k} {'/'.join(sorted(v))}" for k, v in sorted(hp.items())))
    if not bertc_bf16 and any(k[3] == "bf16" for k in by):  # bf16 asked for, and bertc had none
        L.append("- bertc bf16: n/a (this bertc has no `--precision bf16`)")
    L.append("- model FLOPs (both tools): forward = 2·B·T·L·(4C² + 2CF) + 4·B·T²·C·L + 2·B·(C² + CK); "
             "training step = 3 × forward (docs/PERFORMANCE.md)")
    L.append("")

    L.append("| shape | measurement | precision | bertc s | PyTorch s | bertc ex/s | PyTorch ex/s | bertc GFLOP/s "
             "| PyTorch GFLOP/s | bertc % peak | PyTorch % peak | bertc RSS MiB | PyTorch RSS MiB | speed-up "
             "| RSS ratio | targets |" + (" speed-up per round |" if rounds > 1 else ""))
    L.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
             + (" --- |" if rounds > 1 else ""))
    for shape in shapes:
        for what, label in WHATS:
            for prec in PRECISIONS:
                b = by.get(("bertc", shape, what, prec))
                p = by.get(("pytorch", shape, what, prec))
                if b is None and p is None:
                    continue
                p_fp32 = by.get(("pytorch", shape, what, "fp32"))
                peak = peaks.get(prec, peaks.get("fp32", {})).get("gflop_per_s")
                star = "*" if prec not in peaks else ""

                def pct(r):
                    return None if r is None or not peak else 100 * r["gflop_per_s"] / peak

                def g(r, k):
                    return None if r is None else r.get(k)

                speed = None if b is None or p is None else p["seconds_median"] / b["seconds_median"]
                rss = None if b is None or p is None else b["peak_rss_mib"] / p["peak_rss_mib"]
                tg = "; ".join(target_cells(shape, what, prec, b, p, p_fp32, peak_fp32))
                bn = "n/a" if b is None and prec == "bf16" and not bertc_bf16 else None
                L.append(
                    f"| {shape} | {label} | {prec} | {bn or fmt(g(b, 'seconds_median'), '.4f')} "
                    f"| {fmt(g(p, 'seconds_median'), '.4f')} | {fmt(g(b, 'examples_per_s'), '.2f')} "
                    f"| {fmt(g(p, 'examples_per_s'), '.2f')} | {fmt(g(b, 'gflop_per_s'), '.1f')} "
                    f"| {fmt(g(p, 'gflop_per_s'), '.1f')} | {fmt(pct(b), '.0f')}{star if b else ''} "
                    f"| {fmt(pct(p), '.0f')}{star if p else ''} | {fmt(g(b, 'peak_rss_mib'), '.0f')} "
                    f"| {fmt(g(p, 'peak_rss_mib'), '.0f')} | {fmt(speed, '.2f')}{'x' if speed else ''} "
                    f"| {fmt(rss, '.2f')} | {tg} |"
                    + (f" {round_ratios(per_round, shape, what, prec, steal)} |" if rounds > 1 else ""))
    L.append("")

    mm, seen = [], set()
    for r in rows:  # one per (shape, precision): rounds repeat the rows without a time
        if r.get("what") == "matmul_step" and (r["shape"], r["precision"]) not in seen:
            seen.add((r["shape"], r["precision"]))
            mm.append(r)
    if mm:
        L.append("bertc's matrix products alone (the sgemm calls of one training step, recorded and replayed; "
                 "their FLOPs are the calls' own 2·M·N·K, less than the model count since bertc's last layer "
                 "works on [CLS] only):")
        L.append("")
        L.append("| shape | precision | calls | GFLOP | of model FLOPs | replay s | GFLOP/s | % peak | in-step sgemm s "
                 "| that step s | sgemm share of step |")
        L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in mm:
            step = by.get(("bertc", r["shape"], "train_step", r["precision"]))
            if not r.get("calls"):
                L.append(f"| {r['shape']} | {r['precision']} | 0 | n/a | n/a | n/a | n/a | n/a | n/a | n/a | "
                         f"{r.get('note', '')} |")
                continue
            pct = 100 * r["gflop_per_s"] / peak_fp32 if peak_fp32 else None
            # the share within the recorded step itself (older files: against the timed steps' median,
            # which a slow spell during the one recorded step could push past 100%)
            that = r.get("recorded_step_seconds") or (step["seconds_median"] if step else None)
            share = r["in_step_seconds"] / that if that else None
            frac = r.get("recorded_fraction")
            L.append(f"| {r['shape']} | {r['precision']} | {r['calls']} | {r['gflop']:.1f} "
                     f"| {fmt(frac and 100 * frac, '.0f')}% | {r['seconds_median']:.4f} "
                     f"| {r['gflop_per_s']:.1f} | {fmt(pct, '.0f')} | {r['in_step_seconds']:.4f} "
                     f"| {fmt(that, '.4f')} | {fmt(share and 100 * share, '.0f')}% |")
        L.append("")

    best_run = peaks.get("fp32", {}).get("peak_run")
    pk = [r for r in rows if r.get("what") == "peak_sgemm" and r.get("peak_run") == best_run]
    if pk:
        which = " of the best peak measurement" if best_run is not None and len(peak_all.get("fp32", [])) > 1 else ""
        L.append(f"sgemm peak runs{which} (`bertc bench --peak`, best of the timed runs):")
        L.append("")
        L.append("| product | M x N x K | trans | mode | GFLOP/s |")
        L.append("| --- | --- | --- | --- | ---: |")
        for r in pk:
            L.append(f"| {r['product']} | {r['m']} x {r['n']} x {r['k']} | {r['trans']} | {r['mode']} "
                     f"| {r['gflop_per_s']:.1f} |")
        L.append("")

    # one line per probe: rows that carry one (older runs probed the training step once per
    # configuration and every row of it carried the same probe)
    tr, seen = [], set()
    for r in rows:
        if r.get("tool") == "pytorch" and r.get("wait_policy_probe_s"):
            what = r.get("wait_policy_probe_of", "step")
            key = (r["shape"], r["precision"], what, json.dumps(r["wait_policy_probe_s"], sort_keys=True))
            if key not in seen:
                seen.add(key)
                tr.append((r, what))
    if tr:
        L.append("PyTorch OMP_WAIT_POLICY (probe: seconds of the measurement with each, the mean of two medians in the "
                 "order PASSIVE, default, default, PASSIVE since 2026-11-28; the faster kept):")
        L.append("")
        L.append("| shape | precision | probed on | PASSIVE s | default s | used |")
        L.append("| --- | --- | --- | ---: | ---: | --- |")
        for r, what in tr:
            pr = r["wait_policy_probe_s"]
            L.append(f"| {r['shape']} | {r['precision']} | {what} | {fmt(pr.get('PASSIVE'), '.3f')} "
                     f"| {fmt(pr.get('default'), '.3f')} | {r.get('omp_wait_policy')} |")
        L.append("")
    if gpu:
        L += gpu_report(gpu)
    return "\n".join(L)


def main():
    ap = argparse.ArgumentParser(description="Markdown report of bertc bench and bench_torch.py JSON Lines")
    ap.add_argument("results")
    ap.add_argument("--out", help="also write the report here")
    ap.add_argument("--title", default="bertc vs PyTorch: CPU benchmark")
    a = ap.parse_args()
    text = report(load(a.results), a.title)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
