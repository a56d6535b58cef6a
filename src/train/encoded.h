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

/* Truncation of a text longer than max_length - 2 tokens (docs/SWEEP.md):
 *   head       the first tokens (Hugging Face's truncation=True; the default)
 *   tail       the last tokens
 *   head+tail  the first H and the last budget - H, budget = max_length - 2; H defaults to
 *              budget / 4 (rounded down), the proportion of Sun et al. 2019's best IMDB setting
 *              (128 + 382 of 510); "head+tail:H" sets H.
 * Only single texts: tail and head+tail refuse text pairs (BERTC_EUNSUPPORTED). */
typedef enum encoded_truncation { ENCODED_TRUNC_HEAD, ENCODED_TRUNC_TAIL, ENCODED_TRUNC_HEAD_TAIL } encoded_truncation;
/* Parses NULL/"head", "tail", "head+tail", "head+tail:H" (H >= 0); *head is H, or -1 for the default.
 * Returns 0, or -1 for anything else. */
int encoded_truncation_parse(const char *s, encoded_truncation *t, int *head);
/* Keeps at most budget of the n ids by rule t (head as above, -1 = default): writes them to out (room
 * for min(n, budget), not overlapping ids) in their order and returns how many. */
size_t encoded_truncate_ids(const int32_t *ids, size_t n, size_t budget, encoded_truncation t, int head, int32_t *out);
/* encoded_set_build with a truncation rule (truncation as encoded_truncation_parse reads it). */
int encoded_set_build_truncated(encoded_set *e, const dataset *d, const wordpiece *wp, int max_length,
                                const char *truncation, bertc_error *err);

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
