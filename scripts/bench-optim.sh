#!/bin/sh
# Gradient clipping + AdamW as a scaling pass then the update, against the clip folded into the
# update (bench/optim_time.c), alternating in one process.
#   scripts/bench-optim.sh CONFIG_JSON ROUNDS
# e.g. OMP_NUM_THREADS=2 scripts/bench-optim.sh models/minilm/config.json 40
set -eu
CC=${CC:-cc}
make -s build/libbertc.a
mkdir -p build/tools
$CC $(make -s cflags) -o build/tools/optim_time bench/optim_time.c build/libbertc.a $(make -s ldlibs)
exec build/tools/optim_time "$@"
