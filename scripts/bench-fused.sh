#!/bin/sh
# Times the CPU ops of one layer against the same ops of an older commit's CPU backend
# (bench/fused_ops.c): the fused ops against the unfused sequences they replaced, and ops whose
# calls did not change (attention) against their older implementation, in one process,
# alternating run by run, so that the machine's slow spells hit both columns.
#   scripts/bench-fused.sh [BASE_COMMIT] [B T C NH F REPS]
# BASE_COMMIT defaults to 9c345f7 (main before the fusions). Threads: OMP_NUM_THREADS.
#
# The older backend is that commit's ops_cpu.c and, where it has one, its gemm.c, linked into one
# object whose only global symbol is bertc_backend_cpu_base, so its helpers cannot clash with
# today's library.
set -eu
BASE=${1:-9c345f7}
[ $# -gt 0 ] && shift
CC=${CC:-cc}
make -s build/libbertc.a
FLAGS=$(make -s cflags)
dir=build/tools/base
rm -rf "$dir"
mkdir -p "$dir/backend/cpu"
git show "$BASE:src/backend/cpu/ops_cpu.c" > "$dir/ops_cpu.c"
objs="$dir/ops_cpu.o"
# The older commit's own headers for the backend, ahead of today's on the include path.
for h in backend/ops.h backend/cpu/gemm.h; do
    git show "$BASE:src/$h" > "$dir/$h" 2>/dev/null || rm -f "$dir/$h"
done
$CC $FLAGS -I"$dir" -Dbertc_backend_cpu=bertc_backend_cpu_base -c -o "$dir/ops_cpu.o" "$dir/ops_cpu.c"
if git show "$BASE:src/backend/cpu/gemm.c" > "$dir/gemm.c" 2>/dev/null; then
    $CC $FLAGS -I"$dir" -c -o "$dir/gemm.o" "$dir/gemm.c"
    objs="$objs $dir/gemm.o"
fi
ld -r -o "$dir/backend_base.o" $objs
objcopy --keep-global-symbol=bertc_backend_cpu_base "$dir/backend_base.o"
$CC $FLAGS -o build/tools/fused_ops bench/fused_ops.c "$dir/backend_base.o" build/libbertc.a $(make -s ldlibs)
./build/tools/fused_ops "$@"
