/* Checkpoints and resume: a run interrupted after update k and resumed ends bit for bit where an
 * uninterrupted run ends (weights, summary figures, metrics.jsonl); a resume with other options
 * or a damaged checkpoint is refused with a clear error; --skip-nonfinite skips a NaN update. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bertc.h"
#include "helpers.h"
#include "synthetic.h"
#include "model/bert.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "util/rng.h"

static const char *const filler[] = {"the", "a", "movie", "film", "was", "plot", "acting", "is", "very", "quite"};
#define N_FILLER (sizeof filler / sizeof *filler)

static char dir[256];

static void path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static const synthetic_task task = {filler, N_FILLER, 3, 6};

static void write_data(const char *name, int n, uint64_t seed) {
    char p[512];
    path(p, sizeof p, name);
    assert_int_equal(synthetic_write_jsonl(&task, p, n, seed), 0);
}

static int setup(void **state) {
    (void)state;
    if (test_tmpdir_make(dir, sizeof dir, "resume")) return -1;
    char p[512];
    path(p, sizeof p, "model");
    bert_config cfg;
    bertc_error err = {0};
    /* Dropout on: the resumed run must draw the same masks. */
    if (synthetic_make_model(&task, p, &cfg, 16, 1, 2, 32, 16, 0.1f, 99, &err)) fail_msg("%s", err.msg);
    bert_config_free(&cfg);
    write_data("train.jsonl", 38, 1); /* 10 batches of 4, the last one short */
    write_data("val.jsonl", 12, 2);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return test_tmpdir_remove(dir);
}

/* Stops the run after update stop_step, or during epoch stop_eval_epoch's evaluation. */
typedef struct stopper {
    volatile sig_atomic_t flag;
    long stop_step;
    int stop_eval_epoch;
} stopper;

static void on_progress(const bertc_progress *p, void *user) {
    stopper *s = user;
    if (!strcmp(p->phase, "train") && p->step == s->stop_step) s->flag = 2;
}

static void on_log(const char *line, void *user) {
    /* "epoch E/..." lines come after the evaluation; an interrupt asked for during epoch E's
     * evaluation is seen at the end of that epoch, as a signal arriving then would be. */
    stopper *s = user;
    int e;
    if (s->stop_eval_epoch > 0 && sscanf(line, "epoch %d/", &e) == 1 && e == s->stop_eval_epoch) s->flag = 2;
}

static void options(bertc_train_options *o, const char *out, int accum) {
    static char model[512], train[512], val[512];
    path(model, sizeof model, "model");
    path(train, sizeof train, "train.jsonl");
    path(val, sizeof val, "val.jsonl");
    bertc_train_options_default(o);
    o->model_dir = model;
    o->train_spec = train;
    o->val_spec = val;
    o->out_dir = out;
    o->max_length = 12;
    o->batch_size = 4;
    o->grad_accum = accum;
    o->eval_batch_size = 8;
    o->epochs = 3;
    o->lr = 3e-3f;
    o->weight_decay = 0.01f;
    o->warmup_ratio = 0.2f;
    o->max_grad_norm = 1.0f;
    o->patience = 2;
    o->threads = 1;
    o->deterministic = 1;
    o->checkpoint_min_seconds = 0; /* a checkpoint after every epoch of these sub-second runs */
}

static char *slurp(const char *p, size_t *n) {
    char *buf = NULL;
    bertc_error err;
    if (fs_read_all(p, &buf, n, (size_t)64 << 20, &err)) fail_msg("%s", err.msg);
    return buf;
}

/* metrics.jsonl without the wall-clock figures (examples_per_s), which are not deterministic. */
static char *metrics_text(const char *out) {
    char p[600];
    size_t n;
    snprintf(p, sizeof p, "%s/metrics.jsonl", out);
    char *t = slurp(p, &n);
    char *w = t;
    for (char *s = t; *s;) {
        if (!strncmp(s, ",\"examples_per_s\":", 18)) {
            s += 18;
            while (*s && *s != '}' && *s != ',') s++;
        } else {
            *w++ = *s++;
        }
    }
    *w = '\0';
    return t;
}

static void assert_same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = slurp(a, &na), *y = slurp(b, &nb);
    if (na != nb || memcmp(x, y, na)) fail_msg("%s and %s differ", a, b);
    free(x);
    free(y);
}

static void assert_same_result(const bertc_train_result *a, const bertc_train_result *b) {
    assert_int_equal(a->epochs_run, b->epochs_run);
    assert_int_equal(a->best_epoch, b->best_epoch);
    assert_int_equal(a->steps, b->steps);
    assert_int_equal(a->stopped_early, b->stopped_early);
    /* Bit for bit: the same doubles, not nearly the same. */
    assert_memory_equal(&a->val, &b->val, sizeof a->val);
    assert_memory_equal(&a->train, &b->train, sizeof a->train);
}

static void assert_same_run(const char *out, const char *ref, const bertc_train_result *r, const bertc_train_result *rr) {
    char a[600], b[600];
    snprintf(a, sizeof a, "%s/model.safetensors", out);
    snprintf(b, sizeof b, "%s/model.safetensors", ref);
    assert_same_file(a, b);
    assert_same_result(r, rr);
    char *ma = metrics_text(out), *mb = metrics_text(ref);
    assert_string_equal(ma, mb);
    free(ma);
    free(mb);
}

static int train(bertc_train_options *o, stopper *s, bertc_train_result *r, bertc_error *err) {
    o->stop = s ? &s->flag : NULL;
    o->on_progress = s ? on_progress : NULL;
    o->on_log = s ? on_log : NULL;
    o->user = s;
    return bertc_train(o, r, err);
}

/* Runs to the end, stopping at each of stops[] (an update number, or -E for the end of epoch E)
 * and resuming after each, then compares with ref. */
static void interrupted_run(const char *name, int accum, const long *stops, int n_stops, const char *ref,
                            const bertc_train_result *rref) {
    char out[512];
    path(out, sizeof out, name);
    bertc_train_options o;
    bertc_train_result r;
    bertc_error err = {0};
    for (int i = 0; i <= n_stops; i++) {
        options(&o, out, accum);
        o.resume = i > 0;
        stopper s = {0};
        s.stop_step = i < n_stops && stops[i] > 0 ? stops[i] : -1;
        s.stop_eval_epoch = i < n_stops && stops[i] < 0 ? (int)-stops[i] : 0;
        int rc = train(&o, &s, &r, &err);
        if (i < n_stops) {
            if (rc != BERTC_EINTERRUPTED) fail_msg("%s: stop %d (%ld): rc %d: %s", name, i, stops[i], rc, err.msg);
            assert_non_null(strstr(err.msg, "resume with: bertc train --resume"));
        } else if (rc) {
            fail_msg("%s: final resume: %s", name, err.msg);
        }
    }
    /* the last call's own time: its training share is what it added to the run's train_seconds */
    assert_true(r.resumed_seconds >= 0 && r.resumed_seconds <= r.train_seconds);
    assert_true(r.wall_seconds >= r.train_seconds - r.resumed_seconds + r.eval_seconds + r.save_seconds);
    assert_same_run(out, ref, &r, rref);
}

static void test_resume_is_bit_identical(void **state) {
    (void)state;
    /* accum 1: 10 updates per epoch; accum 3: updates of 3, 3, 3, 1 micro-batches (4 per epoch). */
    for (int accum = 1; accum <= 3; accum += 2) {
        char ref[512];
        snprintf(ref, sizeof ref, "%s/ref%d", dir, accum);
        bertc_train_options o;
        options(&o, ref, accum);
        bertc_train_result rref;
        bertc_error err = {0};
        if (train(&o, NULL, &rref, &err)) fail_msg("%s", err.msg);
        assert_true(rref.steps > 0);
        struct stat st;
        char ck[600];
        snprintf(ck, sizeof ck, "%s/checkpoint", ref);
        assert_int_not_equal(stat(ck, &st), 0); /* a finished run removes its checkpoint */

        long upe = accum == 1 ? 10 : 4;
        const long first[] = {1}, mid[] = {upe / 2 + 1}, boundary[] = {upe}, after[] = {upe + 1},
                   eval_end[] = {-1}, chain[] = {2, upe + 2, -2, 2 * upe + 1};
        char name[64];
        snprintf(name, sizeof name, "first%d", accum);
        interrupted_run(name, accum, first, 1, ref, &rref);
        snprintf(name, sizeof name, "mid%d", accum);
        interrupted_run(name, accum, mid, 1, ref, &rref);
        snprintf(name, sizeof name, "boundary%d", accum);
        interrupted_run(name, accum, boundary, 1, ref, &rref);
        snprintf(name, sizeof name, "after%d", accum);
        interrupted_run(name, accum, after, 1, ref, &rref);
        snprintf(name, sizeof name, "evalend%d", accum);
        interrupted_run(name, accum, eval_end, 1, ref, &rref);
        snprintf(name, sizeof name, "chain%d", accum);
        interrupted_run(name, accum, chain, 4, ref, &rref);
    }
}

/* Where the checkpoint file is during a run: after each epoch but the last (the run then goes
 * straight to its final evaluation and removes it); not at all when the epochs come faster than
 * checkpoint_min_seconds (here the default 60 s) unless the run pauses; never with
 * checkpoint_every = -1 (--no-checkpoint). seen[e] counts epoch e's updates that found the file. */
typedef struct ck_watch {
    char file[600];
    int seen[8], steps[8];
} ck_watch;

static void watch_checkpoint(const bertc_progress *p, void *user) {
    ck_watch *w = user;
    struct stat st;
    if (strcmp(p->phase, "train") || p->epoch < 1 || p->epoch > 7) return;
    w->steps[p->epoch]++;
    w->seen[p->epoch] += stat(w->file, &st) == 0;
}

static void test_epoch_checkpoints(void **state) {
    (void)state;
    for (int mode = 0; mode < 3; mode++) { /* every epoch; the default 60 s; --no-checkpoint */
        int every = mode == 2 ? -1 : 0, per_epoch = mode == 0;
        char out[512];
        snprintf(out, sizeof out, "%s/ckwatch%d", dir, mode);
        bertc_train_options o;
        options(&o, out, 1);
        o.patience = 0;
        o.checkpoint_every = every;
        if (mode == 1) o.checkpoint_min_seconds = 60;
        ck_watch w = {0};
        snprintf(w.file, sizeof w.file, "%s/checkpoint/%s", out, CHECKPOINT_FILE);
        o.on_progress = watch_checkpoint;
        o.user = &w;
        bertc_train_result r;
        bertc_error err = {0};
        if (bertc_train(&o, &r, &err)) fail_msg("%s", err.msg);
        printf("  checkpoint_every %d, min seconds %g: updates that found a checkpoint, by epoch: %d/%d %d/%d %d/%d\n",
               every, o.checkpoint_min_seconds, w.seen[1], w.steps[1], w.seen[2], w.steps[2], w.seen[3], w.steps[3]);
        assert_int_equal(w.steps[1], 10);
        assert_int_equal(w.seen[1], 0);
        assert_int_equal(w.seen[2], per_epoch ? w.steps[2] : 0);
        assert_int_equal(w.seen[3], per_epoch ? w.steps[3] : 0);
        struct stat st;
        assert_int_not_equal(stat(w.file, &st), 0); /* none left at the end */
        assert_true(r.save_seconds >= 0 && r.eval_seconds > 0 && r.wall_seconds >= r.train_seconds + r.eval_seconds);
    }
    /* pausing needs the checkpoint it resumes from */
    bertc_train_options o;
    char out[512];
    snprintf(out, sizeof out, "%s/ckpause", dir);
    options(&o, out, 1);
    o.checkpoint_every = -1;
    o.stop_after_epoch = 1;
    bertc_train_result r;
    bertc_error err = {0};
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "needs checkpoints"));
    /* and a pause writes it even when the epoch came faster than checkpoint_min_seconds */
    o.checkpoint_every = 0;
    o.checkpoint_min_seconds = 3600;
    assert_int_equal(bertc_train(&o, &r, &err), 0);
    assert_int_equal(r.paused, 1);
    char ck[600];
    snprintf(ck, sizeof ck, "%s/checkpoint/%s", out, CHECKPOINT_FILE);
    struct stat st;
    assert_int_equal(stat(ck, &st), 0);
    /* a negative or non-finite interval is refused */
    o.checkpoint_min_seconds = -1;
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "checkpoint-min-seconds"));
}

/* Leaves an interrupted run (checkpoint after update 3) in OUT/name. */
static void interrupted_at_3(const char *name, char *out, size_t n) {
    path(out, n, name);
    bertc_train_options o;
    options(&o, out, 1);
    stopper s = {.stop_step = 3};
    bertc_train_result r;
    bertc_error err = {0};
    assert_int_equal(train(&o, &s, &r, &err), BERTC_EINTERRUPTED);
    assert_non_null(strstr(err.msg, "interrupted at step 3"));
}

static void expect_resume_error(bertc_train_options *o, const char *want) {
    bertc_train_result r;
    bertc_error err = {0};
    o->resume = 1;
    int rc = train(o, NULL, &r, &err);
    assert_int_not_equal(rc, 0);
    assert_int_not_equal(rc, BERTC_EINTERRUPTED);
    if (!strstr(err.msg, want)) fail_msg("want '%s' in: %s", want, err.msg);
}

static void test_resume_with_other_options_is_refused(void **state) {
    (void)state;
    char out[512];
    interrupted_at_3("changed", out, sizeof out);
    bertc_train_options o;
    options(&o, out, 1);
    o.lr = 1e-3f;
    expect_resume_error(&o, "'lr' differs");
    options(&o, out, 1);
    o.batch_size = 8;
    expect_resume_error(&o, "'batch-size' differs");
    options(&o, out, 1);
    o.seed = 7;
    expect_resume_error(&o, "'seed' differs");
    options(&o, out, 1);
    o.threads = 2; /* deterministic: the thread count is part of the promise */
    expect_resume_error(&o, "'threads' differs");
    options(&o, out, 1);
    o.train_size = 20;
    expect_resume_error(&o, "differs");

    /* The options stored in the checkpoint are the run's own: loaded back, they resume it. */
    void *keep = NULL;
    bertc_error err = {0};
    bertc_train_options_default(&o);
    if (bertc_train_options_load(&o, out, &keep, &err)) fail_msg("%s", err.msg);
    assert_int_equal(o.batch_size, 4);
    assert_true(o.lr == 3e-3f);
    assert_int_equal(o.resume, 1);
    assert_int_equal(o.threads, 1);
    bertc_train_result r;
    if (train(&o, NULL, &r, &err)) fail_msg("%s", err.msg);
    bertc_train_options_release(keep);
    assert_int_equal(r.steps, 30);
}

static void test_damaged_checkpoint_is_refused(void **state) {
    (void)state;
    char out[512], ck[600];
    bertc_train_options o;
    /* Nothing to resume. */
    path(out, sizeof out, "never");
    options(&o, out, 1);
    expect_resume_error(&o, "checkpoint");

    /* One flipped bit in the tensor data: the checksum catches it. */
    interrupted_at_3("flipped", out, sizeof out);
    snprintf(ck, sizeof ck, "%s/checkpoint/checkpoint.safetensors", out);
    FILE *f = fopen(ck, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -100, SEEK_END), 0);
    int c = fgetc(f);
    assert_int_equal(fseek(f, -100, SEEK_END), 0);
    fputc(c ^ 1, f);
    fclose(f);
    options(&o, out, 1);
    expect_resume_error(&o, "checksum mismatch");

    /* Cut short (as a disk-full write would, without the atomic rename). */
    interrupted_at_3("truncated", out, sizeof out);
    snprintf(ck, sizeof ck, "%s/checkpoint/checkpoint.safetensors", out);
    assert_int_equal(truncate(ck, 5000), 0);
    options(&o, out, 1);
    expect_resume_error(&o, "checkpoint.safetensors");

    /* Not a bertc checkpoint: a model file put in its place. */
    interrupted_at_3("notckpt", out, sizeof out);
    char model[600];
    path(model, sizeof model, "model/model.safetensors");
    snprintf(ck, sizeof ck, "%s/checkpoint/checkpoint.safetensors", out);
    bertc_error err = {0};
    if (fs_copy_file(model, ck, &err)) fail_msg("%s", err.msg);
    options(&o, out, 1);
    expect_resume_error(&o, "not a bertc checkpoint");

    /* An older format (its moments in another parameter order): refused, saying so. */
    interrupted_at_3("oldformat", out, sizeof out);
    snprintf(ck, sizeof ck, "%s/checkpoint/checkpoint.safetensors", out);
    f = fopen(ck, "r+b");
    assert_non_null(f);
    char head[4096];
    size_t got = fread(head, 1, sizeof head - 1, f);
    head[got] = '\0';
    char *at = strstr(head + 8, "\"bertc_checkpoint\":\"");
    assert_non_null(at);
    at += strlen("\"bertc_checkpoint\":\"");
    assert_true(*at >= '2' && *at <= '9');
    assert_int_equal(fseek(f, (long)(at - head), SEEK_SET), 0);
    assert_int_equal(fputc('1', f), '1');
    fclose(f);
    options(&o, out, 1);
    expect_resume_error(&o, "checkpoint format 1");
}

static void test_skip_nonfinite(void **state) {
    (void)state;
    char out[512];
    bertc_train_options o;
    bertc_train_result r;
    bertc_error err = {0};
    path(out, sizeof out, "nan");
    setenv("BERTC_FAULT_NAN_STEPS", "3", 1);
    options(&o, out, 1);
    assert_int_equal(train(&o, NULL, &r, &err), BERTC_ENUMERIC);
    assert_non_null(strstr(err.msg, "step 3"));

    options(&o, out, 1);
    o.skip_nonfinite = 1;
    if (train(&o, NULL, &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.skipped_updates, 1);
    assert_int_equal(r.steps, 30);
    char *m = metrics_text(out);
    assert_non_null(strstr(m, "{\"type\":\"skip\",\"step\":3,"));
    free(m);

    /* Skipped updates survive a resume: interrupted after the skip, resumed, the same end. */
    char ref[600];
    snprintf(ref, sizeof ref, "%s", out);
    bertc_train_result rref = r;
    char out2[512];
    path(out2, sizeof out2, "nan-resumed");
    options(&o, out2, 1);
    o.skip_nonfinite = 1;
    stopper s = {.stop_step = 4};
    assert_int_equal(train(&o, &s, &r, &err), BERTC_EINTERRUPTED);
    options(&o, out2, 1);
    o.skip_nonfinite = 1;
    o.resume = 1;
    if (train(&o, NULL, &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.skipped_updates, 1);
    assert_same_run(out2, ref, &r, &rref);

    /* A NaN loss in the first micro-batch of an update of three: the update's other micro-batches
     * are passed over, and a run interrupted just after resumes to the same end. */
    setenv("BERTC_FAULT_NAN_LOSS_STEPS", "2", 1);
    unsetenv("BERTC_FAULT_NAN_STEPS");
    path(out, sizeof out, "nanloss");
    options(&o, out, 3);
    assert_int_equal(train(&o, NULL, &r, &err), BERTC_ENUMERIC);
    assert_non_null(strstr(err.msg, "loss is NaN at step 2"));
    options(&o, out, 3);
    o.skip_nonfinite = 1;
    if (train(&o, NULL, &r, &err)) fail_msg("%s", err.msg);
    assert_int_equal(r.skipped_updates, 1);
    assert_int_equal(r.steps, 12);
    rref = r;
    path(out2, sizeof out2, "nanloss-resumed");
    options(&o, out2, 3);
    o.skip_nonfinite = 1;
    stopper s2 = {.stop_step = 2};
    assert_int_equal(train(&o, &s2, &r, &err), BERTC_EINTERRUPTED);
    options(&o, out2, 3);
    o.skip_nonfinite = 1;
    o.resume = 1;
    if (train(&o, NULL, &r, &err)) fail_msg("%s", err.msg);
    assert_same_run(out2, out, &r, &rref);
    unsetenv("BERTC_FAULT_NAN_LOSS_STEPS");

    /* Eleven in a row: the run stops. */
    setenv("BERTC_FAULT_NAN_STEPS", "2-12", 1);
    options(&o, out, 1);
    o.skip_nonfinite = 1;
    assert_int_equal(train(&o, NULL, &r, &err), BERTC_ENUMERIC);
    assert_non_null(strstr(err.msg, "more than 10"));
    unsetenv("BERTC_FAULT_NAN_STEPS");
}

static void test_never_saves_nan_weights(void **state) {
    (void)state;
    char model[512], ck[512];
    path(model, sizeof model, "model");
    path(ck, sizeof ck, "nan-ckpt");
    bertc_error err = {0};
    bert_model *m = NULL;
    if (bert_load(&m, model, NULL, &err)) fail_msg("%s", err.msg);
    adamw opt;
    assert_int_equal(adamw_init(&opt, bert_num_params(m), NULL, 0, &err), 0);
    train_state st = {.epoch = 1, .best_acc = -1};
    assert_int_equal(checkpoint_save(ck, &st, m, &opt, NULL, "{}", "", &err), 0);
    bert_params(m)[5] = 0.0f / 0.0f;
    assert_int_equal(checkpoint_save(ck, &st, m, &opt, NULL, "{}", "", &err), BERTC_ENUMERIC);
    assert_non_null(strstr(err.msg, "NaN"));
    /* The earlier checkpoint is still there and whole. */
    train_state back;
    bert_params(m)[5] = 1.0f;
    assert_int_equal(checkpoint_load(ck, &back, m, &opt, NULL, &err), 0);
    assert_true(bert_params(m)[5] != 1.0f);
    adamw_free(&opt);
    bert_free(m);
}

static void test_unwritable_output_fails_first(void **state) {
    (void)state;
    char file[512], out[600];
    path(file, sizeof file, "a-file");
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(out, sizeof out, "%s/out", file); /* a folder under a regular file */
    bertc_train_options o;
    options(&o, out, 1);
    o.train_spec = "/nonexistent/data.jsonl"; /* the output is checked before the data is read */
    bertc_train_result r;
    bertc_error err = {0};
    assert_int_equal(train(&o, NULL, &r, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_is_bit_identical),
        cmocka_unit_test(test_resume_with_other_options_is_refused),
        cmocka_unit_test(test_epoch_checkpoints),
        cmocka_unit_test(test_damaged_checkpoint_is_refused),
        cmocka_unit_test(test_skip_nonfinite),
        cmocka_unit_test(test_never_saves_nan_weights),
        cmocka_unit_test(test_unwritable_output_fails_first),
    };
    return cmocka_run_group_tests_name("resume", tests, setup, teardown);
}
