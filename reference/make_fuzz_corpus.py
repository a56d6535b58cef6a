#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora, fuzz/corpus/TARGET/*, from the repository's own fixtures and a
few small hand-made files (standard library only; run from the repository root; output is committed).

Each seed is a valid (or nearly valid) input of its kind, small, so that libFuzzer starts deep in
the parser: a safetensors file with the tiny test model's tensor names, real config.json files,
the first lines of the real vocabulary, IMDB-like CSV/JSONL/tar.gz datasets, recipes."""
import gzip
import io
import json
import os
import shutil
import struct
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def copy(target, name, src):
    with open(os.path.join(ROOT, src), "rb") as f:
        put(target, name, f.read())


# ------------------------------------------------------------------ safetensors
def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, raw bytes). Laid out like the Rust writer."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def f32(n, start=0.0):
    return struct.pack("<%df" % n, *[start + 0.25 * i for i in range(n)])


def tiny_model_seed():
    """The tiny fixture model's header, every tensor shrunk to at most 2 x 2 (names kept)."""
    with open(os.path.join(ROOT, "tests/fixtures/bert/tiny/model.safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    tensors = []
    for name, e in header.items():
        if name == "__metadata__":
            continue
        shape = [min(s, 2) for s in e["shape"]]
        numel = 1
        for s in shape:
            numel *= s
        tensors.append((name, "F32", shape, f32(numel)))
    return safetensors(tensors, header.get("__metadata__"))


put("safetensors", "tiny_model_shrunk.safetensors", tiny_model_seed())
copy("safetensors", "mixed.safetensors", "tests/fixtures/model_io/mixed.safetensors")
put("safetensors", "dtypes.safetensors", safetensors([
    ("a.f16", "F16", [2, 2], struct.pack("<4e", 1.0, -2.0, 65504.0, 6e-8)),
    ("b.bf16", "BF16", [3], b"\x80\x3f\x00\xc0\x80\x7f"),
    ("c.f32", "F32", [1, 2, 1], f32(2)),
    ("d.empty", "F32", [0, 4], b""),
    ("e.i64", "I64", [1], struct.pack("<q", -7)),
    ("f.u8", "U8", [3], b"\x01\x02\x03"),
    ("g.bool", "BOOL", [], b"\x01"),
    ("h.u16", "U16", [1], b"\x01\x00"),
], {"format": "pt", "note": "seed"}))
put("safetensors", "checkpoint_like.safetensors", safetensors([
    ("classifier.weight", "F32", [2, 2], f32(4)),
    ("classifier.bias", "F32", [2], f32(2)),
    ("optimizer.exp_avg", "F32", [6], f32(6)),
], {"state": "{\"step\":3}", "checksum": "0123456789abcdef"}))

# ------------------------------------------------------------------ config.json
copy("config", "tiny.json", "tests/fixtures/bert/tiny/config.json")
copy("config", "bert_base_uncased.json", "tests/fixtures/model_io/bert_base_uncased_config.json")
copy("config", "minilm_l6.json", "tests/fixtures/model_io/minilm_l6_config.json")
put("config", "labels.json", json.dumps({
    "hidden_size": 8, "num_attention_heads": 2, "num_hidden_layers": 1, "intermediate_size": 16,
    "vocab_size": 30, "pad_token_id": None, "hidden_act": "gelu_new", "classifier_dropout": 0.2,
    "id2label": {"0": "neg", "1": "pos", "2": "caf\u00e9"}, "label2id": {"neg": 0, "pos": 1, "caf\u00e9": 2},
    "position_embedding_type": "absolute", "problem_type": "single_label_classification",
    "layer_norm_eps": 1e-5, "custom": [1, {"a": None}]}, indent=1))

# ------------------------------------------------------------------ vocab.txt / tokenizer_config.json
with open(os.path.join(ROOT, "tests/fixtures/tokenizer/vocab.txt"), encoding="utf-8") as f:
    vocab = f.read().split("\n")
put("vocab", "bert_first_120.txt", "\n".join(vocab[:110] + vocab[1996:2006]) + "\n")
put("vocab", "small_crlf.txt", "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello\r\n##lo\r\nworld\r\n,\r\n!\r\n")
put("vocab", "pieces.txt", "[UNK]\n[SEP]\n[PAD]\n[CLS]\nun\n##aff\n##able\n\u65e5\n\u00e9\n##s\nrun\n##ning\n[SEP]\n")
copy("tokenizer_config", "bert.json", "tests/fixtures/tokenizer/tokenizer_config.json")
put("tokenizer_config", "cased.json", json.dumps({
    "do_lower_case": False, "strip_accents": None, "tokenize_chinese_chars": True,
    "cls_token": "<cls>", "sep_token": {"content": "<sep>", "lstrip": False}, "pad_token": "<pad>",
    "unk_token": "<unk>", "mask_token": "<mask>", "model_max_length": 512}))
put("tokenizer_config", "accents.json", json.dumps({"do_lower_case": True, "strip_accents": False,
                                                     "tokenize_chinese_chars": False, "unk_token": "[UNK]"}))

# ------------------------------------------------------------------ tokenizer (first byte: flags)
texts = [
    (0x00, "I rented I AM CURIOUS-YELLOW from my video store because of all the controversy.<br /><br />"),
    (0x40 | 16, "Na\u00efve caf\u00e9 \u00c5ngstr\u00f6m \u65e5\u672c\u8a9e don't [SEP] unaffable!!!"),
    (0x80 | 10, "premise text here.hypothesis, with\tTABS\u3000and\u00a0spaces"),
    (0xC0 | 5, "\U0001F600 emoji \u0301combining e\u0301 \ufffd\u200b zero-width"),
]
for i, (flags, t) in enumerate(texts):
    put("tokenizer", "text%d" % i, bytes([flags]) + t.encode("utf-8"))
put("tokenizer", "invalid_utf8", b"\x07bad \xff\xfe bytes \xc3 \xe6\x97 [CLS]\x00nul")

# ------------------------------------------------------------------ CSV / TSV / JSONL
for name in ["basic.csv", "pairs.tsv", "crlf.csv", "multi.csv", "unterminated.csv"]:
    copy("csv", name, "tests/fixtures/data/" + name)
put("csv", "imdb_like.csv",
    'text,label\n"This movie was great, ""really"" great.",pos\n'
    '"Terrible.\nTwo lines, even.",neg\nOkay I guess,pos\n')
for name in ["labels.jsonl", "intlabels.jsonl", "mixed.jsonl", "nul.jsonl", "bad.jsonl"]:
    copy("jsonl", name, "tests/fixtures/data/" + name)
put("jsonl", "imdb_like.jsonl",
    '{"text": "This movie was great.", "label": "pos"}\n'
    '{"text": "Terrible \\u00e9 \\"quoted\\"", "label": "neg", "extra": null}\n'
    '{"text": "no label here", "label": null}\n{"text": "int", "label": 1}\n')


# ------------------------------------------------------------------ tar / tar.gz
def tarball(members, compress):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if data is None:
                info.type = tarfile.SYMTYPE
                info.linkname = "../pos/1_9.txt"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    # Drop tarfile's padding to a 10 kB record, keeping the two zero blocks that end an archive.
    end = len(raw.rstrip(b"\0"))
    end = (end + 511) // 512 * 512 + 1024
    raw = raw[:end]
    return gzip.compress(raw, mtime=0) if compress else raw


members = [
    ("train/pos/1_9.txt", b"A wonderful film, I loved it."),
    ("train/neg/2_1.txt", b"Dull.<br />Do not watch."),
    ("train/unsup/3_0.txt", b"unlabelled review"),
    ("train/neg/4_2.txt", "caf\u00e9 \u65e5\u672c".encode()),
    ("pos/5_8.txt", b"top-level class folder"),
]
put("tar", "train.tar.gz", tarball(members, True))
put("tar", "train.tar", tarball(members, False))
put("tar", "link.tar", tarball([("train/pos/1_9.txt", b"x"), ("train/neg/l.txt", None)], False))
copy("tar", "tree.tar.gz", "tests/fixtures/data/tree.tar.gz")

# ------------------------------------------------------------------ split files (fuzz_split's dataset)
put("split", "train_val.jsonl",
    '{"split":"train","id":"line:2","label":"neg"}\n{"split":"train","id":"line:3","label":"pos"}\n'
    '{"split":"val","id":"line:4","label":"neg"}\n{"split":"val","id":"pos/7_7.txt"}\n'
    '{"split":"train","id":"pos/5_7.txt","label":"pos"}\n')
put("split", "unlabelled.jsonl", '{"split":"val","id":"pos/7_7.txt","label":null}\n\n  \n')

# ------------------------------------------------------------------ recipes
for name in sorted(n for n in os.listdir(os.path.join(ROOT, "recipes")) if n.endswith(".conf")):
    copy("recipe", name, "recipes/" + name)
put("recipe", "forms.conf", "--lr=3e-5\nepochs 2\nquiet\n  # comment\nseed\t=\t7 # trailing\n\nscheduler = cosine\n")

# ------------------------------------------------------------------ sweep files (first line: an objective)
copy("sweep", "imdb-search.sweep", "recipes/imdb-search.sweep")
put("sweep", "objective_and_space.sweep",
    "max val_accuracy s.t. train_accuracy < 0.92 and val_accuracy >= 0.85\nlr = log(1e-5, 1e-4)\nepochs = 2, 3\n"
    "warmup-steps = int(0, 50)\nhidden-dropout = linear(0.1, 0.3)\ntext-column = \"title,body\"\nquiet\n")
put("sweep", "grid.sweep", "min gap\nscheduler = linear, cosine, constant\nseed = 1\n")

total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
print("fuzz/corpus: %d bytes" % total)
