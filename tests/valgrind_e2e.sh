#!/bin/sh
# One short end-to-end run under valgrind's memcheck: bertc train (tiny fixture model, 24 examples,
# 1 epoch, 1 thread), eval, predict and tokenize. Any memcheck report (invalid read or write, use
# of uninitialised memory, a definite or indirect leak, a bad free) fails the run.
# Run from the repository root: sh tests/valgrind_e2e.sh [./bertc]   (make test-valgrind)
BERTC=${1:-./bertc}
command -v valgrind >/dev/null 2>&1 || { echo "valgrind_e2e: valgrind not installed"; exit 1; }
T=$(mktemp -d /tmp/bertc-valgrind-XXXXXX)
trap 'rm -rf "$T"' EXIT
VG="valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect"
VG="$VG --errors-for-leak-kinds=definite,indirect --track-origins=yes"
pass=0
fail=0

# run NAME STATUS CMD...: CMD under memcheck, stdin from $IN (default /dev/null), must exit with
# STATUS (99 is memcheck's own "errors found").
run() {
    name=$1 want=$2
    shift 2
    $VG "$@" <"${IN:-/dev/null}" >"$T/$name.out" 2>"$T/$name.err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then
        pass=$((pass + 1))
        echo "ok: $name"
    else
        fail=$((fail + 1))
        echo "FAIL: $name: exit $rc, want $want"
        tail -n 40 "$T/$name.err"
    fi
}

# The tiny random model with a vocabulary of its 100 ids, and a tiny two-class dataset.
mkdir -p "$T/model"
cp tests/fixtures/bert/tiny/config.json tests/fixtures/bert/tiny/model.safetensors "$T/model/"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n'; i=7; while [ $i -lt 100 ]; do echo "w$i"; i=$((i + 1)); done; } >"$T/model/vocab.txt"
i=0
while [ $i -lt 24 ]; do
    if [ $((i % 2)) -eq 0 ]; then echo '{"text":"w9 w10 good w11","label":"yes"}'; else echo '{"text":"w12 bad w13 caf\u00e9","label":"no"}'; fi
    i=$((i + 1))
done >"$T/train.jsonl"
head -6 "$T/train.jsonl" >"$T/val.jsonl"
printf '{"text":"good w9"}\n{"text":"bad w12","text_pair":"w13"}\n' >"$T/in.jsonl"

run train 0 "$BERTC" train --model "$T/model" --train "$T/train.jsonl" --val "$T/val.jsonl" --out "$T/out" \
    --epochs 1 --batch-size 8 --max-length 16 --threads 1 --quiet --checkpoint-every 1
run eval 0 "$BERTC" eval --model "$T/out" --data "$T/val.jsonl" --max-length 16 --threads 1 --json
IN="$T/in.jsonl" run predict 0 "$BERTC" predict --model "$T/out" --max-length 16 --threads 1 --logits
IN="$T/in.jsonl" run tokenize 0 "$BERTC" tokenize --model "$T/out" --max-length 12
printf 'Hello w9 good\n\xff caf\xc3\xa9\n' >"$T/plain.txt"
IN="$T/plain.txt" run tokenize-vocab 0 "$BERTC" tokenize --vocab "$T/model/vocab.txt" --plain --max-length 0
# The error paths free what they allocated too: an unlabelled set given to eval, a bad config.json.
run eval-unlabelled 1 "$BERTC" eval --model "$T/out" --data "$T/in.jsonl" --threads 1
mkdir -p "$T/bad" && cp "$T/model/vocab.txt" "$T/model/model.safetensors" "$T/bad/"
printf '{"hidden_size": 30, "num_attention_heads": 4}' >"$T/bad/config.json"
run train-bad-config 1 "$BERTC" train --model "$T/bad" --train "$T/train.jsonl" --out "$T/out2" --threads 1 --quiet

echo "valgrind: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
