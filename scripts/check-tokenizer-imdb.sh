#!/bin/sh
# Tokenizes all 50,000 labelled IMDB reviews with `bertc tokenize` and with Hugging Face's
# BertTokenizerFast (max_length 128, no truncation, and pairs) and reports the mismatches (must be 0).
# Needs Python with transformers. Usage: scripts/check-tokenizer-imdb.sh [IMDB_TARBALL] [MODEL_DIR]
set -e
cd "$(dirname "$0")/.."
IMDB=${1:-../shared/data/aclImdb_v1.tar.gz}
[ -f "$IMDB" ] || IMDB=/work/shared/data/aclImdb_v1.tar.gz
MODEL=${2:-tests/fixtures/tokenizer}   # bert-base-uncased's vocab.txt and tokenizer_config.json
make -s bertc
exec python3 reference/check_tokenizer_imdb.py --model "$MODEL" --imdb "$IMDB" --bertc ./bertc
