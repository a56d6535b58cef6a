/* The search space: parsing a sweep file and planning the trials (grid, random). */
#include "sweep/sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

/* Settings that bertc sweep gives each trial itself. */
static const char *const RESERVED[] = {"out", "resume", "threads", "recipe", "stop-after-epoch", "summary", "quiet", NULL};

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static int parse_number(const char *s, double *v) {
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    return errno || end == s || *end || !isfinite(*v) ? -1 : 0;
}

void sweep_space_free(sweep_space *s) {
    for (int i = 0; i < s->n_base; i++) {
        free(s->base[i].key);
        free(s->base[i].value);
    }
    for (int i = 0; i < s->n_dims; i++) {
        free(s->dims[i].key);
        for (int j = 0; j < s->dims[i].n_choices; j++) free(s->dims[i].choices[j]);
        free(s->dims[i].choices);
    }
    free(s->base);
    free(s->dims);
    memset(s, 0, sizeof *s);
}

static int has_key(const sweep_space *s, const char *key) {
    for (int i = 0; i < s->n_base; i++)
        if (!strcmp(s->base[i].key, key)) return 1;
    for (int i = 0; i < s->n_dims; i++)
        if (!strcmp(s->dims[i].key, key)) return 1;
    return 0;
}

int sweep_space_set(sweep_space *s, const char *key, const char *value, bertc_error *err) {
    for (int i = 0; i < s->n_dims; i++)
        if (!strcmp(s->dims[i].key, key))
            return bertc_errorf(err, BERTC_EINVAL, "'%s' is a searched dimension of the sweep file; it cannot also be set", key);
    for (int i = 0; i < s->n_base; i++)
        if (!strcmp(s->base[i].key, key)) {
            char *v = value ? strdup(value) : NULL;
            if (value && !v) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
            free(s->base[i].value);
            s->base[i].value = v;
            return 0;
        }
    sweep_setting *nb = realloc(s->base, (size_t)(s->n_base + 1) * sizeof *nb);
    if (!nb) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    s->base = nb;
    sweep_setting *b = &s->base[s->n_base];
    b->key = strdup(key);
    b->value = value ? strdup(value) : NULL;
    if (!b->key || (value && !b->value)) {
        free(b->key);
        free(b->value);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    s->n_base++;
    return 0;
}

/* "name(a, b)" for name in log, linear, int: the two numbers. 1 when it is such a form, 0 when
 * not, -1 when malformed. */
static int parse_range(const char *v, sweep_dim *d) {
    static const struct { const char *name; sweep_dim_kind kind; } forms[] = {
        {"log(", SWEEP_LOG}, {"linear(", SWEEP_LINEAR}, {"int(", SWEEP_INT}};
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++) {
        size_t n = strlen(forms[f].name);
        if (strncmp(v, forms[f].name, n)) continue;
        size_t len = strlen(v);
        if (len < n + 1 || v[len - 1] != ')') return -1;
        char inner[256];
        if (len - n - 1 >= sizeof inner) return -1;
        memcpy(inner, v + n, len - n - 1);
        inner[len - n - 1] = '\0';
        char *comma = strchr(inner, ',');
        if (!comma || strchr(comma + 1, ',')) return -1;
        *comma = '\0';
        if (parse_number(trim(inner), &d->lo) || parse_number(trim(comma + 1), &d->hi)) return -1;
        d->kind = forms[f].kind;
        return 1;
    }
    return 0;
}

int sweep_space_parse(sweep_space *s, const char *text, const char *path, bertc_error *err) {
    memset(s, 0, sizeof *s);
    int rc = 0;
    size_t lineno = 0;
    const char *p = text;
    while (*p && !rc) {
        lineno++;
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        char line[4096];
        if (len >= sizeof line) { /* (break, not return: the settings read so far are freed below) */
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: too long (more than %zu bytes)", path, lineno,
                              sizeof line - 1);
            break;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *l = trim(line);
        if (!*l) continue;
        char *key = l, *val = NULL;
        char *sep = strpbrk(l, "= \t");
        if (sep) {
            int was_eq = *sep == '=';
            *sep = '\0';
            val = trim(sep + 1);
            if (!was_eq && *val == '=') val = trim(val + 1);
            if (!*val) val = NULL;
        }
        key = trim(key);
        if (!strncmp(key, "--", 2)) key += 2;
        if (!*key) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: missing setting name", path, lineno);
            break;
        }
        for (const char *const *r = RESERVED; *r; r++)
            if (!strcmp(key, *r)) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s' is set by bertc sweep for each trial", path, lineno, key);
        if (!rc && has_key(s, key)) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s' is set twice", path, lineno, key);
        if (rc) break;
        sweep_dim d = {0};
        int range = val ? parse_range(val, &d) : 0;
        if (range < 0) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s': a range is log(A, B), linear(A, B) or int(A, B)", path, lineno, val);
            break;
        }
        if (range) {
            if (!(d.lo <= d.hi)) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s': the range's low end is above its high end", path, lineno, key);
            else if (d.kind == SWEEP_LOG && !(d.lo > 0)) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s': a log range needs positive ends", path, lineno, key);
            else if (d.kind == SWEEP_INT && (d.lo != floor(d.lo) || d.hi != floor(d.hi) || fabs(d.lo) > 1e9 || fabs(d.hi) > 1e9))
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s': int(A, B) needs whole numbers", path, lineno, key);
            if (rc) break;
        } else if (val && *val == '"') {
            size_t vl = strlen(val);
            if (vl < 2 || val[vl - 1] != '"') {
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: unterminated quote", path, lineno);
                break;
            }
            val[vl - 1] = '\0';
            val++;
        } else if (val && strchr(val, ',')) {
            d.kind = SWEEP_CHOICE;
            /* split by hand: strtok would pass over an empty item ("a,,b", "a,b,") */
            for (char *item = val; item && !rc;) {
                char *comma = strchr(item, ',');
                if (comma) *comma = '\0';
                char *t = trim(item);
                item = comma ? comma + 1 : NULL;
                if (!*t) {
                    rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s': an empty value in the list", path, lineno, key);
                    break;
                }
                char **nc = realloc(d.choices, (size_t)(d.n_choices + 1) * sizeof *nc);
                if (nc) d.choices = nc;
                if (!nc || !(nc[d.n_choices] = strdup(t))) {
                    rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
                    break;
                }
                d.n_choices++;
            }
            if (!rc && d.n_choices < 2) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: '%s': a list needs two values or more", path, lineno, key);
            if (rc) {
                for (int j = 0; j < d.n_choices; j++) free(d.choices[j]);
                free(d.choices);
                break;
            }
            range = 1;
        }
        if (!range) {
            rc = sweep_space_set(s, key, val, err);
            continue;
        }
        sweep_dim *nd = realloc(s->dims, (size_t)(s->n_dims + 1) * sizeof *nd);
        if (!nd || !(d.key = strdup(key))) {
            if (nd) s->dims = nd;
            for (int j = 0; j < d.n_choices; j++) free(d.choices[j]);
            free(d.choices);
            rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
            break;
        }
        s->dims = nd;
        s->dims[s->n_dims++] = d;
    }
    if (!rc && s->n_dims == 0)
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: nothing to search: no setting is a list (a, b, c) or a range (log(A, B), linear(A, B), int(A, B))", path);
    if (rc) sweep_space_free(s);
    return rc;
}

int sweep_space_load(sweep_space *s, const char *path, bertc_error *err) {
    char *text = NULL;
    size_t n = 0;
    memset(s, 0, sizeof *s);
    int rc = fs_read_all(path, &text, &n, (size_t)1 << 20, err);
    if (rc) return rc;
    if (strlen(text) != n) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: holds a NUL byte", path);
    else rc = sweep_space_parse(s, text, path, err);
    free(text);
    return rc;
}

int sweep_method_parse(const char *s, sweep_method *m) {
    if (!strcmp(s, "grid")) *m = SWEEP_GRID;
    else if (!strcmp(s, "random")) *m = SWEEP_RANDOM;
    else if (!strcmp(s, "halving")) *m = SWEEP_HALVING;
    else return -1;
    return 0;
}

/* ------------------------------------------------------------------------------ planning */

int sweep_grid_size(const sweep_space *s, long *n, bertc_error *err) {
    long total = 1;
    for (int i = 0; i < s->n_dims; i++) {
        if (s->dims[i].kind != SWEEP_CHOICE)
            return bertc_errorf(err, BERTC_EINVAL, "grid search needs lists; '%s' is a range (use --method random or halving)", s->dims[i].key);
        total *= s->dims[i].n_choices;
        if (total > 1000000) return bertc_errorf(err, BERTC_EINVAL, "the grid has over a million points");
    }
    *n = total;
    return 0;
}

void sweep_plan_free(sweep_plan *p) {
    for (int t = 0; t < p->n_trials && p->values; t++) {
        for (int d = 0; d < p->n_dims && p->values[t]; d++) free(p->values[t][d]);
        free(p->values[t]);
    }
    free(p->values);
    memset(p, 0, sizeof *p);
}

/* A number for a trial recipe: 4 significant digits, as short as they allow (2e-05, 0.25). */
static void format_number(char *buf, size_t n, double v) { snprintf(buf, n, "%.4g", v); }

static int sample_dim(const sweep_dim *d, rng *r, char *buf, size_t n) {
    double u = (double)rng_uniform(r); /* [0, 1) */
    switch (d->kind) {
    case SWEEP_CHOICE: snprintf(buf, n, "%s", d->choices[rng_below(r, (uint64_t)d->n_choices)]); break;
    case SWEEP_LINEAR: format_number(buf, n, d->lo + u * (d->hi - d->lo)); break;
    case SWEEP_LOG: format_number(buf, n, exp(log(d->lo) + u * (log(d->hi) - log(d->lo)))); break;
    case SWEEP_INT: snprintf(buf, n, "%lld", (long long)d->lo + (long long)rng_below(r, (uint64_t)(d->hi - d->lo) + 1)); break;
    }
    return 0;
}

static int alloc_plan(sweep_plan *p, int n_trials, int n_dims, bertc_error *err) {
    p->n_trials = n_trials;
    p->n_dims = n_dims;
    p->values = calloc((size_t)(n_trials > 0 ? n_trials : 1), sizeof *p->values);
    if (!p->values) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    for (int t = 0; t < n_trials; t++)
        if (!(p->values[t] = calloc((size_t)n_dims, sizeof **p->values))) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    return 0;
}

static int set_value(sweep_plan *p, int t, int d, const char *v, bertc_error *err) {
    if (!(p->values[t][d] = strdup(v))) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    return 0;
}

int sweep_plan_make(sweep_plan *p, const sweep_space *s, sweep_method m, int max_trials, uint64_t seed, bertc_error *err) {
    memset(p, 0, sizeof *p);
    if (max_trials < 0) return bertc_errorf(err, BERTC_EINVAL, "the number of trials must be >= 0");
    rng r;
    rng_seed(&r, seed);
    int all_lists = 1;
    for (int d = 0; d < s->n_dims; d++) all_lists &= s->dims[d].kind == SWEEP_CHOICE;
    int rc = 0;
    if (m == SWEEP_GRID || (m == SWEEP_HALVING && all_lists && max_trials == 0)) {
        long size;
        if ((rc = sweep_grid_size(s, &size, err))) return rc;
        long n = max_trials > 0 && max_trials < size ? max_trials : size;
        /* A subset of the grid: a seeded partial shuffle of the indices, then back in grid order. */
        long *idx = malloc((size_t)size * sizeof *idx);
        if (!idx) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        for (long i = 0; i < size; i++) idx[i] = i;
        if (n < size) {
            for (long i = 0; i < n; i++) {
                long j = i + (long)rng_below(&r, (uint64_t)(size - i));
                long t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
            }
            for (long i = 1; i < n; i++) /* insertion sort of the n chosen */
                for (long j = i; j > 0 && idx[j - 1] > idx[j]; j--) {
                    long t = idx[j];
                    idx[j] = idx[j - 1];
                    idx[j - 1] = t;
                }
        }
        rc = alloc_plan(p, (int)n, s->n_dims, err);
        for (long t = 0; t < n && !rc; t++) {
            long rest = idx[t];
            for (int d = s->n_dims - 1; d >= 0 && !rc; d--) { /* mixed radix, the last dimension fastest */
                const sweep_dim *dim = &s->dims[d];
                rc = set_value(p, (int)t, d, dim->choices[rest % dim->n_choices], err);
                rest /= dim->n_choices;
            }
        }
        free(idx);
    } else {
        if (max_trials == 0) return bertc_errorf(err, BERTC_EINVAL, "random search needs --trials N");
        rc = alloc_plan(p, max_trials, s->n_dims, err);
        char buf[512];
        for (int t = 0; t < max_trials && !rc; t++)
            for (int d = 0; d < s->n_dims && !rc; d++) {
                sample_dim(&s->dims[d], &r, buf, sizeof buf);
                rc = set_value(p, t, d, buf, err);
            }
    }
    if (rc) sweep_plan_free(p);
    return rc;
}
