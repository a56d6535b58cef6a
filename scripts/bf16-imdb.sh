#!/bin/sh
# The bf16 acceptance check of issue #5: IMDB validation accuracy with --precision bf16 within
# 0.5 points of fp32, mean of 3 seeds, same recipe and data (the dropout-fix recipe, MiniLM by
# default). Long: about 3 x (8 + 4) minutes on 2 cores. Usage:
#   scripts/bf16-imdb.sh [MODEL_DIR [OUT_DIR [THREADS]]]   (defaults models/minilm runs/bf16-imdb 2)
set -eu
MODEL=${1:-models/minilm}
OUT=${2:-runs/bf16-imdb}
THREADS=${3:-2}
make -s bertc
mkdir -p "$OUT"
for seed in 42 43 44; do
    for p in fp32 bf16; do
        [ -f "$OUT/$p-$seed/summary.json" ] && continue   # done already (re-running resumes the table)
        echo "== seed $seed, $p"
        OMP_WAIT_POLICY=passive ./bertc train --recipe recipes/imdb-dropout-fix.conf --model "$MODEL" \
            --seed "$seed" --precision "$p" --threads "$THREADS" --quiet --out "$OUT/$p-$seed"
    done
done
python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
rows = {}
for p in ("fp32", "bf16"):
    for seed in (42, 43, 44):
        s = json.load(open(f"{out}/{p}-{seed}/summary.json"))
        rows.setdefault(p, []).append((seed, s["val"]["accuracy"], s["train"]["accuracy"], s["examples_per_s"]))
print("| precision | seed | val accuracy | train accuracy | examples/s |")
print("| --- | ---: | ---: | ---: | ---: |")
for p, rs in rows.items():
    for seed, va, ta, eps in rs:
        print(f"| {p} | {seed} | {100*va:.2f}% | {100*ta:.2f}% | {eps:.1f} |")
mean = {p: sum(r[1] for r in rs) / len(rs) for p, rs in rows.items()}
speed = {p: sum(r[3] for r in rs) / len(rs) for p, rs in rows.items()}
d = 100 * (mean["bf16"] - mean["fp32"])
print(f"\nmean val accuracy: fp32 {100*mean['fp32']:.2f}%, bf16 {100*mean['bf16']:.2f}% "
      f"(bf16 - fp32 = {d:+.2f} points; target |diff| <= 0.5: {'met' if abs(d) <= 0.5 else 'NOT met'}); "
      f"training speed bf16/fp32 = {speed['bf16']/speed['fp32']:.2f}x")
PY
