/* The fuzz targets' bodies, one per parser of outside input. Each takes arbitrary bytes, feeds
 * them through the same entry point bertc uses for that kind of file, and returns the library's
 * status (BERTC_OK or an error code); it must never crash, leak or hit undefined behaviour.
 *
 * They are compiled twice: into the libFuzzer programs (fuzz/fuzz_NAME.c, `make fuzz`, clang with
 * sanitizers) and into tests/test_fuzz_regressions.c (the normal `make test` build, no libFuzzer),
 * which replays the seed corpora (fuzz/corpus/NAME) and every input that once failed
 * (tests/fixtures/fuzz/NAME).
 *
 * The parsers read paths, so each input is written to a file in a private temporary folder
 * (on /dev/shm when there is one: no disk I/O) named as bertc expects (x.csv, model.safetensors). */
#ifndef BERTC_FUZZ_TARGETS_H
#define BERTC_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

typedef struct fuzz_target {
    const char *name; /* fuzz/fuzz_NAME.c, fuzz/corpus/NAME, tests/fixtures/fuzz/NAME */
    fuzz_fn run;
} fuzz_target;

int fuzz_safetensors(const uint8_t *data, size_t size);      /* model.safetensors: header, offsets, data */
int fuzz_config(const uint8_t *data, size_t size);           /* config.json */
int fuzz_vocab(const uint8_t *data, size_t size);            /* vocab.txt, then a few encodes with it */
int fuzz_tokenizer_config(const uint8_t *data, size_t size); /* tokenizer_config.json beside a small vocab */
int fuzz_tokenizer(const uint8_t *data, size_t size);        /* any bytes through the bert-base-uncased tokenizer */
int fuzz_csv(const uint8_t *data, size_t size);              /* the bytes as train.csv and as train.tsv */
int fuzz_jsonl(const uint8_t *data, size_t size);            /* train.jsonl */
int fuzz_tar(const uint8_t *data, size_t size);              /* data.tar.gz:train (libarchive) */
int fuzz_split(const uint8_t *data, size_t size);            /* a --load-split file over a fixed dataset */
int fuzz_recipe(const uint8_t *data, size_t size);           /* a --recipe file */
int fuzz_sweep(const uint8_t *data, size_t size);            /* a bertc sweep file; its first line also as an --objective */

/* Every target, NULL-terminated. */
extern const fuzz_target FUZZ_TARGETS[];

/* Where fuzz_tokenizer finds its vocab.txt: $BERTC_FUZZ_VOCAB, else this path (relative to the
 * repository root, where tests and `make fuzz` run). */
#define FUZZ_DEFAULT_VOCAB "tests/fixtures/tokenizer/vocab.txt"

#endif
