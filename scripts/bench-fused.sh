#!/bin/sh
# Times the fused CPU ops against the unfused op sequences they replace (bench/fused_ops.c), the
# unfused ones run by the CPU backend of an older commit linked beside the current one.
#   scripts/bench-fused.sh [BASE_COMMIT] [B T C NH F REPS]
# BASE_COMMIT defaults to 9c345f7 (main before the fusions). Threads: OMP_NUM_THREADS.
set -eu
BASE=${1:-9c345f7}
[ $# -gt 0 ] && shift
CC=${CC:-cc}
FLAGS="-O2 -march=native -std=c11 -Wall -Wextra -D_GNU_SOURCE -fno-math-errno -fopenmp -Iinclude -Isrc"
make -s build/libbertc.a
mkdir -p build/tools
git show "$BASE:src/backend/cpu/ops_cpu.c" > build/tools/ops_cpu_base.c
$CC $FLAGS -Dbertc_backend_cpu=bertc_backend_cpu_base -c -o build/tools/ops_cpu_base.o build/tools/ops_cpu_base.c
$CC $FLAGS -o build/tools/fused_ops bench/fused_ops.c build/tools/ops_cpu_base.o build/libbertc.a -lopenblas -lm -fopenmp
./build/tools/fused_ops "$@"
