#!/usr/bin/env python3
"""Writes the reference fixture for the masked-language-model head (tests/test_mlm.c).

  tests/fixtures/bert/mlm_tiny/            a small random BertForMaskedLM saved with save_pretrained
                                           (config.json + model.safetensors, cls.predictions.* included)
  tests/fixtures/bert/mlm_tiny_ref.safetensors
      input.ids, input.mask, input.types (B,T) int32   a padded batch, some tokens already masked
      input.labels (B,T) int32                         the true id at masked positions, -100 elsewhere
      loss (1), grad.<param name> for every parameter  BertForMaskedLM(labels=...) in float64

As reference/make_bert_fixture.py: float64 (model.double()), eval() (dropout off), eager attention,
weights far from the init's small values.

Run from the repository root: python3 reference/make_mlm_fixture.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForMaskedLM

from make_bert_fixture import spread_weights

OUT = "tests/fixtures/bert"
B, T = 4, 12
LENGTHS = [12, 9, 5, 11]
MASK_ID = 4


def main():
    torch.manual_seed(4321)
    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=32, type_vocab_size=2, hidden_act="gelu",
                     hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12,
                     initializer_range=0.02, pad_token_id=0, attn_implementation="eager")
    model = BertForMaskedLM(cfg)
    spread_weights(model)
    model.eval()
    os.makedirs(f"{OUT}/mlm_tiny", exist_ok=True)
    model.save_pretrained(f"{OUT}/mlm_tiny", safe_serialization=True)

    g = torch.Generator().manual_seed(77)
    ids = torch.randint(5, 100, (B, T), generator=g, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    types = torch.zeros(B, T, dtype=torch.int64)
    labels = torch.full((B, T), -100, dtype=torch.int64)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
        ids[b, n:] = 0
        types[b, n // 2:n] = 1
    # masked positions: [MASK], a random replacement and an unchanged token, as the collator makes them
    for b, t, how in [(0, 1, "mask"), (0, 4, "mask"), (0, 10, "random"), (1, 2, "keep"), (1, 7, "mask"),
                      (2, 3, "mask"), (3, 1, "random"), (3, 5, "mask"), (3, 9, "mask")]:
        labels[b, t] = ids[b, t]
        if how == "mask":
            ids[b, t] = MASK_ID
        elif how == "random":
            ids[b, t] = (ids[b, t] + 17) % 95 + 5
    # row 2 position 1 keeps its token but is a label-free position; row 2 has one masked token

    m64 = model.double()
    m64.zero_grad()
    out = m64(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels)
    out.loss.backward()
    ref = {"input.ids": ids.int(), "input.mask": mask.int(), "input.types": types.int(),
           "input.labels": labels.int(), "loss": out.loss.detach().float().reshape(1)}
    for n, p in m64.named_parameters():
        ref[f"grad.{n}"] = p.grad.detach().float()
    save_file({k: v.contiguous() for k, v in ref.items()}, f"{OUT}/mlm_tiny_ref.safetensors")
    print("loss", ref["loss"].item(), "grads", sorted(k for k in ref if k.startswith("grad.cls")))


if __name__ == "__main__":
    main()
