"""Checks that reference/bertc_data.py reads and selects the same examples as bertc (not in CI).

    make && python3 reference/check_data_select.py [SPEC N SEED]...
    python3 reference/check_data_select.py /work/shared/data/aclImdb_v1.tar.gz:aclImdb/train 1000 42

For each SPEC it builds a tiny C program against build/libbertc.a that runs dataset_read,
dataset_select(N, SEED) and dataset_write_split, and prints id, label and a hash of each text;
then does the same in Python (bertc_data.read + select, with bertc_rng's shuffle) and compares:
the chosen ids in order, the labels, the text bytes (FNV-1a 64), the split file byte for byte,
and bertc_data.apply_split reading the C split file back. Prints one line per SPEC; exits 1 on
any difference. Without arguments it checks the committed fixtures.
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bertc_data  # noqa: E402

HELPER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "data/dataset.h"
static unsigned long long fnv(const char *s) {
    unsigned long long h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}
int main(int argc, char **argv) {
    dataset d;
    bertc_error err = {0};
    dataset_read_options opt = {0};
    if (dataset_read(&d, argv[1], &opt, &err) || dataset_select(&d, strtoull(argv[2], 0, 10), strtoull(argv[3], 0, 10), &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    FILE *f = fopen(argv[4], "w");
    if (!f || dataset_write_split(&d, f, "train", &err)) return 1;
    fclose(f);
    for (size_t i = 0; i < d.n; i++)
        printf("%s\t%d\t%016llx\n", d.ex[i].id, d.ex[i].label, fnv(d.ex[i].text));
    dataset_free(&d);
    return 0;
}
"""


def fnv(b: bytes) -> str:
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def build(tmp):
    src, exe = os.path.join(tmp, "select.c"), os.path.join(tmp, "select")
    open(src, "w").write(HELPER)
    libs = subprocess.run(["pkg-config", "--libs", "libarchive", "libcjson", "libutf8proc"], capture_output=True,
                          text=True).stdout.split()
    if os.path.exists("/usr/include/oneapi/dnnl/dnnl.h"):  # the Makefile links oneDNN when it is there
        libs.append("-ldnnl")
    subprocess.run(["cc", "-O2", "-Iinclude", "-Isrc", "-o", exe, src, "build/libbertc.a", *libs, "-lopenblas", "-lm",
                    "-fopenmp"], check=True)
    return exe


def check(exe, tmp, spec, n, seed):
    split = os.path.join(tmp, "split.jsonl")
    c = subprocess.run([exe, spec, str(n), str(seed), split], capture_output=True)
    if c.returncode:
        return f"bertc failed: {c.stderr.decode(errors='replace').strip()}"
    c_rows = [line.split(b"\t") for line in c.stdout.splitlines()]
    ds = bertc_data.read(spec)
    py = bertc_data.select(ds, n, seed)
    if len(c_rows) != len(py.examples):
        return f"{len(c_rows)} examples in bertc, {len(py.examples)} in Python"
    for (cid, clabel, chash), e in zip(c_rows, py.examples):
        if cid.decode("utf-8", "surrogateescape") != e.id or int(clabel) != e.label or chash.decode() != fnv(e.raw):
            return f"differs at {e.id}: bertc ({cid}, {clabel}, {chash}) Python ({e.label}, {fnv(e.raw)})"
    tmp_split = os.path.join(tmp, "split_py.jsonl")
    with open(tmp_split, "w", encoding="utf-8") as f:
        bertc_data.write_split(py, f, "train")
    if open(tmp_split, "rb").read() != open(split, "rb").read():
        return "split files differ"
    back = bertc_data.apply_split(bertc_data.read(spec), split, "train")
    if [e.id for e in back.examples] != [e.id for e in py.examples]:
        return "apply_split differs"
    return None


def main(argv):
    cases = [(argv[i], int(argv[i + 1]), int(argv[i + 2])) for i in range(0, len(argv) - 2, 3)]
    if not cases:
        f = "tests/fixtures/data/"
        cases = [(f + "tree", 3, 42), (f + "tree.tar.gz:corpus/train", 0, 7), (f + "basic.csv", 4, 1),
                 (f + "crlf.csv", 0, 3), (f + "labels.jsonl", 2, 5), (f + "intlabels.jsonl", 0, 9),
                 (f + "nul.jsonl", 0, 1)]
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        for spec, n, seed in cases:
            why = check(exe, tmp, spec, n, seed)
            print(f"{'OK  ' if why is None else 'FAIL'} {spec} n={n} seed={seed}" + (f": {why}" if why else ""))
            bad += why is not None
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
