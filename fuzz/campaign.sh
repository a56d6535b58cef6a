#!/bin/bash
# Runs libFuzzer campaigns and prints one line of figures per target.
#
#   sh fuzz/campaign.sh [TARGET...]        (default: every build-fuzz/fuzz_* program; `make fuzz` calls this)
#
# Environment:
#   FUZZ_SECONDS   seconds per target (-max_total_time), default 600
#   FUZZ_PARALLEL  targets run at the same time, default 1 (2 on a 2-core machine keeps both busy)
#   FUZZ_BUILD     where the fuzz programs are, default build-fuzz
#   FUZZ_OUT       results, default $FUZZ_BUILD/campaign: TARGET.log (libFuzzer's output),
#                  corpus/TARGET (the seeds plus what the run found), crashes/TARGET (crash-*, leak-*,
#                  timeout-*, oom-* inputs), summary.md (the table printed at the end)
#   FUZZ_NICE      nice level of the fuzzers, default 5
#   FUZZ_FLAGS     extra libFuzzer flags
# Each target starts from its seed corpus fuzz/corpus/TARGET and the corpus its previous campaign
# left in FUZZ_OUT, with the dictionary fuzz/dict/TARGET.dict when there is one. An input slower
# than 10 s counts as a hang (timeout-*), and one that needs more than 2 GB as out-of-memory.
# Exit status: 0 when no target crashed, 1 otherwise (the inputs are in crashes/TARGET; replay one
# with build-fuzz/fuzz_TARGET FILE, then keep it in tests/fixtures/fuzz/TARGET once fixed).
set -u
cd "$(dirname "$0")/.."
SECONDS_PER="${FUZZ_SECONDS:-600}"
PAR="${FUZZ_PARALLEL:-1}"
BUILD="${FUZZ_BUILD:-build-fuzz}"
OUT="${FUZZ_OUT:-$BUILD/campaign}"
NICE="${FUZZ_NICE:-5}"
EXTRA="${FUZZ_FLAGS:-}"

if [ $# -gt 0 ]; then
    targets="$*"
else
    targets=$(ls "$BUILD"/fuzz_* 2>/dev/null | sed 's|.*/fuzz_||' | sort)
fi
[ -n "$targets" ] || { echo "campaign.sh: no fuzz programs in $BUILD (run make fuzz-build)" >&2; exit 2; }
mkdir -p "$OUT"

run_one() {
    local t="$1" bin="$BUILD/fuzz_$1"
    [ -x "$bin" ] || { echo "campaign.sh: $bin missing (run make fuzz-build)" >&2; return 2; }
    mkdir -p "$OUT/corpus/$t" "$OUT/crashes/$t"
    local dict=""
    [ -f "fuzz/dict/$t.dict" ] && dict="-dict=fuzz/dict/$t.dict"
    local seeds=""
    [ -d "fuzz/corpus/$t" ] && seeds="fuzz/corpus/$t"
    # new inputs go to the first folder; the seed folder is only read
    nice -n "$NICE" "$bin" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$OUT/crashes/$t/" $dict $EXTRA "$OUT/corpus/$t" $seeds >"$OUT/$t.log" 2>&1
    echo "$?" >"$OUT/$t.rc"
}

# Run FUZZ_PARALLEL at a time.
running=0
for t in $targets; do
    echo "campaign: fuzz_$t for ${SECONDS_PER}s -> $OUT/$t.log"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$PAR" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# One line per target, from libFuzzer's final status line ("#N DONE cov: C ft: F corp: U/Sb ...") and
# its -print_final_stats lines (executions, exec/s).
{
    echo "| target | seconds | executions | exec/s | cov | ft | corpus (inputs/bytes) | crashes |"
    echo "|---|---|---|---|---|---|---|---|"
    for t in $targets; do
        log="$OUT/$t.log"
        last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" 2>/dev/null | tail -n 1)
        execs=$(sed -n 's/^stat::number_of_executed_units: //p' "$log" 2>/dev/null | tail -n 1)
        rate=$(sed -n "s/^stat::average_exec_per_sec: *//p" "$log" 2>/dev/null | tail -n 1)
        [ -n "$execs" ] || execs=$(echo "$last" | sed -n 's/^#\([0-9]*\).*/\1/p')
        [ -n "$rate" ] || rate=$(echo "$last" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')
        cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
        ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
        corp=$(echo "$last" | sed -n 's/.*corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p')
        crashes=$(ls "$OUT/crashes/$t" 2>/dev/null | grep -cE '^(crash|leak|timeout|oom|slow-unit)-')
        rc=$(cat "$OUT/$t.rc" 2>/dev/null || echo "?")
        note=""
        if [ "$crashes" -gt 0 ] || [ "$rc" != 0 ]; then
            note=" (exit $rc; see $log)"
        fi
        echo "| $t | $SECONDS_PER | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes$note |"
    done
} >"$OUT/summary.md"
cat "$OUT/summary.md"
# Any row with a note is a target that crashed (or whose fuzzer failed).
if grep -q '(exit ' "$OUT/summary.md"; then exit 1; fi
exit 0
