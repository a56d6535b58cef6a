/* The objective: parsing "max val_accuracy s.t. train_accuracy < 0.92", ranking trials by it,
 * and the successive-halving arithmetic. */
#include "sweep/sweep.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/fs.h"

static const char *const METRIC_NAMES[SWEEP_N_METRICS] = {"val_accuracy", "train_accuracy", "val_loss", "train_loss", "gap"};
static const char *const OP_NAMES[] = {"<", "<=", ">", ">="};

const char *sweep_metric_name(sweep_metric m) { return m >= 0 && m < SWEEP_N_METRICS ? METRIC_NAMES[m] : "?"; }
const char *sweep_op_name(sweep_op op) { return op >= SWEEP_LT && op <= SWEEP_GE ? OP_NAMES[op] : "?"; }

/* A word: letters, digits, '_' and '.'; an operator: < <= > >=; else one character. */
static const char *next_word(const char **p, char *buf, size_t n) {
    while (isspace((unsigned char)**p)) (*p)++;
    const char *s = *p;
    size_t len = 0;
    if (!*s) return NULL;
    if (*s == '<' || *s == '>') len = s[1] == '=' ? 2 : 1;
    else
        while (s[len] && (isalnum((unsigned char)s[len]) || s[len] == '_' || s[len] == '.' || s[len] == '-' || s[len] == '+'))
            len++;
    if (len == 0) len = 1;
    if (len >= n) len = n - 1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    *p = s + len;
    return buf;
}

static int metric_of(const char *w, sweep_metric *m) {
    for (int i = 0; i < SWEEP_N_METRICS; i++)
        if (!strcmp(w, METRIC_NAMES[i])) {
            *m = (sweep_metric)i;
            return 0;
        }
    return -1;
}

#define METRIC_LIST "val_accuracy, train_accuracy, val_loss, train_loss or gap"

int sweep_objective_parse(sweep_objective *o, const char *text, bertc_error *err) {
    memset(o, 0, sizeof *o);
    const char *p = text ? text : "";
    char w[64];
    if (!next_word(&p, w, sizeof w) || (strcmp(w, "max") && strcmp(w, "min")))
        return bertc_errorf(err, BERTC_EINVAL, "objective '%s': must start with max or min", text ? text : "");
    o->maximise = !strcmp(w, "max");
    const char *mw = next_word(&p, w, sizeof w);
    if (!mw || metric_of(mw, &o->metric))
        return bertc_errorf(err, BERTC_EINVAL, "objective '%s': '%s' is not a metric (" METRIC_LIST ")", text, mw ? mw : "");
    if (!next_word(&p, w, sizeof w)) return 0;
    if (strcmp(w, "s.t.") && strcmp(w, "st"))
        return bertc_errorf(err, BERTC_EINVAL, "objective '%s': expected 's.t.' after the metric, got '%s'", text, w);
    for (;;) {
        if (o->n == SWEEP_MAX_CONSTRAINTS)
            return bertc_errorf(err, BERTC_EINVAL, "objective '%s': more than %d constraints", text, SWEEP_MAX_CONSTRAINTS);
        sweep_constraint *c = &o->c[o->n];
        if (!next_word(&p, w, sizeof w) || metric_of(w, &c->metric))
            return bertc_errorf(err, BERTC_EINVAL, "objective '%s': a constraint must start with a metric (" METRIC_LIST ")", text);
        if (!next_word(&p, w, sizeof w))
            return bertc_errorf(err, BERTC_EINVAL, "objective '%s': a comparison (<, <=, >, >=) must follow %s", text, METRIC_NAMES[c->metric]);
        int op = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(w, OP_NAMES[i])) op = i;
        if (op < 0) return bertc_errorf(err, BERTC_EINVAL, "objective '%s': '%s' is not <, <=, > or >=", text, w);
        c->op = (sweep_op)op;
        if (!next_word(&p, w, sizeof w)) return bertc_errorf(err, BERTC_EINVAL, "objective '%s': a number must follow %s", text, OP_NAMES[op]);
        char *end;
        errno = 0;
        c->bound = strtod(w, &end);
        if (errno || end == w || *end || !isfinite(c->bound))
            return bertc_errorf(err, BERTC_EINVAL, "objective '%s': '%s' is not a number", text, w);
        o->n++;
        if (!next_word(&p, w, sizeof w)) return 0;
        if (strcmp(w, "and")) return bertc_errorf(err, BERTC_EINVAL, "objective '%s': expected 'and' or the end, got '%s'", text, w);
    }
}

void sweep_objective_format(const sweep_objective *o, char *buf, size_t n) {
    size_t used = (size_t)snprintf(buf, n, "%s %s", o->maximise ? "max" : "min", METRIC_NAMES[o->metric]);
    for (int i = 0; i < o->n && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s %s %g", i ? " and " : " s.t. ", METRIC_NAMES[o->c[i].metric],
                                 OP_NAMES[o->c[i].op], o->c[i].bound);
}

static int holds(const sweep_constraint *c, double v) {
    switch (c->op) {
    case SWEEP_LT: return v < c->bound;
    case SWEEP_LE: return v <= c->bound;
    case SWEEP_GT: return v > c->bound;
    case SWEEP_GE: return v >= c->bound;
    }
    return 0;
}

double sweep_violation(const sweep_objective *o, const sweep_result *r) {
    double total = 0;
    for (int i = 0; i < o->n; i++) {
        double v = r->m[o->c[i].metric];
        if (isnan(v)) return INFINITY;
        if (holds(&o->c[i], v)) continue;
        total += o->c[i].op <= SWEEP_LE ? v - o->c[i].bound : o->c[i].bound - v;
    }
    return total;
}

int sweep_feasible(const sweep_objective *o, const sweep_result *r) {
    if (!r->ok) return 0;
    for (int i = 0; i < o->n; i++)
        if (isnan(r->m[o->c[i].metric]) || !holds(&o->c[i], r->m[o->c[i].metric])) return 0;
    return 1;
}

/* The objective as "smaller is better"; NaN last. */
static double loss_of(const sweep_objective *o, const sweep_result *r) {
    double v = r->m[o->metric];
    if (isnan(v)) return INFINITY;
    return o->maximise ? -v : v;
}

static int cmp_double(double a, double b) { return a < b ? -1 : a > b ? 1 : 0; }

int sweep_compare(const sweep_objective *o, const sweep_result *a, const sweep_result *b) {
    if (a->ok != b->ok) return a->ok ? -1 : 1;
    if (!a->ok) return 0;
    int fa = sweep_feasible(o, a), fb = sweep_feasible(o, b);
    if (fa != fb) return fa ? -1 : 1;
    if (!fa) {
        int c = cmp_double(sweep_violation(o, a), sweep_violation(o, b));
        if (c) return c;
    }
    return cmp_double(loss_of(o, a), loss_of(o, b));
}

void sweep_rank(const sweep_objective *o, const sweep_result *r, int n, int *order) {
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: stable, and n is small */
        for (int j = i; j > 0 && sweep_compare(o, &r[order[j - 1]], &r[order[j]]) > 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
}

static double num_at(const cJSON *j, const char *obj, const char *key) {
    const cJSON *o = obj ? cJSON_GetObjectItemCaseSensitive(j, obj) : j;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

int sweep_read_summary(const char *run_dir, sweep_result *r, int *paused, int *epochs_run, bertc_error *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/summary.json", run_dir);
    char *text = NULL;
    size_t n = 0;
    memset(r, 0, sizeof *r);
    int rc = fs_read_all(path, &text, &n, (size_t)1 << 20, err);
    if (rc) return rc;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: not a JSON object", path);
    }
    r->m[SWEEP_VAL_ACCURACY] = num_at(j, "val", "accuracy");
    r->m[SWEEP_VAL_LOSS] = num_at(j, "val", "loss");
    r->m[SWEEP_TRAIN_ACCURACY] = num_at(j, "train", "accuracy");
    r->m[SWEEP_TRAIN_LOSS] = num_at(j, "train", "loss");
    r->m[SWEEP_GAP] = r->m[SWEEP_TRAIN_ACCURACY] - r->m[SWEEP_VAL_ACCURACY];
    /* bertc train writes a train block of zeros with --no-eval-train: no gap then */
    if (!cJSON_GetObjectItemCaseSensitive(j, "gap")) r->m[SWEEP_GAP] = NAN;
    if (!cJSON_GetObjectItemCaseSensitive(j, "val")) r->m[SWEEP_VAL_ACCURACY] = r->m[SWEEP_VAL_LOSS] = NAN;
    r->ok = 1;
    if (paused) *paused = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "paused"));
    double e = num_at(j, NULL, "epochs_run");
    if (epochs_run) *epochs_run = isnan(e) || e < 0 || e > 1e6 ? 0 : (int)e;
    cJSON_Delete(j);
    return 0;
}

int sweep_halving_epoch(int rung, int eta) {
    long e = 1;
    for (int i = 0; i < rung && e < 1000000; i++) e *= eta;
    return e > 1000000 ? 1000000 : (int)e;
}

int sweep_halving_keep(int n, int eta) {
    int k = eta > 0 ? n / eta : n;
    return k < 1 ? 1 : k;
}
