/* Labelled (or unlabelled) text examples, read from a class-per-folder tree, the same
 * tree inside a .tar.gz ("ARCHIVE.tar.gz:FOLDER"), CSV, TSV or JSON Lines. */
#ifndef BERTC_DATA_DATASET_H
#define BERTC_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bertc.h"

typedef struct dataset_example {
    char *id;        /* stable identifier: the path inside the tree ("pos/123_9.txt"), or "line:N" for tables */
    char *text;      /* UTF-8 text as read (invalid bytes kept; the tokenizer replaces them) */
    char *text_pair; /* second segment or NULL */
    int label;       /* index into dataset.labels, or -1 when unlabelled */
} dataset_example;

typedef struct dataset {
    dataset_example *ex;
    size_t n;
    char **labels; /* label names in id order */
    int num_labels;
    size_t skipped; /* bad records skipped under skip_bad */
} dataset;

typedef struct dataset_read_options {
    const char *text_column;      /* CSV/TSV/JSONL: text field (default "text"); several joined by ',' are concatenated with a space */
    const char *text_pair_column; /* optional second segment */
    const char *label_column;     /* default "label" */
    /* When set, labels must belong to this set (e.g. the training set's) and take its ids.
     * Otherwise the set is built from the data: folder names sorted, or distinct label
     * values sorted (numerically when all are integers). */
    char *const *label_names;
    int num_label_names;
    int skip_bad;     /* skip bad records with a count instead of failing */
    int reject_empty; /* an empty text is a bad record */
    int with_unsup;   /* class-per-folder: also read folders such as "unsup" (label -1) */
    /* Every example unlabelled (bertc pretrain): labels are dropped, "unsup" folders are read, a
     * folder with no class folders holds the examples itself (one file each, id = its name, as
     * aclImdb/train/unsup), and a .txt file holds one text per non-blank line (id "line:N"). */
    int unlabelled;
} dataset_read_options;

/* Reads SPEC: a directory of class folders, "ARCHIVE.tar.gz:FOLDER", or a .csv/.tsv/.jsonl file.
 * Examples come out in a deterministic order (sorted by id). */
int dataset_read(dataset *out, const char *spec, const dataset_read_options *opt, bertc_error *err);
void dataset_free(dataset *d);

/* Keeps n examples (all when n == 0 or n >= d->n) chosen by a seeded shuffle
 * (util/rng.h: Fisher-Yates over the indices in id order, first n kept in shuffled order). */
int dataset_select(dataset *d, size_t n, uint64_t seed, bertc_error *err);

/* Split files are JSON Lines, one example a line: {"split":"train","id":"pos/123_9.txt","label":"pos"}
 * (label omitted when unlabelled). One file holds every split of a run, so another program
 * (reference/finetune_hf.py) can train on exactly the same examples in the same order. */
int dataset_write_split(const dataset *d, FILE *f, const char *split_name, bertc_error *err);
/* Keeps exactly the examples listed for split_name in path, in that order; an id that is not in d is an error. */
int dataset_apply_split(dataset *d, const char *path, const char *split_name, bertc_error *err);

#endif
