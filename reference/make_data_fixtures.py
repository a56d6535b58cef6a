"""Writes the dataset-reader fixtures under tests/fixtures/data (run from the repository root).

    python3 reference/make_data_fixtures.py

A small class-per-folder tree (3 classes, an unsup folder, stray files), the same tree as a
.tar.gz, CSV/TSV/JSON Lines files with the awkward cases, and one malformed file of each kind.
tests/test_data.c reads them; the expected values there were checked by hand against these files.
"""
import gzip
import io
import os
import shutil
import tarfile

OUT = "tests/fixtures/data"


def write(path, data):
    path = os.path.join(OUT, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def tree():
    shutil.rmtree(os.path.join(OUT, "tree"), ignore_errors=True)
    files = {
        "neg/1_2.txt": "A dull film.",
        "neg/10_1.txt": "Terrible, just terrible.\n",
        "neutral/3_5.txt": "It was fine.",
        "pos/2_9.txt": "Wonderful <br /><br />acting!",
        "pos/7_10.txt": b"caf\xc3\xa9 with a NUL\x00 inside and a bad byte \xff.",
        "pos/.hidden": "hidden files are skipped",
        "pos/nested/deep.txt": "only files directly in a class folder count",
        "unsup/5_0.txt": "No label here.",
        "labeledBow.feat": "0:1 1:2",
        "urls_pos.txt": "http://example.com/",
    }
    for name, text in files.items():
        write("tree/" + name, text)
    # The same tree as an archive, under corpus/train/, as aclImdb_v1.tar.gz holds aclImdb/train/.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(files, reverse=True):  # archive order must not matter
            data = files[name] if isinstance(files[name], bytes) else files[name].encode()
            info = tarfile.TarInfo("corpus/train/" + name)
            info.size, info.mtime, info.mode = len(data), 1700000000, 0o644
            tar.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("corpus/README")
        info.size, info.mtime = 5, 1700000000
        tar.addfile(info, io.BytesIO(b"hello"))
    gz = gzip.compress(buf.getvalue(), mtime=0)
    # What `tar czf x.tar.gz -C tree .` writes: members named ./neg/1_2.txt; read as "x.tar.gz:".
    dot = io.BytesIO()
    with tarfile.open(fileobj=dot, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("./neg/1_2.txt", "./pos/2_9.txt"):
            data = files[name[2:]].encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000
            tar.addfile(info, io.BytesIO(data))
    write("dot.tgz", gzip.compress(dot.getvalue(), mtime=0))
    write("tree.tar.gz", gz)
    write("truncated.tar.gz", gz[: len(gz) // 2])
    write("notanarchive.tar.gz", "this is not an archive\n")


def tables():
    # RFC 4180: quoted commas, doubled quotes, an embedded newline, a blank line, an empty field.
    write("basic.csv",
          'id,text,label\n'
          '1,"Hello, world",pos\n'
          '2,"She said ""hi""",neg\n'
          '3,"two\nlines",pos\n'
          '\n'
          '4,plain text with a "quote" inside,neutral\n'
          '5,,neg\n')
    # The same with CRLF line ends and a UTF-8 byte order mark (Excel writes one).
    write("crlf.csv", "\ufeff" + 'text,label\r\n"a, b",x\r\n"c\r\nd",y\r\ne,x\r\n')
    # TSV, sentence pairs, integer labels that sort numerically (2 before 10).
    write("pairs.tsv",
          "sentence1\tsentence2\tlabel\n"
          "A man eats.\tSomeone eats.\t10\n"
          "A dog runs.\t\"A cat, \"\"sleeps\"\"\"\t2\n"
          "Rain.\tSun.\t0\n")
    write("multi.csv", "title,content,label\nGreat,Loved it,1\nBad,Hated it,0\n")
    write("unlabelled.csv", "text\nfirst\nsecond\n")
    write("labels.jsonl",
          '{"text": "string label", "label": "pos"}\n'
          '\n'
          '{"text": "another", "label": "neg", "extra": [1, 2]}\n'
          '{"text": "caf\\u00e9 \\"quoted\\"", "label": "pos"}\n')
    write("intlabels.jsonl",
          '{"text": "one", "label": 1}\r\n'
          '{"text": "zero", "label": 0}\r\n'
          '{"text": "one as a string", "label": "1"}\r\n')
    # Labelled and unlabelled lines mixed: the unlabelled one (line 2) is a bad record.
    write("mixed.jsonl", '{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n{"text": "c", "label": "y"}\n')
    # NUL bytes, escaped and raw, are dropped; an escaped backslash before "u0000" is not a NUL.
    write("nul.jsonl", b'{"text": "a\\u0000b", "label": "x"}\n{"text": "c\\\\u0000d", "label": "x"}\n'
                       b'{"text": "e\x00f", "label": "x"}\n')
    write("nolabel.jsonl", '{"text": "a"}\n{"text": "b"}\n')
    # Malformed, one of each kind.
    write("bad_fields.csv", "text,label\nok,pos\nnot ok,pos,extra\nfine,neg\n")
    write("unterminated.csv", 'text,label\nok,pos\n"never closed,neg\nmore,pos\n')
    write("after_quote.csv", 'text,label\n"closed" then more,pos\n')
    write("bad.jsonl", '{"text": "ok", "label": "pos"}\n{"text": "fine", "label": "neg"}\n{"text": "broken", \n')
    write("notext.jsonl", '{"text": "ok", "label": "pos"}\n{"sentence": "wrong key", "label": "neg"}\n')
    write("array.json", '[{"text": "a", "label": "x"}]\n')
    write("unknown.csv", "text,label\na,pos\nb,maybe\n")
    write("empty_text.csv", "text,label\na,pos\n   ,neg\n")


if __name__ == "__main__":
    tree()
    tables()
