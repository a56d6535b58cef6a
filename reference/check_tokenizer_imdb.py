"""Tokenizes every labelled IMDB review (train+test, pos+neg: 50,000) with `bertc tokenize` and
with Hugging Face's BertTokenizerFast, and counts the records whose output differs:
  - each review alone at max_length 128 (truncated and padded),
  - each review alone with no truncation (bertc --max-length 0),
  - consecutive reviews as 5,000 pairs at max_length 128 (longest-first truncation; Hugging Face's
    pair truncation costs milliseconds per pair, so only the first 10,000 reviews are paired).
Exits 1 if any record differs. Run it through scripts/check-tokenizer-imdb.sh.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_tokenize import dec, hf_encode, imdb_reviews, json_line, load_tokenizer  # noqa: E402


def run_bertc(bertc, model, jsonl_path, max_length):
    t = time.time()
    with open(jsonl_path, "rb") as f:
        out = subprocess.run([bertc, "tokenize", "--model", model, "--max-length", str(max_length)],
                             stdin=f, stdout=subprocess.PIPE, check=True).stdout
    return out.decode().splitlines(keepends=True), time.time() - t


def compare(label, names, got, enc, tok):
    want = [json_line(i, m, t) for i, m, t in zip(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"])]
    if len(got) != len(want):
        print("%s: bertc wrote %d lines for %d records" % (label, len(got), len(want)))
        return max(len(got), len(want))
    bad = [k for k in range(len(want)) if got[k] != want[k]]
    print("%-34s %6d records, %d mismatches" % (label, len(want), len(bad)))
    for k in bad[:5]:
        g = json.loads(got[k])["input_ids"]
        w = enc["input_ids"][k]
        pos = next((i for i in range(min(len(g), len(w))) if g[i] != w[i]), min(len(g), len(w)))
        print("  %s: first difference at token %d: bertc %s, HF %s" % (
            names[k], pos, tok.convert_ids_to_tokens(g[pos:pos + 3]), tok.convert_ids_to_tokens(w[pos:pos + 3])))
    return len(bad)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", required=True)
    ap.add_argument("--imdb", required=True)
    ap.add_argument("--bertc", default="./bertc")
    args = ap.parse_args()

    reviews = list(imdb_reviews(args.imdb))
    names = [n for n, _ in reviews]
    texts = [dec(b) for _, b in reviews]
    print("%d labelled reviews from %s" % (len(texts), args.imdb))
    tok = load_tokenizer(args.model)
    total_bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        singles = os.path.join(tmp, "singles.jsonl")
        pairs = os.path.join(tmp, "pairs.jsonl")
        with open(singles, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
        with open(pairs, "w", encoding="utf-8") as f:
            for i in range(0, min(len(texts), 10000) - 1, 2):
                f.write(json.dumps({"text": texts[i], "text_pair": texts[i + 1]}, ensure_ascii=False) + "\n")

        got, _ = run_bertc(args.bertc, args.model, singles, 128)
        total_bad += compare("single, max_length 128", names, got, hf_encode(tok, texts, None, 128, True), tok)
        got, _ = run_bertc(args.bertc, args.model, singles, 0)
        total_bad += compare("single, no truncation", names, got, hf_encode(tok, texts, None, 0, False), tok)
        got, _ = run_bertc(args.bertc, args.model, pairs, 128)
        total_bad += compare("pairs, max_length 128", names[0::2], got,
                             hf_encode(tok, texts[0::2][:len(got)], texts[1::2][:len(got)], 128, True), tok)
    print("total mismatches: %d" % total_bad)
    sys.exit(1 if total_bad else 0)


if __name__ == "__main__":
    main()
