/* A dataset turned into token ids once, before training: (n, T) arrays the batcher
 * gathers rows from. */
#ifndef BERTC_TRAIN_ENCODED_H
#define BERTC_TRAIN_ENCODED_H

#include <stdint.h>

#include "bertc.h"
#include "data/dataset.h"
#include "tokenizer/wordpiece.h"

typedef struct encoded_set {
    int n, T;
    int32_t *ids, *mask, *types; /* (n, T), padded with [PAD] / 0 / 0 */
    int32_t *labels;             /* (n); -1 when unlabelled */
    int32_t *lengths;            /* (n) real tokens, [CLS] and [SEP] included */
} encoded_set;

int encoded_set_build(encoded_set *e, const dataset *d, const wordpiece *wp, int max_length, bertc_error *err);
/* From raw texts (pairs may be NULL); labels are -1. */
int encoded_set_from_texts(encoded_set *e, const char *const *texts, const char *const *pairs, int n,
                           const wordpiece *wp, int max_length, bertc_error *err);
void encoded_set_free(encoded_set *e);

/* A batch gathered from rows of an encoded set: (B, T) contiguous, where T is the set's T
 * (static padding) or the longest row of the batch (dynamic padding). */
typedef struct batch {
    int B, T;
    int32_t *ids, *mask, *types, *labels;
} batch;

int batch_alloc(batch *b, int max_B, int max_T, bertc_error *err);
void batch_free(batch *b);
void batch_gather(batch *b, const encoded_set *e, const uint32_t *rows, int B, int dynamic_pad);

#endif
