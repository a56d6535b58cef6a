#!/usr/bin/env python3
"""PyTorch + transformers training throughput on a GPU, for scripts/gpu-check.sh: full steps
(forward, backward, torch.optim.AdamW) of BertForSequenceClassification with random weights of
CONFIG_JSON's shape on random token ids, dropout on, the attention transformers picks by default
(SDPA). MODE: "amp-bf16" (torch.autocast bf16, fp32 master weights: what a user of the reference
script gets with AMP) or "fp32" (TF32 off). Timed with CUDA synchronisation after WARMUP steps.

Usage: bench_torch_gpu.py CONFIG_JSON MODE B T STEPS [WARMUP]"""
import sys
import time

import torch
from transformers import BertConfig, BertForSequenceClassification


def main():
    cfg_path, mode, B, T, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    warmup = int(sys.argv[6]) if len(sys.argv) > 6 else 5
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(3)
    cfg = BertConfig.from_json_file(cfg_path)
    cfg.num_labels = 2
    model = BertForSequenceClassification(cfg).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.0)
    ids = torch.randint(1000, cfg.vocab_size, (B, T), device="cuda")
    mask = torch.ones(B, T, dtype=torch.long, device="cuda")
    labels = torch.arange(B, device="cuda") % 2
    amp = mode == "amp-bf16"

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / steps
    print(f"torch {torch.__version__} {mode} B={B} T={T} on {torch.cuda.get_device_name()}: "
          f"{dt * 1e3:.2f} ms/step, {B / dt:.1f} examples/s (loss {loss.item():.4f})")


if __name__ == "__main__":
    main()
