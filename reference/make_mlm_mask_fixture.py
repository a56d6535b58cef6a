#!/usr/bin/env python3
"""Writes tests/fixtures/mlm/mask_cases.json: bertc's masking (src/train/mlm_mask.h) recomputed in
Python from its documentation alone, with reference/bertc_rng.py, so tests/test_mlm.c shows that
the documented rule and order of draws are exactly what the C code does.

The vocabulary is tests/test_mlm.c's: [PAD] [UNK] [CLS] [SEP] [MASK] (ids 0-4), words w0..w39 (5-44),
pieces ##p0..##p19 (45-64). Run from the repository root: python3 reference/make_mlm_mask_fixture.py
"""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bertc_rng import Rng  # noqa: E402

V, MASK, SPECIAL = 65, 4, {0, 1, 2, 3, 4}
F32 = np.float32


def uniform(r):
    return F32(r.next() >> 40) * F32(1.0 / 16777216.0)   # rng_uniform: 24 bits, exact in float32


def mask_batch(r, ids, attn, p, whole_word):
    """The rule of mlm_mask.h, draw by draw; returns (new ids, positions, labels)."""
    ids = [row[:] for row in ids]
    pos, lab = [], []
    p = F32(p)
    t_mask = F32(0.8)
    t_random = F32(0.8) + F32(0.1)                         # float32 sum, as the C code adds them
    for b, row in enumerate(ids):
        prev_maskable, selected = False, False
        for t, i in enumerate(row):
            maskable = attn[b][t] == 1 and 0 <= i < V and i not in SPECIAL
            if not maskable:
                prev_maskable = False
                continue
            starts_unit = (not whole_word) or i < 45 or not prev_maskable
            prev_maskable = True
            if starts_unit:
                selected = uniform(r) < p
            if not selected:
                continue
            pos.append(b * len(row) + t)
            lab.append(i)
            u = uniform(r)
            if u < t_mask:
                row[t] = MASK
            elif u < t_random:
                row[t] = r.below(V)
    return ids, pos, lab


def main():
    g = Rng(2024)
    B, T = 6, 24
    ids, attn = [], []
    for b in range(B):
        n = 10 + g.below(T - 10)
        row, m = [], []
        for t in range(T):
            if t == 0:
                i = 2
            elif t == n - 1:
                i = 3
            elif t >= n:
                i = 0
            elif t % 9 == 4:
                i = 1
            elif t > 1 and g.below(3) == 0:
                i = 45 + g.below(20)
            else:
                i = 5 + g.below(40)
            row.append(i)
            m.append(1 if t < n else 0)
        ids.append(row)
        attn.append(m)
    cases = []
    for seed, p, ww in [(42, 0.15, False), (7, 0.5, False), (42, 0.15, True), (99, 0.4, True)]:
        out, pos, lab = mask_batch(Rng(seed), ids, attn, p, ww)
        cases.append({"seed": seed, "probability": p, "whole_word": ww, "ids": out, "positions": pos,
                      "labels": lab})
    os.makedirs("tests/fixtures/mlm", exist_ok=True)
    with open("tests/fixtures/mlm/mask_cases.json", "w") as f:
        json.dump({"B": B, "T": T, "ids": ids, "attn": attn, "cases": cases}, f)
        f.write("\n")
    print({c["seed"]: len(c["positions"]) for c in cases})


if __name__ == "__main__":
    main()
