#!/usr/bin/env python3
"""The PyTorch + transformers reference for bertc train: the IMDB overfitting fix as a user would
write it with Hugging Face, adapted only where this machine forces it (the model from a local
folder, IMDB from the local archive) and made to train on exactly bertc's examples.

    python3 reference/finetune_hf.py --recipe recipes/imdb-dropout-fix.conf --model models/minilm \
        --split runs/dropout-fix/split.jsonl --summary /tmp/hf-summary.json

It reads the same recipe files as `bertc train` (the same keys), picks the same examples (the split
file bertc wrote, or bertc's seeded subset through reference/bertc_data.py), and prints the same four
figures: training accuracy and loss (eval mode over the training set, best weights), validation
accuracy and loss. Never needed to build or test bertc.

--bertc-draws replaces torch's two other random draws with bertc's (the initial classifier, and the
order of the examples in each epoch, both from bertc_rng seeded with the seed), so that a comparison
differs only by the dropout masks; reference/check_train_parity.py uses it with dropout off.
--bertc-dropout (with --bertc-draws) replaces the masks too, by bertc's own (reference/bertc_dropout.py):
then the two runs differ by float rounding alone (check_train_parity.py --dropout).
"""
import argparse
import copy
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bertc_data  # noqa: E402
from bertc_rng import Rng  # noqa: E402

RECIPE_KEYS = {
    "model": str, "train": str, "val": str, "train-size": int, "val-size": int, "max-length": int,
    "hidden-dropout": float, "attention-dropout": float, "classifier-dropout": float, "lr": float,
    "batch-size": int, "epochs": int, "scheduler": str, "warmup-steps": int, "warmup-ratio": float,
    "weight-decay": float, "patience": int, "seed": int, "max-grad-norm": float, "label-smoothing": float,
    "eval-batch-size": int, "adam-beta1": float, "adam-beta2": float, "adam-eps": float,
    # regularisation (docs/SWEEP.md); a flag line without a value means on
    "layer-lr-decay": float, "freeze-embeddings": lambda v: v in ("", "1", "true"), "freeze-layers": int,
    "rdrop": float, "truncation": str,
    # bertc-only settings the reference accepts and ignores (bertc sweep's best.conf may hold them)
    "deterministic": lambda v: True, "pad": str, "grad-accum": int,
    "precision": str,  # bertc's --precision bf16; the reference always runs fp32 (it says so)
}


def read_recipe(path):
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            key, _, val = line.replace("=", " ", 1).partition(" ")
            key, val = key.strip().lstrip("-"), val.strip()
            if key not in RECIPE_KEYS:
                sys.exit(f"{path}: line {n}: setting '{key}' is not supported by the reference script")
            out[key] = RECIPE_KEYS[key](val)
    return out


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe")
    p.add_argument("--split", help="split.jsonl written by bertc train (exactly its examples, in its order)")
    p.add_argument("--summary", help="write the summary JSON here")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--step-log", help="write each update's training loss here (JSON Lines: step, loss, lr)")
    p.add_argument("--bertc-draws", action="store_true",
                   help="take the two random draws bertc makes from the seed instead of torch's: the initial "
                        "classifier (and pooler, if the checkpoint lacks one) and the order of the examples in "
                        "each epoch; dropout masks stay torch's (a diagnostic, not the reference as written)")
    p.add_argument("--bertc-dropout", action="store_true",
                   help="with --bertc-draws: bertc's dropout masks too (reference/bertc_dropout.py), so that the runs "
                        "differ by float rounding alone (a diagnostic)")
    for key, typ in RECIPE_KEYS.items():
        if key == "freeze-embeddings":
            p.add_argument("--" + key, action="store_const", const=True)
        else:
            p.add_argument("--" + key, type=typ)
    a = p.parse_args()
    settings = {"train-size": 0, "val-size": 0, "max-length": 128, "lr": 2e-5, "batch-size": 16, "epochs": 3,
                "scheduler": "linear", "warmup-steps": 0, "warmup-ratio": -1.0, "weight-decay": 0.0, "patience": 0,
                "seed": 42, "max-grad-norm": 0.0, "label-smoothing": 0.0, "eval-batch-size": 32,
                "adam-beta1": 0.9, "adam-beta2": 0.999, "adam-eps": 1e-8,
                "layer-lr-decay": 1.0, "freeze-embeddings": False, "freeze-layers": 0, "rdrop": 0.0, "truncation": "head",
                "grad-accum": 1}
    if a.recipe:
        settings.update(read_recipe(a.recipe))
    for key in RECIPE_KEYS:
        v = getattr(a, key.replace("-", "_"))
        if v is not None:
            settings[key] = v
    for need in ("model", "train"):
        if need not in settings:
            p.error(f"--{need} is required")
    return a, settings


def bertc_init_heads(model, model_dir, seed):
    """The heads as bertc initialises them (src/model/bert.c, init_tensor): one Rng(seed), the tensors that
    the checkpoint lacks in bertc's table order (pooler, then classifier), weights normal(0, initializer_range)
    drawn row-major, biases zero."""
    import numpy as np
    import torch
    from safetensors import safe_open

    with safe_open(os.path.join(model_dir, "model.safetensors"), "np") as f:
        have = {k.removeprefix("bert."): f.get_slice(k).get_shape() for k in f.keys()}
    r, std = Rng(seed), model.config.initializer_range
    heads = [("pooler.dense", model.bert.pooler.dense), ("classifier", model.classifier)]
    for name, lin in heads:
        if name == "pooler.dense" and name + ".weight" in have:
            continue
        if name == "classifier" and have.get("classifier.weight") == list(lin.weight.shape):
            continue
        w = np.array([r.normal() for _ in range(lin.weight.numel())], dtype=np.float32) * np.float32(std)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.reshape(tuple(lin.weight.shape))))
            lin.bias.zero_()


def load_data(s, split):
    train = bertc_data.read(s["train"])
    val = bertc_data.read(s["val"], label_names=train.labels) if s.get("val") else None
    if split:
        train = bertc_data.apply_split(train, split, "train")
        val = bertc_data.apply_split(val, split, "val") if val else None
    else:
        train = bertc_data.select(train, s["train-size"], s["seed"])
        val = bertc_data.select(val, s["val-size"], s["seed"] + 1) if val else None
    return train, val


def main():
    a, s = parse_args()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_scheduler

    if a.threads:
        torch.set_num_threads(a.threads)
    if s.get("precision", "fp32") != "fp32":
        print(f"note: the recipe asks bertc for --precision {s['precision']}; the reference runs fp32", file=sys.stderr)
    torch.manual_seed(s["seed"])
    train, val = load_data(s, a.split)
    tok = AutoTokenizer.from_pretrained(s["model"])

    if s["grad-accum"] != 1:
        sys.exit("grad-accum is not supported by the reference script")

    def truncate(ids, budget):
        """bertc's --truncation (src/train/encoded.h): head, tail, head+tail[:H] (H = budget // 4 by default)."""
        rule = s["truncation"]
        if len(ids) <= budget or rule == "head":
            return ids[:budget]
        if rule == "tail":
            return ids[len(ids) - budget:]
        if rule == "head+tail":
            head = budget // 4
        elif rule.startswith("head+tail:"):
            head = min(int(rule[10:]), budget)
        else:
            sys.exit(f"unknown truncation '{rule}'")
        return ids[:head] + ids[len(ids) - (budget - head):]

    def encode(ds):
        texts = [e.text for e in ds.examples]
        if s["truncation"] == "head":
            enc = tok(texts, truncation=True, max_length=s["max-length"], padding="max_length", return_tensors="pt")
            return enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], torch.tensor([e.label for e in ds.examples])
        T = s["max-length"]
        rows = [[tok.cls_token_id] + truncate(ids, T - 2) + [tok.sep_token_id]
                for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        ids = torch.tensor([r + [tok.pad_token_id] * (T - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
        return ids, mask, torch.zeros_like(ids), torch.tensor([e.label for e in ds.examples])

    tr, va = encode(train), (encode(val) if val else None)
    labels = train.labels
    kw = {"num_labels": len(labels), "id2label": dict(enumerate(labels)), "label2id": {l: i for i, l in enumerate(labels)},
          "attn_implementation": "eager"}
    for key, field in (("hidden-dropout", "hidden_dropout_prob"), ("attention-dropout", "attention_probs_dropout_prob"),
                       ("classifier-dropout", "classifier_dropout")):
        if key in s:
            kw[field] = s[key]
    model = AutoModelForSequenceClassification.from_pretrained(s["model"], **kw)
    if a.bertc_draws:
        bertc_init_heads(model, s["model"], s["seed"])
    replay = None
    if a.bertc_dropout:
        if not a.bertc_draws or s["rdrop"] > 0:
            sys.exit("--bertc-dropout needs --bertc-draws and no R-Drop")
        import bertc_dropout
        c = model.config
        p_cls = c.classifier_dropout if c.classifier_dropout is not None else c.hidden_dropout_prob
        replay = bertc_dropout.install(model, c.hidden_dropout_prob, c.attention_probs_dropout_prob, p_cls, s["seed"])

    # Layer-wise lr decay and freezing as bertc does them (src/train/regularise.h): depth 0 for the pooler and
    # classifier, L - i for encoder layer i, L + 1 for the embeddings; lr * decay^depth. Frozen tensors get no
    # gradient and no optimiser group.
    L = model.config.num_hidden_layers

    def depth(name):
        if name.startswith("bert.embeddings."):
            return L + 1
        if name.startswith("bert.encoder.layer."):
            return L - int(name.split(".")[3])
        return 0

    def frozen(name):
        d = depth(name)
        return (d == L + 1 and s["freeze-embeddings"]) or (0 < d <= L and L - d < s["freeze-layers"])

    groups = []
    for n, p in model.named_parameters():
        if frozen(n):
            p.requires_grad_(False)
            continue
        wd = 0.0 if n.endswith(".bias") or "LayerNorm" in n else s["weight-decay"]
        groups.append({"params": [p], "weight_decay": wd, "lr": s["lr"] * s["layer-lr-decay"] ** depth(n)})
    opt = torch.optim.AdamW(groups, lr=s["lr"], betas=(s["adam-beta1"], s["adam-beta2"]), eps=s["adam-eps"])
    B, n = s["batch-size"], len(train)
    steps_per_epoch = math.ceil(n / B)
    total = steps_per_epoch * s["epochs"]
    warmup = math.ceil(total * s["warmup-ratio"]) if s["warmup-ratio"] >= 0 else s["warmup-steps"]
    name = "constant_with_warmup" if s["scheduler"] == "constant" and warmup > 0 else s["scheduler"]
    sched = get_scheduler(name, opt, num_warmup_steps=warmup, num_training_steps=total)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=s["label-smoothing"])

    def evaluate(data):
        model.eval()
        ids, mask, types, y = data
        correct, loss_sum = 0, 0.0
        with torch.no_grad():
            for i in range(0, len(y), s["eval-batch-size"]):
                sl = slice(i, i + s["eval-batch-size"])
                logits = model(input_ids=ids[sl], attention_mask=mask[sl], token_type_ids=types[sl]).logits
                loss_sum += torch.nn.functional.cross_entropy(logits, y[sl], reduction="sum").item()
                correct += (logits.argmax(-1) == y[sl]).sum().item()
        return correct / len(y), loss_sum / len(y)

    gen = torch.Generator().manual_seed(s["seed"])
    # bertc's order (src/train/trainer.c): 0..n-1, then each epoch a Fisher-Yates shuffle of the previous order
    draws, bertc_order = Rng(s["seed"]), list(range(n))
    best_acc, best_state, best_epoch, bad, epochs_run, stopped = -1.0, None, 0, 0, 0, False
    t0 = time.time()
    train_time = 0.0
    step, step_log = 0, open(a.step_log, "w") if a.step_log else None
    for epoch in range(1, s["epochs"] + 1):
        te = time.time()
        model.train()
        if a.bertc_draws:
            draws.shuffle(bertc_order)
            order = torch.tensor(bertc_order)
        else:
            order = torch.randperm(n, generator=gen)
        run_loss = 0.0
        for i in range(0, n, B):
            idx = order[i:i + B]
            if s["rdrop"] > 0:
                # R-Drop: the batch twice (other dropout masks); mean CE of both + alpha * mean symmetric KL
                idx2 = torch.cat([idx, idx])
                both = model(input_ids=tr[0][idx2], attention_mask=tr[1][idx2], token_type_ids=tr[2][idx2]).logits
                loss = loss_fn(both, tr[3][idx2])
                lp1, lp2 = torch.log_softmax(both[:len(idx)], -1), torch.log_softmax(both[len(idx):], -1)
                kl = 0.5 * ((lp1.exp() * (lp1 - lp2)).sum(-1) + (lp2.exp() * (lp2 - lp1)).sum(-1))
                loss = loss + s["rdrop"] * kl.mean()
                logits = both[:len(idx)]
            else:
                if replay:
                    replay.next_micro_batch()
                logits = model(input_ids=tr[0][idx], attention_mask=tr[1][idx], token_type_ids=tr[2][idx]).logits
                loss = loss_fn(logits, tr[3][idx])
            opt.zero_grad()
            loss.backward()
            if s["max-grad-norm"] > 0:
                torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], s["max-grad-norm"])
            if step_log:
                step_log.write(json.dumps({"step": step + 1, "loss": loss.item(), "lr": sched.get_last_lr()[0]}) + "\n")
            step += 1
            opt.step()
            sched.step()
            run_loss += loss.item() * len(idx)
        train_time += time.time() - te
        epochs_run = epoch
        if va is None:
            print(f"epoch {epoch}/{s['epochs']}: train loss {run_loss / n:.4f}", file=sys.stderr)
            continue
        vacc, vloss = evaluate(va)
        improved = vacc > best_acc
        print(f"epoch {epoch}/{s['epochs']}: train loss {run_loss / n:.4f}, val loss {vloss:.4f}, "
              f"val accuracy {vacc:.4f}{' (best)' if improved else ''}", file=sys.stderr)
        if improved:
            best_acc, best_epoch, bad = vacc, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad += 1
            if s["patience"] > 0 and bad >= s["patience"]:
                stopped = True
                break
    if step_log:
        step_log.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    tacc, tloss = evaluate(tr)
    vacc, vloss = evaluate(va) if va else (0.0, 0.0)
    wall = time.time() - t0
    print(f"train accuracy {tacc:.4f}  train loss {tloss:.4f}")
    if va:
        print(f"val   accuracy {vacc:.4f}  val   loss {vloss:.4f}")
        print(f"best epoch {best_epoch} of {epochs_run} run{' (stopped early)' if stopped else ''}, "
              f"train-val accuracy gap {tacc - vacc:.4f}")
    summary = {"tool": "pytorch+transformers", "torch_version": torch.__version__, "model": s["model"],
               "train": {"accuracy": tacc, "loss": tloss, "n": n},
               "val": {"accuracy": vacc, "loss": vloss, "n": len(val) if val else 0},
               "gap": tacc - vacc, "best_epoch": best_epoch, "epochs_run": epochs_run, "stopped_early": stopped,
               "train_seconds": train_time, "wall_seconds": wall,
               "examples_per_s": n * epochs_run / train_time if train_time > 0 else 0,
               "threads": torch.get_num_threads(), "hyperparameters": s}
    if a.summary:
        with open(a.summary, "w") as f:
            json.dump(summary, f, indent=2)
            f.write("\n")


if __name__ == "__main__":
    main()
