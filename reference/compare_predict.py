#!/usr/bin/env python3
"""Loads a model folder that bertc wrote (or any BERT folder) in transformers and compares its
logits with `bertc predict --logits` on the same texts, end to end (bertc's tokenizer included).

    python3 reference/compare_predict.py MODEL_DIR [--data SPEC] [--n 500] [--bertc ./bertc]

Texts: the first N examples of bertc's seeded subset of SPEC (default: 500 IMDB test reviews).
Prints the largest absolute logit difference and whether the predicted labels agree; exits 1 when
the difference exceeds --tol (default 1e-4).
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bertc_data  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz:aclImdb/test")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--bertc", default="./bertc")
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    ds = bertc_data.select(bertc_data.read(a.data), a.n, a.seed)
    texts = [e.text for e in ds.examples]
    lines = "".join(json.dumps({"text": t}) + "\n" for t in texts)
    out = subprocess.run([a.bertc, "predict", "--model", a.model, "--logits", "--max-length", str(a.max_length)],
                         input=lines.encode(), capture_output=True, check=True)
    ours = torch.tensor([json.loads(l)["logits"] for l in out.stdout.decode().splitlines()])

    tok = AutoTokenizer.from_pretrained(a.model)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, attn_implementation="eager").eval()
    rows = []
    with torch.no_grad():
        for i in range(0, len(texts), 32):
            enc = tok(texts[i:i + 32], truncation=True, max_length=a.max_length, padding="max_length",
                      return_tensors="pt")
            rows.append(model(**enc).logits)
    ref = torch.cat(rows)
    diff = (ours - ref).abs().max().item()
    agree = (ours.argmax(-1) == ref.argmax(-1)).float().mean().item()
    print(f"{len(texts)} texts: max |logit difference| {diff:.3e}, predicted labels agree {agree:.4f}, "
          f"labels {model.config.id2label}")
    sys.exit(0 if diff <= a.tol else 1)


if __name__ == "__main__":
    main()
