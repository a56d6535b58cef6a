#!/bin/sh
# The command line as a user meets it: each subcommand's --help, a small train -> eval -> predict
# round trip on a tiny model, and bad input of each kind giving one line on stderr and a non-zero exit.
# Run from the repository root: sh tests/test_cli.sh [./bertc]
BERTC=${1:-./bertc}
T=$(mktemp -d /tmp/bertc-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect STATUS NAME CMD...: the command exits with STATUS; a failure ends stderr with exactly one
# error line starting "bertc" (progress and notices may come before it).
expect() {
    want=$1 name=$2
    shift 2
    "$@" >"$T/out" 2>"$T/err" </dev/null
    got=$?
    lines=$(grep -c '^bertc' "$T/err")
    if [ "$got" -ne "$want" ]; then
        bad "$name: exit $got, want $want ($(head -c 300 "$T/err"))"
    elif [ "$want" -eq 1 ] && { [ "$lines" -ne 1 ] || ! tail -n 1 "$T/err" | grep -q '^bertc'; }; then
        bad "$name: want one error line at the end of stderr, got: $(head -c 300 "$T/err")"
    else
        ok
    fi
}

# A tiny model folder: the random fixture model with a vocabulary of its 100 ids.
mkdir -p "$T/model"
cp tests/fixtures/bert/tiny/config.json tests/fixtures/bert/tiny/model.safetensors "$T/model/"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n'; i=7; while [ $i -lt 100 ]; do echo "w$i"; i=$((i + 1)); done; } >"$T/model/vocab.txt"
i=0
while [ $i -lt 48 ]; do
    if [ $((i % 2)) -eq 0 ]; then echo '{"text":"w9 w10 good w11","label":"yes"}'; else echo '{"text":"w12 bad w13","label":"no"}'; fi
    i=$((i + 1))
done >"$T/train.jsonl"
head -8 "$T/train.jsonl" >"$T/val.jsonl"

for c in train eval predict tokenize; do expect 0 "$c --help" "$BERTC" $c --help; done
expect 0 "--help" "$BERTC" --help
expect 2 "no command" "$BERTC"
expect 2 "unknown command" "$BERTC" frobnicate
expect 2 "train without --model" "$BERTC" train --train "$T/train.jsonl" --out "$T/o"
expect 2 "train unknown flag" "$BERTC" train --learning-rate 1
expect 2 "train bad number" "$BERTC" train --lr abc
expect 2 "train number out of range" "$BERTC" train --batch-size 0
expect 1 "train missing model" "$BERTC" train --model "$T/nope" --train "$T/train.jsonl" --out "$T/o"
expect 1 "train missing data" "$BERTC" train --model "$T/model" --train "$T/nope.jsonl" --out "$T/o"
expect 1 "train missing recipe" "$BERTC" train --recipe "$T/nope.conf"
expect 1 "train max length too long" "$BERTC" train --model "$T/model" --train "$T/train.jsonl" --out "$T/o" --max-length 64
printf 'lr = 1e-3\nepochs = 2   # comment\nscheduler cosine\nwarmup-ratio=0.1\nmax-length 16\nquiet\n' >"$T/r.conf"
expect 0 "train with recipe" "$BERTC" train --recipe "$T/r.conf" --model "$T/model" --train "$T/train.jsonl" \
    --val "$T/val.jsonl" --out "$T/o" --threads 1 --summary "$T/summary.json"
for f in config.json model.safetensors vocab.txt tokenizer_config.json metrics.jsonl split.jsonl summary.json; do
    [ -s "$T/o/$f" ] && ok || bad "train did not write $f"
done
grep -Eq '"scheduler":[[:space:]]*"cosine"' "$T/summary.json" && grep -Eq '"epochs":[[:space:]]*2,' "$T/summary.json" && ok || bad "recipe settings not in summary"
# where the wall time went: every part named, and together no more than the wall ("other" >= 0)
secs=$(sed -n '/"seconds":/,/}/p' "$T/summary.json" | tr -d '\n\t ')
case "$secs" in
*'"train":'*'"eval":'*'"save":'*'"data":'*'"device_wait":'*'"model":'*'"tokenize":'*'"other":'*) ok ;;
*) bad "summary seconds: $secs" ;;
esac
other=$(echo "$secs" | sed 's/.*"other":\([-0-9.eE+]*\).*/\1/')
awk -v o="$other" 'BEGIN { exit !(o > -0.001) }' && ok || bad "the parts of the wall time add up to more than it: $secs"
grep -q '"yes"' "$T/o/config.json" && ok || bad "labels not in config.json"

expect 0 "eval" "$BERTC" eval --model "$T/o" --data "$T/val.jsonl" --max-length 16 --json
grep -q '"accuracy"' "$T/out" && ok || bad "eval --json has no accuracy"
expect 1 "eval unknown label" sh -c "echo '{\"text\":\"w9\",\"label\":\"maybe\"}' >$T/x.jsonl; $BERTC eval --model $T/o --data $T/x.jsonl --max-length 16"

printf '{"text":"w9 good"}\n{"text":"bad w12","text_pair":"w13"}\n' >"$T/in.jsonl"
expect 0 "predict" sh -c "$BERTC predict --model $T/o --max-length 16 --logits <$T/in.jsonl"
[ "$(grep -c '"probs"' "$T/out")" -eq 2 ] && grep -q '"logits"' "$T/out" && ok || bad "predict output: $(cat "$T/out")"
expect 1 "predict bad JSON" sh -c "printf '{\"text\":\"ok\"}\n{not json\n' | $BERTC predict --model $T/o"
grep -q "line 2" "$T/err" && ok || bad "predict error does not name line 2: $(cat "$T/err")"
expect 1 "predict missing model" "$BERTC" predict --model "$T/nope"
expect 2 "unknown precision" "$BERTC" predict --model "$T/o" --precision fp16
expect 0 "eval in bf16" "$BERTC" eval --model "$T/o" --data "$T/val.jsonl" --max-length 16 --precision bf16
expect 0 "predict in bf16" sh -c "$BERTC predict --model $T/o --max-length 16 --precision bf16 <$T/in.jsonl"
# bf16 on the fallback (no AVX512-BF16, no oneDNN, or forced) says it once, since fp32 is faster there
expect 0 "eval in bf16, fallback forced" env BERTC_BF16_FALLBACK=1 "$BERTC" eval --model "$T/o" --data "$T/val.jsonl" --max-length 16 --precision bf16
[ "$(grep -c 'bf16 without bf16 hardware (the fallback is forced' "$T/err")" -eq 1 ] && ok || bad "bf16 fallback notice: $(cat "$T/err")"
expect 0 "eval in fp32, fallback forced" env BERTC_BF16_FALLBACK=1 "$BERTC" eval --model "$T/o" --data "$T/val.jsonl" --max-length 16
grep -q 'bf16 without' "$T/err" && bad "bf16 notice in an fp32 run: $(cat "$T/err")" || ok

expect 0 "tokenize" sh -c "echo '{\"text\":\"good bad w9\"}' | $BERTC tokenize --model $T/model --max-length 8"
grep -q '"input_ids":\[2,5,6,9,3,0,0,0\]' "$T/out" && ok || bad "tokenize output: $(cat "$T/out")"
# BERTC_FAST_EXIT=1 (_exit after main, for gpu-check) must not lose buffered output or the exit status
expect 0 "fast exit" sh -c "i=0; while [ \$i -lt 3000 ]; do echo '{\"text\":\"good bad w9\"}'; i=\$((i + 1)); done | BERTC_FAST_EXIT=1 $BERTC tokenize --model $T/model --max-length 8"
[ "$(grep -c '"input_ids":\[2,5,6,9,3,0,0,0\]' "$T/out")" -eq 3000 ] && ok || bad "fast exit: $(wc -l <"$T/out") lines, want 3000"
expect 1 "fast exit keeps the status" env BERTC_FAST_EXIT=1 "$BERTC" eval --model "$T/no-such-model" --data "$T/val.jsonl"
BERTC_EXIT_TIMING=1 "$BERTC" tokenize --help >/dev/null 2>"$T/err"
grep -q '^bertc: main started [0-9.]* returned [0-9.]*' "$T/err" && ok || bad "BERTC_EXIT_TIMING: $(cat "$T/err")"
expect 1 "tokenize bad JSON" sh -c "echo '[1,2' | $BERTC tokenize --model $T/model"

# A corrupted model file: a clear error, never a crash.
mkdir -p "$T/broken" && cp "$T/o/config.json" "$T/o/vocab.txt" "$T/broken/"
head -c 1000 "$T/o/model.safetensors" >"$T/broken/model.safetensors"
expect 1 "truncated model.safetensors" "$BERTC" predict --model "$T/broken"

# A folder without vocab.txt, a config.json with an unknown activation, and one whose sizes
# disagree with the weights.
mkdir -p "$T/novocab" && cp "$T/o/config.json" "$T/o/model.safetensors" "$T/novocab/"
expect 1 "missing vocab.txt" "$BERTC" predict --model "$T/novocab"
grep -q "vocab.txt" "$T/err" && ok || bad "missing vocab.txt error does not name it: $(cat "$T/err")"
mkdir -p "$T/swish" && cp "$T/o/model.safetensors" "$T/o/vocab.txt" "$T/swish/"
sed 's/"hidden_act": *"gelu"/"hidden_act": "swish"/' "$T/o/config.json" >"$T/swish/config.json"
expect 1 "unknown hidden_act" "$BERTC" predict --model "$T/swish"
grep -q "swish" "$T/err" && ok || bad "unknown hidden_act error does not name it: $(cat "$T/err")"
mkdir -p "$T/sizes" && cp "$T/o/model.safetensors" "$T/o/vocab.txt" "$T/sizes/"
sed 's/"intermediate_size": *64/"intermediate_size": 48/' "$T/o/config.json" >"$T/sizes/config.json"
expect 1 "config sizes disagree with weights" "$BERTC" predict --model "$T/sizes"
grep -q "intermediate" "$T/err" && ok || bad "size mismatch error does not name the tensor: $(cat "$T/err")"

# bench: one JSON object per measurement on the tiny model; bad options refused.
expect 0 "bench --help" "$BERTC" bench --help
grep -q -- "--precision" "$T/out" && ok || bad "bench --help does not list --precision"
expect 0 "bench tiny" "$BERTC" bench --model "$T/model" --seq 16 --train-batch 2 --eval-batch 2 --reps 1 --threads 1
[ "$(grep -c '"seconds_median"' "$T/out")" -eq 4 ] && ok || bad "bench output: $(cat "$T/out")"
# huge pages: on unless BERTC_THP=0; a value it does not know is named in one line and keeps them
grep -q '"huge_pages":true' "$T/out" && ok || bad "bench: huge pages not on by default: $(head -c 300 "$T/out")"
expect 0 "bench BERTC_THP=0" env BERTC_THP=0 "$BERTC" bench --model "$T/model" --seq 16 --only latency --reps 1 --threads 1
grep -q '"huge_pages":false' "$T/out" && ok || bad "bench BERTC_THP=0: $(head -c 300 "$T/out")"
expect 0 "bench BERTC_THP=off" env BERTC_THP=off "$BERTC" bench --model "$T/model" --seq 16 --only latency --reps 1 --threads 1
{ [ "$(cat "$T/err")" = "bertc: BERTC_THP=off not understood (0 or 1): using huge pages" ] &&
    grep -q '"huge_pages":true' "$T/out"; } && ok || bad "bench BERTC_THP=off: $(cat "$T/err") $(head -c 200 "$T/out")"
# bench/compare.py's report: each round's speed-up carries the steal of that measurement's own two
# processes (it once kept only the last measurement's of each round, and under-reported the range)
if command -v python3 >/dev/null 2>&1; then
    expect 0 "bench step,eval" "$BERTC" bench --model "$T/model" --seq 16 --train-batch 2 --eval-batch 2 --reps 1 \
        --threads 1 --only step,eval
    for r in 1 2; do
        n=0
        while read -r line; do
            n=$((n + 1)) st=$((r * 10 + n))
            echo "$line" | sed "s/^{/{\"round\":$r,\"steal_pct\":$st,/"
            echo "$line" | sed "s/^{/{\"round\":$r,\"steal_pct\":$((st + 50)),/; s/\"tool\":\"bertc\"/\"tool\":\"pytorch\"/"
        done <"$T/out"
    done >"$T/rounds.jsonl"
    python3 bench/compare.py "$T/rounds.jsonl" >"$T/report.md" 2>"$T/err" || bad "compare.py: $(cat "$T/err")"
    grep '| evaluation |' "$T/report.md" | grep -q '(steal 11/61%), [0-9.]* (steal 21/71%)' &&
        grep '| training step |' "$T/report.md" | grep -q '(steal 12/62%), [0-9.]* (steal 22/72%)' &&
        grep -q 'process): 11-72%' "$T/report.md" && ok || bad "compare.py steal per measurement: $(grep -E 'steal' "$T/report.md")"
fi
expect 2 "bench without a model" "$BERTC" bench
expect 1 "bench unknown shape" "$BERTC" bench --shape gpt2
expect 1 "bench unknown precision" "$BERTC" bench --model "$T/model" --seq 16 --precision fp8
expect 2 "bench bad reps" "$BERTC" bench --shape minilm --reps 0

# bertc pretrain --mlm: a few updates on the tiny model, then bertc train from its output.
expect 0 "pretrain --help" "$BERTC" pretrain --help
expect 0 "pretrain --mlm" "$BERTC" pretrain --mlm --model "$T/model" --data "$T/train.jsonl" --out "$T/pre" \
    --steps 3 --batch-size 8 --max-length 16 --threads 1 --quiet
grep -q '"loss"' "$T/pre/metrics.jsonl" && grep -q BertForMaskedLM "$T/pre/config.json" && ok || bad "pretrain output incomplete"
expect 0 "train from a pretrained folder" "$BERTC" train --model "$T/pre" --train "$T/train.jsonl" --out "$T/pre-ft" \
    --epochs 1 --max-length 16 --threads 1 --no-eval-train --quiet
expect 0 "pretrain in bf16, fallback forced" env BERTC_BF16_FALLBACK=1 "$BERTC" pretrain --mlm --model "$T/model" \
    --data "$T/train.jsonl" --out "$T/pre16" --steps 1 --batch-size 8 --max-length 16 --threads 1 --precision bf16
[ "$(grep -c 'bf16 without bf16 hardware (the fallback is forced' "$T/err")" -eq 1 ] && ok || bad "pretrain bf16 fallback notice: $(cat "$T/err")"
expect 2 "pretrain without --mlm" "$BERTC" pretrain --model "$T/model" --data "$T/train.jsonl" --out "$T/pre2"
expect 1 "pretrain on missing data" "$BERTC" pretrain --mlm --model "$T/model" --data "$T/nothing.jsonl" --out "$T/pre2"

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
