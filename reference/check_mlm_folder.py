#!/usr/bin/env python3
"""Checks that a folder written by `bertc pretrain --mlm` loads in transformers as it should.

    python3 reference/check_mlm_folder.py OUT_DIR [--text "the movie was [MASK] ."]

- BertForMaskedLM.from_pretrained(OUT_DIR): no missing weights (the decoder is tied to the word
  embeddings; cls.predictions.* and bert.* are read), every loaded tensor equal to the file's;
  the MLM loss of a fixed masked sentence and the top predictions for a [MASK] are printed.
- BertForSequenceClassification.from_pretrained(OUT_DIR): only classifier.* missing (initialised,
  as for any base checkpoint), the pooler read from the file; its encoder output equals the
  masked-LM model's.
- BertTokenizerFast.from_pretrained(OUT_DIR) loads.
Exits 1 on any failure. Not part of `make test` (needs Python and transformers).
"""
import argparse
import sys

import torch
from safetensors.torch import load_file
from transformers import BertForMaskedLM, BertForSequenceClassification, BertTokenizerFast


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("folder")
    ap.add_argument("--text", default="this movie was really [MASK] , i loved every minute of it .")
    args = ap.parse_args()

    tensors = load_file(f"{args.folder}/model.safetensors")
    if not any(k.startswith("cls.predictions.") for k in tensors):
        fail("no cls.predictions.* tensors in model.safetensors")
    if any(k.startswith("classifier.") for k in tensors):
        fail("a classifier in a pretraining output")

    mlm, info = BertForMaskedLM.from_pretrained(args.folder, output_loading_info=True, attn_implementation="eager")
    print("BertForMaskedLM: missing", info["missing_keys"], "unexpected", info["unexpected_keys"])
    if info["missing_keys"]:
        fail(f"BertForMaskedLM misses {info['missing_keys']}")
    state = mlm.state_dict()
    for name, t in tensors.items():
        if name in state and not torch.equal(state[name].float(), t.float()):
            fail(f"{name} differs from the file")
    if not torch.equal(mlm.cls.predictions.decoder.weight, mlm.bert.embeddings.word_embeddings.weight):
        fail("the decoder is not tied to the word embeddings")
    if not torch.equal(mlm.cls.predictions.decoder.bias, tensors["cls.predictions.bias"]):
        fail("the decoder bias is not cls.predictions.bias")

    tok = BertTokenizerFast.from_pretrained(args.folder)
    mlm.eval()
    enc = tok(args.text, return_tensors="pt")
    with torch.no_grad():
        logits = mlm(**enc).logits
    where = (enc["input_ids"][0] == tok.mask_token_id).nonzero().flatten().tolist()
    for p in where:
        top = logits[0, p].topk(5).indices.tolist()
        print(f"[MASK] at {p}: {tok.convert_ids_to_tokens(top)}")
    # a fixed masked sentence: the MLM loss with every 4th word masked
    plain = tok("the acting was wonderful and the story kept me watching until the very end .", return_tensors="pt")
    ids = plain["input_ids"].clone()
    labels = torch.full_like(ids, -100)
    for i in range(1, ids.shape[1] - 1, 4):
        labels[0, i] = ids[0, i]
        ids[0, i] = tok.mask_token_id
    with torch.no_grad():
        loss = mlm(input_ids=ids, attention_mask=plain["attention_mask"], labels=labels).loss
    print(f"MLM loss on a fixed masked sentence: {loss.item():.4f}")

    cls, info = BertForSequenceClassification.from_pretrained(args.folder, output_loading_info=True,
                                                              attn_implementation="eager")
    print("BertForSequenceClassification: missing", info["missing_keys"])
    if sorted(info["missing_keys"]) != ["classifier.bias", "classifier.weight"]:
        fail(f"BertForSequenceClassification misses {info['missing_keys']}, expected only the classifier")
    if "bert.pooler.dense.weight" in tensors and not torch.equal(cls.bert.pooler.dense.weight,
                                                                  tensors["bert.pooler.dense.weight"]):
        fail("the pooler was not read from the file")
    cls.eval()
    with torch.no_grad():
        h1 = mlm.bert(**enc).last_hidden_state
        h2 = cls.bert(**enc).last_hidden_state
    if not torch.allclose(h1, h2, atol=1e-6):
        fail("the two models' encoders disagree")
    print("OK")


if __name__ == "__main__":
    main()
