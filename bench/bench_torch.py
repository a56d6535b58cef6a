#!/usr/bin/env python3
"""PyTorch's side of `bertc bench`: the same three measurements with transformers' own
BertForSequenceClassification (random init from the same shape), printed as the same JSON Lines.

  train_step    model.train(), forward with labels (dropout on), loss.backward(),
                clip_grad_norm_(1.0), AdamW step (weight decay 0.01 except biases and LayerNorm,
                as bertc); batch 16 x 128
  eval_forward  model.eval() under torch.inference_mode(); batch 32 x 128
  latency       the same with batch 1 x 128

Precisions: fp32, and bf16 = torch.autocast(DEVICE, dtype=torch.bfloat16) around the forward
(fp32 weights and optimiser, as autocast training is used: AMP bf16 on a GPU).

--device cuda runs the same on the GPU (for scripts/gpu-check.sh, against `bertc bench --device
cuda`): TF32 off in fp32 (bertc's `cuda` is plain fp32 too), every timed run ends with
torch.cuda.synchronize(), no OMP_WAIT_POLICY probe, and each row adds the device
("device": "cuda") and the GPU's peak allocated memory ("peak_device_mib").

Every (shape, precision) runs in a fresh worker process, so its peak RSS (getrusage) is its own;
rows come in the order latency, eval_forward, train_step, so the train_step row's RSS is the
peak of the whole configuration, as for bertc (bench/run.sh runs one measurement per process, so
there each row's RSS is its own).

PyTorch's best settings: torch.set_num_threads(N) with OMP_NUM_THREADS=MKL_NUM_THREADS=N; the
default attention (SDPA in transformers 5); AdamW fused=True where torch has it (else foreach).
OMP_WAIT_POLICY: with --wait-policy auto (default) a short probe (--probe-reps runs of the one
measurement --only names, or of training steps, each after one warm-up) runs with
OMP_WAIT_POLICY=PASSIVE and with the default (unset), in the order PASSIVE, default, default,
PASSIVE with half the runs each time, and the faster is kept; each row says which
("omp_wait_policy"), the probe's figures (per policy the mean of its two medians:
"wait_policy_probe_s") and what it timed
("wait_policy_probe_of"). bench/run.sh runs one measurement per process, each with its own
probe. torch.compile is off unless --compile (see docs/PERFORMANCE.md). Huge pages: as torch
runs by default (its switch THP_MEM_ALLOC_ENABLE=1 left unset: with it, the same times and more
peak RSS, docs/PERFORMANCE.md "Huge pages"); each row says which ("huge_pages").

The model FLOP count is bertc's (docs/PERFORMANCE.md, "Benchmark"):
  forward = 2*B*T*L*(4*C*C + 2*C*F) + 4*B*T*T*C*L + 2*B*(C*C + C*K);  training step = 3 * forward

usage: python bench/bench_torch.py (--shape bert-base|minilm | --config FILE) [--precision fp32|bf16]
           [--device cpu|cuda] [--threads N] [--reps N] [--warmup N] [--only latency,eval,step] [--wait-policy auto|passive|default]
"""
import argparse
import json
import os
import subprocess
import sys

SHAPES = {
    # bert-base-uncased's and all-MiniLM-L6-v2's config.json (the numbers bertc bench builds in)
    "bert-base": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                      intermediate_size=3072),
    "minilm": dict(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                   intermediate_size=1536),
}
COMMON = dict(max_position_embeddings=512, type_vocab_size=2, pad_token_id=0, hidden_act="gelu",
              hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12,
              initializer_range=0.02, num_labels=2)


def model_flop(C, F, L, K, B, T, train):
    fwd = 2.0 * B * T * L * (4 * C * C + 2 * C * F) + 4.0 * B * T * T * C * L + 2.0 * B * (C * C + C * K)
    return 3 * fwd if train else fwd


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--shape", choices=sorted(SHAPES))
    g.add_argument("--config", help="a config.json (random weights)")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=0, help="0 = all cores")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--only", default="latency,eval,step")
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--train-batch", type=int, default=16)
    p.add_argument("--eval-batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--attn", default=None, help="attn_implementation (default: transformers' default)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (slow to start)")
    p.add_argument("--wait-policy", choices=["auto", "passive", "default"], default="auto")
    p.add_argument("--probe-reps", type=int, default=None,
                   help="runs per policy in the probe (default 2; 10 for latency, whose runs are short and noisy)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--probe-info", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.probe_reps is None:
        a.probe_reps = 10 if a.only == "latency" else 2
    if a.reps < 1 or a.warmup < 0 or a.threads < 0 or a.probe_reps < 1:
        p.error("--reps and --probe-reps must be at least 1, --warmup and --threads not negative")
    bad = set(a.only.split(",")) - {"latency", "eval", "step"}
    if bad:
        p.error(f"--only: unknown {', '.join(sorted(bad))} (latency, eval, step)")
    return a


# ------------------------------------------------------------------------------ worker

def worker(a):
    import resource
    import statistics
    import time

    import torch
    import transformers
    from transformers import BertConfig, BertForSequenceClassification

    threads = a.threads or os.cpu_count()
    torch.set_num_threads(threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    on_gpu = dev.type == "cuda"
    if on_gpu:
        if not torch.cuda.is_available():
            sys.exit("bench_torch.py: --device cuda: torch sees no CUDA device")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def sync():
        if on_gpu:
            torch.cuda.synchronize()
    if a.shape:
        cfg = BertConfig(**SHAPES[a.shape], **COMMON)
        shape = a.shape
    else:
        cfg = BertConfig.from_json_file(a.config)  # its labels, as bertc bench --config
        shape = a.config
    if a.attn:
        cfg._attn_implementation = a.attn
    model = BertForSequenceClassification(cfg).to(dev)
    attn = getattr(model.config, "_attn_implementation", None)
    if a.compile:
        model = torch.compile(model)
    C, F, L, K = cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers, cfg.num_labels
    T, Bt, Be = a.seq, a.train_batch, a.eval_batch
    Bmax = max(Bt, Be)
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(1, cfg.vocab_size, (Bmax, T), generator=g).to(dev)
    mask = torch.ones(Bmax, T, dtype=torch.long).to(dev)
    types = torch.zeros(Bmax, T, dtype=torch.long).to(dev)
    labels = torch.randint(0, K, (Bmax,), generator=g).to(dev)
    bf16 = a.precision == "bf16"

    def autocast():
        return torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16)

    info = json.loads(a.probe_info) if a.probe_info else {}
    base = {"tool": "pytorch", "device": a.device, "shape": shape, "seq": T, "threads": torch.get_num_threads(), "precision": a.precision,
            "warmup": a.warmup, "reps": a.reps}
    extra = {"layers": L, "hidden": C, "heads": cfg.num_attention_heads, "intermediate": F,
             "vocab": cfg.vocab_size, "num_labels": K, "torch_version": torch.__version__,
             "transformers_version": transformers.__version__, "attn_implementation": attn,
             "compile": a.compile, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"),
             "huge_pages": os.environ.get("THP_MEM_ALLOC_ENABLE") == "1"}
    extra.update(info)

    def emit(what, batch, times, flop, more=None):
        med, mn = statistics.median(times), min(times)
        row = dict(base, what=what, batch=batch, seconds_median=med, seconds_min=mn, examples_per_s=batch / med,
                   gflop=flop * 1e-9, gflop_per_s=flop * 1e-9 / med, gflop_per_s_best=flop * 1e-9 / mn,
                   peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
        row.update(extra)
        if on_gpu:
            row["peak_device_mib"] = torch.cuda.max_memory_allocated() / 2**20
            row["device_name"] = torch.cuda.get_device_name()
        if more:
            row.update(more)
        print(json.dumps(row), flush=True)

    def timed(fn, n_warm, n):
        for _ in range(n_warm):
            fn()
        sync()
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
        return out

    only = a.only.split(",")
    if "latency" in only or "eval" in only:
        model.eval()

        def fwd(B):
            with torch.inference_mode(), autocast():
                return model(input_ids=ids[:B], attention_mask=mask[:B], token_type_ids=types[:B]).logits

        if "latency" in only:
            emit("latency", 1, timed(lambda: fwd(1), a.warmup, a.reps), model_flop(C, F, L, K, 1, T, False))
        if "eval" in only:
            emit("eval_forward", Be, timed(lambda: fwd(Be), a.warmup, a.reps), model_flop(C, F, L, K, Be, T, False))
    if "step" in only:
        model.train()
        decay = [p for n, p in model.named_parameters() if not ("bias" in n or "LayerNorm" in n)]
        no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm" in n]
        groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
        try:
            opt = torch.optim.AdamW(groups, lr=2e-5, fused=True)
            opt_kind = "AdamW fused"
        except (RuntimeError, TypeError, ValueError):
            opt = torch.optim.AdamW(groups, lr=2e-5, foreach=True)
            opt_kind = "AdamW foreach"

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast():
                loss = model(input_ids=ids[:Bt], attention_mask=mask[:Bt], token_type_ids=types[:Bt],
                             labels=labels[:Bt]).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            return loss

        times = timed(step, a.warmup, a.reps)
        emit("train_step", Bt, times, model_flop(C, F, L, K, Bt, T, True), {"optimizer": opt_kind})


# ------------------------------------------------------------------------------ driver

def run_worker(a, argv, policy, only=None, reps=None, probe_info=None):
    """Runs this script as a worker with OMP_WAIT_POLICY=policy (None: unset); returns its JSON rows."""
    env = dict(os.environ)
    env.pop("OMP_WAIT_POLICY", None)
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    n = str(a.threads or os.cpu_count())
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = n
    args = [sys.executable, os.path.abspath(__file__), "--worker"] + argv
    if only:
        args += ["--only", only]
    if reps:
        args += ["--reps", str(reps), "--warmup", "1"]
    if probe_info:
        args += ["--probe-info", json.dumps(probe_info)]
    r = subprocess.run(args, env=env, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_torch.py: the worker failed (exit {r.returncode}, OMP_WAIT_POLICY={policy or 'default'})")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def main(argv):
    a = parse_args(argv)
    if a.worker:
        worker(a)
        return
    policy = {"passive": "PASSIVE", "default": None}.get(a.wait_policy)
    info = {}
    if a.wait_policy == "auto" and a.device == "cpu":
        # the measurement asked for when there is one (a policy that suits the training step can
        # slow one example down), else the training step
        what = a.only if "," not in a.only else "step"
        # in the order PASSIVE, default, default, PASSIVE, half the runs each time: a machine
        # that drifts during the probe slows both alike (a PASSIVE-then-default probe let the
        # drift choose); each policy's figure is the mean of its two medians
        times = {"PASSIVE": [], "default": []}
        for name, pol in (("PASSIVE", "PASSIVE"), ("default", None), ("default", None), ("PASSIVE", "PASSIVE")):
            rows = run_worker(a, argv, pol, only=what, reps=max(1, a.probe_reps // 2))
            times[name].append(rows[0]["seconds_median"])
            print(f"bench_torch.py: probe OMP_WAIT_POLICY={name}: {what} {times[name][-1]:.3f} s",
                  file=sys.stderr)
        probe = {k: sum(v) / len(v) for k, v in times.items()}
        best = min(probe, key=probe.get)
        policy = "PASSIVE" if best == "PASSIVE" else None
        info = {"wait_policy_probe_s": probe, "wait_policy_probe_of": what}
    for row in run_worker(a, argv, policy, probe_info=info):
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
