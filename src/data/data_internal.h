/* Shared by the dataset readers (read_folder.c, read_table.c) and dataset.c: a builder that
 * collects raw records (label still a string), then turns them into a dataset: order, label
 * set, label ids, bad-record checks. Not part of the public contract. */
#ifndef BERTC_DATA_INTERNAL_H
#define BERTC_DATA_INTERNAL_H

#include <stddef.h>

#include "data/dataset.h"
#include "util/error.h"

enum data_source_kind { DATA_TREE, DATA_ARCHIVE, DATA_TABLE };

typedef struct data_record {
    char *id;
    char *text;
    char *text_pair; /* NULL when absent */
    char *label;     /* label as read (NULL: unlabelled) */
    size_t line;     /* tables: line where the record starts; 0 for trees */
} data_record;

typedef struct data_builder {
    data_record *rec;
    size_t n, cap;
    enum data_source_kind kind;
    const char *source; /* the folder, archive or table file, for messages */
    const char *folder; /* archive: the folder inside it */
    const dataset_read_options *opt;
    size_t skipped;
} data_builder;

/* Appends a record; takes ownership of the four strings (freed on failure too). */
int builder_add(data_builder *b, char *id, char *text, char *text_pair, char *label, size_t line, bertc_error *err);

/* A bad record: under opt->skip_bad counts it and returns 0; otherwise fills err with the
 * formatted message (which names file and line or member) and returns code. */
int builder_bad(data_builder *b, bertc_error *err, int code, const char *fmt, ...) BERTC_PRINTF(4, 5);

/* Where a record came from, for messages: "train.csv: line 12", "tree/pos/1.txt",
 * "data.tar.gz: member aclImdb/train/pos/1.txt". */
void builder_where(const data_builder *b, const data_record *r, char *buf, size_t size);

/* Sorts (trees), checks, builds the label set and fills out; the builder is emptied. */
int builder_finish(data_builder *b, dataset *out, bertc_error *err);
void builder_free(data_builder *b);

/* Reads a whole file into a NUL-terminated buffer (len excludes the terminator). */
int data_read_file(const char *path, char **buf, size_t *len, bertc_error *err);
/* Removes NUL bytes in place (texts are C strings; the tokenizer drops NUL anyway); returns the new length. */
size_t data_drop_nuls(char *s, size_t len);

int read_tree_dir(data_builder *b, const char *root, bertc_error *err);
int read_tree_archive(data_builder *b, const char *archive, const char *folder, bertc_error *err);
int read_csv(data_builder *b, const char *path, char delim, bertc_error *err);
int read_jsonl(data_builder *b, const char *path, bertc_error *err);

#endif
