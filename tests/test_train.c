/* End to end through the public API: a tiny random BERT learns a synthetic task (the label is
 * whether a text holds "good" or "bad", among filler words); loss falls, validation accuracy
 * reaches near 100%, early stopping and the saved folder behave, and the folder opens again
 * with the same accuracy. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bertc.h"
#include "model/bert.h"
#include "model/config.h"
#include "util/rng.h"

#include "synthetic.h"

static const char *filler[] = {"the", "a", "movie", "film", "plot", "actor", "was", "is", "very", "quite",
                               "story", "scene", "music", "it", "and", "but", "this", "that", "ending", "cast"};

static char dir[256];

static void path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static const synthetic_task task = {filler, sizeof filler / sizeof *filler, 4, 8};

static void write_data(const char *name, int n, uint64_t seed) {
    char p[512];
    path(p, sizeof p, name);
    assert_int_equal(synthetic_write_jsonl(&task, p, n, seed), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/bertc-test-train-%d", (int)getpid());
    assert_int_equal(mkdir(dir, 0755), 0);
    char p[512];
    path(p, sizeof p, "model");
    bert_config cfg;
    bertc_error err = {0};
    if (synthetic_make_model(&task, p, &cfg, 32, 2, 4, 64, 64, 0.1f, 1234, &err)) fail_msg("%s", err.msg);
    bert_config_free(&cfg);
    write_data("train.jsonl", 256, 1);
    write_data("val.jsonl", 128, 2);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static double first_step_loss(const char *metrics_path, double *last_epoch_loss) {
    FILE *f = fopen(metrics_path, "r");
    assert_non_null(f);
    char line[1024];
    double first = -1;
    while (fgets(line, sizeof line, f)) {
        char *s;
        if (first < 0 && strstr(line, "\"type\":\"step\"") && (s = strstr(line, "\"loss\":"))) first = atof(s + 7);
        if (strstr(line, "\"type\":\"epoch\"") && (s = strstr(line, "\"train_loss\":"))) *last_epoch_loss = atof(s + 13);
    }
    fclose(f);
    return first;
}

static void test_learns_synthetic_task(void **state) {
    (void)state;
    char model[512], train[512], val[512], out[512], metrics_path[600];
    path(model, sizeof model, "model");
    path(train, sizeof train, "train.jsonl");
    path(val, sizeof val, "val.jsonl");
    path(out, sizeof out, "out");
    bertc_train_options o;
    bertc_train_options_default(&o);
    o.model_dir = model;
    o.train_spec = train;
    o.val_spec = val;
    o.out_dir = out;
    o.max_length = 24;
    o.batch_size = 16;
    o.epochs = 8;
    o.lr = 2e-3f;
    o.scheduler = "linear";
    o.warmup_ratio = 0.1f;
    o.weight_decay = 0.01f;
    o.patience = 3;
    o.hidden_dropout = 0.0f;
    o.attention_dropout = 0.0f;
    o.threads = 2;
    bertc_train_result r;
    bertc_error err = {0};
    int rc = bertc_train(&o, &r, &err);
    if (rc) fail_msg("%s", err.msg);
    printf("val accuracy %.4f loss %.4f, train accuracy %.4f loss %.4f, best epoch %d of %d\n", r.val.accuracy,
           r.val.loss, r.train.accuracy, r.train.loss, r.best_epoch, r.epochs_run);
    assert_true(r.val.accuracy >= 0.95);
    assert_true(r.train.accuracy >= 0.95);
    assert_int_equal(r.val.n, 128);
    assert_int_equal(r.train.n, 256);
    assert_true(r.best_epoch >= 1 && r.best_epoch <= r.epochs_run);

    double last_epoch_loss = -1;
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.jsonl", out);
    double first = first_step_loss(metrics_path, &last_epoch_loss);
    assert_true(first > 0.5);
    assert_true(last_epoch_loss >= 0 && last_epoch_loss < first / 3);

    /* The written folder opens again, with the dataset's label names, and scores the same. */
    bertc_model *m = NULL;
    rc = bertc_model_open(&m, out, NULL, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_string_equal(bertc_model_label(m, 0), "negative");
    assert_string_equal(bertc_model_label(m, 1), "positive");
    bertc_eval_options eo;
    bertc_eval_options_default(&eo);
    eo.data_spec = val;
    eo.max_length = 24;
    bertc_eval_result er;
    rc = bertc_evaluate(m, &eo, &er, NULL, NULL, &err);
    if (rc) fail_msg("%s", err.msg);
    /* r.val is the best epoch's own evaluation (not repeated at the end): the written weights
     * must score exactly that again, loss included */
    assert_true(er.accuracy > r.val.accuracy - 1e-9 && er.accuracy < r.val.accuracy + 1e-9);
    assert_true(fabs(er.loss - r.val.loss) < 1e-6);
    /* static padding (no length sorting) scores the same as the default dynamic padding */
    bertc_eval_result er_static;
    eo.pad_dynamic = 0;
    rc = bertc_evaluate(m, &eo, &er_static, NULL, NULL, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_true(er_static.accuracy == er.accuracy && fabs(er_static.loss - er.loss) < 1e-6);

    /* predict batches texts longest first: each text's logits come back in its own place,
     * as when it is classified alone */
    const char *mixed[5] = {"good", "the plot is bad and the music bad and the ending bad", "the movie was good",
                            "bad", "the music was good and the plot good"};
    float all[10], one[2];
    rc = bertc_predict(m, mixed, NULL, 5, 24, NULL, all, &err);
    if (rc) fail_msg("%s", err.msg);
    for (int i = 0; i < 5; i++) {
        rc = bertc_predict(m, mixed + i, NULL, 1, 24, NULL, one, &err);
        if (rc) fail_msg("%s", err.msg);
        assert_true(fabsf(one[0] - all[2 * i]) < 1e-5f && fabsf(one[1] - all[2 * i + 1]) < 1e-5f);
    }

    const char *texts[2] = {"the movie was good", "the plot is bad and the music bad"};
    float probs[4];
    rc = bertc_predict(m, texts, NULL, 2, 24, probs, NULL, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_true(probs[1] > 0.5f && probs[2] > 0.5f);
    assert_true(probs[0] + probs[1] > 0.999f && probs[0] + probs[1] < 1.001f);
    bertc_model_free(m);
}

static void test_rejects_bad_options(void **state) {
    (void)state;
    char model[512], train[512], out[512];
    path(model, sizeof model, "model");
    path(train, sizeof train, "train.jsonl");
    path(out, sizeof out, "out-bad");
    bertc_train_options o;
    bertc_train_options_default(&o);
    o.model_dir = model;
    o.train_spec = train;
    o.out_dir = out;
    bertc_train_result r;
    bertc_error err = {0};
    o.max_length = 100; /* longer than max_position_embeddings 64 */
    assert_int_not_equal(bertc_train(&o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "max_position_embeddings"));
    o.max_length = 24;
    o.scheduler = "sawtooth";
    assert_int_not_equal(bertc_train(&o, &r, &err), 0);
    assert_non_null(strstr(err.msg, "sawtooth"));
    o.scheduler = "linear";
    o.train_spec = "/nonexistent/data.jsonl";
    assert_int_not_equal(bertc_train(&o, &r, &err), 0);
    assert_true(strlen(err.msg) > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_learns_synthetic_task),
        cmocka_unit_test(test_rejects_bad_options),
    };
    return cmocka_run_group_tests_name("train", tests, setup, teardown);
}
