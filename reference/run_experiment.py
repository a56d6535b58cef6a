#!/usr/bin/env python3
"""The IMDB experiment side by side: each recipe, model and seed trained by `bertc train` and by the
PyTorch + transformers reference (reference/finetune_hf.py) on exactly the same examples (bertc's
split.jsonl), on the same machine with the same threads; then a Markdown table of the figures.

    python3 reference/run_experiment.py --models minilm --recipes dropout-fix --seeds 42 43 44 \
        --out runs/experiment --table docs/EXPERIMENT-table.md

Models are folders under models/ (scripts/get-model.sh NAME). Each run's summary.json stays in
--out, so an interrupted experiment resumes where it stopped (--rerun to redo).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, log):
    t0 = time.time()
    with open(log, "w") as f:
        # Passive OpenMP waiting was faster for both tools here whenever anything else ran on the cores.
        env = dict(os.environ)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")
    return time.time() - t0


def one(tool, model, recipe, seed, a):
    d = os.path.join(a.out, f"{model}-{recipe}-{seed}")
    os.makedirs(d, exist_ok=True)
    summary = os.path.join(d, f"{tool}-summary.json")
    if os.path.exists(summary) and not a.rerun:
        with open(summary) as f:
            return json.load(f)
    rfile = os.path.join("recipes", f"imdb-{recipe}.conf")
    mdir = os.path.join("models", model)
    extra = a.extra or []
    if tool == "bertc":
        cmd = ["./bertc", "train", "--recipe", rfile, "--model", mdir, "--out", os.path.join(d, "bertc"), "--seed",
               str(seed), "--threads", str(a.threads), "--summary", summary, "--quiet"] + extra
    else:
        split = os.path.join(d, "bertc", "split.jsonl")
        cmd = [sys.executable, "reference/finetune_hf.py", "--recipe", rfile, "--model", mdir, "--split", split,
               "--seed", str(seed), "--threads", str(a.threads), "--summary", summary] + extra
        if tool == "pytorch-bertc-draws":
            cmd.append("--bertc-draws")
        elif tool == "pytorch-bertc-masks":
            cmd += ["--bertc-draws", "--bertc-dropout"]
        elif tool != "pytorch":
            sys.exit(f"unknown tool '{tool}' (bertc, pytorch, pytorch-bertc-draws, pytorch-bertc-masks)")
    wall = run(cmd, os.path.join(d, f"{tool}.log"))
    with open(summary) as f:
        s = json.load(f)
    s["wall_seconds"] = wall
    with open(summary, "w") as f:
        json.dump(s, f, indent=2)
    return s


def each(ss, key, spec):
    """One figure per seed: times are not averaged, since runs may not all have had the machine alone."""
    return ", ".join(format(s[key], spec) for s in ss)


def fmt(xs, pct=True):
    m = statistics.mean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return f"{100 * m:.1f} ± {100 * sd:.1f}" if pct else f"{m:.3f} ± {sd:.3f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", nargs="+", default=["minilm"])
    p.add_argument("--recipes", nargs="+", default=["overfit", "dropout-fix", "warmup-decay"])
    p.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44])
    # pytorch-bertc-draws: the reference with bertc's initial classifier and example order (--bertc-draws),
    # so that only the dropout masks (and rounding) differ between the two tools; pytorch-bertc-masks: bertc's
    # dropout masks too (--bertc-dropout), so that only float rounding differs
    p.add_argument("--tools", nargs="+", default=["bertc", "pytorch"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="runs/experiment")
    p.add_argument("--table", help="write the Markdown table here (default: print it)")
    p.add_argument("--rerun", action="store_true")
    p.add_argument("--extra", nargs=argparse.REMAINDER, help="more flags for both tools, e.g. --train-size 200")
    a = p.parse_args()

    diffs = ["| model | recipe | bertc minus | val acc difference per seed (points) | mean difference | within 1 point |",
             "|---|---|---|---|---|---|"]
    rows = ["| model | recipe | tool | train acc % | val acc % | train loss | val loss | best epoch | wall s (per seed) | train ex/s (per seed) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for model in a.models:
        for recipe in a.recipes:
            by_tool = {}
            for tool in a.tools:
                ss = []
                for seed in a.seeds:
                    if tool != "bertc" and "bertc" not in a.tools:
                        one("bertc", model, recipe, seed, a)  # its split file
                    ss.append(one(tool, model, recipe, seed, a))
                    print(f"{model} {recipe} {tool} seed {seed}: train {ss[-1]['train']['accuracy']:.4f} "
                          f"val {ss[-1]['val']['accuracy']:.4f} ({ss[-1]['wall_seconds']:.0f} s)", file=sys.stderr)
                by_tool[tool] = ss
                rows.append(f"| {model} | {recipe} | {tool} | {fmt([s['train']['accuracy'] for s in ss])} | "
                            f"{fmt([s['val']['accuracy'] for s in ss])} | {fmt([s['train']['loss'] for s in ss], False)} | "
                            f"{fmt([s['val']['loss'] for s in ss], False)} | "
                            f"{', '.join(str(s['best_epoch']) for s in ss)} | "
                            f"{each(ss, 'wall_seconds', '.0f')} | {each(ss, 'examples_per_s', '.1f')} |")
            # The issue's check: bertc's mean validation accuracy within 1 point of the reference's, same seeds
            for other in [t for t in a.tools if t != "bertc" and "bertc" in by_tool]:
                d = [100 * (x["val"]["accuracy"] - y["val"]["accuracy"]) for x, y in zip(by_tool["bertc"], by_tool[other])]
                mean = sum(d) / len(d)
                diffs.append(f"| {model} | {recipe} | {other} | {', '.join(f'{x:+.1f}' for x in d)} | {mean:+.2f} | "
                             f"{'yes' if abs(mean) <= 1.0 else 'no'} |")
    table = "\n".join(rows) + ("\n\n" + "\n".join(diffs) if len(diffs) > 2 else "") + f"\n\nSeeds {', '.join(map(str, a.seeds))}; accuracy and loss: mean ± standard deviation over the seeds; times: one per seed, in seed order; {a.threads} threads; " \
                              f"command: `python3 reference/run_experiment.py {' '.join(sys.argv[1:])}`\n"
    if a.table:
        with open(a.table, "w") as f:
            f.write(table)
    print(table)


if __name__ == "__main__":
    main()
