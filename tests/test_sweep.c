/* bertc sweep (docs/SWEEP.md): the sweep-file parser (good and bad files), grid and random
 * planning (deterministic from the seed), the objective grammar (good and bad strings) and the
 * ranking it implies, successive halving's arithmetic, and an end-to-end sweep of 4 trials x 2
 * epochs on a tiny model: trials.jsonl, trial folders, sweep.html, and best.conf, which
 * `bertc train --recipe` reruns to the same figures. The end-to-end part runs the bertc binary
 * named by $BERTC (set by make test), else ./bertc; it is skipped when there is none. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bertc.h"
#include "helpers.h"
#include "synthetic.h"
#include "sweep/sweep.h"
#include "util/fs.h"

static const char *const filler[] = {"the", "a", "movie", "film", "was", "plot", "acting", "is", "very", "quite"};
static const synthetic_task task = {filler, sizeof filler / sizeof *filler, 3, 6};

/* ----------------------------------------------------------------------------- the space */

static void parse_ok(sweep_space *s, const char *text) {
    bertc_error err = {0};
    if (sweep_space_parse(s, text, "t.sweep", &err)) fail_msg("%s", err.msg);
}

static void test_space_parse(void **state) {
    (void)state;
    sweep_space s;
    parse_ok(&s, "# a comment\n"
                 "train = data.jsonl   # trailing comment\n"
                 "--max-length 64\n"
                 "freeze-embeddings\n"
                 "text-column = \"title,body\"\n"
                 "lr = log(1e-5, 1e-4)\n"
                 "hidden-dropout=linear(0.1,0.3)\n"
                 "warmup-steps = int(0, 50)\n"
                 "epochs = 3, 4,5 , 6\n"
                 "truncation = head, head+tail\n");
    assert_int_equal(s.n_base, 4);
    assert_string_equal(s.base[0].key, "train");
    assert_string_equal(s.base[0].value, "data.jsonl");
    assert_string_equal(s.base[1].key, "max-length");
    assert_string_equal(s.base[1].value, "64");
    assert_string_equal(s.base[2].key, "freeze-embeddings");
    assert_null(s.base[2].value);
    assert_string_equal(s.base[3].value, "title,body");
    assert_int_equal(s.n_dims, 5);
    assert_int_equal(s.dims[0].kind, SWEEP_LOG);
    assert_true(s.dims[0].lo == 1e-5 && s.dims[0].hi == 1e-4);
    assert_int_equal(s.dims[1].kind, SWEEP_LINEAR);
    assert_int_equal(s.dims[2].kind, SWEEP_INT);
    assert_int_equal(s.dims[3].kind, SWEEP_CHOICE);
    assert_int_equal(s.dims[3].n_choices, 4);
    assert_string_equal(s.dims[3].choices[2], "5");
    assert_string_equal(s.dims[4].choices[1], "head+tail");
    bertc_error err = {0};
    assert_int_equal(sweep_space_set(&s, "model", "m", &err), 0);
    assert_int_equal(sweep_space_set(&s, "train", "other.jsonl", &err), 0);
    assert_string_equal(s.base[0].value, "other.jsonl");
    assert_int_equal(s.n_base, 5);
    assert_int_equal(sweep_space_set(&s, "lr", "1e-5", &err), BERTC_EINVAL); /* a searched dimension */
    sweep_space_free(&s);
}

static void test_space_parse_bad(void **state) {
    (void)state;
    static const struct { const char *text, *want; } bad[] = {
        {"lr = 2e-5\n", "nothing to search"},
        {"lr = log(0, 1e-4)\n", "positive"},
        {"lr = log(1e-3, 1e-4)\n", "low end"},
        {"lr = log(1e-5)\n", "a range is"},
        {"lr = log(1e-5, 1e-4, 1)\n", "a range is"},
        {"lr = linear(a, 1)\n", "a range is"},
        {"epochs = int(1.5, 3)\n", "whole numbers"},
        {"epochs = 1,,3\n", "empty value"},
        {"epochs = 1,3,\n", "empty value"},
        {"epochs = 1,3\nepochs = 2,4\n", "set twice"},
        {"out = x\nlr = 1,2\n", "set by bertc sweep"},
        {"threads = 2\nlr = 1,2\n", "set by bertc sweep"},
        {"text-column = \"a,b\nlr = 1,2\n", "unterminated"},
        {"= 3\n", "missing setting name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sweep_space s;
        bertc_error err = {0};
        int rc = sweep_space_parse(&s, bad[i].text, "t.sweep", &err);
        if (!rc) fail_msg("accepted: %s", bad[i].text);
        if (!strstr(err.msg, bad[i].want)) fail_msg("'%s': error '%s' lacks '%s'", bad[i].text, err.msg, bad[i].want);
        if (!strstr(err.msg, "t.sweep")) fail_msg("'%s': error '%s' does not name the file", bad[i].text, err.msg);
    }
}

/* The shipped IMDB sweep file parses and plans. */
static void test_shipped_sweep_file(void **state) {
    (void)state;
    sweep_space s;
    bertc_error err = {0};
    if (sweep_space_load(&s, "recipes/imdb-search.sweep", &err)) fail_msg("%s", err.msg);
    assert_true(s.n_dims >= 6);
    int has_lr = 0, has_train = 0;
    for (int d = 0; d < s.n_dims; d++) has_lr |= !strcmp(s.dims[d].key, "lr") && s.dims[d].kind == SWEEP_LOG;
    for (int i = 0; i < s.n_base; i++) has_train |= !strcmp(s.base[i].key, "train");
    assert_true(has_lr && has_train);
    sweep_plan p;
    assert_int_equal(sweep_plan_make(&p, &s, SWEEP_HALVING, 16, 1, &err), 0);
    assert_int_equal(p.n_trials, 16);
    sweep_plan_free(&p);
    sweep_space_free(&s);
}

/* --------------------------------------------------------------------------- planning */

static void test_grid(void **state) {
    (void)state;
    sweep_space s;
    parse_ok(&s, "lr = 1e-5, 2e-5, 5e-5\nepochs = 3, 4\n");
    long n;
    bertc_error err = {0};
    assert_int_equal(sweep_grid_size(&s, &n, &err), 0);
    assert_int_equal(n, 6);
    sweep_plan p;
    assert_int_equal(sweep_plan_make(&p, &s, SWEEP_GRID, 0, 1, &err), 0);
    assert_int_equal(p.n_trials, 6);
    static const char *const want[6][2] = {{"1e-5", "3"}, {"1e-5", "4"}, {"2e-5", "3"}, {"2e-5", "4"}, {"5e-5", "3"}, {"5e-5", "4"}};
    for (int t = 0; t < 6; t++) {
        assert_string_equal(p.values[t][0], want[t][0]);
        assert_string_equal(p.values[t][1], want[t][1]);
    }
    sweep_plan_free(&p);
    /* a subset: 4 distinct points, in grid order, the same for the same seed */
    sweep_plan a, b;
    assert_int_equal(sweep_plan_make(&a, &s, SWEEP_GRID, 4, 9, &err), 0);
    assert_int_equal(sweep_plan_make(&b, &s, SWEEP_GRID, 4, 9, &err), 0);
    assert_int_equal(a.n_trials, 4);
    int last = -1;
    for (int t = 0; t < 4; t++) {
        assert_string_equal(a.values[t][0], b.values[t][0]);
        assert_string_equal(a.values[t][1], b.values[t][1]);
        int k = -1;
        for (int g = 0; g < 6; g++)
            if (!strcmp(a.values[t][0], want[g][0]) && !strcmp(a.values[t][1], want[g][1])) k = g;
        assert_true(k > last);
        last = k;
    }
    sweep_plan_free(&a);
    sweep_plan_free(&b);
    sweep_space_free(&s);
    /* a grid refuses ranges */
    parse_ok(&s, "lr = log(1e-5, 1e-4)\nepochs = 3, 4\n");
    assert_int_equal(sweep_plan_make(&p, &s, SWEEP_GRID, 0, 1, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "'lr' is a range"));
    sweep_space_free(&s);
}

static void test_random(void **state) {
    (void)state;
    sweep_space s;
    parse_ok(&s, "lr = log(1e-5, 1e-4)\nd = linear(0.1, 0.3)\nw = int(0, 3)\nt = head, tail\n");
    sweep_plan a, b, c;
    bertc_error err = {0};
    assert_int_equal(sweep_plan_make(&a, &s, SWEEP_RANDOM, 200, 7, &err), 0);
    assert_int_equal(sweep_plan_make(&b, &s, SWEEP_RANDOM, 200, 7, &err), 0);
    assert_int_equal(sweep_plan_make(&c, &s, SWEEP_RANDOM, 200, 8, &err), 0);
    int differs = 0, seen_w[4] = {0}, seen_t[2] = {0}, low_decade = 0;
    for (int t = 0; t < 200; t++) {
        for (int d = 0; d < 4; d++) {
            assert_string_equal(a.values[t][d], b.values[t][d]); /* the seed decides */
            differs |= strcmp(a.values[t][d], c.values[t][d]) != 0;
        }
        double lr = atof(a.values[t][0]), dr = atof(a.values[t][1]);
        int w = atoi(a.values[t][2]);
        assert_true(lr >= 1e-5 * 0.9999 && lr <= 1e-4 * 1.0001);
        low_decade += lr < 3.1623e-5; /* log-uniform: half below the geometric mean */
        assert_true(dr >= 0.1 - 1e-9 && dr <= 0.3 + 1e-9);
        assert_true(w >= 0 && w <= 3);
        seen_w[w] = 1;
        seen_t[!strcmp(a.values[t][3], "tail")] = 1;
    }
    assert_true(differs);
    assert_true(seen_w[0] && seen_w[1] && seen_w[2] && seen_w[3]);
    assert_true(seen_t[0] && seen_t[1]);
    assert_true(low_decade > 70 && low_decade < 130);
    sweep_plan_free(&a);
    sweep_plan_free(&b);
    sweep_plan_free(&c);
    assert_int_equal(sweep_plan_make(&a, &s, SWEEP_RANDOM, 0, 7, &err), BERTC_EINVAL); /* needs --trials */
    sweep_space_free(&s);
    sweep_method m;
    assert_int_equal(sweep_method_parse("halving", &m), 0);
    assert_int_equal(m, SWEEP_HALVING);
    assert_int_equal(sweep_method_parse("bayes", &m), -1);
}

/* ------------------------------------------------------------------------- objective */

static void test_objective_parse(void **state) {
    (void)state;
    sweep_objective o;
    bertc_error err = {0};
    char buf[256];
    assert_int_equal(sweep_objective_parse(&o, "max val_accuracy s.t. train_accuracy < 0.92", &err), 0);
    assert_true(o.maximise);
    assert_int_equal(o.metric, SWEEP_VAL_ACCURACY);
    assert_int_equal(o.n, 1);
    assert_int_equal(o.c[0].metric, SWEEP_TRAIN_ACCURACY);
    assert_int_equal(o.c[0].op, SWEEP_LT);
    assert_true(o.c[0].bound == 0.92);
    assert_int_equal(sweep_objective_parse(&o, "  min gap s.t. val_accuracy>=0.85 and train_loss <= 1e-1  ", &err), 0);
    assert_false(o.maximise);
    assert_int_equal(o.metric, SWEEP_GAP);
    assert_int_equal(o.n, 2);
    assert_int_equal(o.c[0].op, SWEEP_GE);
    assert_int_equal(o.c[1].metric, SWEEP_TRAIN_LOSS);
    assert_int_equal(o.c[1].op, SWEEP_LE);
    assert_true(o.c[1].bound == 0.1);
    sweep_objective_format(&o, buf, sizeof buf);
    assert_string_equal(buf, "min gap s.t. val_accuracy >= 0.85 and train_loss <= 0.1");
    assert_int_equal(sweep_objective_parse(&o, "min val_loss", &err), 0);
    assert_int_equal(o.n, 0);
    assert_int_equal(sweep_objective_parse(&o, "max val_accuracy s.t. gap > -0.5", &err), 0);
    assert_true(o.c[0].bound == -0.5);

    static const char *const bad[] = {
        "", "maximise val_accuracy", "max", "max accuracy", "max val_accuracy such that gap < 1",
        "max val_accuracy s.t.", "max val_accuracy s.t. gap", "max val_accuracy s.t. gap = 0.1",
        "max val_accuracy s.t. gap < ", "max val_accuracy s.t. gap < x", "max val_accuracy s.t. gap < 0.1 or gap > 0",
        "max val_accuracy s.t. gap < 0.1 and", "max val_accuracy s.t. gap < 0.1 0.2", "max val_accuracy s.t. gap < nan",
        "max val_accuracy s.t. gap < 1 and gap < 1 and gap < 1 and gap < 1 and gap < 1 and gap < 1 and gap < 1 and gap < 1 and gap < 1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!sweep_objective_parse(&o, bad[i], &err)) fail_msg("accepted: '%s'", bad[i]);
        else assert_non_null(strstr(err.msg, "objective"));
}

static sweep_result res(double val, double train) {
    sweep_result r = {.ok = 1};
    r.m[SWEEP_VAL_ACCURACY] = val;
    r.m[SWEEP_TRAIN_ACCURACY] = train;
    r.m[SWEEP_GAP] = train - val;
    r.m[SWEEP_VAL_LOSS] = r.m[SWEEP_TRAIN_LOSS] = 0.5;
    return r;
}

static void test_ranking(void **state) {
    (void)state;
    sweep_objective o;
    bertc_error err = {0};
    assert_int_equal(sweep_objective_parse(&o, "max val_accuracy s.t. train_accuracy < 0.92", &err), 0);
    sweep_result r[6] = {
        res(0.80, 0.90),  /* 0: feasible */
        res(0.86, 0.99),  /* 1: infeasible by 0.07 */
        res(0.84, 0.91),  /* 2: feasible, best */
        res(0.90, 0.93),  /* 3: infeasible by 0.01 */
        {.ok = 0},        /* 4: failed */
        res(0.85, 0.92),  /* 5: strict bound met with equality: infeasible by 0 */
    };
    assert_true(sweep_feasible(&o, &r[0]) && !sweep_feasible(&o, &r[1]) && !sweep_feasible(&o, &r[5]) && !sweep_feasible(&o, &r[4]));
    assert_true(fabs(sweep_violation(&o, &r[1]) - 0.07) < 1e-12);
    int order[6];
    sweep_rank(&o, r, 6, order);
    int want[6] = {2, 0, 5, 3, 1, 4};
    assert_memory_equal(order, want, sizeof want);

    assert_int_equal(sweep_objective_parse(&o, "min gap s.t. val_accuracy >= 0.85", &err), 0);
    sweep_rank(&o, r, 6, order);
    int want2[6] = {3, 5, 1, 2, 0, 4}; /* feasible: gaps 0.03, 0.07, 0.13; then violations 0.01, 0.05 */
    assert_memory_equal(order, want2, sizeof want2);
}

static void test_halving_bookkeeping(void **state) {
    (void)state;
    assert_int_equal(sweep_halving_epoch(0, 3), 1);
    assert_int_equal(sweep_halving_epoch(1, 3), 3);
    assert_int_equal(sweep_halving_epoch(2, 3), 9);
    assert_int_equal(sweep_halving_epoch(1, 2), 2);
    assert_int_equal(sweep_halving_epoch(40, 3), 1000000);
    assert_int_equal(sweep_halving_keep(9, 3), 3);
    assert_int_equal(sweep_halving_keep(3, 3), 1);
    assert_int_equal(sweep_halving_keep(2, 3), 1);
    assert_int_equal(sweep_halving_keep(10, 3), 3);
    assert_int_equal(sweep_halving_keep(4, 2), 2);
    /* 27 trials, eta 3: 27 at epoch 1, 9 at 3, 3 at 9, 1 to the end */
    int n = 27, rung = 0, seen[4];
    while (n > 1) {
        seen[rung] = n;
        n = sweep_halving_keep(n, 3);
        rung++;
    }
    assert_int_equal(rung, 3);
    assert_int_equal(seen[1], 9);
    assert_int_equal(seen[2], 3);
}

/* An objective the runs cannot measure is refused before any trial starts. */
static void test_unmeasurable_objective(void **state) {
    (void)state;
    char d[256], file[400], out[400];
    assert_int_equal(test_tmpdir_make(d, sizeof d, "sweep_obj"), 0);
    snprintf(file, sizeof file, "%s/s.sweep", d);
    snprintf(out, sizeof out, "%s/out", d);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("train = t.jsonl\nno-eval-train\nlr = 1e-5, 2e-5\n", f);
    fclose(f);
    sweep_options o;
    sweep_options_default(&o);
    o.sweep_path = file;
    o.out_dir = out;
    o.method = SWEEP_GRID;
    o.exe = "/bin/sh"; /* never run */
    sweep_outcome r;
    bertc_error err = {0};
    o.objective = "max val_accuracy";
    assert_int_equal(sweep_run(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "no 'val'"));
    o.objective = "min train_loss";
    assert_int_equal(sweep_run(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "no-eval-train"));
    o.objective = "max val_accuracy s.t. gap <";
    assert_int_equal(sweep_run(&o, &r, &err), BERTC_EINVAL);
    assert_int_equal(access(out, F_OK), -1); /* nothing written */
    test_tmpdir_remove(d);
}

/* ------------------------------------------------------------------------ end to end */

static char dir[256];

static const char *bertc_exe(char *buf, size_t n) {
    const char *e = getenv("BERTC");
    if (!e || !*e) e = "./bertc";
    if (!realpath(e, buf) || access(buf, X_OK)) return NULL;
    (void)n;
    return buf;
}

static int count_lines(const char *path, const char *needle) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[8192];
    int n = 0;
    while (fgets(line, sizeof line, f)) n += !needle || strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

static double summary_val_accuracy(const char *run) {
    char p[700];
    snprintf(p, sizeof p, "%s/summary.json", run);
    cJSON *j = test_load_json(p);
    assert_non_null(j);
    double v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "val"), "accuracy")->valuedouble;
    cJSON_Delete(j);
    return v;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Skips the test without a bertc binary (exe: its path). A tiny model, 64 training and 24 validation examples in a fresh temporary dir, and
 * dir/tiny.sweep: those settings plus `space` (the searched lines); set_model gets "model=DIR". */
static void make_tiny_task(const char *name, const char *space, char *sweep_file, size_t n_sweep, char *set_model, size_t n_set,
                           char *exe, size_t n_exe) {
    char model[300], p[600], text[2048];
    bert_config cfg;
    bertc_error err = {0};
    if (!bertc_exe(exe, n_exe)) {
        printf("skipped: no bertc binary ($BERTC or ./bertc)\n");
        skip();
    }
    assert_int_equal(test_tmpdir_make(dir, sizeof dir, name), 0);
    snprintf(model, sizeof model, "%s/model", dir);
    if (synthetic_make_model(&task, model, &cfg, 16, 1, 2, 32, 16, 0.1f, 3, &err)) fail_msg("%s", err.msg);
    bert_config_free(&cfg);
    snprintf(p, sizeof p, "%s/train.jsonl", dir);
    assert_int_equal(synthetic_write_jsonl(&task, p, 64, 1), 0);
    snprintf(p, sizeof p, "%s/val.jsonl", dir);
    assert_int_equal(synthetic_write_jsonl(&task, p, 24, 2), 0);
    snprintf(sweep_file, n_sweep, "%s/tiny.sweep", dir);
    snprintf(text, sizeof text,
             "train = %s/train.jsonl\nval = %s/val.jsonl\nmax-length = 12\nbatch-size = 8\nepochs = 2\n"
             "deterministic\nseed = 5\n%s",
             dir, dir, space);
    write_file(sweep_file, text);
    snprintf(set_model, n_set, "model=%s", model);
}

/* The options both end-to-end tests share: 2 processes of 1 thread, eta 2, one constraint. */
static void tiny_options(sweep_options *o, const char *sweep_file, const char *out, const char *const *set, sweep_method m,
                         const char *exe) {
    sweep_options_default(o);
    o->sweep_path = sweep_file;
    o->out_dir = out;
    o->set = set;
    o->n_set = 1;
    o->method = m;
    o->eta = 2;
    o->parallel = 2;
    o->threads = 2;
    o->objective = "max val_accuracy s.t. train_accuracy < 0.99";
    o->exe = exe;
}

static void test_end_to_end(void **state) {
    (void)state;
    static char exe[4096], p[8192], cmd[40000];
    char sweep_file[600], out[600], set_model[600];
    bertc_error err = {0};
    make_tiny_task("sweep", "lr = log(3e-3, 3e-2)\nhidden-dropout = 0.0, 0.2\nlayer-lr-decay = linear(0.8, 1.0)\n"
                   "truncation = head, head+tail\n", sweep_file, sizeof sweep_file, set_model, sizeof set_model, exe,
                   sizeof exe);
    const char *set[] = {set_model};

    for (int method = 0; method < 2; method++) { /* random, then successive halving */
        snprintf(out, sizeof out, "%s/out-%d", dir, method);
        sweep_options o;
        tiny_options(&o, sweep_file, out, set, method ? SWEEP_HALVING : SWEEP_RANDOM, exe);
        o.trials = 4;
        o.seed = 11;
        sweep_outcome r;
        if (sweep_run(&o, &r, &err)) fail_msg("%s", err.msg);
        assert_int_equal(r.n_trials, 4);
        assert_int_equal(r.n_failed, 0);
        assert_true(r.best >= 0 && r.best < 4);
        assert_false(r.interrupted);

        snprintf(p, sizeof p, "%s/trials.jsonl", out);
        /* random: one line per trial; halving (eta 2): 4 paused, 2 stopped, 2 done */
        assert_int_equal(count_lines(p, NULL), method ? 8 : 4);
        assert_int_equal(count_lines(p, "\"status\":\"done\""), method ? 2 : 4);
        if (method) {
            assert_int_equal(count_lines(p, "\"status\":\"paused\""), 4);
            assert_int_equal(count_lines(p, "\"status\":\"stopped\""), 2);
        }
        assert_int_equal(count_lines(p, "\"val_accuracy\":"), method ? 8 : 4);
        assert_int_equal(count_lines(p, "\"params\":{\"lr\":"), method ? 8 : 4);
        for (int t = 0; t < 4; t++) {
            snprintf(p, sizeof p, "%s/trial-%03d/trial.conf", out, t);
            assert_int_equal(access(p, R_OK), 0);
            snprintf(p, sizeof p, "%s/trial-%03d/train.log", out, t);
            assert_int_equal(access(p, R_OK), 0);
        }
        snprintf(p, sizeof p, "%s/sweep.html", out);
        assert_int_equal(count_lines(p, "<svg id=\"chart-trials\""), 1);
        assert_true(count_lines(p, "class=\"constraint\"") >= 1);
        assert_true(count_lines(p, "trial-00") >= 4);

        /* best.conf reruns with bertc train --recipe to the winner's figures (deterministic, 1 thread as in the sweep) */
        char best_run[700];
        snprintf(best_run, sizeof best_run, "%s/rerun-%d", dir, method);
        snprintf(cmd, sizeof cmd, "'%s' train --recipe '%s/best.conf' --out '%s' --threads 1 --quiet >'%s.log' 2>&1", exe, out,
                 best_run, best_run);
        if (system(cmd) != 0) fail_msg("rerun of best.conf failed: %s", cmd);
        double v = summary_val_accuracy(best_run);
        if (v != r.best_result.m[SWEEP_VAL_ACCURACY])
            fail_msg("best.conf reran to val accuracy %g; the sweep's winner had %g", v, r.best_result.m[SWEEP_VAL_ACCURACY]);
        snprintf(p, sizeof p, "%s/trial-%03d", out, r.best);
        assert_true(summary_val_accuracy(p) == v);
    }

    /* The command line: bad input exits with one error line. */
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s/x' --objective 'max nothing' 2>/dev/null", exe, sweep_file, dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s/x' --method bayes 2>/dev/null", exe, sweep_file, dir);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    snprintf(cmd, sizeof cmd, "'%s' sweep --help >/dev/null", exe);
    assert_int_equal(system(cmd), 0);
    /* every trial failing (a model that does not exist) is an error naming the cause */
    snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s/y' --trials 2 --model '%s/nope' 2>'%s/y.err'", exe, sweep_file, dir, dir, dir);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    snprintf(p, sizeof p, "%s/y.err", dir);
    assert_int_equal(count_lines(p, "all 2 trials failed"), 1);
    test_tmpdir_remove(dir);
}


/* --seeds: every trial runs once per seed in trial-NNN/seed-S/, is ranked by its means, and
 * trials.jsonl carries each seed's figures; under halving all seeds of a trial continue or stop
 * together. */
static void test_seeds(void **state) {
    (void)state;
    static char exe[4096], p[8192], cmd[40000];
    char sweep_file[600], out[600], set_model[600];
    bertc_error err = {0};
    /* train-size below the file's 64: each seed draws its own examples, as on IMDB */
    make_tiny_task("sweep-seeds", "train-size = 48\nlr = 3e-3, 1e-2, 3e-2, 6e-2\n", sweep_file, sizeof sweep_file, set_model,
                   sizeof set_model, exe, sizeof exe);
    const char *set[] = {set_model};
    const uint64_t seeds[] = {7, 8};

    for (int method = 0; method < 2; method++) { /* grid, then successive halving */
        snprintf(out, sizeof out, "%s/out-%d", dir, method);
        sweep_options o;
        tiny_options(&o, sweep_file, out, set, method ? SWEEP_HALVING : SWEEP_GRID, exe);
        o.seeds = seeds;
        o.n_seeds = 2;
        sweep_outcome r;
        if (sweep_run(&o, &r, &err)) fail_msg("%s", err.msg);
        assert_int_equal(r.n_trials, 4);
        assert_int_equal(r.n_failed, 0);
        assert_true(r.best >= 0 && r.best < 4);

        snprintf(p, sizeof p, "%s/trials.jsonl", out);
        /* grid: one line per trial; halving (eta 2): 4 paused, 2 stopped, 2 done */
        assert_int_equal(count_lines(p, NULL), method ? 8 : 4);
        assert_int_equal(count_lines(p, "\"seeds\":[{\"seed\":7,"), method ? 8 : 4);
        /* Each trial's line holds the mean of its two runs' summaries, and both runs are in it. */
        cJSON *last[4] = {0};
        FILE *f = fopen(p, "r");
        assert_non_null(f);
        static char line[16384];
        while (fgets(line, sizeof line, f)) {
            cJSON *j = cJSON_Parse(line);
            assert_non_null(j);
            int id = cJSON_GetObjectItemCaseSensitive(j, "trial")->valueint;
            assert_true(id >= 0 && id < 4);
            cJSON_Delete(last[id]);
            last[id] = j;
        }
        fclose(f);
        int n_done = 0;
        for (int t = 0; t < 4; t++) {
            const char *st = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last[t], "status"));
            assert_non_null(st);
            const cJSON *runs = cJSON_GetObjectItemCaseSensitive(last[t], "seeds");
            assert_int_equal(cJSON_GetArraySize(runs), 2);
            double mean = 0;
            for (int k = 0; k < 2; k++) {
                snprintf(p, sizeof p, "%s/trial-%03d/seed-%d", out, t, 7 + k);
                double v = summary_val_accuracy(p);
                const cJSON *x = cJSON_GetArrayItem(runs, k);
                assert_int_equal(cJSON_GetObjectItemCaseSensitive(x, "seed")->valueint, 7 + k);
                assert_true(fabs(cJSON_GetObjectItemCaseSensitive(x, "val_accuracy")->valuedouble - v) < 1e-9);
                mean += v / 2;
                /* a stopped trial's runs lose their checkpoints */
                snprintf(p, sizeof p, "%s/trial-%03d/seed-%d/checkpoint", out, t, 7 + k);
                if (!strcmp(st, "stopped")) assert_int_equal(access(p, F_OK), -1);
            }
            assert_true(fabs(cJSON_GetObjectItemCaseSensitive(last[t], "val_accuracy")->valuedouble - mean) < 1e-9);
            n_done += !strcmp(st, "done");
            if (t == r.best) assert_true(fabs(r.best_result.m[SWEEP_VAL_ACCURACY] - mean) < 1e-9);
            cJSON_Delete(last[t]);
        }
        assert_int_equal(n_done, method ? 2 : 4);
        /* The two seeds saw different examples: their split files differ. */
        char a[700], b[700];
        snprintf(a, sizeof a, "%s/trial-000/seed-7/split.jsonl", out);
        snprintf(b, sizeof b, "%s/trial-000/seed-8/split.jsonl", out);
        snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
        assert_int_equal(access(a, R_OK), 0);
        assert_true(system(cmd) != 0);
        snprintf(p, sizeof p, "%s/best.conf", out);
        assert_int_equal(count_lines(p, "mean over seeds 7, 8"), 1);
        snprintf(p, sizeof p, "%s/sweep.html", out);
        assert_int_equal(count_lines(p, "per seed: val / train acc"), 1);
        assert_true(count_lines(p, "<td class=\"l\">7: ") >= 4);

        /* best.conf with --seed 8 reruns the winner's seed-8 run */
        char best_run[700];
        snprintf(best_run, sizeof best_run, "%s/rerun-%d", dir, method);
        snprintf(cmd, sizeof cmd, "'%s' train --recipe '%s/best.conf' --seed 8 --out '%s' --threads 1 --quiet >'%s.log' 2>&1", exe,
                 out, best_run, best_run);
        if (system(cmd) != 0) fail_msg("rerun of best.conf failed: %s", cmd);
        snprintf(p, sizeof p, "%s/trial-%03d/seed-8", out, r.best);
        assert_true(summary_val_accuracy(best_run) == summary_val_accuracy(p));
    }

    /* a searched seed and --seeds together, a repeated seed, and a bad list are refused */
    sweep_options o;
    sweep_options_default(&o);
    snprintf(p, sizeof p, "%s/seeded.sweep", dir);
    write_file(p, "train = x.jsonl\nseed = 1, 2\n");
    o.sweep_path = p;
    snprintf(out, sizeof out, "%s/bad", dir);
    o.out_dir = out;
    o.seeds = seeds;
    o.n_seeds = 2;
    o.exe = exe;
    sweep_outcome r;
    assert_int_equal(sweep_run(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "--seeds"));
    const uint64_t twice[] = {3, 3};
    o.sweep_path = sweep_file;
    o.seeds = twice;
    assert_int_equal(sweep_run(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    const char *bad[] = {"", "1,,2", "x", "1,2,", "-1", "1 2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(cmd, sizeof cmd, "'%s' sweep '%s' --out '%s/x' --seeds '%s' 2>/dev/null", exe, sweep_file, dir, bad[i]);
        int st = system(cmd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 2) fail_msg("--seeds '%s' was not refused with exit 2", bad[i]);
    }
    test_tmpdir_remove(dir);
}


/* sweep.html: finished trials first, then stopped ones, each group ranked by the objective (not by
 * trial number). */
static void test_html_order(void **state) {
    (void)state;
    char d[256], p[512];
    assert_int_equal(test_tmpdir_make(d, sizeof d, "sweep-html"), 0);
    snprintf(p, sizeof p, "%s/trials.jsonl", d);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    static const struct { int trial; const char *status; double val; } rows[] = {
        {0, "stopped", 0.50}, {1, "stopped", 0.70}, {2, "done", 0.60}, {3, "done", 0.65}, {4, "stopped", 0.60}};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        fprintf(f, "{\"trial\":%d,\"dir\":\"trial-%03d\",\"rung\":0,\"status\":\"%s\",\"epochs_run\":1,\"params\":{\"lr\":\"1\"},"
                   "\"val_accuracy\":%g,\"train_accuracy\":0.9,\"val_loss\":0.5,\"train_loss\":0.4,\"gap\":0.1}\n",
                rows[i].trial, rows[i].trial, rows[i].status, rows[i].val);
    fclose(f);
    sweep_objective obj;
    bertc_error err = {0};
    assert_int_equal(sweep_objective_parse(&obj, "max val_accuracy", &err), 0);
    if (sweep_write_html(d, &obj, &err)) fail_msg("%s", err.msg);
    snprintf(p, sizeof p, "%s/sweep.html", d);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(fs_read_all(p, &text, &len, 1 << 20, &err), 0);
    static const int want[] = {3, 2, 1, 4, 0};
    const char *at = strstr(text, "<table id=\"trials\"");
    assert_non_null(at);
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        char name[32];
        snprintf(name, sizeof name, ">trial-%03d<", want[i]);
        const char *next = strstr(at, name);
        if (!next) fail_msg("trial-%03d is not where it should be (position %zu)", want[i], i + 1);
        at = next;
    }
    free(text);
    test_tmpdir_remove(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_space_parse),
        cmocka_unit_test(test_space_parse_bad),
        cmocka_unit_test(test_shipped_sweep_file),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_objective_parse),
        cmocka_unit_test(test_ranking),
        cmocka_unit_test(test_halving_bookkeeping),
        cmocka_unit_test(test_unmeasurable_objective),
        cmocka_unit_test(test_end_to_end),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_html_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
