/* Classification metrics. Precision, recall and F1 follow sklearn with zero_division=0: a ratio
 * whose denominator is 0 is 0. Macro F1 is sklearn's f1_score(average="macro") default: the mean
 * over the classes that occur among the true labels or the predictions (a class in neither is
 * left out, not counted as 0). */
#include "report/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

int metrics_init(metrics *m, int k, bertc_error *err) {
    memset(m, 0, sizeof *m);
    if (k <= 0 || k > METRICS_MAX_CLASSES)
        return bertc_errorf(err, BERTC_EINVAL, "metrics: %d classes (must be 1..%d)", k, METRICS_MAX_CLASSES);
    m->confusion = calloc((size_t)k * (size_t)k, sizeof *m->confusion);
    if (!m->confusion) return bertc_errorf(err, BERTC_ENOMEM, "metrics: cannot allocate a %dx%d confusion matrix", k, k);
    m->k = k;
    return BERTC_OK;
}

void metrics_free(metrics *m) {
    if (!m) return;
    free(m->confusion);
    memset(m, 0, sizeof *m);
}

void metrics_reset(metrics *m) {
    if (m->confusion) memset(m->confusion, 0, (size_t)m->k * (size_t)m->k * sizeof *m->confusion);
    m->n = 0;
    m->loss_sum = 0.0;
}

void metrics_copy(metrics *dst, const metrics *src) {
    if (dst->k != src->k) return; /* a caller bug; the copy would not fit */
    memcpy(dst->confusion, src->confusion, (size_t)src->k * (size_t)src->k * sizeof *src->confusion);
    dst->n = src->n;
    dst->loss_sum = src->loss_sum;
}

/* An example whose label or prediction is outside 0..k-1 is a caller bug (datasets check their
 * labels when read); it is ignored rather than written out of bounds. */
void metrics_add(metrics *m, int label, int pred, double loss) {
    if (label < 0 || label >= m->k || pred < 0 || pred >= m->k) return;
    m->confusion[(size_t)label * m->k + pred]++;
    m->n++;
    m->loss_sum += loss;
}

static long correct_count(const metrics *m) {
    long correct = 0;
    for (int c = 0; c < m->k; c++) correct += m->confusion[(size_t)c * m->k + c];
    return correct;
}

/* 0 for an empty set, as for every other empty ratio here. */
double metrics_accuracy(const metrics *m) { return m->n ? (double)correct_count(m) / (double)m->n : 0.0; }

double metrics_loss(const metrics *m) { return m->n ? m->loss_sum / (double)m->n : 0.0; }

/* Examples whose true label is c (sklearn's "support"). */
long metrics_support(const metrics *m, int c) {
    long s = 0;
    if (c < 0 || c >= m->k) return 0;
    for (int j = 0; j < m->k; j++) s += m->confusion[(size_t)c * m->k + j];
    return s;
}

/* Examples predicted as c. */
static long predicted_count(const metrics *m, int c) {
    long s = 0;
    for (int i = 0; i < m->k; i++) s += m->confusion[(size_t)i * m->k + c];
    return s;
}

void metrics_class(const metrics *m, int c, double *precision, double *recall, double *f1) {
    double p = 0.0, r = 0.0, f = 0.0;
    if (c >= 0 && c < m->k) {
        long tp = m->confusion[(size_t)c * m->k + c];
        long predicted = predicted_count(m, c), actual = metrics_support(m, c);
        p = predicted ? (double)tp / (double)predicted : 0.0;
        r = actual ? (double)tp / (double)actual : 0.0;
        f = p + r > 0.0 ? 2.0 * p * r / (p + r) : 0.0;
    }
    if (precision) *precision = p;
    if (recall) *recall = r;
    if (f1) *f1 = f;
}

double metrics_macro_f1(const metrics *m) {
    double sum = 0.0;
    int classes = 0;
    for (int c = 0; c < m->k; c++) {
        if (metrics_support(m, c) == 0 && predicted_count(m, c) == 0) continue;
        double f1;
        metrics_class(m, c, NULL, NULL, &f1);
        sum += f1;
        classes++;
    }
    return classes ? sum / classes : 0.0;
}

/* ---- writers ---- */

/* A JSON number; JSON has no NaN or infinity, so those are written as null. */
static void json_number(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.15g", x);
    else fputs("null", f);
}

/* A JSON string: quotes, backslashes and control bytes escaped, other bytes (UTF-8) as they are. */
static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        case '\b': fputs("\\b", f); break;
        case '\f': fputs("\\f", f); break;
        default:
            if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\u%04x", *p);
            else fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* The name of class c, or its number when no names are given. buf holds the number. */
static const char *label_name(char *const *label_names, int c, char buf[16]) {
    if (label_names && label_names[c]) return label_names[c];
    snprintf(buf, 16, "%d", c);
    return buf;
}

void metrics_write_json(const metrics *m, char *const *label_names, FILE *f) {
    char buf[16];
    fprintf(f, "{\"n\":%zu,\"accuracy\":", m->n);
    json_number(f, metrics_accuracy(m));
    fputs(",\"loss\":", f);
    json_number(f, metrics_loss(m));
    fputs(",\"macro_f1\":", f);
    json_number(f, metrics_macro_f1(m));
    fputs(",\"per_class\":[", f);
    for (int c = 0; c < m->k; c++) {
        double p, r, f1;
        metrics_class(m, c, &p, &r, &f1);
        fputs(c ? ",{\"label\":" : "{\"label\":", f);
        json_string(f, label_name(label_names, c, buf));
        fputs(",\"precision\":", f);
        json_number(f, p);
        fputs(",\"recall\":", f);
        json_number(f, r);
        fputs(",\"f1\":", f);
        json_number(f, f1);
        fprintf(f, ",\"support\":%ld}", metrics_support(m, c));
    }
    fputs("],\"confusion\":[", f);
    for (int i = 0; i < m->k; i++) {
        fputs(i ? ",[" : "[", f);
        for (int j = 0; j < m->k; j++) fprintf(f, j ? ",%ld" : "%ld", m->confusion[(size_t)i * m->k + j]);
        fputc(']', f);
    }
    fputs("]}", f);
}

/* Terminal columns a UTF-8 string takes, counting one per character (no wide-glyph tables). */
static int text_width(const char *s) {
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) w += (*p & 0xc0) != 0x80;
    return w;
}

static void pad_right(FILE *f, const char *s, int width) {
    fputs(s, f);
    for (int w = text_width(s); w < width; w++) fputc(' ', f);
}

void metrics_write_text(const metrics *m, char *const *label_names, FILE *f) {
    char buf[16];
    int name_width = 5; /* "label" */
    for (int c = 0; c < m->k; c++) {
        int w = text_width(label_name(label_names, c, buf));
        if (w > name_width) name_width = w;
    }
    fprintf(f, "examples  %zu\naccuracy  %.4f\nloss      %.4f\nmacro F1  %.4f\n\n", m->n, metrics_accuracy(m),
            metrics_loss(m), metrics_macro_f1(m));

    pad_right(f, "label", name_width);
    fputs("  precision  recall  f1      support\n", f);
    for (int c = 0; c < m->k; c++) {
        double p, r, f1;
        metrics_class(m, c, &p, &r, &f1);
        pad_right(f, label_name(label_names, c, buf), name_width);
        fprintf(f, "  %-9.4f  %-6.4f  %-6.4f  %ld\n", p, r, f1, metrics_support(m, c));
    }

    /* Columns are numbered by class so long label names cannot widen the matrix. */
    int cell = 1;
    for (size_t i = 0; i < (size_t)m->k * m->k; i++) {
        int digits = snprintf(buf, sizeof buf, "%ld", m->confusion[i]);
        if (digits > cell) cell = digits;
    }
    int index_width = snprintf(buf, sizeof buf, "%d", m->k - 1);
    if (index_width > cell) cell = index_width;
    fputs("\nconfusion (rows: true label, columns: predicted class number)\n", f);
    pad_right(f, "", index_width + 2 + name_width);
    for (int j = 0; j < m->k; j++) fprintf(f, "  %*d", cell, j);
    fputc('\n', f);
    for (int i = 0; i < m->k; i++) {
        fprintf(f, "%*d  ", index_width, i);
        pad_right(f, label_name(label_names, i, buf), name_width);
        for (int j = 0; j < m->k; j++) fprintf(f, "  %*ld", cell, m->confusion[(size_t)i * m->k + j]);
        fputc('\n', f);
    }
}
