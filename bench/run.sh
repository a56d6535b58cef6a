#!/bin/sh
# The whole CPU benchmark in one run (what `make bench` runs): the machine's sgemm peak, then for
# each shape bertc (fp32, and bf16 when `bertc bench --help` lists it) and PyTorch + transformers
# (fp32 and bf16 autocast), one process per (tool, shape, precision, measurement), one after the
# other; then a Markdown report (bench/compare.py) on stdout.
#
# usage: sh bench/run.sh [--threads N] [--reps N] [--warmup N] [--rounds N] [--shapes "bert-base minilm"]
#                        [--precisions "fp32 bf16"] [--bertc ./bertc] [--wait-policy auto|passive|default]
#                        [--huge-pages on|off]
#                        [--no-torch] [--only latency,eval,step,matmul] [--save] [--out FILE.md] [--jsonl FILE.jsonl]
#   --threads N      threads of both tools (default: all cores, nproc)
#   --reps N         timed runs per measurement (default 5), after --warmup N (default 1)
#   --rounds N       repeat every (shape, precision, measurement) pair of runs N times (default 1), bertc and
#                    PyTorch alternating, so that a slow spell of the machine hits both (bertc first in
#                    odd rounds, PyTorch first in even ones); the report
#                    gives the median over rounds and each round's speed-up
#   --precisions L   which precisions (default "fp32 bf16")
#   --wait-policy    OMP_WAIT_POLICY for bertc: default (the default: unset, as a user runs it),
#                    passive, or auto: probe PASSIVE and unset on short runs of each measurement
#                    per shape, in the order PASSIVE, unset, unset, PASSIVE, and keep the faster.
#                    PyTorch always gets that probe (bench_torch.py, in the first round; later
#                    rounds reuse its choice). bertc's probe, the default until the fourteenth
#                    session, chose PASSIVE by noise where direct alternations found it slower
#                    for bertc (docs/PERFORMANCE.md, "The measurements")
#   --huge-pages on|off  bertc's large buffers on transparent huge pages (on, its default) or not
#                    (BERTC_THP=0). PyTorch runs as it is by default (its THP_MEM_ALLOC_ENABLE unset):
#                    with it, its times did not change and its bert-base step's peak RSS grew by
#                    140-180 MiB (docs/PERFORMANCE.md, "Huge pages"); the report says which each ran
#   --no-torch       bertc only (also automatic when python3, torch or transformers is missing)
#   --only LIST      some of the measurements, for both tools (default all)
#   --save           also write bench/results/<UTC date-time>.md and the raw .jsonl beside it
#   --out FILE.md    also write the report here; --jsonl FILE keeps the raw JSON Lines
# Run it on a quiet machine: every figure is a wall-clock time.
set -u
cd "$(dirname "$0")/.." || exit 1

BERTC=./bertc
THREADS=$(nproc 2>/dev/null || echo 1)
REPS=5
WARMUP=1
ROUNDS=1
PRECISIONS="fp32 bf16"
SHAPES="bert-base minilm"
WAIT=default
HUGE=on
TORCH=1
ONLY=
SAVE=0
OUT=
JSONL=
while [ $# -gt 0 ]; do
    case $1 in
        --threads) THREADS=$2; shift 2 ;;
        --reps) REPS=$2; shift 2 ;;
        --warmup) WARMUP=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --precisions) PRECISIONS=$2; shift 2 ;;
        --shapes) SHAPES=$2; shift 2 ;;
        --bertc) BERTC=$2; shift 2 ;;
        --wait-policy) WAIT=$2; shift 2 ;;
        --huge-pages) HUGE=$2; shift 2 ;;
        --no-torch) TORCH=0; shift ;;
        --only) ONLY=$2; shift 2 ;;
        --save) SAVE=1; shift ;;
        --out) OUT=$2; shift 2 ;;
        --jsonl) JSONL=$2; shift 2 ;;
        -h|--help) sed -n '2,/^# Run it on a quiet/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "bench/run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case $WAIT in auto|passive|default) ;; *) echo "bench/run.sh: --wait-policy auto, passive or default" >&2; exit 2 ;; esac
case $HUGE in # bertc asks for huge pages unless BERTC_THP=0
    on) unset BERTC_THP ;;
    off) BERTC_THP=0; export BERTC_THP ;;
    *) echo "bench/run.sh: --huge-pages on or off" >&2; exit 2 ;;
esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "bench/run.sh: --rounds takes a whole number >= 1" >&2; exit 2 ;; esac
for p in $PRECISIONS; do case $p in fp32|bf16) ;; *) echo "bench/run.sh: --precisions: fp32 and/or bf16" >&2; exit 2 ;; esac; done
[ -x "$BERTC" ] || { echo "bench/run.sh: $BERTC not found (run make first)" >&2; exit 1; }
# The measurements, each its own process per tool, so that each runs with its own wait policy.
MEASURES=$(echo "${ONLY:-step,eval,latency,matmul}" | tr ',' ' ')
for m in $MEASURES; do
    case $m in step|eval|latency|matmul) ;; *) echo "bench/run.sh: --only: some of latency,eval,step,matmul" >&2; exit 2 ;; esac
done

stamp=$(date -u +%Y-%m-%dT%H%MZ)
if [ "$SAVE" = 1 ]; then
    mkdir -p bench/results
    [ -n "$OUT" ] || OUT=bench/results/$stamp.md
    [ -n "$JSONL" ] || JSONL=bench/results/$stamp.jsonl
fi
tmp=$(mktemp -d /tmp/bertc-bench-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
[ -n "$JSONL" ] || JSONL=$tmp/results.jsonl
: >"$JSONL"
say() { echo "bench/run.sh: $*" >&2; }
median_of() { sed -n 's/.*"seconds_median":\([0-9.eE+-]*\).*/\1/p' "$1" | head -n 1; }

PY=${PYTHON-$(command -v python3 || true)}   # PYTHON= (empty) runs the Python-free path
if [ "$TORCH" = 1 ]; then
    if [ -z "$PY" ]; then
        say "python3 not found: bertc only"; TORCH=0
    elif ! "$PY" -c 'import torch, transformers' 2>/dev/null; then
        say "torch or transformers not installed: bertc only (pip install torch transformers for the comparison)"; TORCH=0
    fi
fi
BERTC_BF16=0
if "$BERTC" bench --help 2>/dev/null | grep -- '--precision' | grep -q 'bf16'; then BERTC_BF16=1; else say "this bertc has no --precision bf16: its bf16 rows are n/a"; fi
# with --rounds, every row says its round ("round": N first in the object); every row also says
# how much of the two tools' run the hypervisor took away ("steal_pct": the steal share of the
# machine's CPU time from /proc/stat over that process's run; 0 on bare metal), since on a shared
# VM that, not the code, can decide a comparison
steal_now() { awk '/^cpu /{ s = 0; for (i = 2; i <= NF; i++) s += $i; print $9, s }' /proc/stat 2>/dev/null || echo "0 0"; }
steal_pct() { echo "$1 $2" | awk '{ d = $4 - $2; print (d > 0) ? int(100 * ($3 - $1) / d + 0.5) : 0 }'; }
tag() {
    st=$(steal_pct "$steal0" "$(steal_now)")
    say "  (steal during that run: $st%)"
    if [ "$ROUNDS" -gt 1 ]; then sed "s/^{/{\"round\":$round,\"steal_pct\":$st,/"; else sed "s/^{/{\"steal_pct\":$st,/"; fi
}

say "machine: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //'), $(nproc) cores; threads $THREADS; load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
# The sgemm peak, measured before the runs, before every later round and after the runs: one
# measurement can catch a slow spell of this shared machine (97 against 157 GFLOP/s in one run of
# 2026-11-27), which inflates every "% of peak"; compare.py takes the best of them.
peak_run=0
measure_peak() {
    peak_run=$((peak_run + 1))
    say "bertc: sgemm peak ($1)"
    "$BERTC" bench --peak --threads "$THREADS" --reps "$REPS" >"$tmp/peak" || { say "bertc bench --peak failed"; exit 1; }
    sed "s/^{/{\"peak_run\":$peak_run,/" "$tmp/peak" >>"$JSONL"
}
measure_peak "before the runs"

# The OMP_WAIT_POLICY each tool uses, kept in $tmp/policy.TOOL.SHAPE.MEASURE[.PREC] (empty:
# unset). bertc's is probed once per shape and measurement, before the first round (matmul, which
# replays a training step's products, takes the step's when the step is measured); bench_torch.py
# probes its own in the first round (--wait-policy auto) and later rounds reuse what it chose.
for shape in $SHAPES; do
    for m in $MEASURES; do
        policy=
        case $WAIT in
            passive) policy=PASSIVE ;;
            auto)
                if [ "$m" = matmul ] && [ -f "$tmp/policy.bertc.$shape.step" ]; then
                    cp "$tmp/policy.bertc.$shape.step" "$tmp/policy.bertc.$shape.$m"; continue
                fi
                # Probe: a few runs of the measurement with each policy, in the order PASSIVE,
                # unset, unset, PASSIVE (a drifting machine then slows both alike); per policy the
                # mean of its two medians; keep the faster. Five runs a time of the single
                # example, whose runs are short enough for one run to pick by noise.
                pr=1; [ "$m" = latency ] && pr=5
                tp=0 td=0
                for pol in PASSIVE unset unset PASSIVE; do
                    if [ $pol = PASSIVE ]; then
                        OMP_WAIT_POLICY=PASSIVE "$BERTC" bench --shape "$shape" --only "$m" --reps $pr --threads "$THREADS" >"$tmp/p" || exit 1
                        tp=$(awk -v a="$tp" -v b="$(median_of "$tmp/p")" 'BEGIN { print a + b / 2 }')
                    else
                        env -u OMP_WAIT_POLICY "$BERTC" bench --shape "$shape" --only "$m" --reps $pr --threads "$THREADS" >"$tmp/d" || exit 1
                        td=$(awk -v a="$td" -v b="$(median_of "$tmp/d")" 'BEGIN { print a + b / 2 }')
                    fi
                done
                policy=$(awk -v p="$tp" -v d="$td" 'BEGIN { print (p + 0 < d + 0) ? "PASSIVE" : "" }')
                say "bertc $shape $m: probe OMP_WAIT_POLICY=PASSIVE $tp s, default $td s: using ${policy:-default}" ;;
        esac
        echo "$policy" >"$tmp/policy.bertc.$shape.$m"
    done
done

run_bertc() { # shape prec measurement
    [ "$2" = fp32 ] || [ "$BERTC_BF16" = 1 ] || return 0
    policy=$(cat "$tmp/policy.bertc.$1.$3")
    say "round $round/$ROUNDS: bertc $1 $2 $3"
    steal0=$(steal_now)
    env -u OMP_WAIT_POLICY ${policy:+OMP_WAIT_POLICY=$policy} "$BERTC" bench --shape "$1" \
        --precision "$2" --threads "$THREADS" --reps "$REPS" --warmup "$WARMUP" --only "$3" >"$tmp/row" ||
        { say "bertc bench failed"; exit 1; }
    tag <"$tmp/row" >>"$JSONL"
}
run_torch() { # shape prec measurement
    [ "$TORCH" = 1 ] && [ "$3" != matmul ] || return 0
    say "round $round/$ROUNDS: PyTorch $1 $2 $3"
    tpol=auto
    [ -s "$tmp/policy.torch.$1.$2.$3" ] && tpol=$(cat "$tmp/policy.torch.$1.$2.$3")
    steal0=$(steal_now)
    "$PY" bench/bench_torch.py --shape "$1" --precision "$2" --threads "$THREADS" --reps "$REPS" \
        --warmup "$WARMUP" --wait-policy "$tpol" --only "$3" >"$tmp/row" || { say "bench_torch.py failed"; exit 1; }
    # what it ran with ("PASSIVE" or "default"), for the next rounds
    sed -n 's/.*"omp_wait_policy": "\([A-Za-z]*\)".*/\1/p' "$tmp/row" | head -n 1 |
        tr 'A-Z' 'a-z' >"$tmp/policy.torch.$1.$2.$3"
    tag <"$tmp/row" >>"$JSONL"
}

# Which tool runs first in a pair alternates from round to round (bertc in odd rounds, PyTorch
# in even ones). A process started right after a big one has exited runs slower on this VM for a
# minute or two, with 5-6% steal (docs/PERFORMANCE.md, "The benchmark after the kept-draw
# helpers"): with one fixed order, the same rows always paid for it (bertc's MiniLM step, right
# after its bert-base replay of 3.5 GB).
round=1
while [ "$round" -le "$ROUNDS" ]; do
    [ "$round" -gt 1 ] && measure_peak "round $round"
    for shape in $SHAPES; do
        for prec in $PRECISIONS; do
            for m in $MEASURES; do
                if [ $((round % 2)) = 1 ]; then
                    run_bertc "$shape" "$prec" "$m"
                    run_torch "$shape" "$prec" "$m"
                else
                    run_torch "$shape" "$prec" "$m"
                    run_bertc "$shape" "$prec" "$m"
                fi
            done
        done
    done
    round=$((round + 1))
done
measure_peak "after the runs"

if [ -n "$PY" ]; then
    title="bertc vs PyTorch: CPU benchmark, $stamp"
    [ "$TORCH" = 1 ] || title="bertc CPU benchmark (PyTorch not run), $stamp"
    if [ -n "$OUT" ]; then "$PY" bench/compare.py "$JSONL" --title "$title" --out "$OUT"; else "$PY" bench/compare.py "$JSONL" --title "$title"; fi
    [ -n "$OUT" ] && say "report written to $OUT"
else
    # No Python at all: a plain table of bertc's rows.
    echo "bertc CPU benchmark (python3 not found: PyTorch not run), $stamp"
    printf '%-10s %-13s %-5s %12s %12s %10s %8s\n' shape what prec median_s examples/s GFLOP/s RSS_MiB
    grep '"seconds_median"' "$JSONL" | while IFS= read -r l; do
        f() { echo "$l" | sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }
        printf '%-10s %-13s %-5s %12s %12s %10s %8s\n' "$(f shape)" "$(f what)" "$(f precision)" "$(f seconds_median)" \
            "$(f examples_per_s)" "$(f gflop_per_s)" "$(f peak_rss_mib)"
    done
    grep '"what":"peak"' "$JSONL"
    [ -n "$OUT" ] && cp "$JSONL" "$OUT.jsonl"
fi
[ "$JSONL" != "$tmp/results.jsonl" ] && say "raw JSON Lines in $JSONL"
exit 0
