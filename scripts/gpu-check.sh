#!/bin/bash
# The whole GPU check in one call, for a GPU machine lent for ~15 minutes on which nothing can be
# installed (docs/GPU.md). Prepare on the build machine first:
#     sh scripts/gpu/prepare-carry.sh    # the libraries a CUDA image lacks, MiniLM in bf16, IMDB
# then on the GPU machine (the device tool; docs/GPU.md gives the call):
#     BERTC_MINILM=models/minilm-bf16 bash scripts/gpu-check.sh
# Steps, each under `timeout`, about 3 minutes in all on an H100:
#   1. the machine (nvidia-smi, nvcc), the build (make -j16 with CUDA, sm_90 + compute_80 PTX)
#   2. build/tests/test_cuda: every op against the CPU, a tiny model's step, MiniLM's logits
#   3. a short training, CPU vs GPU (cuda, cuda:tf32, cuda:bf16): the loss curve step by step
#   4. the dropout-fix recipe (3 epochs of 2,000 examples at 128 tokens + evaluations) on the
#      bert-base shape with random weights, timed in each precision; throughput and MFU; then the
#      real IMDB dropout-fix on MiniLM (gpu-data/, when carried) in fp32 and bf16
#   5. a per-op time profile of a short bert-base run (bf16 and fp32); bertc bench --device cuda
#   6. PyTorch + transformers on the same card and shapes (AMP bf16, fp32; bench/bench_torch.py
#      --device cuda), when torch is there, and bench/compare.py's table of both
# Every figure goes to $OUT/gpu-check.txt ($OUT is where the device tool collects files; without
# it, ./gpu-check.txt). Data: synthetic JSON Lines (filler words and one "good"/"bad" that
# decides the label) of IMDB's shape, since the IMDB tarball does not travel; vocabulary and
# config are bert-base's shape, written here.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
OUTDIR=${OUT:-$ROOT}
REPORT=$OUTDIR/gpu-check.txt
WORK=$(mktemp -d /tmp/bertc-gpu-check.XXXXXX)
JOBS=${JOBS:-16}
T0=$(date +%s)
: > "$REPORT"

say() { printf '%s\n' "$*" | tee -a "$REPORT"; }
section() { say ""; say "== $* (t = $(( $(date +%s) - T0 )) s)"; }
# guarded LIMIT CMD...: runs CMD under timeout; its output goes to the report and to stdout
guarded() {
    local limit=$1; shift
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$REPORT"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && say "(stopped: over $limit s)"
    [ "$rc" -ne 0 ] && say "(exit status $rc)"
    return "$rc"
}
# GPU_CHECK_SKIP="LIST" leaves those sections out, from: test curve dfix imdb profile bench torch
# GPU_CHECK_DFIX="bf16 bf16-nockpt" runs only those of the dropout-fix section's whole runs
# (bf16: the defaults, which write no checkpoint in a run this short; bf16-ckpt-each: a checkpoint
# after every epoch but the last; bf16-wd: weight decay 0.01, so AdamW runs over ~170 ranges;
# cuda-bf16-math, cuda-fp32: the fp32-storage modes)
# (a second call in one lease, when the first already measured them)
skip() { case " ${GPU_CHECK_SKIP:-} " in *" $1 "*) say "(skipped: GPU_CHECK_SKIP)"; return 0 ;; esac; return 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
# json_num FILE KEY: the first number after "KEY": in FILE (cJSON indents with tabs)
json_num() { grep -o "\"$2\":[[:space:]]*[-0-9][-0-9.eE+]*" "$1" | head -1 | sed 's/.*:[[:space:]]*//'; }

section "machine"
say "date: $(date -u)   commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ local changes)')"
guarded 20 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
guarded 20 nvidia-smi || true
NVCC=$(command -v nvcc || { [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc; })
[ -n "$NVCC" ] && say "nvcc: $("$NVCC" --version | tail -1)" || say "nvcc: not found"
say "gcc: $(gcc --version | head -1)"
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)

section "dependencies"
DEPS=$ROOT/.gpu-deps
# the carried bundle (scripts/gpu/prepare-carry.sh): .gpu-deps-gz with OpenBLAS xz- or
# gzip-compressed, unpacked here into .gpu-deps (xz, or Python's lzma where xz is missing)
if [ ! -d "$DEPS" ] && [ -d "$ROOT/.gpu-deps-gz" ]; then
    mv "$ROOT/.gpu-deps-gz" "$DEPS"
    for z in "$DEPS"/lib/*.xz; do
        [ -e "$z" ] || continue
        xz -d "$z" 2>/dev/null || python3 -c 'import lzma, sys; open(sys.argv[1][:-3], "wb").write(lzma.open(sys.argv[1]).read())' "$z"
        rm -f "$z"
    done
    for z in "$DEPS"/lib/*.gz; do [ -e "$z" ] && gunzip -f "$z"; done
    say "unpacked .gpu-deps-gz into .gpu-deps: $(ls "$DEPS/lib" | tr '\n' ' ')"
fi
# GPU_CHECK_BUNDLE=1 forces the bundle (to try this path on the build machine), GPU_CHECK_STUB=1 the stub
if [ -z "${GPU_CHECK_BUNDLE:-}" ] && pkg-config --exists libutf8proc libarchive libcjson 2>/dev/null &&
    [ -e /usr/include/cmocka.h ]; then
    say "system libraries found by pkg-config"
elif [ -d "$DEPS/lib" ]; then
    say "using the bundled headers and libraries in .gpu-deps"
    export CPATH="$DEPS/include:$DEPS/include/cjson${CPATH:+:$CPATH}"
    export LIBRARY_PATH="$DEPS/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$DEPS/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    mkdir -p "$WORK/bin" "$WORK/lib"
    archive_libs=-larchive
    if [ -n "${GPU_CHECK_STUB:-}" ] || ! printf '#include <archive.h>\nint main(void) { return archive_read_new() == 0; }\n' |
        gcc -x c - -o "$WORK/archive-probe" -larchive 2>/dev/null; then
        say "libarchive missing here: linking scripts/gpu/archive_stub.c (.tar.gz datasets unreadable)"
        gcc -O2 -c scripts/gpu/archive_stub.c -o "$WORK/lib/archive_stub.o" &&
            ar rcs "$WORK/lib/libarchive.a" "$WORK/lib/archive_stub.o"
        archive_libs="-L$WORK/lib -larchive"
    fi
    # a pkg-config stand-in for the Makefile's `pkg-config --cflags/--libs libutf8proc libarchive libcjson`
    cat > "$WORK/bin/pkg-config" <<EOF
#!/bin/sh
case "\$1" in
--cflags) echo "-I$DEPS/include -I$DEPS/include/cjson" ;;
--libs) echo "-L$DEPS/lib -Wl,-rpath,$DEPS/lib -lutf8proc $archive_libs -lcjson" ;;
esac
exit 0
EOF
    chmod +x "$WORK/bin/pkg-config"
    export PATH="$WORK/bin:$PATH"
else
    say "no system libutf8proc/libarchive/libcjson/cmocka and no .gpu-deps: run sh scripts/gpu/bundle-deps.sh on the build machine and carry .gpu-deps"
fi

# oneDNN (libdnnl) runs only the CPU's --precision bf16 products: where its header or library is
# missing (a CUDA image usually lacks it; at 38 MB it does not fit the bundle) build without it.
# GPU_CHECK_DNNL=0 forces that here too.
DNNL=${GPU_CHECK_DNNL:-}
if [ -z "$DNNL" ]; then
    DNNL=0
    [ -f /usr/include/oneapi/dnnl/dnnl.h ] && ldconfig -p 2>/dev/null | grep -q 'libdnnl\.so ' && DNNL=1
fi
say "oneDNN: DNNL=$DNNL (CPU bf16 products only; not used by the GPU)"

section "build (make -j$JOBS, CUDA)"
t=$(now)
if ! timeout --kill-after=10 400 make -j"$JOBS" CUDA=1 DNNL="$DNNL" bertc build/tests/test_cuda > "$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log" | tee -a "$REPORT"
    say "BUILD FAILED: stopping. Where the toolkit's pieces are, for the next try:"
    { command -v nvcc; ls -d /usr/local/cuda* 2>/dev/null
      find / -xdev \( -name 'libcudart.so*' -o -name 'libcublas.so*' -o -name 'cublas_v2.h' -o -name 'cblas.h' \
          -o -name 'libopenblas*' -o -name 'archive.h' -o -name 'cJSON.h' \) 2>/dev/null | head -40; } | tee -a "$REPORT"
    exit 1
fi
say "built in $(elapsed "$t" "$(now)") s; warnings: $(grep -c 'warning' "$WORK/build.log")"
grep 'warning' "$WORK/build.log" | head -20 | tee -a "$REPORT"

[ -n "${GPU_CHECK_BUILD_ONLY:-}" ] && { ldd ./bertc | grep -E 'openblas|utf8proc|cjson|archive|cublas|cudart|dnnl' | tee -a "$REPORT"; exit 0; }

section "test_cuda: every op vs the CPU, a tiny model's step, MiniLM logits"
if ! skip test; then
[ -z "${BERTC_MINILM:-}" ] && [ -f models/minilm/model.safetensors ] && export BERTC_MINILM=models/minilm
if ! guarded 240 build/tests/test_cuda; then
    say "TEST_CUDA FAILED"
    # what went wrong on the device, where a failure is a bad access rather than a wrong number
    if command -v compute-sanitizer > /dev/null; then
        section "compute-sanitizer memcheck over test_cuda"
        guarded 150 compute-sanitizer --tool memcheck --print-limit 20 build/tests/test_cuda || true
    fi
fi

fi

section "models and data"
# bert-base-uncased's config.json (the shape only: the weights are random)
mkdir -p "$WORK/bert-base" "$WORK/minilm-shape"
cat > "$WORK/bert-base/config.json" <<'EOF'
{"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1, "gradient_checkpointing": false,
 "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": 768, "initializer_range": 0.02,
 "intermediate_size": 3072, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
 "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0, "position_embedding_type": "absolute",
 "transformers_version": "4.6.0.dev0", "type_vocab_size": 2, "use_cache": true, "vocab_size": 30522}
EOF
sed -e 's/"hidden_size": 768/"hidden_size": 384/' -e 's/"intermediate_size": 3072/"intermediate_size": 1536/' \
    -e 's/"num_hidden_layers": 12/"num_hidden_layers": 6/' "$WORK/bert-base/config.json" > "$WORK/minilm-shape/config.json"
# 30,522 tokens: the specials, the two label words, then w5 .. w30519
awk 'BEGIN { print "[PAD]"; print "[UNK]"; print "[CLS]"; print "[SEP]"; print "[MASK]"; print "good"; print "bad";
             for (i = 7; i < 30522; i++) print "w" i }' > "$WORK/bert-base/vocab.txt"
cp "$WORK/bert-base/vocab.txt" "$WORK/minilm-shape/vocab.txt"
# N reviews of 140-199 filler words with "good" (pos) or "bad" (neg) among the first 100
gen() { # N SEED FILE
    awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed);
        for (r = 0; r < n; r++) { lab = rand() < 0.5; words = 140 + int(rand() * 60); at = int(rand() * 100); s = "";
            for (w = 0; w < words; w++) s = s (w ? " " : "") (w == at ? (lab ? "good" : "bad") : "w" (7 + int(rand() * rand() * 30000)));
            printf "{\"text\":\"%s\",\"label\":\"%s\"}\n", s, lab ? "pos" : "neg" } }' > "$3"
}
gen 2000 1 "$WORK/train.jsonl"
gen 500 2 "$WORK/val.jsonl"
say "data: $(wc -l < "$WORK/train.jsonl") training and $(wc -l < "$WORK/val.jsonl") validation examples (synthetic, ~170 words each)"
t=$(now)
guarded 120 ./bertc init --config "$WORK/bert-base" --out "$WORK/bert-base-random" || true
guarded 60 ./bertc init --config "$WORK/minilm-shape" --out "$WORK/minilm-random" || true
say "random models written in $(elapsed "$t" "$(now)") s"


# GPU_CHECK_VARIANTS=1: the bf16 training step and evaluation under each experiment switch of
# the CUDA backend (BERTC_CUDA_COLSUM, BERTC_CUDA_ATTN_MATH: docs/GPU.md), the plain settings first and last to show
# the drift between runs (GPU_CHECK_VARIANT_LIST="name|VAR=value ..." lines for others)
if [ -n "${GPU_CHECK_VARIANTS:-}" ]; then
section "experiment switches: bertc bench --precision bf16, bert-base shape (step 16 x 128, evaluation 32 x 128)"
VARIANTS=${GPU_CHECK_VARIANT_LIST:-"plain|
colsum-split|BERTC_CUDA_COLSUM=split
attn-fp32|BERTC_CUDA_ATTN_MATH=fp32
plain-again|"}
say "$(printf '%-18s %12s %12s %12s' variant 'step ms' 'step ex/s' 'eval ms')"
while IFS='|' read -r name envs; do
    # shellcheck disable=SC2086
    env $envs timeout 120 ./bertc bench --shape bert-base --device cuda --precision bf16 --only step,eval \
        --reps 30 --warmup 5 > "$WORK/variant.jsonl" 2> "$WORK/variant.err"
    step=$(grep '"train_step"' "$WORK/variant.jsonl" | grep -o '"seconds_median":[0-9.eE+-]*' | cut -d: -f2)
    evl=$(grep '"eval_forward"' "$WORK/variant.jsonl" | grep -o '"seconds_median":[0-9.eE+-]*' | cut -d: -f2)
    [ -z "$step" ] && { say "$name: no result"; tail -3 "$WORK/variant.err" | tee -a "$REPORT"; continue; }
    say "$(awk -v n="$name" -v s="$step" -v e="$evl" 'BEGIN { printf "%-18s %12.3f %12.1f %12.3f", n, 1e3 * s, 16 / s, 1e3 * e }')"
done <<< "$VARIANTS"
fi

# GPU_CHECK_NSYS=1: an Nsight Systems capture of the bf16 training step (bertc bench): how much of
# the time a kernel runs (the rest is launch gaps and synchronisations), on what, the CUDA calls
# (the H100 machine's image had no nsys on the PATH; one came with Nsight Compute)
NSYS=$(command -v nsys || ls /usr/local/cuda*/bin/nsys /opt/nvidia/nsight-systems*/*/bin/nsys \
    /opt/nvidia/nsight-compute/*/host/target-linux-x64/nsys 2>/dev/null | head -1)
if [ -n "${GPU_CHECK_NSYS:-}" ]; then
section "nsys: bf16 training step (bench, 20 timed), bert-base shape"
if [ -z "$NSYS" ]; then
    say "nsys not found"
else
    timeout 60 "$NSYS" profile -t cuda,osrt -o "$WORK/nsys-step" --force-overwrite true ./bertc bench --shape bert-base \
        --device cuda --precision bf16 --only step --reps 20 --warmup 5 > "$WORK/nsys-step.log" 2>&1 < /dev/null
    grep -o '"seconds_median":[0-9.eE+-]*' "$WORK/nsys-step.log" | tee -a "$REPORT"
    timeout 60 "$NSYS" export --type sqlite -o "$WORK/nsys-step.sqlite" --force-overwrite true \
        "$WORK/nsys-step.nsys-rep" > "$WORK/nsys-export.log" 2>&1
    say "nsys export: exit status $?"
    ls -la "$WORK"/nsys-step* 2>&1 | tee -a "$REPORT"
    tail -3 "$WORK/nsys-step.log" "$WORK/nsys-export.log" 2>&1 | tee -a "$REPORT"
    if [ -s "$WORK/nsys-step.sqlite" ]; then
        # the last 0.2 s: inside the 20 timed repetitions (~0.23 s)
        guarded 60 python3 scripts/gpu/nsys_busy.py "$WORK/nsys-step.sqlite" --last-seconds 0.2 || true
        # the capture itself comes back too (gzipped, if small enough) for a look here
        gzip -c "$WORK/nsys-step.sqlite" > "$OUTDIR/nsys-step.sqlite.gz" 2>/dev/null
        [ "$(stat -c %s "$OUTDIR/nsys-step.sqlite.gz" 2>/dev/null || echo 0)" -gt 40000000 ] && rm -f "$OUTDIR/nsys-step.sqlite.gz"
    fi
fi
fi

# GPU_CHECK_NCU_STEP=1: every kernel's duration (Nsight Compute, one metric, caches and clocks
# left alone) over two bf16 training steps of bert-base, summed by kernel: the GPU time of a step
# without BERTC_CUDA_PROFILE's synchronisations (setup kernels, e.g. the bf16 weight copy, included)
if [ -n "${GPU_CHECK_NCU_STEP:-}" ] && command -v ncu > /dev/null; then
    section "ncu: kernel durations over 2 bf16 training steps, bert-base shape (GPU_CHECK_NCU_STEP=1)"
    timeout 200 ncu --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none ./bertc train \
        --model "$WORK/bert-base-random" --train "$WORK/train.jsonl" --train-size 32 --max-length 128 --batch-size 16 \
        --epochs 1 --no-eval-train --no-checkpoint --quiet --device cuda --precision bf16 --out "$WORK/ncu-step" \
        > "$WORK/ncu-step.csv" 2> "$WORK/ncu-step.err" < /dev/null
    say "(ncu exit status $?)"
    guarded 60 python3 scripts/gpu/ncu_sum.py "$WORK/ncu-step.csv" --top 40 || tail -5 "$WORK/ncu-step.err" | tee -a "$REPORT"
fi

section "loss curve: 320 examples, batch 16, MiniLM shape, dropout on; CPU ($(nproc) threads) vs GPU"
if ! skip curve; then
for dev in cpu cuda cuda:tf32 cuda:bf16; do
    t=$(now)
    guarded 180 ./bertc train --model "$WORK/minilm-random" --train "$WORK/train.jsonl" --train-size 320 \
        --max-length 128 --batch-size 16 --epochs 1 --lr 5e-5 --no-eval-train --quiet --seed 42 \
        --device "$dev" --out "$WORK/curve-${dev/:/-}" > /dev/null || true
    say "$dev: $(elapsed "$t" "$(now)") s"
done
losses() { grep '"type":"step"' "$1/metrics.jsonl" 2>/dev/null | grep -o '"loss":[-0-9.eE+]*' | cut -d: -f2; }
paste <(losses "$WORK/curve-cpu") <(losses "$WORK/curve-cuda") <(losses "$WORK/curve-cuda-tf32") <(losses "$WORK/curve-cuda-bf16") |
    awk -F'\t' 'BEGIN { printf "%5s %10s %10s %10s %10s %10s\n", "step", "cpu", "cuda", "|diff|", "cuda:tf32", "cuda:bf16"; m = -1 }
         function f(x) { return x == "" ? sprintf("%10s", "-") : sprintf("%10.6f", x) }
         { d = "-"; if ($1 != "" && $2 != "") { d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; n++; d = sprintf("%.2e", d) }
           printf "%5d %s %s %10s %s %s\n", NR, f($1), f($2), d, f($3), f($4) }
         END { if (m < 0) print "no CPU/GPU pair of curves to compare"; else printf "max |loss cuda - loss cpu| over %d steps: %.3g\n", n, m }' | tee -a "$REPORT"
fi

section "dropout-fix recipe on the bert-base shape (random weights): 3 epochs x 2,000 at 128 tokens + evaluations"
if ! skip dfix; then
# training FLOPs per example, counted as usual (6 x linear-layer parameters x tokens + attention),
# for the full model (bertc skips most of the last layer: its real work is ~7% less)
FLOPS_PER_EX=$(awk 'BEGIN { L = 12; C = 768; F = 3072; T = 128;
    lin = L * (4 * C * C + 2 * C * F) + C * C; att = L * 2 * 2 * T * C; printf "%.0f", 3 * T * (2 * lin + att) }')
case "$GPU_NAME" in
*H100*|*H200*|*H800*|*GH200*) PEAK_BF16=989e12 PEAK_TF32=494e12 PEAK_FP32=67e12 ;;
*A100*) PEAK_BF16=312e12 PEAK_TF32=156e12 PEAK_FP32=19.5e12 ;;
*) PEAK_BF16=0 PEAK_TF32=0 PEAK_FP32=0 ;;
esac
say "FLOPs per training example: $FLOPS_PER_EX; peaks used for MFU ($GPU_NAME, dense): bf16 $PEAK_BF16, tf32 $PEAK_TF32, fp32 $PEAK_FP32"
BEST_EPS=0
# name|options: bf16 mixed precision (bf16 operands in the encoder's products; attention on the
# tensor cores too) with the defaults, without any checkpoint, with one after every epoch, then the fp32-storage modes
# (bf16 precision with the "cuda" math; with "cuda:bf16" math the fp32 pooler and classifier
# products took 810 us per call against 174 us on an H100, and whole-run speed was within the
# machine-to-machine spread: docs/GPU.md)
RUNS="bf16|--device cuda --precision bf16
bf16-nockpt|--device cuda --precision bf16 --no-checkpoint
bf16-nockpt-fastexit|--device cuda --precision bf16 --no-checkpoint
bf16-ckpt-each|--device cuda --precision bf16 --checkpoint-min-seconds 0
bf16-wd|--device cuda --precision bf16 --weight-decay 0.01
cuda-bf16-math|--device cuda:bf16
cuda-fp32|--device cuda"
while IFS='|' read -r name opts; do
    # GPU_CHECK_DFIX="NAME ...": only those runs (a later call in a session short of device time)
    case " ${GPU_CHECK_DFIX:-$name} " in *" $name "*) ;; *) continue ;; esac
    # *-fastexit: the process ends with _exit after main (BERTC_FAST_EXIT, src/cli/main.c), skipping
    # cudart's exit-time teardown; BERTC_EXIT_TIMING splits every run's command time below
    case $name in *-fastexit) fast=1 ;; *) fast=0 ;; esac
    t=$(now)
    out="$WORK/dfix-$name"
    # shellcheck disable=SC2086
    BERTC_EXIT_TIMING=1 BERTC_FAST_EXIT=$fast guarded 240 ./bertc train --recipe recipes/imdb-dropout-fix.conf \
        --model "$WORK/bert-base-random" --train "$WORK/train.jsonl" --val "$WORK/val.jsonl" $opts --quiet \
        --out "$out" < /dev/null || true
    t_end=$(now)
    wall=$(elapsed "$t" "$t_end")
    mains=$(tail -n 40 "$REPORT" | grep -o 'main started [0-9.]* returned [0-9.]*' | tail -1)
    if [ -n "$mains" ]; then
        read -r _ _ m0 _ m1 <<< "$mains"
        say "$(printf '%-15s ' "$name")command $wall s = start to main $(elapsed "$t" "$m0") + main $(elapsed "$m0" "$m1") + after main (exit handlers, CUDA teardown) $(elapsed "$m1" "$t_end") s"
    fi
    if [ -f "$out/summary.json" ]; then
        eps=$(json_num "$out/summary.json" examples_per_s)
        tsec=$(json_num "$out/summary.json" train_seconds)
        case "$opts" in *bf16*) peak=$PEAK_BF16 ;; *cuda:tf32*) peak=$PEAK_TF32 ;; *) peak=$PEAK_FP32 ;; esac
        say "$(awk -v d="$name" -v w="$wall" -v e="$eps" -v ts="$tsec" -v f="$FLOPS_PER_EX" -v p="$peak" -v pb="$PEAK_BF16" 'BEGIN {
            printf "%-15s whole run %6.2f s (target < 5 s on an H100) | training %6.2f s, %7.1f examples/s, %6.1f TFLOP/s", d, w, ts, e, e * f / 1e12;
            if (p > 0) printf ", MFU %.1f%% of this precision'"'"'s peak, %.1f%% of bf16 peak", 100 * e * f / p, 100 * e * f / pb; print "" }')"
        [ "$name" = bf16 ] && BEST_EPS=$eps
        say "$(printf '%-15s ' "$name")$(sed -n '/"seconds":/,/}/p' "$out/summary.json" | tr -d '\n\t ')"
    else
        say "$name: no summary.json (failed; see above)"
    fi
done <<< "$RUNS"

fi

section "IMDB dropout-fix on all-MiniLM-L6-v2 (weights rounded to bf16 to travel): the real task on the GPU"
if ! skip imdb; then
# gpu-data/: the 2,000 + 500 reviews of bertc's dropout-fix seed-42 split (python3 from the
# tarball, which does not travel), gzipped; the same command on the CPU gives the comparison
if [ -f gpu-data/imdb-train.jsonl.gz ] && [ -n "${BERTC_MINILM:-}" ]; then
    gunzip -kf gpu-data/imdb-train.jsonl.gz gpu-data/imdb-val.jsonl.gz
    for prec in fp32 bf16; do
        case $prec in fp32) opts="--device cuda" ;; bf16) opts="--device cuda --precision bf16" ;; esac
        t=$(now)
        # shellcheck disable=SC2086
        guarded 240 ./bertc train --recipe recipes/imdb-dropout-fix.conf --model "$BERTC_MINILM" \
            --train gpu-data/imdb-train.jsonl --val gpu-data/imdb-val.jsonl $opts --quiet --out "$WORK/imdb-$prec" < /dev/null || true
        say "imdb $prec ($opts): whole run $(elapsed "$t" "$(now)") s"
        [ -f "$WORK/imdb-$prec/metrics.jsonl" ] && cp "$WORK/imdb-$prec/metrics.jsonl" "$OUTDIR/imdb-$prec-metrics.jsonl"
    done
else
    say "gpu-data/imdb-*.jsonl.gz or BERTC_MINILM missing: skipped"
fi

fi

# GPU_CHECK_MLM=1 (issue #8): continued masked-language-model pretraining of MiniLM on the
# unlabelled reviews prepare-carry brings (PREPARE_MLM=1), then the dropout-fix recipe from it and
# from MiniLM itself, seeds 42-44 (each seed's own reviews, as in runs/experiment), bf16 on the GPU.
# GPU_CHECK_MLM_EPOCHS passes over the texts (default 5).
if [ -n "${GPU_CHECK_MLM:-}" ]; then
section "MLM check: pretraining on unlabelled reviews, then dropout-fix, against no pretraining (seeds 42-44)"
if [ -f gpu-data/imdb-unsup.jsonl.gz ] && [ -f gpu-data/imdb-train-44.jsonl.gz ] && [ -n "${BERTC_MINILM:-}" ]; then
    for f in gpu-data/imdb-*.jsonl.gz; do gunzip -kf "$f"; done
    t=$(now)
    guarded 300 ./bertc pretrain --mlm --model "$BERTC_MINILM" --data gpu-data/imdb-unsup.jsonl --out "$WORK/mlm" \
        --epochs "${GPU_CHECK_MLM_EPOCHS:-5}" --device cuda --precision bf16 --quiet < /dev/null || true
    say "pretrain: $(elapsed "$t" "$(now)") s, $(grep -c '"type":"step"' "$WORK/mlm/metrics.jsonl" 2>/dev/null) updates; loss first/last: $(grep '"type":"step"' "$WORK/mlm/metrics.jsonl" 2>/dev/null | sed -n '1p;$p' | grep -o '"loss":[0-9.]*' | cut -d: -f2 | tr '\n' ' ')"
    [ -f "$WORK/mlm/metrics.jsonl" ] && cp "$WORK/mlm/metrics.jsonl" "$OUTDIR/mlm-metrics.jsonl"
    say "$(printf '%-6s %-10s %10s %10s %10s' seed model 'val acc' 'train acc' 'whole s')"
    for seed in 42 43 44; do
        sfx=$([ "$seed" = 42 ] && echo "" || echo "-$seed")
        for m in minilm mlm; do
            model=$([ "$m" = mlm ] && echo "$WORK/mlm" || echo "$BERTC_MINILM")
            out="$WORK/ft-$m-$seed"
            t=$(now)
            guarded 120 ./bertc train --recipe recipes/imdb-dropout-fix.conf --model "$model" --seed "$seed" \
                --train "gpu-data/imdb-train$sfx.jsonl" --val "gpu-data/imdb-val$sfx.jsonl" --device cuda --precision bf16 \
                --quiet --out "$out" < /dev/null > /dev/null || true
            w=$(elapsed "$t" "$(now)")
            va=$(sed -n '/"val":/,/}/p' "$out/summary.json" 2>/dev/null | grep -o '"accuracy":[[:space:]]*[0-9.]*' | grep -o '[0-9.]*$')
            ta=$(sed -n '/"train":/,/}/p' "$out/summary.json" 2>/dev/null | grep -o '"accuracy":[[:space:]]*[0-9.]*' | grep -o '[0-9.]*$')
            say "$(printf '%-6s %-10s %10s %10s %10s' "$seed" "$m" "${va:-?}" "${ta:-?}" "$w")"
            echo "$seed $m ${va:-nan}" >> "$WORK/mlm-table"
        done
    done
    awk '{ s[$2] += $3; n[$2]++ } END { if (n["minilm"] && n["mlm"]) printf "mean val accuracy: no pretraining %.4f, pretrained %.4f, difference %+.2f points\n", s["minilm"] / n["minilm"], s["mlm"] / n["mlm"], 100 * (s["mlm"] / n["mlm"] - s["minilm"] / n["minilm"]) }' "$WORK/mlm-table" | tee -a "$REPORT"
else
    say "gpu-data/imdb-unsup.jsonl.gz (PREPARE_MLM=1 sh scripts/gpu/prepare-carry.sh) or BERTC_MINILM missing: skipped"
fi
fi

section "where the time goes: per-op profile (BERTC_CUDA_PROFILE=1), bert-base shape, 320 examples, batch 16"
if ! skip profile; then
i=0
for opts in "--device cuda --precision bf16" "--device cuda"; do
    i=$((i + 1))
    say "-- $opts"
    # shellcheck disable=SC2086
    BERTC_CUDA_PROFILE=1 guarded 120 ./bertc train --model "$WORK/bert-base-random" --train "$WORK/train.jsonl" \
        --train-size 320 --max-length 128 --batch-size 16 --epochs 1 --no-eval-train --quiet $opts \
        --out "$WORK/profile-$i" > /dev/null || true
done

fi

# GPU_CHECK_NCU=1: Nsight Compute over some kernels of a short bf16 run (after the first steps'
# launches), to see why attention forward was 3-4x slower in the bf16 runs than in fp32 (docs/GPU.md)
if [ -n "${GPU_CHECK_NCU:-}" ] && command -v ncu > /dev/null; then
    section "ncu: 60 kernels of a bf16 bert-base step (GPU_CHECK_NCU=1)"
    guarded 200 ncu --launch-skip 1500 --launch-count 60 --section SpeedOfLight ./bertc train \
        --model "$WORK/bert-base-random" --train "$WORK/train.jsonl" --train-size 96 --max-length 128 --batch-size 16 \
        --epochs 1 --no-eval-train --no-checkpoint --quiet --device cuda --precision bf16 --out "$WORK/ncu" || true
fi

section "bertc bench --device cuda, bert-base shape: training step (16 x 128), evaluation (32 x 128), latency (1 x 128)"
if ! skip bench; then
# JSON Lines into one file with PyTorch's rows below; bench/compare.py puts them side by side
BENCH_JSON=$WORK/gpu-bench.jsonl
: > "$BENCH_JSON"
for prec in bf16 fp32; do
    guarded 150 ./bertc bench --shape bert-base --device cuda --precision "$prec" --reps 20 --warmup 3 |
        tee -a "$BENCH_JSON" > /dev/null || true
done

fi

section "PyTorch + transformers, same card, bert-base shape: the same three measurements (AMP bf16, fp32)"
if skip torch; then
    :
elif timeout 60 python3 -c 'import torch, transformers, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    for prec in bf16 fp32; do
        guarded 200 python3 bench/bench_torch.py --device cuda --shape bert-base --precision "$prec" --reps 20 \
            --warmup 3 | tee -a "$BENCH_JSON" > /dev/null || true
    done
    torch_eps=$(grep '"tool": "pytorch"' "$BENCH_JSON" | grep '"what": "train_step"' | grep '"precision": "bf16"' |
        grep -o '"examples_per_s": [0-9.]*' | head -1 | cut -d' ' -f2)
    [ -n "$torch_eps" ] && [ "$BEST_EPS" != 0 ] &&
        say "$(awk -v a="$BEST_EPS" -v b="$torch_eps" 'BEGIN { printf "training throughput, whole dropout-fix run: bertc bf16 (--precision bf16) %.1f ex/s / torch AMP bf16 step %.1f ex/s: %.2fx (target >= 3x)", a, b, a / b }')"
else
    say "torch with CUDA not available here: PyTorch comparison skipped"
fi
if [ -s "$BENCH_JSON" ]; then
    guarded 30 python3 bench/compare.py "$BENCH_JSON" --title "bertc vs PyTorch on ${GPU_NAME:-the GPU}" || true
    cp "$BENCH_JSON" "$OUTDIR/gpu-bench.jsonl" 2>/dev/null || true
fi

section "done"
say "report: $REPORT; work folder $WORK (removed)"
rm -rf "$WORK"
