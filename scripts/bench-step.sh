#!/bin/sh
# Step time of the current tree and, optionally, of an older commit built beside it (same driver,
# bench/step_time.c), alternating runs so that both see the same load.
#   scripts/bench-step.sh [-b BASE_COMMIT] [-r RUNS] CONFIG_JSON B T STEPS
# e.g. OMP_NUM_THREADS=1 scripts/bench-step.sh -b 9c345f7 -r 3 models/minilm/config.json 16 128 3
set -eu
BASE= RUNS=1
while getopts b:r: o; do
    case $o in
    b) BASE=$OPTARG ;;
    r) RUNS=$OPTARG ;;
    *) exit 2 ;;
    esac
done
shift $((OPTIND - 1))
CC=${CC:-cc}
make -s build/libbertc.a
FLAGS=$(make -s cflags)
mkdir -p build/tools
$CC $FLAGS -o build/tools/step_time bench/step_time.c build/libbertc.a $(make -s ldlibs)
BINS=build/tools/step_time
if [ -n "$BASE" ]; then
    DIR=build/tools/base-$BASE
    if [ ! -x "$DIR/step_time" ]; then
        rm -rf "$DIR" && mkdir -p "$DIR/src"
        git archive "$BASE" src include Makefile | tar -x -C "$DIR/src"
        make -s -C "$DIR/src" build/libbertc.a
        # that commit's own link flags (older Makefiles have no ldlibs target: the libraries of then)
        libs=$(make -s -C "$DIR/src" ldlibs 2>/dev/null) ||
            libs="$(pkg-config --libs libutf8proc libarchive libcjson) -lopenblas -lm -fopenmp"
        $CC -I"$DIR/src/include" -I"$DIR/src/src" $FLAGS -o "$DIR/step_time" bench/step_time.c "$DIR/src/build/libbertc.a" $libs
    fi
    BINS="$DIR/step_time build/tools/step_time"
fi
i=0
while [ $i -lt "$RUNS" ]; do
    for b in $BINS; do
        printf '%s: ' "$b"
        ./$b "$@" | tail -1
    done
    i=$((i + 1))
done
