#!/bin/sh
# Everything the GPU check carries to the device machine, under the device tool's 64 MiB:
#   .gpu-deps-gz/     the bundle of bundle-deps.sh with OpenBLAS xz-compressed (36 -> 4.2 MB;
#                     gpu-check.sh unpacks it)
#   models/minilm-bf16/  all-MiniLM-L6-v2 with its weights rounded to bf16 (87 -> 44 MB): CPU and
#                     GPU read the same file, so the parity checks are unaffected
#   gpu-data/         the 2,000 + 500 IMDB reviews of a bertc split (split.jsonl), as gzipped JSON
#                     Lines (the tarball does not travel)
# (all three git-ignored: the device tool sends them because its call names them in carry)
# Needs a built ./bertc, python3 with numpy and models/minilm (scripts/get-model.sh minilm). The
# reviews are those of the dropout-fix recipe's seed 42 (SPLIT=FILE for another split.jsonl); their
# split file is made in ~15 s by a 1-epoch run at 8 tokens (the choice of examples depends on the
# seed and the sizes alone), the one runs/experiment's seed-42 runs trained on.
# Then, with the device tool:
#   run(command="BERTC_MINILM=models/minilm-bf16 bash scripts/gpu-check.sh",
#       carry=[".gpu-deps-gz", "models/minilm-bf16", "gpu-data"], timeout_s=420)
set -eu
cd "$(dirname "$0")/../.."
SPLIT=${SPLIT:-runs/gpu-split-42.jsonl}
TARBALL=${TARBALL:-../shared/data/aclImdb_v1.tar.gz}
if [ ! -f "$SPLIT" ]; then
    work=$(mktemp -d /tmp/bertc-split.XXXXXX)
    ./bertc train --recipe recipes/imdb-dropout-fix.conf --model models/minilm --epochs 1 --max-length 8 \
        --no-eval-train --no-checkpoint --quiet --out "$work/run" --save-split "$SPLIT" > /dev/null
    rm -rf "$work"
fi
sh scripts/gpu/bundle-deps.sh
rm -rf .gpu-deps-gz
cp -a .gpu-deps .gpu-deps-gz
xz -9e .gpu-deps-gz/lib/libopenblas.so.0
mkdir -p models/minilm-bf16 gpu-data
python3 - "$SPLIT" "$TARBALL" <<'PY'
import gzip, json, struct, sys, tarfile
import numpy as np

# the model: F32 tensors rounded to BF16 (to nearest even, as bertc's to_bf16), others as they are
src, dst = "models/minilm/model.safetensors", "models/minilm-bf16/model.safetensors"
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
    data = f.read()
out, chunks, off = {}, [], 0
for name, t in hdr.items():
    if name == "__metadata__":
        continue
    a, b = t["data_offsets"]
    if t["dtype"] == "F32":
        x = np.frombuffer(data[a:b], dtype=np.uint32)
        buf, dt = ((x + 0x7FFF + ((x >> 16) & 1)) >> 16).astype(np.uint16).tobytes(), "BF16"
    else:
        buf, dt = data[a:b], t["dtype"]
    out[name] = {"dtype": dt, "shape": t["shape"], "data_offsets": [off, off + len(buf)]}
    chunks.append(buf)
    off += len(buf)
h = json.dumps(out).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(dst, "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for c in chunks:
        f.write(c)

# the data: the split's reviews in its order (train from aclImdb/train, val from aclImdb/test)
split = [json.loads(l) for l in open(sys.argv[1])]
where = lambda r: ("aclImdb/train/" if r["split"] == "train" else "aclImdb/test/") + r["id"]
want = {where(r) for r in split}
texts = {}
with tarfile.open(sys.argv[2]) as t:
    for m in t:
        if m.name in want:
            texts[m.name] = t.extractfile(m).read().decode("utf-8")
for sp, fn in (("train", "gpu-data/imdb-train.jsonl.gz"), ("val", "gpu-data/imdb-val.jsonl.gz")):
    with gzip.open(fn, "wt") as f:
        for r in split:
            if r["split"] == sp:
                f.write(json.dumps({"text": texts[where(r)], "label": r["label"]}) + "\n")
print("prepare-carry: %d reviews, model %s" % (len(texts), dst))
PY
# PREPARE_MLM=1: also what the MLM check (gpu-check's GPU_CHECK_MLM=1, issue #8) needs: the
# dropout-fix reviews of seeds 43 and 44 (each seed draws its own, as runs/experiment's runs did)
# and the first MLM_TEXTS (8,000) unlabelled reviews of aclImdb/train/unsup: ~7 MB more, which
# fits beside the rest (and the working tree, ~3 MB) under the device tool's 64 MiB
if [ -n "${PREPARE_MLM:-}" ]; then
    for seed in 43 44; do
        sp=runs/gpu-split-$seed.jsonl
        if [ ! -f "$sp" ]; then
            work=$(mktemp -d /tmp/bertc-split.XXXXXX)
            ./bertc train --recipe recipes/imdb-dropout-fix.conf --model models/minilm --epochs 1 --max-length 8 \
                --seed "$seed" --no-eval-train --no-checkpoint --quiet --out "$work/run" --save-split "$sp" > /dev/null
            rm -rf "$work"
        fi
    done
    python3 - "$TARBALL" "${MLM_TEXTS:-8000}" <<'PY'
import gzip, json, sys, tarfile
tarball, n_unsup = sys.argv[1], int(sys.argv[2])
splits = {s: [json.loads(l) for l in open("runs/gpu-split-%d.jsonl" % s)] for s in (43, 44)}
where = lambda r: ("aclImdb/train/" if r["split"] == "train" else "aclImdb/test/") + r["id"]
want = {where(r) for sp in splits.values() for r in sp}
texts, unsup = {}, []
with tarfile.open(tarball) as t:
    for m in t:
        if m.name in want:
            texts[m.name] = t.extractfile(m).read().decode("utf-8")
        elif m.name.startswith("aclImdb/train/unsup/") and m.isfile() and len(unsup) < n_unsup:
            unsup.append(t.extractfile(m).read().decode("utf-8"))
for seed, split in splits.items():
    for sp in ("train", "val"):
        with gzip.open("gpu-data/imdb-%s-%d.jsonl.gz" % (sp, seed), "wt") as f:
            for r in split:
                if r["split"] == sp:
                    f.write(json.dumps({"text": texts[where(r)], "label": r["label"]}) + "\n")
with gzip.open("gpu-data/imdb-unsup.jsonl.gz", "wt") as f:
    for x in unsup:
        f.write(json.dumps({"text": x}) + "\n")
print("prepare-carry: seeds 43 and 44's reviews, %d unlabelled reviews" % len(unsup))
PY
fi
cp models/minilm/config.json models/minilm/vocab.txt models/minilm-bf16/
[ -f models/minilm/tokenizer_config.json ] && cp models/minilm/tokenizer_config.json models/minilm-bf16/
du -shc .gpu-deps-gz models/minilm-bf16 gpu-data
# The device tool sends the working tree too (tracked files and untracked ones git does not
# ignore), 64 MiB in all: say how close this comes, and fail where it would not fit.
tree=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
du -sb .gpu-deps-gz models/minilm-bf16 gpu-data | awk -v tree="${tree:-0}" '{ s += $1 } END {
    t = (s + tree) / 1048576
    printf "carry %.1f MiB + working tree %.1f MiB = %.1f MiB (the device tool takes 64)\n", s / 1048576, tree / 1048576, t
    if (t >= 64) { print "prepare-carry: over 64 MiB: fewer unlabelled reviews (MLM_TEXTS=N) or no PREPARE_MLM" > "/dev/stderr"; exit 1 } }'
