/* Classification metrics over predictions: accuracy, mean loss, per-class precision,
 * recall and F1, confusion matrix (rows = true label, columns = predicted). */
#ifndef BERTC_REPORT_METRICS_H
#define BERTC_REPORT_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "bertc.h"

typedef struct metrics {
    int k;
    size_t n;
    double loss_sum;
    long *confusion; /* k*k */
} metrics;

/* Most classes metrics_init accepts: the confusion matrix is k*k counts (128 MiB at this size). */
#define METRICS_MAX_CLASSES 4096

int metrics_init(metrics *m, int k, bertc_error *err);
void metrics_free(metrics *m);
void metrics_reset(metrics *m);
/* dst = src; both initialised with the same number of classes */
void metrics_copy(metrics *dst, const metrics *src);
/* Adds one example: true label, predicted label, its loss. Labels outside 0..k-1 are ignored. */
void metrics_add(metrics *m, int label, int pred, double loss);
double metrics_accuracy(const metrics *m);
double metrics_loss(const metrics *m);
void metrics_class(const metrics *m, int c, double *precision, double *recall, double *f1);
/* Examples whose true label is c (sklearn's "support"). */
long metrics_support(const metrics *m, int c);
/* Precision, recall and F1 are 0 where their denominator is 0 (sklearn's zero_division=0). Macro F1
 * is sklearn's f1_score(average="macro"): the mean over the classes seen as a true label or as a
 * prediction. Accuracy and loss are 0 when no example was added. */
double metrics_macro_f1(const metrics *m);
/* Writes (no newline after it) {"n":..,"accuracy":..,"loss":..,"macro_f1":..,"per_class":[{"label":..,"precision":..,..}],"confusion":[[..]]}
 * on one line, keys in that order; per_class entries are {"label","precision","recall","f1","support"}.
 * label_names (k strings) may be NULL, or hold NULLs, for class numbers instead. Non-finite numbers are null. */
void metrics_write_json(const metrics *m, char *const *label_names, FILE *f);
/* A human-readable table. */
void metrics_write_text(const metrics *m, char *const *label_names, FILE *f);

#endif
