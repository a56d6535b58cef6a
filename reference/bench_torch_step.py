#!/usr/bin/env python3
"""PyTorch's time for the step that `build/tools/check_logits bench` times: one forward+backward of
BertForSequenceClassification (training mode, dropout on, eager attention, fp32) on a batch of
random ids, after one warm-up step. Threads: torch.set_num_threads(THREADS).

Usage: bench_torch_step.py CONFIG_JSON B T STEPS [THREADS]"""
import sys
import time

import torch
from transformers import BertConfig, BertForSequenceClassification


def main():
    cfg_path, B, T, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 2)
    cfg = BertConfig.from_json_file(cfg_path)
    cfg.num_labels = 2
    cfg._attn_implementation = "eager"
    model = BertForSequenceClassification(cfg)
    model.train()
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, cfg.vocab_size, (B, T), generator=g)
    mask = torch.ones(B, T, dtype=torch.long)
    labels = torch.arange(B) % 2
    total = 0.0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        model.zero_grad()
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        dt = time.perf_counter() - t0
        if s > 0:
            total += dt
        print(f"step {s} loss {loss.item():.4f} {dt * 1e3:.0f} ms", file=sys.stderr)
    print(f"torch B={B} T={T} threads={torch.get_num_threads()}: {total / steps * 1e3:.1f} ms/step over {steps} steps")


if __name__ == "__main__":
    main()
