/* The training report: metrics.jsonl + summary.json -> report.html.
 *
 * The page is built in memory (a few hundred KB at most: long step series are reduced to at most
 * two points per pixel column) and written with fs_write_atomic, so a reader never sees half a page.
 * Everything is drawn here as inline SVG; the page needs no JavaScript and loads nothing.
 * Every string that comes from the data (label names, paths, hyperparameter values) goes through
 * sb_esc, because label names are user data and may hold '<', '&' or quotes. */
#include "report/html.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/metrics.h"
#include "util/error.h"
#include "util/fs.h"

/* metrics.jsonl grows by ~120 bytes a step; 1 GiB is millions of steps. */
#define MAX_METRICS_BYTES (1024UL * 1024 * 1024)
#define MAX_SUMMARY_BYTES (16UL * 1024 * 1024)
/* A confusion matrix wider than this is not drawn (the per-class table still is). */
#define MAX_GRID_CLASSES 40

/* ---------------------------------------------------------------- string builder */

typedef struct sb {
    char *p;
    size_t n, cap;
    int oom; /* set once an allocation failed; later writes are dropped */
} sb;

static void sb_put(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(sb *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf(sb *b, const char *fmt, ...) BERTC_PRINTF(2, 3);
static void sb_printf(sb *b, const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (len < 0) return;
    if ((size_t)len < sizeof small) {
        sb_put(b, small, (size_t)len);
        return;
    }
    char *big = malloc((size_t)len + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)len + 1, fmt, ap);
    va_end(ap);
    sb_put(b, big, (size_t)len);
    free(big);
}

/* Text or attribute value, HTML-escaped. */
static void sb_esc(sb *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(b, "&amp;"); break;
        case '<': sb_puts(b, "&lt;"); break;
        case '>': sb_puts(b, "&gt;"); break;
        case '"': sb_puts(b, "&quot;"); break;
        case '\'': sb_puts(b, "&#39;"); break;
        default: sb_put(b, s, 1);
        }
    }
}

/* Like sb_esc, but at most max_chars characters (UTF-8 code points), with an ellipsis when cut,
 * so long label names fit the confusion matrix. Returns whether it was cut. */
static int sb_esc_trunc(sb *b, const char *s, int max_chars) {
    size_t i = 0;
    int chars = 0;
    while (s[i] && chars < max_chars) {
        i++;
        while (((unsigned char)s[i] & 0xC0) == 0x80) i++; /* continuation bytes stay with their lead byte */
        chars++;
    }
    if (!s[i]) {
        sb_esc(b, s);
        return 0;
    }
    char *cut = strndup(s, i);
    if (!cut) {
        b->oom = 1;
        return 1;
    }
    sb_esc(b, cut);
    sb_puts(b, "\xE2\x80\xA6"); /* … */
    free(cut);
    return 1;
}

static int utf8_chars(const char *s) {
    int n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

/* ---------------------------------------------------------------- the run's data */

typedef struct epoch_rec {
    int epoch;
    double step;                  /* the last step of the epoch */
    double train_loss, train_acc; /* running, training mode */
    double val_loss, val_acc;     /* NaN without a validation set */
    int best;
} epoch_rec;

typedef struct run_data {
    size_t n_steps, cap_steps;
    double *step, *loss, *lr; /* n_steps each */
    size_t n_epochs, cap_epochs;
    epoch_rec *ep;
    int has_val_epochs; /* some epoch line carries val_loss/val_accuracy */
    cJSON *val_metrics; /* the last "val_metrics" line's metrics object, checked; NULL if none */
    cJSON *summary;     /* summary.json, checked */
} run_data;

static void run_data_free(run_data *d) {
    free(d->step);
    free(d->loss);
    free(d->lr);
    free(d->ep);
    cJSON_Delete(d->val_metrics);
    cJSON_Delete(d->summary);
    memset(d, 0, sizeof *d);
}

/* o[key] as a number; with allow_null, JSON null (how the writers print a non-finite number) reads
 * as NaN. Returns 0, or -1 when it is missing or of another type. */
static int get_num(const cJSON *o, const char *key, int allow_null, double *out) {
    *out = NAN;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return 0;
    }
    if (allow_null && cJSON_IsNull(v)) {
        *out = NAN;
        return 0;
    }
    return -1;
}

/* The same, filling err with "WHERE: "KEY" is missing or not a number". */
static int need_num(const cJSON *o, const char *key, int allow_null, double *out, const char *where, bertc_error *err) {
    if (get_num(o, key, allow_null, out) == 0) return 0;
    return bertc_errorf(err, BERTC_EFORMAT, "%s: \"%s\" is missing or not a number", where, key);
}

static int push_step(run_data *d, double step, double loss, double lr) {
    if (d->n_steps == d->cap_steps) {
        size_t cap = d->cap_steps ? 2 * d->cap_steps : 256;
        double *s = realloc(d->step, cap * sizeof *s);
        if (s) d->step = s;
        double *l = realloc(d->loss, cap * sizeof *l);
        if (l) d->loss = l;
        double *r = realloc(d->lr, cap * sizeof *r);
        if (r) d->lr = r;
        if (!s || !l || !r) return -1;
        d->cap_steps = cap;
    }
    d->step[d->n_steps] = step;
    d->loss[d->n_steps] = loss;
    d->lr[d->n_steps] = lr;
    d->n_steps++;
    return 0;
}

static int push_epoch(run_data *d, const epoch_rec *e) {
    if (d->n_epochs == d->cap_epochs) {
        size_t cap = d->cap_epochs ? 2 * d->cap_epochs : 16;
        epoch_rec *p = realloc(d->ep, cap * sizeof *p);
        if (!p) return -1;
        d->ep = p;
        d->cap_epochs = cap;
    }
    d->ep[d->n_epochs++] = *e;
    return 0;
}

/* Checks a metrics object as metrics_write_json writes it: n, accuracy, loss, macro_f1, per_class
 * [{label, precision, recall, f1, support}] and a k x k confusion matrix of counts. */
static int check_val_metrics(const cJSON *m, const char *where, bertc_error *err) {
    if (!cJSON_IsObject(m)) return bertc_errorf(err, BERTC_EFORMAT, "%s: \"metrics\" is missing or not an object", where);
    double x;
    const char *nums[] = {"n", "accuracy", "loss", "macro_f1"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        int rc = need_num(m, nums[i], i > 0, &x, where, err);
        if (rc) return rc;
    }
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(m, "per_class");
    const cJSON *cf = cJSON_GetObjectItemCaseSensitive(m, "confusion");
    if (!cJSON_IsArray(pc)) return bertc_errorf(err, BERTC_EFORMAT, "%s: \"per_class\" is missing or not an array", where);
    if (!cJSON_IsArray(cf)) return bertc_errorf(err, BERTC_EFORMAT, "%s: \"confusion\" is missing or not an array", where);
    int k = cJSON_GetArraySize(pc);
    if (k < 1 || k > METRICS_MAX_CLASSES)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: \"per_class\" has %d entries, want 1 to %d", where, k, METRICS_MAX_CLASSES);
    if (cJSON_GetArraySize(cf) != k)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: \"confusion\" has %d rows but \"per_class\" has %d classes", where,
                            cJSON_GetArraySize(cf), k);
    int c = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, pc) {
        const cJSON *label = cJSON_GetObjectItemCaseSensitive(e, "label");
        if (!cJSON_IsObject(e) || !(cJSON_IsString(label) || cJSON_IsNumber(label)))
            return bertc_errorf(err, BERTC_EFORMAT, "%s: per_class[%d]: \"label\" is missing or not a string", where, c);
        const char *fields[] = {"precision", "recall", "f1", "support"};
        for (size_t i = 0; i < 4; i++)
            if (get_num(e, fields[i], i < 3, &x))
                return bertc_errorf(err, BERTC_EFORMAT, "%s: per_class[%d]: \"%s\" is missing or not a number", where, c, fields[i]);
        if (!(x >= 0 && isfinite(x))) return bertc_errorf(err, BERTC_EFORMAT, "%s: per_class[%d]: bad support %g", where, c, x);
        c++;
    }
    int r = 0;
    cJSON_ArrayForEach(e, cf) {
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != k)
            return bertc_errorf(err, BERTC_EFORMAT, "%s: confusion row %d is not an array of %d counts", where, r, k);
        const cJSON *v;
        cJSON_ArrayForEach(v, e) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0) /* strtod reads 1e999 as inf */
                return bertc_errorf(err, BERTC_EFORMAT, "%s: confusion row %d holds something other than a count", where, r);
        }
        r++;
    }
    return 0;
}

/* Reads metrics.jsonl: "step", "epoch" and "val_metrics" lines; other types ("final", and any
 * added later) are skipped. Blank lines are allowed. */
static int read_metrics(run_data *d, const char *path, bertc_error *err) {
    char *buf;
    size_t len;
    int rc = fs_read_all(path, &buf, &len, MAX_METRICS_BYTES, err);
    if (rc) return rc;
    size_t line = 0;
    char where[PATH_MAX + 32];
    for (char *p = buf; p < buf + len && !rc;) {
        char *end = memchr(p, '\n', (size_t)(buf + len - p));
        if (!end) end = buf + len;
        line++;
        size_t n = (size_t)(end - p);
        char *q = p;
        p = end + 1;
        while (n && (q[n - 1] == '\r' || q[n - 1] == ' ' || q[n - 1] == '\t')) n--;
        while (n && (*q == ' ' || *q == '\t')) q++, n--;
        if (!n) continue;
        snprintf(where, sizeof where, "%s: line %zu", path, line);
        /* Ends the line in place (q[n] is the newline, trailing blank or final NUL) so that the
         * parser can insist that nothing follows the object. */
        q[n] = '\0';
        if (strlen(q) != n) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: holds a NUL byte", where);
            break;
        }
        cJSON *j = cJSON_ParseWithOpts(q, NULL, 1);
        if (!cJSON_IsObject(j)) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: %s", where, j ? "not a JSON object" : "not valid JSON");
            cJSON_Delete(j);
            break;
        }
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
        if (!type) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: \"type\" is missing or not a string", where);
        } else if (!strcmp(type, "step")) {
            double step = 0, epoch = 0, loss = 0, lr = 0;
            if (!(rc = need_num(j, "step", 0, &step, where, err)) && !(rc = need_num(j, "epoch", 0, &epoch, where, err)) &&
                !(rc = need_num(j, "loss", 1, &loss, where, err)) && !(rc = need_num(j, "lr", 0, &lr, where, err)) &&
                push_step(d, step, loss, lr))
                rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
        } else if (!strcmp(type, "epoch")) {
            epoch_rec e = {.val_loss = NAN, .val_acc = NAN};
            double epoch = 0;
            if (!(rc = need_num(j, "epoch", 0, &epoch, where, err)) && !(rc = need_num(j, "step", 0, &e.step, where, err)) &&
                !(rc = need_num(j, "train_loss", 1, &e.train_loss, where, err)) &&
                !(rc = need_num(j, "train_accuracy", 1, &e.train_acc, where, err))) {
                if (!(epoch >= 1 && epoch <= 1e7))
                    rc = bertc_errorf(err, BERTC_EFORMAT, "%s: \"epoch\" %g is out of range", where, epoch);
                else
                    e.epoch = (int)epoch;
                int has_loss = cJSON_GetObjectItemCaseSensitive(j, "val_loss") != NULL;
                int has_acc = cJSON_GetObjectItemCaseSensitive(j, "val_accuracy") != NULL;
                if (!rc && (has_loss || has_acc)) {
                    if (!(rc = need_num(j, "val_loss", 1, &e.val_loss, where, err)))
                        rc = need_num(j, "val_accuracy", 1, &e.val_acc, where, err);
                    d->has_val_epochs = 1;
                }
                const cJSON *best = cJSON_GetObjectItemCaseSensitive(j, "best");
                if (!rc && best && !cJSON_IsBool(best))
                    rc = bertc_errorf(err, BERTC_EFORMAT, "%s: \"best\" is not true or false", where);
                e.best = cJSON_IsTrue(best);
                if (!rc && push_epoch(d, &e)) rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
            }
        } else if (!strcmp(type, "val_metrics")) {
            cJSON *m = cJSON_DetachItemFromObjectCaseSensitive(j, "metrics");
            if (!(rc = check_val_metrics(m, where, err))) {
                cJSON_Delete(d->val_metrics);
                d->val_metrics = m;
                m = NULL;
            }
            cJSON_Delete(m);
        }
        cJSON_Delete(j);
    }
    free(buf);
    return rc;
}

static int read_summary(run_data *d, const char *path, bertc_error *err) {
    char *buf;
    size_t len;
    int rc = fs_read_all(path, &buf, &len, MAX_SUMMARY_BYTES, err);
    if (rc) return rc;
    if (strlen(buf) != len) {
        free(buf);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: holds a NUL byte", path);
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(buf, &end, 1); /* nothing but blanks may follow the object */
    if (!j) {
        size_t line = 1;
        for (const char *p = buf; end && p < end && p < buf + len; p++) line += *p == '\n';
        free(buf);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: not valid JSON", path, line);
    }
    free(buf);
    d->summary = j;
    if (!cJSON_IsObject(j)) return bertc_errorf(err, BERTC_EFORMAT, "%s: not a JSON object", path);
    double x;
    const char *nums[] = {"best_epoch", "epochs_run", "steps", "train_seconds", "examples_per_s"};
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++)
        if ((rc = need_num(j, nums[i], 0, &x, path, err))) return rc;
    if (cJSON_HasObjectItem(j, "gap") && (rc = need_num(j, "gap", 1, &x, path, err))) return rc;
    if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(j, "stopped_early")))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: \"stopped_early\" is missing or not true or false", path);
    const char *sets[] = {"train", "val"};
    for (int i = 0; i < 2; i++) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, sets[i]);
        if (!s && i == 1) continue; /* no validation set */
        char where[PATH_MAX + 16];
        snprintf(where, sizeof where, "%s: \"%s\"", path, sets[i]);
        if (!cJSON_IsObject(s)) return bertc_errorf(err, BERTC_EFORMAT, "%s is missing or not an object", where);
        const char *fields[] = {"accuracy", "loss", "n"};
        for (size_t f = 0; f < 3; f++)
            if ((rc = need_num(s, fields[f], f < 2, &x, where, err))) return rc;
    }
    const cJSON *labels = cJSON_GetObjectItemCaseSensitive(j, "labels"), *l;
    if (!cJSON_IsArray(labels)) return bertc_errorf(err, BERTC_EFORMAT, "%s: \"labels\" is missing or not an array", path);
    cJSON_ArrayForEach(l, labels) {
        if (!cJSON_IsString(l)) return bertc_errorf(err, BERTC_EFORMAT, "%s: \"labels\" holds something other than a string", path);
    }
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "hyperparameters")))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: \"hyperparameters\" is missing or not an object", path);
    const char *strs[] = {"bertc_version", "model", "train_data", "val_data"};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, strs[i]);
        if (v && !cJSON_IsString(v)) return bertc_errorf(err, BERTC_EFORMAT, "%s: \"%s\" is not a string", path, strs[i]);
    }
    return 0;
}

/* ---------------------------------------------------------------- axes and number formats */

typedef struct axis {
    double lo, hi, step; /* ticks at the multiples of step in [lo, hi] */
} axis;

/* A "nice" axis over [lo, hi]: a tick step of 1, 2 or 5 times a power of ten, about target ticks,
 * ends rounded out to whole steps. integer: steps of at least 1 (epochs). */
static axis nice_axis(double lo, double hi, int target, int integer) {
    if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi - lo < 1e-12 * fmax(1, fabs(hi))) { /* one value: give it some room */
        double pad = integer ? 1 : (lo == 0 ? 1 : fabs(lo) * 0.1);
        lo -= pad;
        hi += pad;
    }
    double raw = (hi - lo) / target;
    double mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    double step = (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
    if (integer && step < 1) step = 1;
    axis a = {floor(lo / step + 1e-9) * step, ceil(hi / step - 1e-9) * step, step};
    /* Values near the ends of the double range (a corrupt file) can leave no usable step:
     * fall back to [0, 1] rather than loop or print "inf". */
    if (!(isfinite(a.lo) && isfinite(a.hi) && isfinite(a.step) && a.step > 0 && a.hi > a.lo && (a.hi - a.lo) / a.step <= 100))
        a = (axis){0, 1, 0.2};
    return a;
}

/* Drops trailing zeros (and a trailing point) from a decimal in s. */
static void trim_zeros(char *s) {
    char *dot = strchr(s, '.');
    if (!dot) return;
    char *e = s + strlen(s) - 1;
    while (e > dot && *e == '0') *e-- = '\0';
    if (e == dot) *e = '\0';
}

/* A tick label for v on an axis of the given step: as many decimals as the step needs, or
 * "1.5e-5" style for very small or very large numbers (learning rates). */
static void fmt_tick(char *buf, size_t n, double v, double step) {
    if (fabs(v) < step * 1e-6) {
        snprintf(buf, n, "0");
        return;
    }
    if (step < 1e-3 || fabs(v) >= 1e6) {
        int e = (int)floor(log10(fabs(v)));
        double m = v / pow(10, e);
        int dec = e - (int)floor(log10(step) + 1e-9);
        if (dec < 0) dec = 0;
        if (dec > 6) dec = 6;
        char mant[32];
        snprintf(mant, sizeof mant, "%.*f", dec, m);
        trim_zeros(mant);
        snprintf(buf, n, "%se%d", mant, e);
        return;
    }
    int dec = step >= 1 ? 0 : (int)-floor(log10(step) + 1e-9);
    snprintf(buf, n, "%.*f", dec, v);
}

/* A figure for the cards and tables: "—" when not finite. */
static void fmt_num(char *buf, size_t n, double v, int decimals) {
    if (!isfinite(v)) snprintf(buf, n, "\xE2\x80\x94");
    else snprintf(buf, n, "%.*f", decimals, v);
}

static void fmt_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) snprintf(buf, n, "\xE2\x80\x94");
    else if (s >= 1e8) snprintf(buf, n, "%.3g s", s); /* over three years: a corrupt figure, but no int overflow */
    else if (s < 10) snprintf(buf, n, "%.2f s", s);
    else if (s < 60) snprintf(buf, n, "%.1f s", s);
    else if (s < 3600) snprintf(buf, n, "%d min %02d s", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(buf, n, "%d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}

/* ---------------------------------------------------------------- line charts */

#define CHART_W 560
#define CHART_H 320
#define PLOT_L 64  /* room for the y tick labels and the axis title */
#define PLOT_R 20
#define PLOT_T 58  /* title and legend */
#define PLOT_B 50  /* x tick labels and the axis title */

static const char *const COLOR_TRAIN = "#2563eb";
static const char *const COLOR_VAL = "#ea580c";
static const char *const COLOR_BEST = "#16a34a";

typedef struct series {
    const char *name;
    const char *color;
    const double *x, *y;
    size_t n;
    double width;
    double opacity;
    int dashed;
    int markers; /* a dot on every point (per-epoch charts) */
} series;

typedef struct line_chart {
    const char *id, *title, *xlabel, *ylabel;
    const series *s;
    int ns;
    int x_integer;          /* integer x ticks (epochs) */
    int clamp01;            /* keep the y axis inside [0, 1] (accuracies) */
    double x_pad;           /* extra x room each side, in x units (epoch charts: 0.25); < 0: 1.5% of the range */
    const double *vlines;   /* epoch boundaries (x values), dashed */
    size_t nv;
    double mark_x;          /* best epoch, or NaN */
    const char *mark_label;
} line_chart;

typedef struct plot_map {
    double x0, x1, y0, y1; /* data range */
    double l, r, t, b;     /* plot area in pixels */
} plot_map;

/* Pixel coordinates, kept within a few chart sizes of the plot so a wild value (clipped anyway)
 * never prints as a 300-digit number. */
static double clamp_px(double v) { return isnan(v) ? 0 : v > 1e4 ? 1e4 : v < -1e4 ? -1e4 : v; }
static double map_x(const plot_map *m, double x) { return clamp_px(m->l + (x - m->x0) / (m->x1 - m->x0) * (m->r - m->l)); }
static double map_y(const plot_map *m, double y) { return clamp_px(m->b - (y - m->y0) / (m->y1 - m->y0) * (m->b - m->t)); }

/* A series with more points than the plot has pixel columns, drawn as its envelope: one polygon
 * along the highest value of each column and back along the lowest. A 100,000-step run then costs
 * 2 * plot-width points and still shows every spike; a smooth series (the learning rate) has a
 * band of zero height, which its stroke draws as a line. Returns -1 if out of memory. */
static int draw_series_band(sb *b, const plot_map *m, const series *s) {
    int w = (int)(m->r - m->l) + 1;
    double *lo = malloc(2 * (size_t)w * sizeof *lo);
    if (!lo) return -1;
    double *hi = lo + w;
    for (int c = 0; c < w; c++) lo[c] = INFINITY, hi[c] = -INFINITY;
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i])) continue;
        int c = (int)(map_x(m, s->x[i]) - m->l);
        if (c < 0) c = 0;
        if (c >= w) c = w - 1;
        lo[c] = fmin(lo[c], s->y[i]);
        hi[c] = fmax(hi[c], s->y[i]);
    }
    sb_printf(b, "<polygon class=\"series band\" fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"%s\" stroke-opacity=\"%.2f\" stroke-width=\"%.1f\" "
                 "stroke-linejoin=\"round\" points=\"",
              s->color, s->opacity, s->color, s->opacity, s->width);
    for (int c = 0; c < w; c++)
        if (hi[c] >= lo[c]) sb_printf(b, "%.1f,%.1f ", m->l + c + 0.5, map_y(m, hi[c]));
    for (int c = w - 1; c >= 0; c--)
        if (hi[c] >= lo[c]) sb_printf(b, "%.1f,%.1f ", m->l + c + 0.5, map_y(m, lo[c]));
    sb_puts(b, "\"/>\n");
    free(lo);
    return 0;
}

/* Draws one series as polylines, broken where a value is not finite; one with more points than
 * pixel columns as its envelope (draw_series_band). */
static void draw_series_line(sb *b, const plot_map *m, const series *s) {
    if ((double)s->n > m->r - m->l) {
        if (draw_series_band(b, m, s)) b->oom = 1;
        return;
    }
    int open = 0;
    long col = LONG_MIN;
    size_t imin = 0, imax = 0;
    int have = 0;
    char style[160];
    snprintf(style, sizeof style, "fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" stroke-opacity=\"%.2f\"%s", s->color, s->width,
             s->opacity, s->dashed ? " stroke-dasharray=\"5 4\"" : "");
#define FLUSH()                                                                                                     \
    do {                                                                                                            \
        if (have) {                                                                                                 \
            if (!open) sb_printf(b, "<polyline class=\"series\" %s stroke-linejoin=\"round\" points=\"", style), open = 1; \
            size_t first = imin < imax ? imin : imax, second = imin < imax ? imax : imin;                           \
            sb_printf(b, "%.1f,%.1f ", map_x(m, s->x[first]), map_y(m, s->y[first]));                               \
            if (second != first) sb_printf(b, "%.1f,%.1f ", map_x(m, s->x[second]), map_y(m, s->y[second]));        \
            have = 0;                                                                                               \
        }                                                                                                           \
    } while (0)
    for (size_t i = 0; i < s->n; i++) {
        if (!isfinite(s->x[i]) || !isfinite(s->y[i])) {
            FLUSH();
            if (open) sb_puts(b, "\"/>\n"), open = 0;
            continue;
        }
        long c = (long)floor(map_x(m, s->x[i]));
        if (c != col) {
            FLUSH();
            col = c;
        }
        if (!have) imin = imax = i, have = 1;
        if (s->y[i] < s->y[imin]) imin = i;
        if (s->y[i] > s->y[imax]) imax = i;
    }
    FLUSH();
#undef FLUSH
    if (open) sb_puts(b, "\"/>\n");
    if (s->markers)
        for (size_t i = 0; i < s->n; i++)
            if (isfinite(s->x[i]) && isfinite(s->y[i]))
                sb_printf(b, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3.2\" fill=\"#fff\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                          map_x(m, s->x[i]), map_y(m, s->y[i]), s->color);
}

static void draw_line_chart(sb *b, const line_chart *c) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int k = 0; k < c->ns; k++)
        for (size_t i = 0; i < c->s[k].n; i++) {
            double x = c->s[k].x[i], y = c->s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, y), yhi = fmax(yhi, y);
        }
    int empty = !(xlo <= xhi);
    if (empty) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    /* A little headroom so the curves do not run along the frame. */
    double ypad = (yhi - ylo) * 0.05;
    /* ...but never below zero for data that cannot be negative (losses, rates, accuracies). */
    axis ya = nice_axis(ylo >= 0 ? fmax(ylo - ypad, 0) : ylo - ypad, yhi + ypad, 5, 0);
    if (c->clamp01) ya.lo = fmax(ya.lo, 0), ya.hi = fmin(ya.hi, 1);
    if (ya.hi <= ya.lo) ya.hi = ya.lo + ya.step;
    axis xa = nice_axis(xlo, xhi, 6, c->x_integer);
    /* The x range is the data's own (ticks inside it), padded for the epoch charts' end markers. */
    double xpad = c->x_pad >= 0 ? c->x_pad : fmax(0.015 * (xhi - xlo), 0.3);
    plot_map m = {xlo - xpad, xhi + xpad, ya.lo, ya.hi, PLOT_L, CHART_W - PLOT_R, PLOT_T, CHART_H - PLOT_B};
    if (m.x1 - m.x0 < 1e-12) m.x0 -= 0.5, m.x1 += 0.5;
    /* A best epoch outside the curves (a summary that disagrees with metrics.jsonl) is not marked. */
    double mark_x = c->mark_x >= m.x0 && c->mark_x <= m.x1 ? c->mark_x : NAN;

    sb_printf(b, "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" role=\"img\">\n", c->id,
              CHART_W, CHART_H);
    sb_puts(b, "<title>");
    sb_esc(b, c->title);
    sb_puts(b, "</title>\n");
    sb_printf(b, "<text class=\"ctitle\" x=\"%d\" y=\"22\">", PLOT_L - 44);
    sb_esc(b, c->title);
    sb_puts(b, "</text>\n");

    /* Legend, left to right under the title. */
    double lx = PLOT_L - 44;
    for (int k = 0; k < c->ns; k++) {
        const series *s = &c->s[k];
        sb_printf(b, "<g class=\"legend\"><line x1=\"%.1f\" y1=\"40\" x2=\"%.1f\" y2=\"40\" stroke=\"%s\" stroke-width=\"3\"%s/>", lx,
                  lx + 22, s->color, s->dashed ? " stroke-dasharray=\"5 4\"" : "");
        sb_printf(b, "<text x=\"%.1f\" y=\"44\">", lx + 28);
        sb_esc(b, s->name);
        sb_puts(b, "</text></g>\n");
        lx += 28 + 6.6 * utf8_chars(s->name) + 22;
    }
    if (isfinite(mark_x) && c->mark_label) {
        sb_printf(b, "<g class=\"legend\"><line x1=\"%.1f\" y1=\"40\" x2=\"%.1f\" y2=\"40\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"3 3\"/>", lx,
                  lx + 22, COLOR_BEST);
        sb_printf(b, "<text x=\"%.1f\" y=\"44\">", lx + 28);
        sb_esc(b, c->mark_label);
        sb_puts(b, "</text></g>\n");
    }

    /* Grid and y ticks. */
    sb_puts(b, "<g class=\"grid\">\n");
    for (int i = 0; i <= 100 && ya.lo + i * ya.step <= ya.hi + ya.step * 1e-6; i++) {
        double t = ya.lo + i * ya.step, y = map_y(&m, t);
        char lab[32];
        fmt_tick(lab, sizeof lab, t, ya.step);
        sb_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
                  m.l, y, m.r, y, m.l - 6, y + 4, lab);
    }
    double first = ceil(m.x0 / xa.step - 1e-9) * xa.step;
    for (int i = 0; i <= 100 && first + i * xa.step <= m.x1 + xa.step * 1e-6; i++) {
        double t = first + i * xa.step, x = map_x(&m, t);
        char lab[32];
        fmt_tick(lab, sizeof lab, t, xa.step);
        sb_printf(b, "<line class=\"xtick\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/><text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                  x, m.b, x, m.b + 5, x, m.b + 18, lab);
    }
    sb_puts(b, "</g>\n");

    /* Epoch boundaries: a dashed line after each epoch but the last, and the epoch numbers along the top. */
    if (c->nv) {
        sb_puts(b, "<g class=\"epochs\">\n");
        double prev = m.x0;
        int label_every = c->nv > 12 ? (int)((c->nv + 11) / 12) : 1;
        for (size_t i = 0; i < c->nv; i++) {
            double xv = c->vlines[i];
            if (i + 1 < c->nv && xv > m.x0 && xv < m.x1)
                sb_printf(b, "<line class=\"epoch-boundary\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", map_x(&m, xv), m.t, map_x(&m, xv), m.b);
            if ((i + 1) % label_every == 0 || c->nv == 1)
                sb_printf(b, "<text class=\"epoch-label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">E%zu</text>\n",
                          (map_x(&m, fmax(prev, m.x0)) + map_x(&m, fmin(xv, m.x1))) / 2, m.t + 12, i + 1);
            prev = xv;
        }
        sb_puts(b, "</g>\n");
    }
    if (isfinite(mark_x))
        sb_printf(b, "<line class=\"best-marker\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\" stroke-dasharray=\"3 3\"/>\n",
                  map_x(&m, mark_x), m.t, map_x(&m, mark_x), m.b, COLOR_BEST);

    /* Frame, series, axis titles. */
    sb_printf(b, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", m.l, m.t, m.r - m.l, m.b - m.t);
    /* Series are clipped to the plot (points on its edge keep their full marker). */
    sb_printf(b, "<clipPath id=\"clip-%s\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath>\n<g clip-path=\"url(#clip-%s)\">\n",
              c->id, m.l - 5, m.t - 5, m.r - m.l + 10, m.b - m.t + 10, c->id);
    for (int k = 0; k < c->ns; k++) draw_series_line(b, &m, &c->s[k]);
    sb_puts(b, "</g>\n");
    if (empty)
        sb_printf(b, "<text class=\"empty\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">no data</text>\n", (m.l + m.r) / 2, (m.t + m.b) / 2);
    sb_printf(b, "<text class=\"alabel\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", (m.l + m.r) / 2, CHART_H - 12);
    sb_esc(b, c->xlabel);
    sb_printf(b, "</text>\n<text class=\"alabel\" transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">", (m.t + m.b) / 2);
    sb_esc(b, c->ylabel);
    sb_puts(b, "</text>\n</svg>\n");
}

/* ---------------------------------------------------------------- confusion matrix */

static const char *class_label(const cJSON *row, char *buf, size_t n) {
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(row, "label");
    if (cJSON_IsString(l)) return l->valuestring;
    snprintf(buf, n, "%g", cJSON_IsNumber(l) ? l->valuedouble : 0.0);
    return buf;
}

/* The grid: rows are true labels, columns predictions; each cell shaded by its share of its row
 * (so the diagonal reads as per-class recall), with the count written in it. */
static void draw_confusion(sb *b, const cJSON *vm) {
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(vm, "per_class");
    const cJSON *cf = cJSON_GetObjectItemCaseSensitive(vm, "confusion");
    int k = cJSON_GetArraySize(pc);
    int longest = 1;
    for (int i = 0; i < k; i++) {
        char nb[32];
        int len = utf8_chars(class_label(cJSON_GetArrayItem(pc, i), nb, sizeof nb));
        if (len > longest) longest = len;
    }
    int max_chars = longest > 18 ? 18 : longest;
    double cell = 480.0 / k;
    if (cell > 96) cell = 96;
    if (cell < 14) cell = 14;
    double font = cell >= 48 ? 14 : cell >= 28 ? 11 : 8;
    int show_share = cell >= 60;
    double left = 40 + 7.2 * max_chars + 12; /* the "true" title, then the row labels */
    double top = 16;
    double gw = cell * k;
    /* Column labels under the grid, turned when they do not fit their cell. */
    int turned = 7.2 * max_chars > cell - 4;
    double bottom = turned ? 7.2 * max_chars * 0.75 + 26 : 34;
    double w = left + gw + 20, h = top + gw + bottom + 18;
    sb_printf(b, "<svg id=\"chart-confusion\" class=\"chart confusion\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %.0f %.0f\" style=\"max-width:%.0fpx\" role=\"img\">\n",
              w, h, w * 1.1);
    sb_puts(b, "<title>Confusion matrix (validation, best weights)</title>\n");
    for (int i = 0; i < k; i++) {
        const cJSON *row = cJSON_GetArrayItem(cf, i);
        double sum = 0;
        for (int j = 0; j < k; j++) sum += cJSON_GetArrayItem(row, j)->valuedouble;
        for (int j = 0; j < k; j++) {
            double v = cJSON_GetArrayItem(row, j)->valuedouble;
            double f = sum > 0 ? v / sum : 0;
            if (!(f >= 0 && f <= 1)) f = 0; /* a row summing to more than a double holds */
            /* White to blue-700 (#1d4ed8). */
            int r = (int)lround(255 - f * (255 - 0x1d)), g = (int)lround(255 - f * (255 - 0x4e)), bl = (int)lround(255 - f * (255 - 0xd8));
            double x = left + j * cell, y = top + i * cell;
            char nb1[32], nb2[32];
            sb_printf(b, "<rect class=\"cell\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#%02x%02x%02x\"><title>true ", x, y,
                      cell, cell, r, g, bl);
            sb_esc(b, class_label(cJSON_GetArrayItem(pc, i), nb1, sizeof nb1));
            sb_puts(b, ", predicted ");
            sb_esc(b, class_label(cJSON_GetArrayItem(pc, j), nb2, sizeof nb2));
            sb_printf(b, ": %.0f (%.1f%% of the row)</title></rect>\n", v, 100 * f);
            if (cell >= 20) {
                const char *fg = f > 0.5 ? "#fff" : "#111827";
                sb_printf(b, "<text class=\"count\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\" font-size=\"%.0f\">%.0f</text>\n",
                          x + cell / 2, y + cell / 2 + (show_share ? 0 : font * 0.35), fg, font, v);
                if (show_share)
                    sb_printf(b, "<text class=\"share\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"%s\" font-size=\"11\">%.1f%%</text>\n",
                              x + cell / 2, y + cell / 2 + 16, fg, 100 * f);
            }
        }
    }
    sb_printf(b, "<rect class=\"frame\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>\n", left, top, gw, gw);
    for (int i = 0; i < k; i++) {
        char nb[32];
        const char *name = class_label(cJSON_GetArrayItem(pc, i), nb, sizeof nb);
        sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", left - 6, top + i * cell + cell / 2 + 4);
        sb_esc_trunc(b, name, max_chars);
        sb_puts(b, "</text>\n");
        double cx = left + i * cell + cell / 2, cy = top + gw + 16;
        if (turned)
            sb_printf(b, "<text class=\"tick\" transform=\"translate(%.1f %.1f) rotate(-40)\" text-anchor=\"end\">", cx + 4, cy - 6);
        else
            sb_printf(b, "<text class=\"tick\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", cx, cy);
        sb_esc_trunc(b, name, max_chars);
        sb_puts(b, "</text>\n");
    }
    sb_printf(b, "<text class=\"alabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">predicted label</text>\n", left + gw / 2, h - 8);
    sb_printf(b, "<text class=\"alabel\" transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">true label</text>\n", top + gw / 2);
    sb_puts(b, "</svg>\n");
}

static void per_class_table(sb *b, const cJSON *vm) {
    const cJSON *pc = cJSON_GetObjectItemCaseSensitive(vm, "per_class"), *row;
    sb_puts(b, "<table id=\"per-class\" class=\"data\">\n<thead><tr><th>label</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr></thead>\n<tbody>\n");
    cJSON_ArrayForEach(row, pc) {
        char nb[32], p[32], r[32], f[32];
        double x = 0;
        get_num(row, "precision", 1, &x), fmt_num(p, sizeof p, x, 4);
        get_num(row, "recall", 1, &x), fmt_num(r, sizeof r, x, 4);
        get_num(row, "f1", 1, &x), fmt_num(f, sizeof f, x, 4);
        get_num(row, "support", 0, &x);
        sb_puts(b, "<tr><td>");
        sb_esc(b, class_label(row, nb, sizeof nb));
        sb_printf(b, "</td><td>%s</td><td>%s</td><td>%s</td><td>%.0f</td></tr>\n", p, r, f, x);
    }
    double acc = NAN, mf1 = NAN, n = 0;
    get_num(vm, "accuracy", 1, &acc);
    get_num(vm, "macro_f1", 1, &mf1);
    get_num(vm, "n", 0, &n);
    char a[32], m[32];
    fmt_num(a, sizeof a, acc, 4);
    fmt_num(m, sizeof m, mf1, 4);
    sb_printf(b, "</tbody>\n<tfoot><tr><td>accuracy</td><td></td><td></td><td>%s</td><td>%.0f</td></tr>\n"
                 "<tr><td>macro F1</td><td></td><td></td><td>%s</td><td>%.0f</td></tr></tfoot>\n</table>\n",
              a, n, m, n);
}

/* ---------------------------------------------------------------- the page */

static const char *const PAGE_CSS =
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#f4f5f7;color:#1f2937;font:14px/1.45 -apple-system,BlinkMacSystemFont,\"Segoe UI\",Roboto,"
    "\"Helvetica Neue\",Arial,\"Noto Sans\",\"DejaVu Sans\",sans-serif}\n"
    "main{max-width:1180px;margin:0 auto;padding:28px 32px 48px}\n"
    "h1{font-size:24px;margin:0 0 4px;font-weight:650}\n"
    "h2{font-size:17px;margin:30px 0 12px;font-weight:650}\n"
    ".sub{color:#6b7280;font-size:13px;margin:0;word-break:break-all}\n"
    ".cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(165px,1fr));gap:12px}\n"
    ".card{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:12px 14px}\n"
    ".card .k{font-size:11px;color:#6b7280;text-transform:uppercase;letter-spacing:.05em}\n"
    ".card .v{font-size:22px;font-weight:600;font-variant-numeric:tabular-nums;margin-top:2px}\n"
    ".card .d{font-size:12px;color:#6b7280}\n"
    ".charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px}\n"
    ".panel{background:#fff;border:1px solid #e5e7eb;border-radius:10px;padding:10px 12px}\n"
    ".panel p.cap{margin:2px 6px 4px;color:#6b7280;font-size:12px}\n"
    ".note{background:#fffbeb;border:1px solid #fcd34d;border-radius:10px;padding:10px 14px;margin:16px 0;color:#78350f}\n"
    ".split{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}\n"
    ".split>.panel{flex:1 1 420px}\n"
    ".split>.panel.wide{flex-basis:100%}\n"
    "svg.chart{width:100%;height:auto;display:block}\n"
    "svg.confusion{margin:0 auto}\n"
    "svg text{font-family:inherit}\n"
    ".ctitle{font-size:15px;font-weight:600;fill:#111827}\n"
    ".legend text{font-size:12px;fill:#374151}\n"
    ".grid line{stroke:#eceef1;stroke-width:1}\n"
    ".grid line.xtick{stroke:#9ca3af}\n"
    ".tick{font-size:11px;fill:#6b7280;font-variant-numeric:tabular-nums}\n"
    ".alabel{font-size:12px;fill:#4b5563}\n"
    ".frame{fill:none;stroke:#9ca3af;stroke-width:1}\n"
    ".epoch-boundary{stroke:#9ca3af;stroke-width:1;stroke-dasharray:4 4}\n"
    ".epoch-label{font-size:10px;fill:#9ca3af}\n"
    ".empty{font-size:13px;fill:#9ca3af}\n"
    ".cell{stroke:#fff;stroke-width:1}\n"
    ".count{font-weight:600;font-variant-numeric:tabular-nums}\n"
    "table.data{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\n"
    "table.data th,table.data td{padding:5px 10px;border-bottom:1px solid #eceef1;text-align:right}\n"
    "table.data th:first-child,table.data td:first-child{text-align:left;word-break:break-word}\n"
    "table.data th{font-size:12px;color:#6b7280;font-weight:600}\n"
    "table.data tfoot td{color:#4b5563;border-bottom:none}\n"
    "dl.hp{display:grid;grid-template-columns:repeat(auto-fill,minmax(250px,1fr));column-gap:28px;margin:4px 6px}\n"
    "dl.hp div{display:flex;justify-content:space-between;align-items:baseline;gap:12px;padding:5px 0;border-bottom:1px solid #eceef1}\n"
    "dl.hp dt{color:#4b5563}\n"
    "dl.hp dd{margin:0;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,\"DejaVu Sans Mono\",monospace;font-size:13px;"
    "text-align:right;word-break:break-all}\n"
    "footer{margin-top:32px;color:#9ca3af;font-size:12px}\n";

static void card(sb *b, const char *key, const char *value, const char *detail) {
    sb_puts(b, "<div class=\"card\"><div class=\"k\">");
    sb_esc(b, key);
    sb_puts(b, "</div><div class=\"v\">");
    sb_esc(b, value);
    sb_puts(b, "</div>");
    if (detail) {
        sb_puts(b, "<div class=\"d\">");
        sb_esc(b, detail);
        sb_puts(b, "</div>");
    }
    sb_puts(b, "</div>\n");
}

static double summary_num(const cJSON *o, const char *key) {
    double x;
    return get_num(o, key, 1, &x) ? NAN : x;
}

static void final_figures(sb *b, const run_data *d) {
    const cJSON *s = d->summary;
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(s, "train"), *va = cJSON_GetObjectItemCaseSensitive(s, "val");
    char v[64], det[96];
    /* With --no-eval-train the training set is never evaluated after training: n is 0. */
    int train_eval = summary_num(tr, "n") > 0;
    sb_puts(b, "<h2>Final figures</h2>\n<div class=\"cards\" id=\"final-figures\">\n");
    if (va) {
        fmt_num(v, sizeof v, summary_num(va, "accuracy"), 4);
        snprintf(det, sizeof det, "%.0f examples", summary_num(va, "n"));
        card(b, "val accuracy", v, det);
        fmt_num(v, sizeof v, summary_num(va, "loss"), 4);
        card(b, "val loss", v, NULL);
        if (cJSON_HasObjectItem(va, "macro_f1")) {
            fmt_num(v, sizeof v, summary_num(va, "macro_f1"), 4);
            card(b, "val macro F1", v, NULL);
        }
    }
    if (train_eval) {
        fmt_num(v, sizeof v, summary_num(tr, "accuracy"), 4);
        snprintf(det, sizeof det, "%.0f examples", summary_num(tr, "n"));
        card(b, "train accuracy", v, det);
        fmt_num(v, sizeof v, summary_num(tr, "loss"), 4);
        card(b, "train loss", v, NULL);
    } else {
        card(b, "train accuracy", "\xE2\x80\x94", "not evaluated after training");
    }
    if (cJSON_HasObjectItem(s, "gap")) {
        fmt_num(v, sizeof v, summary_num(s, "gap"), 4);
        card(b, "train \xE2\x88\x92 val accuracy", v, "generalisation gap");
    }
    /* Printed with %.0f, not cast to int: a corrupt file may hold any double. */
    double epochs_run = summary_num(s, "epochs_run");
    if (va) {
        snprintf(v, sizeof v, "%.0f", summary_num(s, "best_epoch"));
        snprintf(det, sizeof det, "of %.0f run", epochs_run);
        card(b, "best epoch", v, det);
    } else {
        snprintf(v, sizeof v, "%.0f", epochs_run);
        card(b, "epochs run", v, NULL);
    }
    card(b, "stopped early", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "stopped_early")) ? "yes" : "no", NULL);
    fmt_duration(v, sizeof v, summary_num(s, "train_seconds"));
    snprintf(det, sizeof det, "%.0f optimiser steps", summary_num(s, "steps"));
    card(b, "training time", v, det);
    fmt_num(v, sizeof v, summary_num(s, "examples_per_s"), 1);
    card(b, "examples / s", v, "training throughput");
    sb_puts(b, "</div>\n");
}

/* Hyperparameters as key/value rows flowing in columns. Whole numbers print whole (a 64-bit seed
 * included); others with 7 significant digits, as the float options they came from hold. */
static void hyperparameter_table(sb *b, const cJSON *hp) {
    sb_puts(b, "<dl id=\"hyperparameters\" class=\"hp\">\n");
    const cJSON *v;
    cJSON_ArrayForEach(v, hp) {
        sb_puts(b, "<div><dt>");
        sb_esc(b, v->string ? v->string : "");
        sb_puts(b, "</dt><dd>");
        if (cJSON_IsNumber(v)) {
            double x = v->valuedouble;
            if (x == floor(x) && fabs(x) < 9007199254740992.0) sb_printf(b, "%.0f", x);
            else sb_printf(b, "%.7g", x);
        } else if (cJSON_IsString(v)) {
            sb_esc(b, v->valuestring);
        } else if (cJSON_IsBool(v)) {
            sb_puts(b, cJSON_IsTrue(v) ? "true" : "false");
        } else if (cJSON_IsNull(v)) {
            sb_puts(b, "\xE2\x80\x94");
        } else {
            char *text = cJSON_PrintUnformatted(v);
            if (text) sb_esc(b, text);
            else b->oom = 1;
            free(text);
        }
        sb_puts(b, "</dd></div>\n");
    }
    sb_puts(b, "</dl>\n");
}

static void run_line(sb *b, const cJSON *s, const char *key, const char *name) {
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, key));
    if (!v) return;
    sb_puts(b, "<p class=\"sub\">");
    sb_esc(b, name);
    sb_puts(b, ": ");
    sb_esc(b, v);
    sb_puts(b, "</p>\n");
}

static void build_page(sb *b, const run_data *d, const char *run_dir) {
    const cJSON *s = d->summary;
    int has_val = cJSON_HasObjectItem(s, "val") || d->has_val_epochs;
    sb_puts(b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
               "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>bertc training report: ");
    sb_esc(b, run_dir);
    sb_printf(b, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<main>\n<h1>Training report</h1>\n", PAGE_CSS);
    run_line(b, s, "model", "model");
    run_line(b, s, "train_data", "training data");
    run_line(b, s, "val_data", "validation data");
    sb_puts(b, "<p class=\"sub\">labels: ");
    const cJSON *l;
    int first = 1;
    cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(s, "labels")) {
        if (!first) sb_puts(b, ", ");
        sb_puts(b, "<span class=\"label\">");
        sb_esc(b, l->valuestring);
        sb_puts(b, "</span>");
        first = 0;
    }
    sb_puts(b, "</p>\n");

    if (!has_val)
        sb_puts(b, "<div class=\"note\" id=\"no-validation\">This run had no validation set: the validation curves, the best-epoch "
                   "choice and the confusion matrix are not available. Pass <code>--val</code> to <code>bertc train</code> to get them.</div>\n");
    final_figures(b, d);

    /* Per-step and per-epoch series as plain arrays for the charts. */
    size_t ne = d->n_epochs;
    double *ex = malloc((ne ? ne : 1) * 5 * sizeof *ex);
    if (!ex) {
        b->oom = 1;
        return;
    }
    double *etl = ex + ne, *eta = ex + 2 * ne, *evl = ex + 3 * ne, *eva = ex + 4 * ne;
    double *bounds = malloc((ne ? ne : 1) * sizeof *bounds);
    if (!bounds) {
        free(ex);
        b->oom = 1;
        return;
    }
    for (size_t i = 0; i < ne; i++) {
        ex[i] = d->ep[i].epoch;
        etl[i] = d->ep[i].train_loss;
        eta[i] = d->ep[i].train_acc;
        evl[i] = d->ep[i].val_loss;
        eva[i] = d->ep[i].val_acc;
        bounds[i] = d->ep[i].step + 0.5; /* between an epoch's last step and the next one's first */
    }
    double best = has_val ? summary_num(s, "best_epoch") : NAN;
    if (!(best >= 1)) best = NAN;
    char best_label[48];
    snprintf(best_label, sizeof best_label, "best epoch (%.0f)", isfinite(best) ? best : 0.0);

    sb_puts(b, "<h2>Training curves</h2>\n<div class=\"charts\">\n");
    /* (a) loss per step, with a smoothed line over long runs where the raw one is noisy. */
    double *smooth = NULL;
    int ns = 1;
    series step_loss[2] = {{"loss per step", COLOR_TRAIN, d->step, d->loss, d->n_steps, 1.6, 1, 0, d->n_steps <= 40}};
    if (d->n_steps >= 50 && (smooth = malloc(d->n_steps * sizeof *smooth))) {
        /* Debiased exponential moving average; its span grows with the run (about n/25 steps). */
        double beta = 1 - 25.0 / (double)d->n_steps, avg = 0, w = 0;
        for (size_t i = 0; i < d->n_steps; i++) {
            if (isfinite(d->loss[i])) avg = beta * avg + (1 - beta) * d->loss[i], w = beta * w + (1 - beta);
            smooth[i] = w > 0 ? avg / w : NAN;
        }
        step_loss[0].color = "#93b4f5";
        step_loss[0].opacity = 0.8;
        step_loss[0].width = 1;
        step_loss[1] = (series){"smoothed", COLOR_TRAIN, d->step, smooth, d->n_steps, 2.2, 1, 0, 0};
        ns = 2;
    }
    line_chart c = {"chart-step-loss", "Training loss per step", "step", "loss", step_loss, ns, 1, 0, -1, bounds, ne, NAN, NULL};
    sb_puts(b, "<div class=\"panel\">\n");
    draw_line_chart(b, &c);
    sb_puts(b, "<p class=\"cap\">Mean loss of each optimiser step (training mode); dashed lines mark the epoch boundaries.</p>\n</div>\n");
    free(smooth);

    /* (b) per-epoch loss, (c) per-epoch accuracy. */
    int dots = ne <= 60; /* a dot per epoch while they stay apart */
    series eloss[2] = {{"train (running)", COLOR_TRAIN, ex, etl, ne, 2, 1, 0, dots}, {"validation", COLOR_VAL, ex, evl, ne, 2, 1, 0, dots}};
    c = (line_chart){"chart-epoch-loss", "Loss per epoch", "epoch", "loss", eloss, d->has_val_epochs ? 2 : 1, 1, 0, 0.25, NULL, 0, best,
                     isfinite(best) ? best_label : NULL};
    sb_puts(b, "<div class=\"panel\">\n");
    draw_line_chart(b, &c);
    sb_puts(b, "<p class=\"cap\">Training loss is the running mean over the epoch's batches; validation loss is measured after each epoch.</p>\n</div>\n");
    series eacc[2] = {{"train (running)", COLOR_TRAIN, ex, eta, ne, 2, 1, 0, dots}, {"validation", COLOR_VAL, ex, eva, ne, 2, 1, 0, dots}};
    c = (line_chart){"chart-epoch-accuracy", "Accuracy per epoch", "epoch", "accuracy", eacc, d->has_val_epochs ? 2 : 1, 1, 1, 0.25, NULL, 0,
                     best, isfinite(best) ? best_label : NULL};
    sb_puts(b, "<div class=\"panel\">\n");
    draw_line_chart(b, &c);
    sb_puts(b, "<p class=\"cap\">Training accuracy is counted on the training-mode predictions during the epoch (dropout on); "
               "the final eval-mode figure is in the cards above.</p>\n</div>\n");

    /* (d) learning rate. */
    series lr = {"learning rate", "#7c3aed", d->step, d->lr, d->n_steps, 2, 1, 0, 0};
    c = (line_chart){"chart-lr", "Learning-rate schedule", "step", "learning rate", &lr, 1, 1, 0, -1, bounds, ne, NAN, NULL};
    sb_puts(b, "<div class=\"panel\">\n");
    draw_line_chart(b, &c);
    sb_puts(b, "<p class=\"cap\">The rate each optimiser step used.</p>\n</div>\n</div>\n");
    free(ex);
    free(bounds);

    /* (e) confusion matrix and per-class table. */
    if (d->val_metrics) {
        int k = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d->val_metrics, "per_class"));
        /* Beyond a few classes the grid needs the page's full width to stay legible. */
        sb_printf(b, "<h2>Validation: confusion matrix and per-class figures (best weights)</h2>\n<div class=\"split\">\n<div class=\"panel%s\">\n",
                  k > 4 ? " wide" : "");
        if (k <= MAX_GRID_CLASSES) {
            draw_confusion(b, d->val_metrics);
            sb_puts(b, "<p class=\"cap\">Rows are the true labels, columns the predictions; shading is the share of the row.</p>\n");
        } else {
            sb_printf(b, "<p class=\"cap\" id=\"confusion-omitted\">The confusion matrix of %d classes is not drawn (at most %d are); "
                         "it is in metrics.jsonl.</p>\n", k, MAX_GRID_CLASSES);
        }
        sb_puts(b, "</div>\n<div class=\"panel\">\n");
        per_class_table(b, d->val_metrics);
        sb_puts(b, "</div>\n</div>\n");
    } else if (has_val) {
        sb_puts(b, "<div class=\"note\" id=\"no-confusion\">metrics.jsonl holds no validation metrics line, so there is no confusion matrix.</div>\n");
    }

    /* (f) hyperparameters. */
    sb_puts(b, "<h2>Hyperparameters</h2>\n<div class=\"panel\">\n");
    hyperparameter_table(b, cJSON_GetObjectItemCaseSensitive(s, "hyperparameters"));
    sb_puts(b, "</div>\n<footer>Written by bertc");
    const char *ver = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "bertc_version"));
    if (ver) {
        sb_puts(b, " ");
        sb_esc(b, ver);
    }
    sb_puts(b, " from metrics.jsonl and summary.json.</footer>\n</main>\n</body>\n</html>\n");
}

int report_write_html(const char *run_dir, bertc_error *err) {
    if (!run_dir || !*run_dir) return bertc_errorf(err, BERTC_EINVAL, "report: no run folder given");
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir) >= (int)sizeof path)
        return bertc_errorf(err, BERTC_EINVAL, "%s: path too long", run_dir);
    run_data d = {0};
    int rc = read_metrics(&d, path, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/summary.json", run_dir);
        rc = read_summary(&d, path, err);
    }
    if (!rc) {
        sb b = {0};
        build_page(&b, &d, run_dir);
        snprintf(path, sizeof path, "%s/report.html", run_dir);
        if (b.oom) rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
        else rc = fs_write_atomic(path, b.p, b.n, err);
        free(b.p);
    }
    run_data_free(&d);
    return rc;
}
