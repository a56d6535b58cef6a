#!/bin/sh
# bertc vs transformers on the real all-MiniLM-L6-v2 checkpoint with a fresh 2-label head:
# logits of 500 IMDB test reviews at 128 tokens must agree within 1e-4 (max abs difference).
# Needs Python with torch + transformers (a check, not a test dependency). Usage:
#   scripts/check-minilm.sh [WORK_DIR]      (default /tmp/bertc_minilm)
set -eu
WORK=${1:-/tmp/bertc_minilm}
CC=${CC:-cc}
make -s build/libbertc.a
mkdir -p build/tools "$WORK"
$CC $(make -s cflags) -o build/tools/check_logits tests/check_logits.c build/libbertc.a $(make -s ldlibs)
python3 reference/check_minilm.py prepare "$WORK"
./build/tools/check_logits logits "$WORK/model" "$WORK/ids.bin" "$WORK/logits.bin"
python3 reference/check_minilm.py compare "$WORK"
