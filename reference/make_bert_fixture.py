#!/usr/bin/env python3
"""Writes the reference fixture for tests/test_bert.c.

  tests/fixtures/bert/tiny/            a small random BertForSequenceClassification saved with
                                       save_pretrained (config.json + model.safetensors)
  tests/fixtures/bert/tiny_ref.safetensors
      input.ids, input.mask, input.types, input.labels  (B,T) / (B) int32, padded batch
      logits (B,K), loss (1), grad.<param name> for every parameter       plain cross-entropy
      ls.loss, ls.grad.<head and embedding LayerNorm params>             label_smoothing = 0.1
      gelu_new.logits/loss/grad.<layer 0 intermediate.dense.weight>      same weights, hidden_act gelu_new
      relu.logits/loss/grad.<...>                                        same weights, hidden_act relu

The reference runs in float64 (model.double()) so that it is the exact answer the float32 C code
is compared against, with eval() (dropout off) and the eager attention implementation.

Run from the repository root: python3 reference/make_bert_fixture.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import BertConfig, BertForSequenceClassification

OUT = "tests/fixtures/bert"
B, T = 4, 12
LENGTHS = [12, 9, 5, 11]  # different lengths, so the padding mask matters
LS_EPS = 0.1
HEAD_GRADS = ["classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias",
              "bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias",
              "bert.embeddings.word_embeddings.weight"]
ACT_GRADS = ["bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.intermediate.dense.bias"]


def make_config(act="gelu"):
    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=32, type_vocab_size=2, hidden_act=act,
                      hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12,
                      initializer_range=0.02, pad_token_id=0, num_labels=3, attn_implementation="eager")


def spread_weights(model):
    """Weights far from the init's small values, so softmax, GELU and LayerNorm are all exercised
    away from their near-linear regime (also used by make_mlm_fixture.py)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "LayerNorm.weight" in name:
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))


def run(model, ids, mask, types, labels, eps):
    model.zero_grad()
    logits = model(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    loss = torch.nn.CrossEntropyLoss(label_smoothing=eps)(logits, labels)
    loss.backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    return logits.detach(), loss.detach(), grads


def main():
    torch.manual_seed(1234)
    model = BertForSequenceClassification(make_config())
    spread_weights(model)
    model.eval()
    os.makedirs(f"{OUT}/tiny", exist_ok=True)
    model.save_pretrained(f"{OUT}/tiny", safe_serialization=True)

    g = torch.Generator().manual_seed(99)
    ids = torch.randint(1, 100, (B, T), generator=g, dtype=torch.int64)
    mask = torch.zeros(B, T, dtype=torch.int64)
    types = torch.zeros(B, T, dtype=torch.int64)
    for b, n in enumerate(LENGTHS):
        mask[b, :n] = 1
        ids[b, n:] = 0            # [PAD]
        types[b, n // 2:n] = 1    # a second segment
    ids[0, 3] = 0                 # a pad id inside the text: its embedding row gets no gradient
    labels = torch.tensor([0, 2, 1, 2], dtype=torch.int64)

    ref = {"input.ids": ids.int(), "input.mask": mask.int(), "input.types": types.int(),
           "input.labels": labels.int()}
    m64 = model.double()
    logits, loss, grads = run(m64, ids, mask, types, labels, 0.0)
    ref["logits"] = logits.float()
    ref["loss"] = loss.float().reshape(1)
    for n, gr in grads.items():
        ref[f"grad.{n}"] = gr.float()
    _, loss, grads = run(m64, ids, mask, types, labels, LS_EPS)
    ref["ls.loss"] = loss.float().reshape(1)
    for n in HEAD_GRADS:
        ref[f"ls.grad.{n}"] = grads[n].float()

    for act in ["gelu_new", "relu"]:
        variant = BertForSequenceClassification(make_config(act)).double()
        variant.load_state_dict(m64.state_dict())
        variant.eval()
        logits, loss, grads = run(variant, ids, mask, types, labels, 0.0)
        ref[f"{act}.logits"] = logits.float()
        ref[f"{act}.loss"] = loss.float().reshape(1)
        for n in ACT_GRADS:
            ref[f"{act}.grad.{n}"] = grads[n].float()

    save_file({k: v.contiguous() for k, v in ref.items()}, f"{OUT}/tiny_ref.safetensors")
    print("loss", ref["loss"].item(), "ls.loss", ref["ls.loss"].item())


if __name__ == "__main__":
    main()
