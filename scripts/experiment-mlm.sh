#!/bin/sh
# Continued MLM pretraining on IMDB's unlabelled reviews, then the dropout-fix recipe, against the
# same recipe without pretraining, for 3 seeds (docs/EXPERIMENT.md, "Continued pretraining").
#
#   sh scripts/experiment-mlm.sh [MODEL_DIR] [OUT_DIR]        (defaults: models/minilm runs/mlm)
#
# Environment: STEPS (pretraining updates, default 1000), FREEZE (the first updates that train the
# MLM head alone, for a checkpoint without one such as all-MiniLM-L6-v2; default 0), PRECISION
# (fp32 or bf16, for pretraining and fine-tuning alike; default fp32), SEEDS (default "42 43 44"),
# THREADS (default 2), BERTC (default ./bertc), IMDB (default ../shared/data/aclImdb_v1.tar.gz),
# HEAD_STEPS and HEAD_LR: when HEAD_STEPS > 0 (default 0), a first run trains only a new MLM head
# for HEAD_STEPS updates at HEAD_LR (default 1e-3; a new head learns little at the encoder's 5e-5)
# into OUT_DIR/head, and the pretraining (seed 43) starts from it, head and all.
# Steps already done (a folder with summary.json) are skipped, so the script can be rerun after an
# interruption. Prints a table (validation and training accuracy per seed, and the means) at the end.
set -eu
MODEL=${1:-models/minilm}
OUT=${2:-runs/mlm}
STEPS=${STEPS:-1000}
FREEZE=${FREEZE:-0}
PRECISION=${PRECISION:-fp32}
SEEDS=${SEEDS:-42 43 44}
THREADS=${THREADS:-2}
BERTC=${BERTC:-./bertc}
IMDB=${IMDB:-../shared/data/aclImdb_v1.tar.gz}
HEAD_STEPS=${HEAD_STEPS:-0}
HEAD_LR=${HEAD_LR:-1e-3} # bertc pretrain checks it
case $HEAD_STEPS in
    '' | *[!0-9]*) echo "experiment-mlm.sh: HEAD_STEPS must be a whole number, not '$HEAD_STEPS'" >&2; exit 2 ;;
esac
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$OUT"

# 0. Optionally the new head alone first, at its own learning rate.
start=$MODEL
pseed=42
if [ "$HEAD_STEPS" -gt 0 ]; then
    if [ ! -f "$OUT/head/summary.json" ]; then
        /usr/bin/time -f "head: %e s wall, %U s user" \
            "$BERTC" pretrain --mlm --model "$MODEL" --data "$IMDB:aclImdb/train/unsup" --out "$OUT/head" \
            --steps "$HEAD_STEPS" --freeze-encoder-steps "$HEAD_STEPS" --lr "$HEAD_LR" --batch-size 32 \
            --max-length 128 --seed 42 --precision "$PRECISION" --threads "$THREADS"
    fi
    start=$OUT/head
    pseed=43 # another shuffle of the texts than the head's run
fi

# 1. Pretraining: 32 reviews x 128 tokens per update, BERT's masking, lr 5e-5 with 6% warm-up and
#    linear decay, weight decay 0.01, gradient clipping at 1.0 (the bertc pretrain defaults).
if [ ! -f "$OUT/pretrained/summary.json" ]; then
    /usr/bin/time -f "pretrain: %e s wall, %U s user" \
        "$BERTC" pretrain --mlm --model "$start" --data "$IMDB:aclImdb/train/unsup" --out "$OUT/pretrained" \
        --steps "$STEPS" --freeze-encoder-steps "$FREEZE" --batch-size 32 --max-length 128 --seed "$pseed" \
        --precision "$PRECISION" --threads "$THREADS"
fi

# 2. The dropout-fix recipe from the pretrained folder, then from the original model, same seeds
#    (the seed also picks the 2,000 training and 500 validation reviews, so each pair of runs sees
#    the same examples).
for arm in pretrained base; do
    for seed in $SEEDS; do
        dir="$OUT/ft-$arm-$seed"
        [ -f "$dir/summary.json" ] && continue
        from=$MODEL
        [ "$arm" = pretrained ] && from=$OUT/pretrained
        "$BERTC" train --recipe recipes/imdb-dropout-fix.conf --model "$from" --out "$dir" \
            --train "$IMDB:aclImdb/train" --val "$IMDB:aclImdb/test" --seed "$seed" --precision "$PRECISION" \
            --threads "$THREADS" --quiet
    done
done

# 3. The table.
python3 - "$OUT" $SEEDS <<'EOF'
import json, sys
out, seeds = sys.argv[1], sys.argv[2:]
print("| arm | seed | val acc % | train acc % | gap |")
print("|---|---|---|---|---|")
for arm in ["base", "pretrained"]:
    v, t = [], []
    for s in seeds:
        j = json.load(open(f"{out}/ft-{arm}-{s}/summary.json"))
        v.append(100 * j["val"]["accuracy"]); t.append(100 * j["train"]["accuracy"])
        print(f"| {arm} | {s} | {v[-1]:.1f} | {t[-1]:.1f} | {t[-1] - v[-1]:.1f} |")
    print(f"| {arm} | mean | {sum(v) / len(v):.2f} | {sum(t) / len(t):.2f} | {(sum(t) - sum(v)) / len(v):.2f} |")
p = json.load(open(f"{out}/pretrained/summary.json"))
print(f"\npretraining: {p['steps']} updates, MLM loss {p['first_loss']:.3f} -> {p['last_loss']:.3f}, "
      f"{p['train_seconds']:.0f} s, {p['tokens_per_s']:.0f} tokens/s")
EOF
