#include "train/encoded.h"

#include <stdlib.h>
#include <string.h>

#include "util/error.h"

static int encoded_alloc(encoded_set *e, int n, int T, bertc_error *err) {
    memset(e, 0, sizeof *e);
    e->n = n;
    e->T = T;
    size_t cells = (size_t)(n > 0 ? n : 1) * (size_t)T;
    e->ids = malloc(cells * sizeof(int32_t));
    e->mask = malloc(cells * sizeof(int32_t));
    e->types = malloc(cells * sizeof(int32_t));
    e->labels = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    e->lengths = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!e->ids || !e->mask || !e->types || !e->labels || !e->lengths) {
        encoded_set_free(e);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory for %d examples of %d tokens", n, T);
    }
    return 0;
}

int encoded_set_from_texts(encoded_set *e, const char *const *texts, const char *const *pairs, int n,
                           const wordpiece *wp, int max_length, bertc_error *err) {
    int rc = encoded_alloc(e, n, max_length, err);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        size_t off = (size_t)i * (size_t)max_length;
        const char *pair = pairs ? pairs[i] : NULL;
        int len = 0;
        rc = wordpiece_encode(wp, texts[i], strlen(texts[i]), pair, pair ? strlen(pair) : 0, max_length, 1,
                              e->ids + off, e->mask + off, e->types + off, &len, err);
        if (rc) {
            encoded_set_free(e);
            return rc;
        }
        e->lengths[i] = len;
        e->labels[i] = -1;
    }
    return 0;
}

int encoded_set_build(encoded_set *e, const dataset *d, const wordpiece *wp, int max_length, bertc_error *err) {
    if (d->n > (size_t)INT32_MAX / (size_t)max_length)
        return bertc_errorf(err, BERTC_EINVAL, "dataset too large: %zu examples", d->n);
    int n = (int)d->n;
    int rc = encoded_alloc(e, n, max_length, err);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        const dataset_example *x = &d->ex[i];
        size_t off = (size_t)i * (size_t)max_length;
        int len = 0;
        rc = wordpiece_encode(wp, x->text, strlen(x->text), x->text_pair,
                              x->text_pair ? strlen(x->text_pair) : 0, max_length, 1,
                              e->ids + off, e->mask + off, e->types + off, &len, err);
        if (rc) {
            encoded_set_free(e);
            return rc;
        }
        e->lengths[i] = len;
        e->labels[i] = x->label;
    }
    return 0;
}

void encoded_set_free(encoded_set *e) {
    free(e->ids);
    free(e->mask);
    free(e->types);
    free(e->labels);
    free(e->lengths);
    memset(e, 0, sizeof *e);
}

int batch_alloc(batch *b, int max_B, int max_T, bertc_error *err) {
    memset(b, 0, sizeof *b);
    size_t cells = (size_t)max_B * (size_t)max_T;
    b->ids = malloc(cells * sizeof(int32_t));
    b->mask = malloc(cells * sizeof(int32_t));
    b->types = malloc(cells * sizeof(int32_t));
    b->labels = malloc((size_t)max_B * sizeof(int32_t));
    if (!b->ids || !b->mask || !b->types || !b->labels) {
        batch_free(b);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory for a batch of %d x %d", max_B, max_T);
    }
    return 0;
}

void batch_free(batch *b) {
    free(b->ids);
    free(b->mask);
    free(b->types);
    free(b->labels);
    memset(b, 0, sizeof *b);
}

void batch_gather(batch *b, const encoded_set *e, const uint32_t *rows, int B, int dynamic_pad) {
    int T = e->T;
    if (dynamic_pad) {
        /* Padding columns change nothing under the attention mask, so a batch only needs
         * to be as long as its longest row. */
        T = 1;
        for (int i = 0; i < B; i++)
            if (e->lengths[rows[i]] > T) T = e->lengths[rows[i]];
    }
    b->B = B;
    b->T = T;
    for (int i = 0; i < B; i++) {
        size_t src = (size_t)rows[i] * (size_t)e->T, dst = (size_t)i * (size_t)T;
        memcpy(b->ids + dst, e->ids + src, (size_t)T * sizeof(int32_t));
        memcpy(b->mask + dst, e->mask + src, (size_t)T * sizeof(int32_t));
        memcpy(b->types + dst, e->types + src, (size_t)T * sizeof(int32_t));
        b->labels[i] = e->labels[rows[i]];
    }
}
