#!/bin/sh
# Crash safety from the outside: a deterministic run killed with SIGKILL at random moments (at
# least 20 times, resumed each time) ends with a model.safetensors byte-identical to an
# uninterrupted run's; SIGINT and SIGTERM save a checkpoint and exit 130 / 143; a second SIGINT
# exits at once and leaves a resumable checkpoint; a file-size limit (a full disk) is reported and
# leaves the previous checkpoint whole. Run from the repository root: sh tests/test_resume_kill.sh [./bertc]
BERTC=${1:-./bertc}
T=$(mktemp -d /tmp/bertc-kill-XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
rand() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; } # 0..65535

# The tiny model of tests/test_cli.sh, and a training set large enough for a run of about a second
# with a checkpoint (written and fsynced) after every update.
mkdir -p "$T/model"
cp tests/fixtures/bert/tiny/config.json tests/fixtures/bert/tiny/model.safetensors "$T/model/"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n'; i=7; while [ $i -lt 100 ]; do echo "w$i"; i=$((i + 1)); done; } >"$T/model/vocab.txt"
i=0
while [ $i -lt 160 ]; do
    if [ $((i % 2)) -eq 0 ]; then echo "{\"text\":\"w$((9 + i % 13)) w$((30 + i % 17)) good w$((50 + i % 11))\",\"label\":\"yes\"}"
    else echo "{\"text\":\"w$((12 + i % 19)) bad w$((60 + i % 23)) w13\",\"label\":\"no\"}"; fi
    i=$((i + 1))
done >"$T/train.jsonl"
head -16 "$T/train.jsonl" >"$T/val.jsonl"

OPTS="--model $T/model --train $T/train.jsonl --val $T/val.jsonl --max-length 16 --batch-size 8 --grad-accum 2
      --epochs 30 --lr 1e-3 --max-grad-norm 1 --threads 1 --deterministic --checkpoint-every 1 --quiet"
# Summary figures without the wall-clock ones.
# summary.json without its wall-clock figures (train_seconds, examples_per_s, the "seconds" block)
figures() { sed '/"seconds":/,/}/d' "$1/summary.json" | grep -v -e train_seconds -e examples_per_s; }

# shellcheck disable=SC2086
"$BERTC" train $OPTS --out "$T/ref" >/dev/null 2>"$T/ref.err" && ok || bad "uninterrupted run failed: $(tail -n 1 "$T/ref.err")"
[ -e "$T/ref/checkpoint" ] && bad "a finished run left its checkpoint" || ok

# Start (or resume, once there is a checkpoint) the run in $1, in the background; sets $pid.
start() {
    if [ -e "$1/checkpoint/checkpoint.safetensors" ]; then "$BERTC" train --resume "$1" --quiet >/dev/null 2>"$T/run.err" &
    else "$BERTC" train $OPTS --out "$1" >/dev/null 2>"$T/run.err" & fi
    pid=$!
}

# SIGKILL at random moments until 20 kills have landed, resuming after each; then the run goes on
# undisturbed to its end. (Should a run end before 20 kills, another one starts in a new folder.)
kills=0
tries=0
round=0
while [ $kills -lt 20 ] && [ $round -lt 5 ]; do
    round=$((round + 1))
    D="$T/k$round"
    while [ $tries -lt 300 ]; do
        tries=$((tries + 1))
        start "$D"
        if [ $kills -lt 20 ]; then
            sleep "0.$(printf '%03d' $(($(rand) % 60 + 5)))"
            kill -9 $pid
        fi
        wait $pid
        st=$?
        [ $st -eq 0 ] && break
        [ $st -ne 137 ] && { bad "run exited $st: $(tail -n 1 "$T/run.err")"; break; }
        kills=$((kills + 1))
        steps=0
        [ -e "$D/checkpoint/checkpoint.safetensors" ] && steps=$(grep -c '"type":"step"' "$D/metrics.jsonl")
        echo "$steps" >>"$T/kills.log"
    done 2>/dev/null # no "Killed" notices from the shell
    cmp -s "$T/ref/model.safetensors" "$D/model.safetensors" && ok || bad "model after $kills kills differs from the uninterrupted run's"
    [ "$(figures "$T/ref")" = "$(figures "$D")" ] && ok || bad "summary after $kills kills differs: $(figures "$D" | head -c 400)"
    [ -e "$D/checkpoint" ] && bad "the finished run left its checkpoint" || ok
done
[ $kills -ge 20 ] && ok || bad "only $kills kills landed in $tries starts"
echo "resume_kill: $kills SIGKILLs in $tries starts ($round run(s)); updates in metrics.jsonl at each kill:" $(cat "$T/kills.log")

# SIGINT: a checkpoint, exit 130, the resume command on stderr; then the resume finishes the run.
# interrupt SIGNAL WANT_STATUS DIR: runs until the first checkpoint exists, then signals it.
interrupt() {
    start "$3"
    n=0
    while [ ! -e "$3/checkpoint/checkpoint.safetensors" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n + 1)); done
    kill -"$1" $pid
    wait $pid
    st=$?
    [ $st -eq "$2" ] && ok || bad "SIG$1: exit $st, want $2 ($(tail -n 1 "$T/run.err"))"
}
interrupt INT 130 "$T/int"
grep -q "interrupted at step [0-9]*; resume with: bertc train --resume $T/int" "$T/run.err" && ok || bad "SIGINT message: $(cat "$T/run.err")"
# A full disk while resuming: the checkpoint write fails with a clear error, the old one stays.
cp "$T/int/checkpoint/checkpoint.safetensors" "$T/before.safetensors"
(ulimit -f 250 && exec "$BERTC" train --resume "$T/int" --quiet) >/dev/null 2>"$T/full.err"
st=$?
[ $st -eq 1 ] && grep -q "File too large" "$T/full.err" && ok || bad "file-size limit: exit $st: $(cat "$T/full.err")"
cmp -s "$T/before.safetensors" "$T/int/checkpoint/checkpoint.safetensors" && ok || bad "the failed write changed the checkpoint"
ls "$T/int/checkpoint" | grep -q tmp && bad "a temporary file was left: $(ls "$T/int/checkpoint")" || ok
start "$T/int"
wait $pid && ok || bad "resume after SIGINT failed: $(tail -n 1 "$T/run.err")"
cmp -s "$T/ref/model.safetensors" "$T/int/model.safetensors" && ok || bad "model after SIGINT + resume differs"

interrupt TERM 143 "$T/term"
start "$T/term"
wait $pid && cmp -s "$T/ref/model.safetensors" "$T/term/model.safetensors" && ok || bad "resume after SIGTERM: model differs or run failed"

# Two SIGINTs in a row: the second exits at once (130); what is on disk still resumes.
start "$T/twice"
n=0
while [ ! -e "$T/twice/checkpoint/checkpoint.safetensors" ] && [ $n -lt 500 ]; do sleep 0.01; n=$((n + 1)); done
kill -INT $pid
kill -INT $pid
wait $pid
st=$?
[ $st -eq 130 ] && ok || bad "double SIGINT: exit $st, want 130"
start "$T/twice"
wait $pid && cmp -s "$T/ref/model.safetensors" "$T/twice/model.safetensors" && ok || bad "resume after double SIGINT: $(tail -n 1 "$T/run.err")"

# Flags with --resume other than --threads/--quiet are refused.
"$BERTC" train --resume "$T/int" --lr 1 >/dev/null 2>"$T/err"
[ $? -eq 2 ] && grep -q "only --threads and --quiet" "$T/err" && ok || bad "--resume with --lr: $(cat "$T/err")"
# An output folder that cannot be created: an error naming it, before any data is read.
touch "$T/file"
"$BERTC" train --model "$T/model" --train "$T/nope.jsonl" --out "$T/file/out" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q "$T/file/out" "$T/err" && ok || bad "output under a file: $(cat "$T/err")"

echo "resume_kill: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
