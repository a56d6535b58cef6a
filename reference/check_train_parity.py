#!/usr/bin/env python3
"""Is bertc's training loop the reference's? A short fine-tuning run with every dropout off, trained
by `bertc train` and by reference/finetune_hf.py --bertc-draws (bertc's initial classifier and
example order), so that nothing random differs: the per-update losses must agree.

    python3 reference/check_train_parity.py [--model models/minilm] [--train-size 64] [--epochs 2]

Prints each update's loss from both tools and the largest difference; exits 1 when it is over
--tolerance. With --dropout, the recipe's dropout stays on and the reference replays bertc's masks
(reference/bertc_dropout.py): the losses must agree all the same.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="models/minilm")
    p.add_argument("--data", default="../shared/data/aclImdb_v1.tar.gz")
    p.add_argument("--recipe", default="recipes/imdb-dropout-fix.conf")
    p.add_argument("--train-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--dropout", action="store_true",
                   help="keep the recipe's dropout, the reference replaying bertc's masks (--bertc-dropout)")
    a = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="bertc-parity-")
    common = ["--recipe", a.recipe, "--model", a.model, "--train", f"{a.data}:aclImdb/train",
              "--val", f"{a.data}:aclImdb/test", "--epochs", str(a.epochs), "--seed", str(a.seed),
              "--threads", str(a.threads)]
    if not a.dropout:
        common += ["--hidden-dropout", "0", "--attention-dropout", "0", "--classifier-dropout", "0"]
    split = os.path.join(tmp, "split.jsonl")
    subprocess.run(["./bertc", "train", *common, "--train-size", str(a.train_size), "--val-size", "32",
                    "--out", os.path.join(tmp, "bertc"), "--save-split", split, "--quiet"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    hf_log = os.path.join(tmp, "hf-steps.jsonl")
    subprocess.run([sys.executable, "reference/finetune_hf.py", *common, "--split", split, "--bertc-draws",
                    *(["--bertc-dropout"] if a.dropout else []), "--step-log", hf_log], cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(tmp, "bertc", "metrics.jsonl")) as f:
        ours = [json.loads(line) for line in f]
    ours = [x["loss"] for x in ours if x.get("type") == "step"]
    with open(hf_log) as f:
        theirs = [json.loads(line)["loss"] for line in f]
    if len(ours) != len(theirs) or not ours:
        sys.exit(f"update counts differ: bertc {len(ours)}, reference {len(theirs)}")
    worst = 0.0
    print("update  bertc loss  reference loss  difference")
    for i, (x, y) in enumerate(zip(ours, theirs), 1):
        worst = max(worst, abs(x - y))
        print(f"{i:6d}  {x:10.6f}  {y:14.6f}  {x - y:+.2e}")
    print(f"largest difference {worst:.2e} over {len(ours)} updates (tolerance {a.tolerance:g}); files in {tmp}")
    sys.exit(0 if worst <= a.tolerance else 1)


if __name__ == "__main__":
    main()
