#include "train/encoded.h"

#include <errno.h>
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

int encoded_truncation_parse(const char *s, encoded_truncation *t, int *head) {
    *head = -1;
    if (!s || !strcmp(s, "head")) *t = ENCODED_TRUNC_HEAD;
    else if (!strcmp(s, "tail")) *t = ENCODED_TRUNC_TAIL;
    else if (!strcmp(s, "head+tail")) *t = ENCODED_TRUNC_HEAD_TAIL;
    else if (!strncmp(s, "head+tail:", 10)) {
        char *end;
        errno = 0;
        long h = strtol(s + 10, &end, 10);
        if (errno || end == s + 10 || *end || h < 0 || h > 1 << 20) return -1;
        *t = ENCODED_TRUNC_HEAD_TAIL;
        *head = (int)h;
    } else {
        return -1;
    }
    return 0;
}

size_t encoded_truncate_ids(const int32_t *ids, size_t n, size_t budget, encoded_truncation t, int head, int32_t *out) {
    if (n <= budget || t == ENCODED_TRUNC_HEAD) {
        size_t k = n < budget ? n : budget;
        memcpy(out, ids, k * sizeof *out);
        return k;
    }
    size_t h = t == ENCODED_TRUNC_TAIL ? 0 : head < 0 ? budget / 4 : (size_t)head;
    if (h > budget) h = budget;
    /* the first h tokens, then the last budget - h (out does not overlap ids) */
    memcpy(out, ids, h * sizeof *out);
    memcpy(out + h, ids + (n - (budget - h)), (budget - h) * sizeof *out);
    return budget;
}

/* [CLS] kept-ids [SEP] then padding, for one single text under a tail or head+tail rule. The
 * whole text is tokenized (wordpiece_tokenize, the same ids wordpiece_encode would produce). */
static int encode_truncated(const wordpiece *wp, const char *text, int max_length, encoded_truncation t, int head,
                            int32_t **buf, size_t *cap, int32_t *ids, int32_t *mask, int32_t *types, int *out_len,
                            bertc_error *err) {
    size_t len = strlen(text);
    size_t total = wordpiece_tokenize(wp, text, len, *buf, *cap);
    if (total > *cap) {
        int32_t *nb = realloc(*buf, total * sizeof *nb);
        if (!nb) return bertc_errorf(err, BERTC_ENOMEM, "out of memory for a text of %zu tokens", total);
        *buf = nb;
        *cap = total;
        wordpiece_tokenize(wp, text, len, *buf, *cap);
    }
    size_t budget = (size_t)(max_length - 2);
    size_t k = encoded_truncate_ids(*buf, total, budget, t, head, ids + 1);
    size_t n = 0;
    ids[n++] = wordpiece_cls_id(wp);
    n += k;
    ids[n++] = wordpiece_sep_id(wp);
    for (size_t i = 0; i < (size_t)max_length; i++) {
        if (i >= n) ids[i] = wordpiece_pad_id(wp);
        mask[i] = i < n;
        types[i] = 0;
    }
    *out_len = (int)n;
    return 0;
}

int encoded_set_build_truncated(encoded_set *e, const dataset *d, const wordpiece *wp, int max_length,
                                const char *truncation, bertc_error *err) {
    encoded_truncation t;
    int head;
    if (encoded_truncation_parse(truncation, &t, &head))
        return bertc_errorf(err, BERTC_EINVAL, "unknown truncation '%s' (head, tail, head+tail, head+tail:N)", truncation);
    if (t == ENCODED_TRUNC_HEAD) return encoded_set_build(e, d, wp, max_length, err);
    if (max_length < 2) return bertc_errorf(err, BERTC_EINVAL, "max length must be at least 2");
    if (d->n > (size_t)INT32_MAX / (size_t)max_length)
        return bertc_errorf(err, BERTC_EINVAL, "dataset too large: %zu examples", d->n);
    int n = (int)d->n;
    int rc = encoded_alloc(e, n, max_length, err);
    if (rc) return rc;
    size_t cap = 1024;
    int32_t *buf = malloc(cap * sizeof *buf);
    if (!buf) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        const dataset_example *x = &d->ex[i];
        if (x->text_pair) {
            rc = bertc_errorf(err, BERTC_EUNSUPPORTED, "example '%s': truncation '%s' applies to single texts, not pairs",
                              x->id, truncation);
            break;
        }
        size_t off = (size_t)i * (size_t)max_length;
        int len = 0;
        rc = encode_truncated(wp, x->text, max_length, t, head, &buf, &cap, e->ids + off, e->mask + off, e->types + off,
                              &len, err);
        e->lengths[i] = len;
        e->labels[i] = x->label;
    }
    free(buf);
    if (rc) encoded_set_free(e);
    return rc;
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
