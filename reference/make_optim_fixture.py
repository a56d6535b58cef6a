#!/usr/bin/env python3
"""Writes the optimiser and schedule fixtures that tests/test_optim.c and tests/test_schedule.c replay.

    python3 reference/make_optim_fixture.py        # from the repository root

tests/fixtures/optim/adamw.json: three parameter tensors in three groups
  W  (5x7)  weight_decay 0.1, lr_scale 1
  b  (7)    weight_decay 0,   lr_scale 1    (a bias: no decay)
  W2 (4x6)  weight_decay 0.1, lr_scale 0.5  (a layer-wise decayed group)
and runs of 5 torch.optim.AdamW steps (foreach=False, the single-tensor path, float32) with the
learning rate from transformers.get_scheduler. Each step records the learning rate of the
lr_scale-1 groups, the raw gradients, the norm torch.nn.utils.clip_grad_norm_ returned (runs
with max_norm > 0) and every parameter after the update. Numbers are written with 9 significant
digits, enough for a float32 to read back exactly.

tests/fixtures/optim/schedules.json: the learning rates transformers.get_scheduler gives for
constant, constant_with_warmup, linear and cosine, for a few (warmup, total) pairs including edge
cases, at every step k = 0 .. total+1 (the lr the update with index k uses).
"""
import json
import os

import torch
from transformers import get_scheduler

OUT = os.path.join("tests", "fixtures", "optim")


def f9(x):
    return float("%.9g" % float(x))


def flat(tensors):
    return [f9(x) for t in tensors for x in t.detach().reshape(-1).tolist()]


TENSORS = [("W", (5, 7), 0.1, 1.0), ("b", (7,), 0.0, 1.0), ("W2", (4, 6), 0.1, 0.5)]
RUNS = [
    # name, schedule, warmup, total, base_lr, max_norm, gradient scale per step
    ("linear_warmup", "linear", 2, 6, 0.05, 0.0, [1.0, 0.5, 2.0, 0.1, 1.0]),
    ("cosine_clip", "cosine", 1, 5, 0.02, 1.0, [0.4, 0.01, 0.2, 0.05, 0.6]),
]


def make_adamw():
    gen = torch.Generator().manual_seed(1234)
    init = [torch.randn(shape, generator=gen) for _, shape, _, _ in TENSORS]
    out = {
        "tensors": [{"name": n, "numel": int(torch.Size(s).numel()), "weight_decay": wd, "lr_scale": sc}
                    for n, s, wd, sc in TENSORS],
        "init": flat(init),
        "runs": [],
    }
    for name, sched, warmup, total, base_lr, max_norm, scales in RUNS:
        params = [torch.nn.Parameter(t.clone()) for t in init]
        groups = [{"params": [p], "weight_decay": wd, "lr": base_lr * sc}
                  for p, (_, _, wd, sc) in zip(params, TENSORS)]
        opt = torch.optim.AdamW(groups, lr=base_lr, betas=(0.9, 0.999), eps=1e-8, foreach=False)
        scheduler = get_scheduler(sched, opt, num_warmup_steps=warmup, num_training_steps=total)
        run = {"name": name, "schedule": sched, "warmup": warmup, "total": total, "base_lr": base_lr,
               "max_norm": max_norm, "steps": []}
        for scale in scales:
            grads = [torch.randn(p.shape, generator=gen) * scale for p in params]
            # Round-trip through the 9-digit text so torch steps on exactly what the test reads.
            for p, g in zip(params, grads):
                p.grad = torch.tensor([f9(x) for x in g.reshape(-1).tolist()], dtype=torch.float32).reshape(p.shape)
            step = {"lr": opt.param_groups[0]["lr"], "grad": flat([p.grad for p in params])}
            if max_norm > 0:
                step["norm"] = f9(torch.nn.utils.clip_grad_norm_(params, max_norm))
            opt.step()
            scheduler.step()
            step["params"] = flat(params)
            run["steps"].append(step)
        out["runs"].append(run)
    return out


SCHEDULE_CASES = [
    # name given to get_scheduler, warmup, total
    ("constant", 0, 10),
    ("constant_with_warmup", 37, 375),
    ("constant_with_warmup", 0, 5),
    ("linear", 37, 375),
    ("linear", 0, 10),
    ("linear", 10, 10),
    ("linear", 0, 1),
    ("linear", 1, 1),
    ("cosine", 37, 375),
    ("cosine", 0, 10),
    ("cosine", 10, 10),
    ("cosine", 0, 1),
    ("cosine", 3, 7),
]


def make_schedules():
    base_lr = 2e-5
    cases = []
    for name, warmup, total in SCHEDULE_CASES:
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
        kw = {"num_warmup_steps": warmup}
        if name not in ("constant", "constant_with_warmup"):
            kw["num_training_steps"] = total
        if name == "constant":
            kw = {}
        scheduler = get_scheduler(name, opt, **kw)
        lrs = []
        for _ in range(total + 2):  # two past the end: the clamp at 0
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
        cases.append({"name": name, "warmup": warmup, "total": total, "base_lr": base_lr, "lrs": lrs})
    return {"cases": cases}


def main():
    os.makedirs(OUT, exist_ok=True)
    for fname, data in (("adamw.json", make_adamw()), ("schedules.json", make_schedules())):
        path = os.path.join(OUT, fname)
        with open(path, "w") as f:
            json.dump(data, f, separators=(",", ":"))
            f.write("\n")
        print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
