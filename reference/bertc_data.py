"""bertc's dataset readers in Python (src/data, docs/DATA.md), so that another program (the
PyTorch reference, reference/finetune_hf.py) trains on exactly the examples bertc trains on.

    import bertc_data
    train = bertc_data.read("/work/shared/data/aclImdb_v1.tar.gz:aclImdb/train")
    train = bertc_data.apply_split(train, "run/split.jsonl", "train")   # bertc's chosen subset, in its order
    for ex in train.examples: ex.id, ex.text, ex.label   # label: index into train.labels, -1 if unlabelled

Same spec kinds, order, ids, label rules, NUL dropping, subset (select) and split files as bertc.
Texts are bytes in bertc; here ex.raw holds those bytes and ex.text is them decoded as UTF-8
with invalid bytes replaced by U+FFFD.
"""
import json
import os
import re
import stat
import tarfile

from bertc_rng import Rng


class Example:
    __slots__ = ("id", "raw", "raw_pair", "label_name", "label", "line")

    def __init__(self, id, raw, raw_pair=None, label_name=None, line=0):
        self.id, self.raw, self.raw_pair, self.label_name, self.line = id, raw, raw_pair, label_name, line
        self.label = -1

    @property
    def text(self):
        return self.raw.decode("utf-8", errors="replace")

    @property
    def text_pair(self):
        return None if self.raw_pair is None else self.raw_pair.decode("utf-8", errors="replace")

    def __repr__(self):
        return f"Example({self.id!r}, label={self.label}, text={self.text[:40]!r})"


class Dataset:
    def __init__(self, examples, labels, skipped=0):
        self.examples, self.labels, self.skipped = examples, labels, skipped

    def __len__(self):
        return len(self.examples)


class DataError(ValueError):
    pass


_INT = re.compile(rb"^[ \t\r\n\v\f]*([+-]?[0-9]+)[ \t\r\n\v\f]*$")
_BLANK = b" \t\r\n\v\f"


def _canonical(label: bytes) -> bytes:
    """Trimmed; integers in plain decimal ("01" and "1" are one label)."""
    m = _INT.match(label)
    if m and -(2**63) <= int(m.group(1)) < 2**63:
        return str(int(m.group(1))).encode()
    return label.strip(_BLANK)


def _is_int(label: bytes) -> bool:
    m = _INT.match(label)
    return bool(m) and -(2**63) <= int(m.group(1)) < 2**63


# ---------------------------------------------------------------- trees

def _tree_member(name, folder, with_unsup):
    """(class, id) when name is FOLDER/CLASS/FILE to read, else None."""
    while name.startswith("./"):
        name = name[2:]
    if folder:
        if not name.startswith(folder + "/"):
            return None
        name = name[len(folder) + 1:]
    parts = name.split("/")
    if len(parts) != 2 or not parts[0] or not parts[1] or parts[0][0] == "." or parts[1][0] == ".":
        return None
    if parts[0] == "unsup" and not with_unsup:
        return None
    return parts[0], name


def read_tree_archive(archive, folder, with_unsup=False, skip_bad=False):
    folder = folder
    while folder.startswith("./"):
        folder = folder[2:]
    folder = folder.rstrip("/")
    if folder == ".":
        folder = ""
    out, skipped, seen = [], 0, not folder
    with tarfile.open(archive, "r|*") as tar:  # one streaming pass, as bertc does
        for m in tar:
            n = m.name
            while n.startswith("./"):
                n = n[2:]
            if folder and n.startswith(folder + "/"):
                seen = True
            hit = _tree_member(m.name, folder, with_unsup)
            if not hit:
                continue
            if m.issym() or m.islnk():
                if not skip_bad:
                    raise DataError(f"{archive}: member {m.name}: links are not supported")
                skipped += 1
                continue
            if not m.isfile():
                continue
            raw = tar.extractfile(m).read().replace(b"\0", b"")
            cls, id = hit
            out.append(Example(id, raw, None, None if cls == "unsup" else cls.encode()))
    if not seen:
        raise DataError(f'{archive}: no folder "{folder}" in the archive')
    return out, skipped


def read_tree_dir(root, with_unsup=False, skip_bad=False):
    out, skipped = [], 0
    for cls in sorted(os.listdir(root)):
        cdir = os.path.join(root, cls)
        if cls.startswith(".") or not os.path.isdir(cdir) or (cls == "unsup" and not with_unsup):
            continue
        for f in sorted(os.listdir(cdir)):
            p = os.path.join(cdir, f)
            if f.startswith("."):
                continue
            try:
                if not stat.S_ISREG(os.stat(p).st_mode):
                    continue
            except OSError:
                pass  # a dangling link: reading it fails below, as in bertc
            try:
                with open(p, "rb") as fh:
                    raw = fh.read().replace(b"\0", b"")
            except OSError as e:
                if not skip_bad:
                    raise DataError(f"{p}: cannot open: {e.strerror}")
                skipped += 1
                continue
            out.append(Example(cls + "/" + f, raw, None, None if cls == "unsup" else cls.encode()))
    return out, skipped


# ---------------------------------------------------------------- tables

def _csv_records(data: bytes, delim: bytes, path):
    """The C parser's rules: RFC 4180 quotes, CRLF or LF, blank lines skipped, quotes inside an
    unquoted field plain; yields (line, [fields as bytes])."""
    pos, line, n = 0, 1, len(data)
    while True:
        while True:
            if data[pos:pos + 1] == b"\n":
                pos, line = pos + 1, line + 1
            elif data[pos:pos + 2] == b"\r\n":
                pos, line = pos + 2, line + 1
            else:
                break
        if pos >= n:
            return
        rec_line, fields = line, []
        while True:
            buf = bytearray()
            if data[pos:pos + 1] == b'"':
                open_line = line
                pos += 1
                while True:
                    if pos >= n:
                        raise DataError(f"{path}: line {open_line}: unterminated quoted field (opened here)")
                    c = data[pos:pos + 1]
                    if c == b'"':
                        if data[pos + 1:pos + 2] == b'"':
                            buf += b'"'
                            pos += 2
                            continue
                        pos += 1
                        break
                    if c == b"\n":
                        line += 1
                    buf += c
                    pos += 1
                if pos < n and data[pos:pos + 1] not in (delim, b"\n") and data[pos:pos + 2] != b"\r\n":
                    raise DataError(f"{path}: line {line}: unexpected character after a closing quote")
            else:
                while pos < n:
                    c = data[pos:pos + 1]
                    if c == delim or c == b"\n" or data[pos:pos + 2] == b"\r\n":
                        break
                    buf += c
                    pos += 1
            fields.append(bytes(buf).replace(b"\0", b""))
            if pos >= n:
                break
            if data[pos:pos + 1] == delim:
                pos += 1
                continue
            pos += 2 if data[pos:pos + 1] == b"\r" else 1
            line += 1
            break
        yield rec_line, fields


def _read_csv(path, delim, text_cols, pair_cols, label_col, label_explicit, skip_bad):
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    recs = _csv_records(data, delim, path)
    try:
        _, header = next(recs)
    except StopIteration:
        raise DataError(f"{path}: empty file (expected a header row naming the columns)")
    cols = [h.decode("utf-8", "surrogateescape") for h in header]

    def find(name, what):
        if name not in cols:
            raise DataError(f'{path}: no {what} column "{name}" in the header (columns: {", ".join(cols)})')
        return cols.index(name)

    ti = [find(c, "text") for c in text_cols]
    pi = [find(c, "text pair") for c in pair_cols]
    li = cols.index(label_col) if label_col in cols else None
    if li is None and label_explicit:
        find(label_col, "label")
    out, skipped = [], 0
    for line, f in recs:
        if len(f) != len(cols):
            if not skip_bad:
                raise DataError(f"{path}: line {line}: {len(f)} fields, the header has {len(cols)}")
            skipped += 1
            continue
        out.append(Example(f"line:{line}", b" ".join(f[i] for i in ti),
                           b" ".join(f[i] for i in pi) if pi else None,
                           None if li is None else f[li], line))
    return out, skipped


def _json_label(v):
    if v is None:
        return None
    if isinstance(v, str):
        return v.replace("\0", "").encode()
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v).encode()
    if isinstance(v, float) and v == int(v) and abs(v) <= 2**53:
        return str(int(v)).encode()
    raise TypeError


def _read_jsonl(path, text_cols, pair_cols, label_col, label_explicit, skip_bad):
    data = open(path, "rb").read()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    out, skipped, labelled = [], 0, 0

    def bad(msg):
        nonlocal skipped
        if not skip_bad:
            raise DataError(msg)
        skipped += 1

    for line, text in enumerate(data.split(b"\n"), 1):
        s = text.strip(b" \t\r")
        if not s:
            continue
        if line == 1 and s.startswith(b"["):
            raise DataError(f"{path}: a JSON array; bertc reads JSON Lines (one object per line)")
        try:
            o = json.loads(s.replace(b"\0", b"").decode("utf-8", "surrogateescape"), strict=False)
        except ValueError:
            bad(f"{path}: line {line}: invalid JSON")
            continue
        if not isinstance(o, dict):
            bad(f"{path}: line {line}: not a JSON object")
            continue

        def join(names):
            parts = []
            for k in names:
                if k not in o:
                    return None, f'no field "{k}" (fields: {", ".join(o)})'
                if not isinstance(o[k], str):
                    return None, f'not a string: "{k}"'
                parts.append(o[k].replace("\0", "").encode("utf-8", "surrogateescape"))
            return b" ".join(parts), None

        t, why = join(text_cols)
        tp = None
        if t is not None and pair_cols:
            tp, why = join(pair_cols)
        if t is None or (pair_cols and tp is None):
            bad(f"{path}: line {line}: {why}")
            continue
        try:
            lab = _json_label(o.get(label_col))
        except TypeError:
            bad(f'{path}: line {line}: label "{label_col}" must be a string or an integer')
            continue
        labelled += lab is not None
        out.append(Example(f"line:{line}", t, tp, lab, line))
    if label_explicit and labelled == 0 and out:
        raise DataError(f'{path}: no line has the label field "{label_col}"')
    return out, skipped


# ---------------------------------------------------------------- dataset_read

def read(spec, text_column=None, text_pair_column=None, label_column=None, label_names=None,
         skip_bad=False, reject_empty=False, with_unsup=False) -> Dataset:
    """bertc's dataset_read(spec, options): a folder of class folders, "ARCHIVE.tar.gz:FOLDER",
    or a .csv/.tsv/.jsonl/.json file."""
    kind = "table"
    m = re.search(r"\.(tar|tgz)", spec, re.I)
    colon = spec.find(":", m.start()) if m else -1
    low = spec.lower()
    if os.path.isdir(spec):
        kind, (recs, skipped) = "tree", read_tree_dir(spec, with_unsup, skip_bad)
    elif colon >= 0:
        kind, (recs, skipped) = "tree", read_tree_archive(spec[:colon], spec[colon + 1:], with_unsup, skip_bad)
    elif low.endswith((".csv", ".tsv", ".jsonl", ".json")):
        split = lambda s: s.split(",") if s else []
        tc, pc = split(text_column or "text"), split(text_pair_column)
        lc = label_column or "label"
        if low.endswith((".csv", ".tsv")):
            recs, skipped = _read_csv(spec, b"\t" if low.endswith(".tsv") else b",", tc, pc, lc,
                                      label_column is not None, skip_bad)
        else:
            recs, skipped = _read_jsonl(spec, tc, pc, lc, label_column is not None, skip_bad)
    else:
        raise DataError(f"{spec}: not a folder, ARCHIVE.tar.gz:FOLDER, .csv, .tsv, .jsonl or .json")

    def bad(r, what):
        nonlocal skipped
        if not skip_bad:
            raise DataError(f"{spec}: {r.id}: {what}")
        skipped += 1

    keep = []
    if kind == "tree":
        recs.sort(key=lambda r: r.id.encode("utf-8", "surrogateescape"))
        for r in recs:
            if keep and keep[-1].id == r.id:
                bad(r, "the same member twice")
            else:
                keep.append(r)
        recs, keep = keep, []
    labelled = kind == "table" and any(r.label_name is not None for r in recs)
    for r in recs:
        if labelled and r.label_name is None:
            bad(r, "no value for the label field")
            continue
        if r.label_name is not None:
            r.label_name = _canonical(r.label_name)
            if not r.label_name:
                bad(r, "empty label")
                continue
        if reject_empty and (not r.raw.strip(_BLANK) or (r.raw_pair is not None and not r.raw_pair.strip(_BLANK))):
            bad(r, "empty text")
            continue
        keep.append(r)
    if label_names:
        names = [_canonical(n.encode() if isinstance(n, str) else n) for n in label_names]
        labels = list(label_names)
    else:
        names = sorted({r.label_name for r in keep if r.label_name is not None})
        if all(_is_int(n) for n in names):
            names.sort(key=lambda n: int(n))
        labels = [n.decode("utf-8", "surrogateescape") for n in names]
    index = {n: k for k, n in enumerate(names)}
    out = []
    for r in keep:
        if r.label_name is not None:
            if r.label_name not in index:
                bad(r, f"label {r.label_name!r} is not in the label set")
                continue
            r.label = index[r.label_name]
        out.append(r)
    if not out:
        raise DataError(f"{spec}: no examples")
    return Dataset(out, labels, skipped)


# ---------------------------------------------------------------- subset and splits

def select(ds: Dataset, n: int, seed: int) -> Dataset:
    """dataset_select: shuffle the indices 0..N-1 (bertc_rng, Fisher-Yates) and keep the first n
    (all, shuffled, when n is 0 or >= N)."""
    idx = list(range(len(ds.examples)))
    Rng(seed).shuffle(idx)
    if n == 0 or n > len(idx):
        n = len(idx)
    return Dataset([ds.examples[i] for i in idx[:n]], ds.labels, ds.skipped)


def read_split(path, split_name):
    """[(id, label name or None)] for split_name, in file order."""
    out = []
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                o = json.loads(line)
                if o["split"] == split_name:
                    out.append((o["id"], o.get("label")))
    return out


def apply_split(ds: Dataset, path, split_name) -> Dataset:
    """dataset_apply_split: exactly the examples listed for split_name, in that order."""
    by_id = {e.id: e for e in ds.examples}
    out, seen = [], set()
    for id, label in read_split(path, split_name):
        if id not in by_id:
            raise DataError(f'{path}: id "{id}" is not in the dataset')
        if id in seen:
            raise DataError(f'{path}: id "{id}" listed twice')
        e = by_id[id]
        have = ds.labels[e.label] if e.label >= 0 else None
        if have != label:
            raise DataError(f'{path}: id "{id}" has label {label!r} in the split file but {have!r} in the dataset')
        seen.add(id)
        out.append(e)
    if not out:
        raise DataError(f'{path}: no examples for split "{split_name}"')
    return Dataset(out, ds.labels, ds.skipped)


def write_split(ds: Dataset, f, split_name):
    """dataset_write_split, byte for byte for ASCII ids and labels."""
    for e in ds.examples:
        o = {"split": split_name, "id": e.id}
        if e.label >= 0:
            o["label"] = ds.labels[e.label]
        f.write(json.dumps(o, separators=(",", ":"), ensure_ascii=False) + "\n")
