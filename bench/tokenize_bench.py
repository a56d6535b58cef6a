"""Tokenizer speed: all 100,000 IMDB reviews (train, test and unsup) with `bertc tokenize` and with
Hugging Face's BertTokenizerFast, both on one thread, at max_length 128 (truncation + padding) and
with no truncation.

Reading the tarball is excluded from both: the reviews are decoded once, and written as JSON Lines
to a temporary file (which then sits in the page cache) for bertc. The bertc time is the whole
process: start, vocabulary load, JSON parsing, tokenizing, and printing every record as JSON to
/dev/null. The Hugging Face time is one batch call on the in-memory list of strings, with
RAYON_NUM_THREADS=1 and TOKENIZERS_PARALLELISM=false:
  tok(texts, truncation=True, max_length=128, padding="max_length")   (Python lists out)
  tok(texts)                                                           (no truncation)
and, for reference, the Rust backend alone at 128: backend_tokenizer.encode_batch(texts).
bertc stops tokenizing a single text once it has max_length - 2 ids (the output is the same);
the no-truncation run shows the speed on whole texts.
bertc's time is the best of --repeat runs, Hugging Face's of --hf-repeat (1 by default: a run
takes a minute or more).

usage: python bench/tokenize_bench.py [--imdb TARBALL] [--model DIR] [--bertc ./bertc] [--repeat N]
"""
import os

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
from hf_tokenize import dec, imdb_reviews, load_tokenizer  # noqa: E402

PARTS = ("train/pos", "train/neg", "train/unsup", "test/pos", "test/neg")


def best_of(n, fn):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    root = os.path.join(HERE, "..")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_imdb = os.path.join(root, "..", "shared", "data", "aclImdb_v1.tar.gz")
    if not os.path.exists(default_imdb):
        default_imdb = "/work/shared/data/aclImdb_v1.tar.gz"
    ap.add_argument("--imdb", default=default_imdb)
    ap.add_argument("--model", default=os.path.join(root, "tests", "fixtures", "tokenizer"))
    ap.add_argument("--bertc", default=os.path.join(root, "bertc"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--hf-repeat", type=int, default=1)
    args = ap.parse_args()

    texts = [dec(b) for _, b in imdb_reviews(args.imdb, PARTS)]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    print("%d reviews, %.1f MB of text" % (len(texts), n_bytes / 1e6))
    tok = load_tokenizer(args.model)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "reviews.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for t in texts:
                f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")

        def run_bertc(max_length):
            with open(path, "rb") as f:
                subprocess.run([args.bertc, "tokenize", "--model", args.model, "--max-length", str(max_length)],
                               stdin=f, stdout=subprocess.DEVNULL, check=True)

        run_bertc(128)  # warm the page cache
        t_bertc = best_of(args.repeat, lambda: run_bertc(128))
        t_bertc_full = best_of(args.repeat, lambda: run_bertc(0))

    t_hf = best_of(args.hf_repeat, lambda: tok(texts, truncation=True, max_length=128, padding="max_length"))
    t_hf_full = best_of(args.hf_repeat, lambda: tok(texts))
    backend = tok.backend_tokenizer
    backend.enable_truncation(128)
    backend.enable_padding(length=128, pad_id=tok.pad_token_id, pad_token=tok.pad_token)
    t_rust = best_of(args.hf_repeat, lambda: backend.encode_batch(texts))

    n = len(texts)
    print("max_length 128, padded:")
    print("  bertc tokenize (whole process, JSON in and out)   %7.2f s  %8.0f reviews/s" % (t_bertc, n / t_bertc))
    print("  HF BertTokenizerFast tok(texts, ...)              %7.2f s  %8.0f reviews/s" % (t_hf, n / t_hf))
    print("  HF backend_tokenizer.encode_batch (Rust only)     %7.2f s  %8.0f reviews/s" % (t_rust, n / t_rust))
    print("  bertc is %.1fx faster than BertTokenizerFast (%.1fx than its Rust backend alone)"
          % (t_hf / t_bertc, t_rust / t_bertc))
    print("no truncation:")
    print("  bertc tokenize --max-length 0                     %7.2f s  %8.0f reviews/s" % (t_bertc_full, n / t_bertc_full))
    print("  HF BertTokenizerFast tok(texts)                   %7.2f s  %8.0f reviews/s" % (t_hf_full, n / t_hf_full))
    print("  bertc is %.1fx faster than BertTokenizerFast" % (t_hf_full / t_bertc_full))


if __name__ == "__main__":
    main()
