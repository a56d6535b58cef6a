#!/usr/bin/env python3
"""The PyTorch + transformers reference for `bertc pretrain --mlm`: the same continued MLM
pretraining as a user would write it with Hugging Face (BertForMaskedLM,
DataCollatorForLanguageModeling, AdamW, a linear schedule with warm-up), on the same texts in the
same order, for side-by-side loss curves and speed.

    python3 reference/pretrain_hf.py --model models/minilm \
        --data ../shared/data/aclImdb_v1.tar.gz:aclImdb/train/unsup --max-examples 2000 \
        --steps 50 --batch-size 32 --threads 2 --metrics /tmp/hf-mlm.jsonl [--out DIR]

Same as bertc: the texts (a folder of files, on disk or ARCHIVE.tar.gz:FOLDER, sorted by file name;
or a .jsonl file with a "text" field), the seeded subset (bertc_data.select), the batch order (each
epoch a Fisher-Yates shuffle of the previous order with bertc_rng seeded with the seed), the
tokenization ([CLS] text [SEP] truncated to --max-length, batches padded to their longest text),
the hyperparameters and their defaults, the loss (mean over the masked positions). Different: the
masks and dropout come from torch's generator, so the two runs agree statistically, not bit for bit.
Prints the mean loss of the first and last 10 updates and tokens/s (real tokens over training time).
"""
import argparse
import json
import math
import os
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bertc_data  # noqa: E402
from bertc_rng import Rng  # noqa: E402


def read_texts(spec):
    if spec.endswith(".jsonl"):
        with open(spec, encoding="utf-8") as f:
            return [json.loads(line)["text"] for line in f if line.strip()]
    if os.path.isdir(spec):
        names = sorted(n for n in os.listdir(spec) if not n.startswith(".") and os.path.isfile(os.path.join(spec, n)))
        return [open(os.path.join(spec, n), "rb").read().replace(b"\0", b"").decode("utf-8", "replace") for n in names]
    archive, folder = spec.split(":", 1)
    folder = folder.strip("/")
    found = {}
    with tarfile.open(archive, "r|*") as tar:
        for m in tar:
            name = m.name[2:] if m.name.startswith("./") else m.name
            if not name.startswith(folder + "/") or not m.isfile():
                continue
            rest = name[len(folder) + 1:]
            if "/" in rest or rest.startswith("."):
                continue
            found[rest] = tar.extractfile(m).read().replace(b"\0", b"").decode("utf-8", "replace")
    return [found[k] for k in sorted(found, key=lambda s: s.encode())]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--max-examples", type=int, default=0)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup-ratio", type=float, default=0.06)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--max-grad-norm", type=float, default=1.0)
    ap.add_argument("--mlm-probability", type=float, default=0.15)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--metrics", help="write one JSON line per update here")
    ap.add_argument("--out", help="save_pretrained here at the end")
    args = ap.parse_args()

    import torch
    from transformers import (BertForMaskedLM, BertTokenizerFast, DataCollatorForLanguageModeling,
                              get_linear_schedule_with_warmup)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    texts = read_texts(args.data)
    ds = bertc_data.Dataset([bertc_data.Example(str(i), t.encode()) for i, t in enumerate(texts)], [])
    texts = [e.raw.decode() for e in bertc_data.select(ds, args.max_examples, args.seed).examples]
    tok = BertTokenizerFast.from_pretrained(args.model)
    enc = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]
    model = BertForMaskedLM.from_pretrained(args.model, attn_implementation="eager")
    model.train()
    collator = DataCollatorForLanguageModeling(tok, mlm=True, mlm_probability=args.mlm_probability)

    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm.weight" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm.weight" in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    sched = get_linear_schedule_with_warmup(opt, math.ceil(args.warmup_ratio * args.steps), args.steps)

    order = list(range(len(enc)))
    rng = Rng(args.seed)
    per_epoch = (len(enc) + args.batch_size - 1) // args.batch_size
    mf = open(args.metrics, "w") if args.metrics else None
    losses, tokens, t0 = [], 0, time.perf_counter()
    for step in range(args.steps):
        bi = step % per_epoch
        if bi == 0:
            rng.shuffle(order)
        rows = order[bi * args.batch_size:(bi + 1) * args.batch_size]
        batch = collator([{"input_ids": enc[i]} for i in rows])
        tokens += int(batch["attention_mask"].sum())
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm if args.max_grad_norm > 0 else 1e30)
        lr = sched.get_last_lr()[0]
        opt.step()
        sched.step()
        losses.append(loss.item())
        if mf:
            mf.write(json.dumps({"type": "step", "step": step + 1, "loss": round(losses[-1], 6), "lr": lr,
                                 "grad_norm": round(float(gnorm), 6),
                                 "tokens_per_s": round(tokens / (time.perf_counter() - t0), 1)}) + "\n")
    dt = time.perf_counter() - t0
    w = max(1, min(10, len(losses) // 2))
    print(f"mlm loss {sum(losses[:w]) / w:.4f} (mean of the first {w} updates) -> {sum(losses[-w:]) / w:.4f} "
          f"(of the last {w})")
    print(f"{args.steps} updates, {tokens} tokens in {dt:.1f} s: {tokens / dt:.0f} tokens/s")
    if args.out:
        model.save_pretrained(args.out)
        tok.save_pretrained(args.out)


if __name__ == "__main__":
    main()
