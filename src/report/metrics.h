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

int metrics_init(metrics *m, int k, bertc_error *err);
void metrics_free(metrics *m);
void metrics_reset(metrics *m);
/* Adds one example: true label, predicted label, its loss. */
void metrics_add(metrics *m, int label, int pred, double loss);
double metrics_accuracy(const metrics *m);
double metrics_loss(const metrics *m);
void metrics_class(const metrics *m, int c, double *precision, double *recall, double *f1);
double metrics_macro_f1(const metrics *m);
/* Writes {"n":..,"accuracy":..,"loss":..,"macro_f1":..,"per_class":[{"label":..,"precision":..,..}],"confusion":[[..]]} */
void metrics_write_json(const metrics *m, char *const *label_names, FILE *f);
/* A human-readable table. */
void metrics_write_text(const metrics *m, char *const *label_names, FILE *f);

#endif
