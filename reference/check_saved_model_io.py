"""Checks by hand that files bertc writes are read by the Python reference libraries.

Usage (from the repository root, after writing a folder with bertc):
    python reference/check_saved_model_io.py DIR [LABEL ...] [--compare ORIGINAL_DIR]

DIR must hold model.safetensors and config.json written by safetensors_write and
bert_config_save. Loads model.safetensors with safetensors.torch.load_file (prints each tensor's
name, dtype, shape and first values, and the metadata), and config.json with
transformers.AutoConfig.from_pretrained; if LABELs are given, checks id2label/label2id/num_labels
equal them. With --compare, also loads DIR with AutoModelForSequenceClassification and checks
every encoder weight equals ORIGINAL_DIR's (no weight reported missing except the new
classifier). Exits non-zero on any mismatch.
"""
import json
import sys

from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoConfig


def main():
    args = sys.argv[1:]
    original = None
    if "--compare" in args:
        i = args.index("--compare")
        original = args[i + 1]
        del args[i:i + 2]
    folder, labels = args[0], args[1:]
    tensors = load_file(f"{folder}/model.safetensors")
    for name, t in tensors.items():
        print(f"{name}: {t.dtype} {tuple(t.shape)} {t.flatten()[:6].tolist()}")
    with safe_open(f"{folder}/model.safetensors", "pt") as f:
        print("metadata:", f.metadata())
    with open(f"{folder}/model.safetensors", "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        assert n % 8 == 0, f"header length {n} is not a multiple of 8"
        print("header:", json.loads(f.read(n)))

    cfg = AutoConfig.from_pretrained(folder)
    print(type(cfg).__name__, "architectures", cfg.architectures, "num_labels", cfg.num_labels)
    print("id2label", cfg.id2label, "label2id", cfg.label2id)
    assert type(cfg).__name__ == "BertConfig"
    if labels:
        assert cfg.num_labels == len(labels), (cfg.num_labels, labels)
        assert cfg.id2label == {i: l for i, l in enumerate(labels)}, cfg.id2label
        assert cfg.label2id == {l: i for i, l in enumerate(labels)}, cfg.label2id
    if original:
        import torch
        from transformers import AutoModel, AutoModelForSequenceClassification
        model, info = AutoModelForSequenceClassification.from_pretrained(folder, output_loading_info=True)
        print("loading info:", {k: v for k, v in info.items() if v})
        missing = [k for k in info["missing_keys"] if not k.startswith("classifier.")]
        assert not missing, missing
        base = AutoModel.from_pretrained(original)
        ours = model.bert.state_dict()
        n = 0
        for k, v in base.state_dict().items():
            if k in ours:
                assert torch.equal(ours[k], v), k
                n += 1
        print(f"{n} tensors equal to {original}")
    print("OK")


if __name__ == "__main__":
    main()
