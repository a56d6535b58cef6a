/* The regularisation options of bertc train (docs/SWEEP.md): layer-wise lr decay gives each
 * tensor the expected learning rate; frozen tensors stay byte-identical through training and get
 * no gradient; R-Drop's symmetric KL and its gradient agree with a hand-computed value and with
 * finite differences, and with dropout off R-Drop changes nothing; the truncation rules keep the
 * right tokens of a hand-built text; a paused and resumed run ends where an unpaused run ends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "bertc.h"
#include "helpers.h"
#include "synthetic.h"
#include "model/bert.h"
#include "model/safetensors.h"
#include "train/encoded.h"
#include "train/optim.h"
#include "train/regularise.h"
#include "tokenizer/wordpiece.h"
#include "util/rng.h"

static const char *const filler[] = {"the", "a", "movie", "film", "was", "plot", "acting", "is", "very", "quite"};
static const synthetic_task task = {filler, sizeof filler / sizeof *filler, 3, 6};
static char dir[256];

static void path(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int setup(void **state) {
    (void)state;
    if (test_tmpdir_make(dir, sizeof dir, "regularise")) return -1;
    char p[512];
    path(p, sizeof p, "model");
    bert_config cfg;
    bertc_error err = {0};
    /* 2 layers, dropout on (R-Drop needs it). */
    if (synthetic_make_model(&task, p, &cfg, 16, 2, 2, 32, 16, 0.1f, 7, &err)) fail_msg("%s", err.msg);
    bert_config_free(&cfg);
    path(p, sizeof p, "train.jsonl");
    if (synthetic_write_jsonl(&task, p, 40, 1)) return -1;
    path(p, sizeof p, "val.jsonl");
    if (synthetic_write_jsonl(&task, p, 12, 2)) return -1;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return test_tmpdir_remove(dir);
}

static void options(bertc_train_options *o, const char *out) {
    static char model[512], train[512], val[512], outp[512];
    path(model, sizeof model, "model");
    path(train, sizeof train, "train.jsonl");
    path(val, sizeof val, "val.jsonl");
    path(outp, sizeof outp, out);
    bertc_train_options_default(o);
    o->model_dir = model;
    o->train_spec = train;
    o->val_spec = val;
    o->out_dir = outp;
    o->max_length = 12;
    o->batch_size = 8;
    o->epochs = 2;
    o->lr = 1e-2f;
    o->weight_decay = 0.01f;
    o->threads = 1;
    o->deterministic = 1;
}

static void train_ok(const bertc_train_options *o, bertc_train_result *r) {
    bertc_error err = {0};
    if (bertc_train(o, r, &err)) fail_msg("%s", err.msg);
}

static bert_model *load(const char *name) {
    char p[512];
    path(p, sizeof p, name);
    bert_model *m = NULL;
    bertc_error err = {0};
    bert_load_options lo;
    bert_load_options_default(&lo);
    lo.num_labels = 2;
    if (bert_load(&m, p, &lo, &err)) fail_msg("%s", err.msg);
    return m;
}

/* ------------------------------------------------------------------ layer-wise lr decay */

static void test_llrd_groups(void **state) {
    (void)state;
    bert_model *m = load("model");
    bertc_train_options o;
    bertc_train_options_default(&o);
    o.layer_lr_decay = 0.5f;
    o.weight_decay = 0.01f;
    adamw_group *g;
    size_t n;
    bertc_error err = {0};
    assert_int_equal(param_groups(m, &o, &g, &n, &err), 0);
    const bert_param_info *info;
    size_t nt = bert_param_table(m, &info);
    assert_int_equal(n, nt);
    /* L = 2: head 1, layer 1 0.5, layer 0 0.25, embeddings 0.125 */
    for (size_t i = 0; i < n; i++) {
        const char *name = info[i].name;
        float want = strstr(name, "classifier") || strstr(name, "pooler") ? 1.0f
                     : strstr(name, "layer.1.")                            ? 0.5f
                     : strstr(name, "layer.0.")                            ? 0.25f
                                                                           : 0.125f;
        if (g[i].lr_scale != want) fail_msg("%s: lr scale %g, want %g", name, g[i].lr_scale, want);
        assert_int_equal(g[i].offset, info[i].offset);
        assert_true(g[i].weight_decay == (info[i].no_decay ? 0.0f : 0.01f));
    }
    free(g);

    /* The effective learning rate: Adam's first step moves each weight by lr * scale (times
     * sign(g), up to eps), so one step on all-ones gradients reads each tensor's rate back. */
    o.layer_lr_decay = 0.8f;
    o.weight_decay = 0.0f;
    assert_int_equal(param_groups(m, &o, &g, &n, &err), 0);
    size_t np = bert_num_params(m);
    float *p = calloc(np, sizeof *p), *gr = malloc(np * sizeof *gr);
    for (size_t i = 0; i < np; i++) gr[i] = 1.0f;
    adamw opt;
    assert_int_equal(adamw_init(&opt, np, g, n, &err), 0);
    adamw_step(&opt, p, gr, 1e-3f);
    for (size_t i = 0; i < nt; i++) {
        int depth = 2 + 1 - info[i].layer;
        double want = -1e-3 * pow(0.8, depth);
        double got = p[info[i].offset + info[i].numel - 1];
        if (fabs(got - want) > 1e-6 * fabs(want) + 1e-9) fail_msg("%s: moved by %g, want %g", info[i].name, got, want);
    }
    adamw_free(&opt);
    free(g);
    free(p);
    free(gr);

    /* Off: every scale exactly 1 (the default run's arithmetic is unchanged). */
    o.layer_lr_decay = 1.0f;
    assert_int_equal(param_groups(m, &o, &g, &n, &err), 0);
    for (size_t i = 0; i < n; i++) assert_true(g[i].lr_scale == 1.0f);
    free(g);
    bert_free(m);
}

/* ---------------------------------------------------------------------------- freezing */

static int tensor_equal(bert_model *a, bert_model *b, size_t i) {
    const bert_param_info *info;
    bert_param_table(a, &info);
    return !memcmp(bert_params(a) + info[i].offset, bert_params(b) + info[i].offset, info[i].numel * sizeof(float));
}

/* Trains with the given freezing and checks which tensors kept their bytes. The classifier is
 * initialised from the seed, so it is compared only for having moved. */
static void check_frozen_run(const char *out, int freeze_embeddings, int freeze_layers) {
    bertc_train_options o;
    options(&o, out);
    o.freeze_embeddings = freeze_embeddings;
    o.freeze_layers = freeze_layers;
    o.layer_lr_decay = 0.9f;
    o.max_grad_norm = 1.0f;
    bertc_train_result r;
    train_ok(&o, &r);
    bert_model *before = load("model"), *after = load(out);
    const bert_param_info *info;
    size_t n = bert_param_table(before, &info);
    for (size_t i = 0; i < n; i++) {
        int unit = info[i].layer, frozen = unit == 0 ? freeze_embeddings : unit <= freeze_layers;
        if (strstr(info[i].name, "classifier")) frozen = 0;
        int same = tensor_equal(before, after, i);
        /* The padding row of the word embeddings never moves; whole tensors are compared. */
        if (frozen && !same) fail_msg("%s: frozen but changed (%s)", info[i].name, out);
        if (!frozen && same && !strstr(info[i].name, "classifier"))
            fail_msg("%s: trainable but unchanged (%s)", info[i].name, out);
    }
    bert_free(before);
    bert_free(after);
}

static void test_freeze_keeps_bytes(void **state) {
    (void)state;
    check_frozen_run("freeze-emb-1", 1, 1);
    check_frozen_run("freeze-1", 0, 1);
    check_frozen_run("freeze-emb", 1, 0);
}

/* With the embeddings and layer 0 frozen, backward computes nothing for them, and the gradients
 * above are those of a full backward. */
static void test_freeze_no_gradient(void **state) {
    (void)state;
    bert_model *m = load("model");
    bertc_error err = {0};
    assert_int_equal(bert_prepare(m, 2, 8, &err), 0);
    int32_t ids[16] = {2, 5, 7, 8, 9, 3, 0, 0, 2, 6, 10, 11, 3, 0, 0, 0};
    int32_t mask[16] = {1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0};
    int32_t labels[2] = {1, 0};
    size_t np = bert_num_params(m);
    float *full = malloc(np * sizeof *full);
    bert_zero_grad(m);
    bert_forward(m, ids, mask, NULL, labels, 2, 8, 1, 123);
    bert_backward(m, 1.0f);
    memcpy(full, bert_grads(m), np * sizeof *full);
    bert_set_no_grad_below(m, 2);
    bert_zero_grad(m);
    bert_forward(m, ids, mask, NULL, labels, 2, 8, 1, 123);
    bert_backward(m, 1.0f);
    const bert_param_info *info;
    size_t n = bert_param_table(m, &info);
    for (size_t i = 0; i < n; i++) {
        const float *g = bert_grads(m) + info[i].offset;
        if (info[i].layer <= 1) {
            for (size_t j = 0; j < info[i].numel; j++)
                if (g[j] != 0.0f) fail_msg("%s: gradient %g at %zu, want none", info[i].name, g[j], j);
        } else if (memcmp(g, full + info[i].offset, info[i].numel * sizeof *g)) {
            fail_msg("%s: gradient differs from the full backward's", info[i].name);
        }
    }
    free(full);
    bert_free(m);
}

static void test_freeze_too_many_layers(void **state) {
    (void)state;
    bertc_train_options o;
    options(&o, "freeze-bad");
    o.freeze_layers = 3;
    bertc_train_result r;
    bertc_error err = {0};
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "freeze 3 layers"));
}

/* ------------------------------------------------------------------------------ R-Drop */

static void test_rdrop_hand_value(void **state) {
    (void)state;
    /* p1 = (1/2, 1/2), p2 = (3/4, 1/4): s = 1/2 (1/4 log(3/2) + 1/4 log 2) = log(3) / 8 */
    float z1[2] = {0.0f, 0.0f}, z2[2] = {(float)log(3.0), 0.0f}, d1[2], d2[2];
    double s = rdrop_kl(z1, z2, 1, 2, d1, d2);
    assert_true(fabs(s - log(3.0) / 8) < 1e-7);
    /* Identical predictions: no divergence and no gradient. */
    float z3[3] = {0.3f, -1.0f, 2.0f}, e1[3], e2[3];
    assert_true(fabs(rdrop_kl(z3, z3, 1, 3, e1, e2)) < 1e-12);
    for (int k = 0; k < 3; k++) assert_true(fabs(e1[k]) < 1e-7 && fabs(e2[k]) < 1e-7);
}

static void test_rdrop_gradient_finite_differences(void **state) {
    (void)state;
    enum { B = 3, K = 4 };
    rng r;
    rng_seed(&r, 5);
    float z[2][B * K], d[2][B * K], tmp[2][B * K];
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < B * K; i++) z[s][i] = 2.0f * rng_normal(&r);
    rdrop_kl(z[0], z[1], B, K, d[0], d[1]);
    const float h = 1e-2f;
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < B * K; i++) {
            float keep = z[s][i];
            z[s][i] = keep + h;
            double up = rdrop_kl(z[0], z[1], B, K, tmp[0], tmp[1]);
            z[s][i] = keep - h;
            double down = rdrop_kl(z[0], z[1], B, K, tmp[0], tmp[1]);
            z[s][i] = keep;
            double fd = (up - down) / (2.0 * h);
            if (fabs(fd - d[s][i]) > 2e-4 + 1e-3 * fabs(fd))
                fail_msg("dz%d[%d]: analytic %g, finite differences %g", s + 1, i, d[s][i], fd);
        }
}

static void read_weights(const char *out, float **w, size_t *n) {
    bert_model *m = load(out);
    *n = bert_num_params(m);
    *w = malloc(*n * sizeof **w);
    memcpy(*w, bert_params(m), *n * sizeof **w);
    bert_free(m);
}

/* With every dropout off both passes agree: the KL term is 0 and the mean cross-entropy of the
 * doubled batch is the batch's, so R-Drop trains as without it (to float rounding). With dropout
 * on, it trains differently. */
static void test_rdrop_training(void **state) {
    (void)state;
    bertc_train_options o;
    bertc_train_result r0, r1, r2;
    options(&o, "plain");
    o.hidden_dropout = o.attention_dropout = o.classifier_dropout = 0.0f;
    train_ok(&o, &r0);
    options(&o, "rdrop-nodrop");
    o.hidden_dropout = o.attention_dropout = o.classifier_dropout = 0.0f;
    o.rdrop = 1.0f;
    train_ok(&o, &r1);
    float *a, *b;
    size_t n, n2;
    read_weights("plain", &a, &n);
    read_weights("rdrop-nodrop", &b, &n2);
    assert_int_equal(n, n2);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - b[i]));
    if (worst > 1e-4) fail_msg("R-Drop without dropout moved the weights by %g", worst);
    assert_true(fabs(r0.val.loss - r1.val.loss) < 1e-4);

    options(&o, "rdrop");
    o.rdrop = 5.0f;
    train_ok(&o, &r2);
    float *c;
    read_weights("rdrop", &c, &n2);
    worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)a[i] - c[i]));
    assert_true(worst > 1e-4); /* the KL term (and the masks) changed the run */
    free(a);
    free(b);
    free(c);
}

/* -------------------------------------------------------------------------- truncation */

static void test_truncation_parse(void **state) {
    (void)state;
    encoded_truncation t;
    int h;
    assert_int_equal(encoded_truncation_parse("head", &t, &h), 0);
    assert_int_equal(t, ENCODED_TRUNC_HEAD);
    assert_int_equal(encoded_truncation_parse(NULL, &t, &h), 0);
    assert_int_equal(t, ENCODED_TRUNC_HEAD);
    assert_int_equal(encoded_truncation_parse("tail", &t, &h), 0);
    assert_int_equal(t, ENCODED_TRUNC_TAIL);
    assert_int_equal(encoded_truncation_parse("head+tail", &t, &h), 0);
    assert_int_equal(t, ENCODED_TRUNC_HEAD_TAIL);
    assert_int_equal(h, -1);
    assert_int_equal(encoded_truncation_parse("head+tail:64", &t, &h), 0);
    assert_int_equal(h, 64);
    const char *bad[] = {"", "Head", "middle", "head+tail:", "head+tail:-1", "head+tail:3x", "tail+head", "head+tail:99999999"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (!encoded_truncation_parse(bad[i], &t, &h)) fail_msg("'%s' accepted", bad[i]);
}

static void test_truncate_ids(void **state) {
    (void)state;
    int32_t ids[20], out[20];
    for (int i = 0; i < 20; i++) ids[i] = 100 + i;
    /* budget 8 of 20 */
    assert_int_equal(encoded_truncate_ids(ids, 20, 8, ENCODED_TRUNC_HEAD, -1, out), 8);
    for (int i = 0; i < 8; i++) assert_int_equal(out[i], 100 + i);
    assert_int_equal(encoded_truncate_ids(ids, 20, 8, ENCODED_TRUNC_TAIL, -1, out), 8);
    for (int i = 0; i < 8; i++) assert_int_equal(out[i], 112 + i);
    /* default head: 8 / 4 = 2 tokens, then the last 6 */
    assert_int_equal(encoded_truncate_ids(ids, 20, 8, ENCODED_TRUNC_HEAD_TAIL, -1, out), 8);
    int32_t want[8] = {100, 101, 114, 115, 116, 117, 118, 119};
    assert_memory_equal(out, want, sizeof want);
    assert_int_equal(encoded_truncate_ids(ids, 20, 8, ENCODED_TRUNC_HEAD_TAIL, 5, out), 8);
    int32_t want5[8] = {100, 101, 102, 103, 104, 117, 118, 119};
    assert_memory_equal(out, want5, sizeof want5);
    /* H beyond the budget: all head */
    assert_int_equal(encoded_truncate_ids(ids, 20, 8, ENCODED_TRUNC_HEAD_TAIL, 50, out), 8);
    for (int i = 0; i < 8; i++) assert_int_equal(out[i], 100 + i);
    /* short texts are kept whole under every rule */
    for (int t = 0; t < 3; t++) {
        assert_int_equal(encoded_truncate_ids(ids, 5, 8, (encoded_truncation)t, 2, out), 5);
        for (int i = 0; i < 5; i++) assert_int_equal(out[i], 100 + i);
    }
}

/* A hand-built text through the tokenizer: "the a movie film was plot acting is very quite"
 * (ids 7..16 in the synthetic vocabulary), max length 8 (6 tokens kept). */
static void test_truncation_encoded(void **state) {
    (void)state;
    char p[512];
    path(p, sizeof p, "model");
    wordpiece *wp;
    bertc_error err = {0};
    assert_int_equal(wordpiece_load_dir(&wp, p, &err), 0);
    dataset_example ex[2] = {{.id = "a", .text = "the a movie film was plot acting is very quite", .label = 1},
                             {.id = "b", .text = "good movie", .label = 0}};
    dataset d = {.ex = ex, .n = 2};
    struct { const char *rule; int32_t ids[8]; } cases[] = {
        {"head", {2, 7, 8, 9, 10, 11, 12, 3}},
        {"tail", {2, 11, 12, 13, 14, 15, 16, 3}},
        {"head+tail", {2, 7, 12, 13, 14, 15, 16, 3}},      /* H = 6 / 4 = 1 */
        {"head+tail:3", {2, 7, 8, 9, 14, 15, 16, 3}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        encoded_set e;
        if (encoded_set_build_truncated(&e, &d, wp, 8, cases[c].rule, &err)) fail_msg("%s: %s", cases[c].rule, err.msg);
        for (int i = 0; i < 8; i++)
            if (e.ids[i] != cases[c].ids[i]) fail_msg("%s: id %d is %d, want %d", cases[c].rule, i, e.ids[i], cases[c].ids[i]);
        assert_int_equal(e.lengths[0], 8);
        /* the short text: [CLS] good movie [SEP] and padding, under every rule */
        int32_t want[8] = {2, 5, 9, 3, 0, 0, 0, 0}, wmask[8] = {1, 1, 1, 1, 0, 0, 0, 0};
        assert_memory_equal(e.ids + 8, want, sizeof want);
        assert_memory_equal(e.mask + 8, wmask, sizeof wmask);
        assert_int_equal(e.lengths[1], 4);
        assert_int_equal(e.labels[0], 1);
        encoded_set_free(&e);
    }
    /* head is exactly the Hugging Face path */
    encoded_set e1, e2;
    assert_int_equal(encoded_set_build(&e1, &d, wp, 8, &err), 0);
    assert_int_equal(encoded_set_build_truncated(&e2, &d, wp, 8, "head", &err), 0);
    assert_memory_equal(e1.ids, e2.ids, 16 * sizeof(int32_t));
    encoded_set_free(&e1);
    encoded_set_free(&e2);
    /* pairs are refused, and unknown rules */
    ex[1].text_pair = "plot";
    encoded_set e;
    assert_int_equal(encoded_set_build_truncated(&e, &d, wp, 8, "tail", &err), BERTC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "pairs"));
    assert_int_equal(encoded_set_build_truncated(&e, &d, wp, 8, "middle", &err), BERTC_EINVAL);
    wordpiece_free(wp);
}

/* ------------------------------------------------------- pause and resume (sweep halving) */

static char *slurp(const char *p) {
    char *text = NULL;
    size_t n = 0;
    bertc_error err;
    if (fs_read_all(p, &text, &n, (size_t)64 << 20, &err)) fail_msg("%s", err.msg);
    return text;
}

static void test_pause_resume_matches(void **state) {
    (void)state;
    bertc_train_options o;
    bertc_train_result ref, r;
    options(&o, "straight");
    o.epochs = 3;
    o.layer_lr_decay = 0.9f;
    o.rdrop = 0.5f;
    o.truncation = "head+tail";
    o.freeze_embeddings = 1;
    train_ok(&o, &ref);
    assert_false(ref.paused);

    options(&o, "paused");
    o.epochs = 3;
    o.layer_lr_decay = 0.9f;
    o.rdrop = 0.5f;
    o.truncation = "head+tail";
    o.freeze_embeddings = 1;
    o.stop_after_epoch = 1;
    train_ok(&o, &r);
    assert_true(r.paused);
    assert_int_equal(r.epochs_run, 1);
    char p[600];
    snprintf(p, sizeof p, "%s/summary.json", o.out_dir);
    char *summary = slurp(p);
    assert_non_null(strstr(summary, "\"paused\""));
    free(summary);

    /* Resume with the checkpoint's options (the regularisation ones included), pausing again. */
    bertc_train_options ro;
    bertc_train_options_default(&ro);
    void *keep;
    bertc_error err = {0};
    if (bertc_train_options_load(&ro, o.out_dir, &keep, &err)) fail_msg("%s", err.msg);
    assert_true(ro.layer_lr_decay == 0.9f && ro.rdrop == 0.5f && ro.freeze_embeddings == 1 && ro.freeze_layers == 0);
    assert_string_equal(ro.truncation, "head+tail");
    ro.threads = 1;
    ro.stop_after_epoch = 2;
    train_ok(&ro, &r);
    assert_true(r.paused);
    ro.stop_after_epoch = 0;
    train_ok(&ro, &r);
    assert_false(r.paused);
    bertc_train_options_release(keep);
    assert_int_equal(r.epochs_run, ref.epochs_run);
    assert_true(r.val.accuracy == ref.val.accuracy && r.val.loss == ref.val.loss);
    assert_true(r.train.loss == ref.train.loss);
    float *a, *b;
    size_t n, n2;
    read_weights("straight", &a, &n);
    read_weights("paused", &b, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(a, b, n * sizeof *a);
    free(a);
    free(b);

    /* A different regularisation setting is refused on resume. */
    options(&o, "paused2");
    o.stop_after_epoch = 1;
    o.rdrop = 0.5f;
    train_ok(&o, &r);
    o.rdrop = 0.25f;
    o.resume = 1;
    o.stop_after_epoch = 0;
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "rdrop"));
}

static void test_bad_options(void **state) {
    (void)state;
    bertc_train_options o;
    bertc_train_result r;
    bertc_error err = {0};
    options(&o, "bad");
    o.layer_lr_decay = 0.0f;
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    options(&o, "bad");
    o.layer_lr_decay = 1.5f;
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    options(&o, "bad");
    o.rdrop = -1.0f;
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    options(&o, "bad");
    o.truncation = "middle";
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "middle"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llrd_groups),
        cmocka_unit_test(test_freeze_keeps_bytes),
        cmocka_unit_test(test_freeze_no_gradient),
        cmocka_unit_test(test_freeze_too_many_layers),
        cmocka_unit_test(test_rdrop_hand_value),
        cmocka_unit_test(test_rdrop_gradient_finite_differences),
        cmocka_unit_test(test_rdrop_training),
        cmocka_unit_test(test_truncation_parse),
        cmocka_unit_test(test_truncate_ids),
        cmocka_unit_test(test_truncation_encoded),
        cmocka_unit_test(test_pause_resume_matches),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
