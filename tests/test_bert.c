/* BertForSequenceClassification against transformers.
 *
 * tests/fixtures/bert/tiny/ is a random 2-layer model saved by save_pretrained and
 * tests/fixtures/bert/tiny_ref.safetensors holds a padded batch, its logits, loss and every
 * parameter's gradient, computed by transformers in float64 (reference/make_bert_fixture.py).
 *
 * Tolerances: logits and loss |a - b| <= 1e-5; a gradient tensor passes when
 * max|a - b| <= 1e-4 * max(max|b|, 1e-2), i.e. its worst error relative to the tensor's scale.
 * The floor is for the key biases, whose true gradient is exactly zero (softmax is shift-invariant):
 * their float32 noise (~1e-7) must not count as a relative error. Other tensors here have max|b| > 1e-2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <omp.h>

#include "model/bert.h"
#include "model/safetensors.h"
#include "util/fs.h"

#define TINY "tests/fixtures/bert/tiny"
#define REF "tests/fixtures/bert/tiny_ref.safetensors"
#define GRAD_TOL 1e-4
#define GRAD_FLOOR 1e-2

static char tmpdir[256];

/* The reference batch, loaded once. */
static safetensors_file ref;
static int32_t *ids, *mask, *types, *labels;
static int B, T;

static float *ref_floats(const char *name, size_t *n) {
    const st_tensor *t = safetensors_find(&ref, name);
    if (!t) fail_msg("reference tensor %s missing", name);
    float *out = malloc(t->numel * sizeof(float));
    assert_non_null(out);
    bertc_error err;
    assert_int_equal(safetensors_to_f32(t, out, t->numel, &err), 0);
    if (n) *n = t->numel;
    return out;
}

static int32_t *ref_ints(const char *name, size_t *n) {
    const st_tensor *t = safetensors_find(&ref, name);
    if (!t || t->dtype != ST_I32) fail_msg("reference tensor %s missing or not I32", name);
    int32_t *out = malloc(t->nbytes);
    assert_non_null(out);
    memcpy(out, t->data, t->nbytes);
    if (n) *n = t->numel;
    return out;
}

static int setup(void **state) {
    (void)state;
    bertc_error err;
    if (safetensors_open(&ref, REF, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    const st_tensor *t = safetensors_find(&ref, "input.ids");
    if (!t || t->ndim != 2) return -1;
    B = (int)t->shape[0];
    T = (int)t->shape[1];
    ids = ref_ints("input.ids", NULL);
    mask = ref_ints("input.mask", NULL);
    types = ref_ints("input.types", NULL);
    labels = ref_ints("input.labels", NULL);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bertc_test_bert_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    free(ids);
    free(mask);
    free(types);
    free(labels);
    safetensors_close(&ref);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static bert_model *load_tiny(void) {
    bert_model *m = NULL;
    bertc_error err;
    bert_load_options o;
    bert_load_options_default(&o);
    if (bert_load(&m, TINY, &o, &err)) fail_msg("bert_load: %s", err.msg);
    if (bert_prepare(m, B, T, &err)) fail_msg("bert_prepare: %s", err.msg);
    return m;
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *max_ref) {
    double worst = 0.0, mref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > worst || isnan(d)) worst = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > mref) mref = fabs(b[i]);
    }
    if (max_ref) *max_ref = mref;
    return worst;
}

static void check_logits_loss(bert_model *m, float loss, const char *prefix) {
    char name[128];
    size_t n;
    snprintf(name, sizeof name, "%slogits", prefix);
    float *want = ref_floats(name, &n);
    assert_int_equal(n, (size_t)B * bert_get_config(m)->num_labels);
    double d = max_abs_diff(bert_logits(m), want, n, NULL);
    printf("  %-22s max |diff| %.3g\n", name, d);
    assert_true(d <= 1e-5);
    snprintf(name, sizeof name, "%sloss", prefix);
    float *want_loss = ref_floats(name, NULL);
    printf("  %-22s %.7f vs %.7f\n", name, loss, want_loss[0]);
    assert_true(fabs(loss - want_loss[0]) <= 1e-5);
    free(want);
    free(want_loss);
}

/* Compares the model's gradient of every parameter that has a `prefix`grad.<name> entry. */
static void check_grads(bert_model *m, const char *prefix, int require_all) {
    const bert_param_info *tab;
    size_t nt = bert_param_table(m, &tab);
    const float *g = bert_grads(m);
    double worst = 0.0;
    const char *worst_name = "";
    int checked = 0;
    for (size_t i = 0; i < nt; i++) {
        char name[160];
        snprintf(name, sizeof name, "%sgrad.%s", prefix, tab[i].name);
        if (!safetensors_find(&ref, name)) {
            if (require_all) fail_msg("no reference gradient for %s", tab[i].name);
            continue;
        }
        size_t n;
        float *want = ref_floats(name, &n);
        assert_int_equal(n, tab[i].numel);
        double mref;
        double d = max_abs_diff(g + tab[i].offset, want, n, &mref);
        double rel = d / fmax(mref, GRAD_FLOOR);
        if (rel > worst) {
            worst = rel;
            worst_name = tab[i].name;
        }
        if (rel > GRAD_TOL)
            fail_msg("gradient of %s: max |diff| %.3g, max |ref| %.3g, relative %.3g > %g", tab[i].name, d, mref,
                     rel, GRAD_TOL);
        free(want);
        checked++;
    }
    printf("  %d %sgradients, worst %s: relative %.3g\n", checked, prefix, worst_name, worst);
    assert_true(checked > 0);
}

/* ------------------------------------------------------------------------------------------ */

static void test_reference_logits_loss_grads(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    bert_zero_grad(m);
    float loss = bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    check_logits_loss(m, loss, "");
    bert_backward(m, 1.0f);
    check_grads(m, "", 1);
    /* nn.Embedding(padding_idx=0): the [PAD] row never gets a gradient */
    const bert_config *c = bert_get_config(m);
    for (int j = 0; j < c->hidden_size; j++) assert_true(bert_grads(m)[(size_t)c->pad_token_id * c->hidden_size + j] == 0.0f);
    bert_free(m);
}

static void test_label_smoothing(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    bert_set_label_smoothing(m, 0.1f);
    bert_zero_grad(m);
    float loss = bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    float *want = ref_floats("ls.loss", NULL);
    printf("  ls.loss %.7f vs %.7f\n", loss, want[0]);
    assert_true(fabs(loss - want[0]) <= 1e-5);
    free(want);
    bert_backward(m, 1.0f);
    check_grads(m, "ls.", 0);
    bert_free(m);
}

static void test_activation_variants(void **state) {
    (void)state;
    static const struct { bert_act act; const char *prefix; } variants[] = {
        {BERT_ACT_GELU_NEW, "gelu_new."}, {BERT_ACT_RELU, "relu."}};
    for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
        bert_model *m = load_tiny();
        bert_config_mut(m)->hidden_act = variants[v].act;
        bert_zero_grad(m);
        float loss = bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
        check_logits_loss(m, loss, variants[v].prefix);
        bert_backward(m, 1.0f);
        check_grads(m, variants[v].prefix, 0);
        bert_free(m);
    }
}

/* Central differences on a few single weights, with dropout on (the same seed gives the same
 * masks, so the loss is a smooth function of the weights). Loose: float32 loss, h = 1e-2. */
static void test_finite_differences(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    const bert_param_info *tab;
    size_t nt = bert_param_table(m, &tab);
    static const char *names[] = {
        "bert.embeddings.word_embeddings.weight", "bert.embeddings.LayerNorm.weight",
        "bert.encoder.layer.0.attention.self.query.weight", "bert.encoder.layer.0.attention.self.key.bias",
        "bert.encoder.layer.1.attention.self.value.weight", "bert.encoder.layer.1.intermediate.dense.weight",
        "bert.encoder.layer.1.output.LayerNorm.bias", "bert.pooler.dense.weight", "classifier.bias"};
    for (int train = 0; train <= 1; train++) {
        bert_zero_grad(m);
        bert_forward(m, ids, mask, types, labels, B, T, train, 77);
        bert_backward(m, 1.0f);
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t i = 0;
            while (i < nt && strcmp(tab[i].name, names[k]) != 0) i++;
            assert_true(i < nt);
            /* the element with the largest gradient, so the difference is well above noise */
            size_t best = tab[i].offset;
            for (size_t j = tab[i].offset; j < tab[i].offset + tab[i].numel; j++)
                if (fabsf(bert_grads(m)[j]) > fabsf(bert_grads(m)[best])) best = j;
            float *p = bert_params(m) + best, saved = *p, h = 1e-2f;
            *p = saved + h;
            double lp = bert_forward(m, ids, mask, types, labels, B, T, train, 77);
            *p = saved - h;
            double lm = bert_forward(m, ids, mask, types, labels, B, T, train, 77);
            *p = saved;
            double fd = (lp - lm) / (2.0 * h), an = bert_grads(m)[best];
            printf("  %s %-48s analytic % .6f  numeric % .6f\n", train ? "train" : "eval ", names[k], an, fd);
            assert_true(fabs(fd - an) <= 2e-2 * fabs(an) + 2e-4);
        }
    }
    bert_free(m);
}

static void test_dropout_determinism(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    float eval = bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    float a = bert_forward(m, ids, mask, types, labels, B, T, 1, 123);
    size_t K = (size_t)bert_get_config(m)->num_labels;
    float *logits_a = malloc((size_t)B * K * sizeof(float));
    memcpy(logits_a, bert_logits(m), (size_t)B * K * sizeof(float));
    float b = bert_forward(m, ids, mask, types, labels, B, T, 1, 123);
    assert_memory_equal(logits_a, bert_logits(m), (size_t)B * K * sizeof(float));
    float c = bert_forward(m, ids, mask, types, labels, B, T, 1, 124);
    printf("  eval %.6f  train seed 123: %.6f %.6f  seed 124: %.6f\n", eval, a, b, c);
    assert_true(a == b);
    assert_true(a != c);
    assert_true(a != eval);
    free(logits_a);
    bert_free(m);

    /* p = 0 everywhere: training mode is the eval computation */
    bert_load_options o;
    bert_load_options_default(&o);
    o.hidden_dropout = o.attention_dropout = o.classifier_dropout = 0.0f;
    bertc_error err;
    assert_int_equal(bert_load(&m, TINY, &o, &err), 0);
    assert_int_equal(bert_prepare(m, B, T, &err), 0);
    float z = bert_forward(m, ids, mask, types, labels, B, T, 1, 123);
    assert_true(z == eval);
    bert_free(m);
}

/* Dropout masks are a function of (seed, site, element), not of the thread that draws them:
 * one thread and two give the same training loss and gradients (up to summation order). */
static void test_thread_count_invariance(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    size_t n = bert_num_params(m);
    int saved = omp_get_max_threads();
    float loss[2];
    float *grads[2];
    for (int r = 0; r < 2; r++) {
        omp_set_num_threads(r == 0 ? 1 : 2);
        bert_zero_grad(m);
        loss[r] = bert_forward(m, ids, mask, types, labels, B, T, 1, 99);
        bert_backward(m, 1.0f);
        grads[r] = malloc(n * sizeof(float));
        memcpy(grads[r], bert_grads(m), n * sizeof(float));
    }
    omp_set_num_threads(saved);
    printf("  1 thread %.7f, 2 threads %.7f\n", loss[0], loss[1]);
    assert_true(fabsf(loss[0] - loss[1]) <= 1e-6f);
    double mref;
    double d = max_abs_diff(grads[1], grads[0], n, &mref);
    assert_true(d <= 1e-5 * mref);
    free(grads[0]);
    free(grads[1]);
    bert_free(m);
}

/* Gradients accumulate: two backward passes at scale 0.5 equal one at scale 1. */
static void test_grad_accumulation(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    size_t n = bert_num_params(m);
    bert_zero_grad(m);
    bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    bert_backward(m, 1.0f);
    float *once = malloc(n * sizeof(float));
    memcpy(once, bert_grads(m), n * sizeof(float));
    bert_zero_grad(m);
    for (int r = 0; r < 2; r++) {
        bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
        bert_backward(m, 0.5f);
    }
    double mref;
    double d = max_abs_diff(bert_grads(m), once, n, &mref);
    assert_true(d <= 1e-6 * fmax(mref, 1.0));
    free(once);
    bert_free(m);
}

/* A smaller batch than planned uses the same buffers; results match the full batch's rows. */
static void test_smaller_batch(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    size_t K = (size_t)bert_get_config(m)->num_labels;
    float full[64];
    memcpy(full, bert_logits(m), (size_t)B * K * sizeof(float));
    /* the first sequence alone, cut to its length (12) -- all of T */
    bert_forward(m, ids, mask, types, labels, 1, T, 0, 0);
    for (size_t j = 0; j < K; j++) assert_true(fabsf(bert_logits(m)[j] - full[j]) <= 1e-5f);
    /* out-of-range ids and oversize batches are refused with NaN, never read out of bounds */
    int32_t bad[64];
    memcpy(bad, ids, sizeof(int32_t) * (size_t)T);
    bad[1] = 100000;
    assert_true(isnan(bert_forward(m, bad, mask, types, labels, 1, T, 0, 0)));
    assert_true(isnan(bert_forward(m, ids, mask, types, labels, B + 1, T, 0, 0)));
    int32_t bad_mask[64];
    memcpy(bad_mask, mask, sizeof(int32_t) * (size_t)T);
    bad_mask[0] = 2;
    assert_true(isnan(bert_forward(m, ids, bad_mask, types, labels, 1, T, 0, 0)));
    bert_backward(m, 1.0f); /* after a refused forward: does nothing */
    bert_free(m);
}

/* The activation-plan tests run on four pairs of identical models: the tiny fixture (2 layers,
 * checked against PyTorch) and a random 5-layer one of its shape, each in fp32 and in bf16. fn
 * gets the pair (full gets bert_prepare(B, T) first, as the reference plan; other is unplanned). */
typedef void (*plan_case_fn)(bert_model *full, bert_model *other, int bf16, int layers5);
static void for_each_plan_case(plan_case_fn fn) {
    bertc_error err;
    bert_model *tiny = load_tiny();
    bert_config deep = *bert_get_config(tiny); /* shallow copy: read only, never freed */
    deep.num_hidden_layers = 5;
    for (int run = 0; run < 4; run++) {
        int bf16 = run & 1, layers5 = run >> 1;
        bert_model *full = NULL, *other = NULL;
        if (layers5) {
            if (bert_init_random(&full, &deep, 5, &err) || bert_init_random(&other, &deep, 5, &err))
                fail_msg("%s", err.msg);
        } else if (bert_load(&full, TINY, NULL, &err) || bert_load(&other, TINY, NULL, &err)) {
            fail_msg("%s", err.msg);
        }
        assert_int_equal(bert_set_precision(full, bf16, &err), 0);
        assert_int_equal(bert_set_precision(other, bf16, &err), 0);
        assert_int_equal(bert_prepare(full, B, T, &err), 0);
        fn(full, other, bf16, layers5);
        bert_free(full);
        bert_free(other);
    }
    bert_free(tiny);
}

/* bert_prepare_inference: the two-layer plan gives the training plan's logits and loss bit for
 * bit, in fp32 and bf16, on the tiny model (2 layers, checked against PyTorch too) and on a
 * 5-layer random one (layers 2-4 reuse the first two's buffers); it refuses a training forward,
 * its backward does nothing, and bert_prepare plans for training again. */
static void inference_plan_case(bert_model *full, bert_model *inf, int bf16, int layers5) {
    bertc_error err;
    assert_int_equal(bert_prepare_inference(inf, B, T, &err), 0);
    size_t K = (size_t)bert_get_config(full)->num_labels;
    float want = bert_forward(full, ids, mask, types, labels, B, T, 0, 0);
    float got = bert_forward(inf, ids, mask, types, labels, B, T, 0, 0);
    assert_true(isfinite(got) && want == got);
    assert_memory_equal(bert_logits(inf), bert_logits(full), (size_t)B * K * sizeof(float));
    if (!bf16 && !layers5) check_logits_loss(inf, got, "");
    /* no training on an inference plan */
    assert_true(isnan(bert_forward(inf, ids, mask, types, labels, B, T, 1, 7)));
    bert_forward(inf, ids, mask, types, labels, B, T, 0, 0);
    bert_zero_grad(inf);
    bert_backward(inf, 1.0f);
    const float *g = bert_grads(inf);
    for (size_t i = 0; i < bert_num_params(inf); i++) assert_true(g[i] == 0.0f);
    /* a training plan again: training forward and backward as the other model's */
    assert_int_equal(bert_prepare(inf, B, T, &err), 0);
    bert_zero_grad(inf);
    bert_zero_grad(full);
    got = bert_forward(inf, ids, mask, types, labels, B, T, 1, 7);
    want = bert_forward(full, ids, mask, types, labels, B, T, 1, 7);
    assert_true(isfinite(got) && want == got);
    bert_backward(inf, 1.0f);
    bert_backward(full, 1.0f);
    assert_memory_equal(bert_grads(inf), bert_grads(full), bert_num_params(inf) * sizeof(float));
}

static void test_inference_plan(void **state) {
    (void)state;
    for_each_plan_case(inference_plan_case);
}

/* bert_prepare_train_eval (the trainer's plan): training at 1 sequence, evaluation at B over the
 * same memory. The arena is smaller than a training plan for B; evaluation at B gives the
 * logits of a training plan for B bit for bit; training at 1 gives its gradients bit for bit,
 * also right after an evaluation (which overwrote the training activations); backward after
 * an evaluation-plan forward does nothing; training at B is refused. fp32 and bf16, 2 and 5
 * layers. */
static void train_eval_plan_case(bert_model *full, bert_model *sh, int bf16, int layers5) {
    (void)bf16, (void)layers5;
    bertc_error err;
    assert_int_equal(bert_prepare_train_eval(sh, 1, B, T, &err), 0);
    assert_true(bert_activation_bytes(sh) > 0 && bert_activation_bytes(sh) < bert_activation_bytes(full));
    size_t K = (size_t)bert_get_config(full)->num_labels, np = bert_num_params(sh);
    for (int pass = 0; pass < 2; pass++) {
        /* evaluation at B */
        float want = bert_forward(full, ids, mask, types, labels, B, T, 0, 0);
        float got = bert_forward(sh, ids, mask, types, labels, B, T, 0, 0);
        assert_true(isfinite(got) && want == got);
        assert_memory_equal(bert_logits(sh), bert_logits(full), (size_t)B * K * sizeof(float));
        bert_zero_grad(sh);
        bert_backward(sh, 1.0f); /* on the evaluation plan: nothing */
        for (size_t i = 0; i < np; i++) assert_true(bert_grads(sh)[i] == 0.0f);
        /* training at 1 (the first sequence), after the evaluation overwrote the activations */
        bert_zero_grad(full);
        want = bert_forward(full, ids, mask, types, labels, 1, T, 1, 7 + pass);
        got = bert_forward(sh, ids, mask, types, labels, 1, T, 1, 7 + pass);
        assert_true(isfinite(got) && want == got);
        bert_backward(full, 1.0f);
        bert_backward(sh, 1.0f);
        assert_memory_equal(bert_grads(sh), bert_grads(full), np * sizeof(float));
    }
    /* an evaluation forward that fits the training plan keeps its backward (eval-mode gradients) */
    bert_zero_grad(sh);
    bert_zero_grad(full);
    bert_forward(full, ids, mask, types, labels, 1, T, 0, 0);
    bert_forward(sh, ids, mask, types, labels, 1, T, 0, 0);
    bert_backward(full, 1.0f);
    bert_backward(sh, 1.0f);
    assert_memory_equal(bert_grads(sh), bert_grads(full), np * sizeof(float));
    /* training beyond the training plan: refused */
    assert_true(isnan(bert_forward(sh, ids, mask, types, labels, B, T, 1, 7)));
}

static void test_train_eval_plan(void **state) {
    (void)state;
    assert_true(B > 1);
    for_each_plan_case(train_eval_plan_case);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    bert_model *m = load_tiny();
    bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    size_t K = (size_t)bert_get_config(m)->num_labels;
    float before[64];
    memcpy(before, bert_logits(m), (size_t)B * K * sizeof(float));
    char dir[300];
    snprintf(dir, sizeof dir, "%s/saved", tmpdir);
    bertc_error err;
    if (bert_save(m, dir, &err)) fail_msg("bert_save: %s", err.msg);
    bert_model *m2 = NULL;
    bert_load_options o;
    bert_load_options_default(&o);
    if (bert_load(&m2, dir, &o, &err)) fail_msg("bert_load: %s", err.msg);
    assert_int_equal(bert_prepare(m2, B, T, &err), 0);
    assert_int_equal(bert_num_params(m2), bert_num_params(m));
    assert_memory_equal(bert_params(m2), bert_params(m), bert_num_params(m) * sizeof(float));
    bert_forward(m2, ids, mask, types, labels, B, T, 0, 0);
    assert_memory_equal(bert_logits(m2), before, (size_t)B * K * sizeof(float));
    /* names as transformers writes them */
    safetensors_file f;
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    assert_non_null(safetensors_find(&f, "bert.encoder.layer.1.attention.self.query.weight"));
    assert_non_null(safetensors_find(&f, "classifier.weight"));
    safetensors_close(&f);
    bert_free(m);
    bert_free(m2);
}

static void test_init_random(void **state) {
    (void)state;
    bert_model *tiny = load_tiny();
    bert_model *m = NULL;
    bertc_error err;
    assert_int_equal(bert_init_random(&m, bert_get_config(tiny), 5, &err), 0);
    const bert_param_info *tab;
    size_t nt = bert_param_table(m, &tab);
    const float *p = bert_params(m);
    const bert_config *c = bert_get_config(m);
    for (size_t i = 0; i < nt; i++) {
        const float *x = p + tab[i].offset;
        if (strstr(tab[i].name, ".bias")) {
            for (size_t j = 0; j < tab[i].numel; j++) assert_true(x[j] == 0.0f);
        } else if (strstr(tab[i].name, "LayerNorm")) {
            for (size_t j = 0; j < tab[i].numel; j++) assert_true(x[j] == 1.0f);
        } else {
            double s2 = 0.0;
            for (size_t j = 0; j < tab[i].numel; j++) s2 += (double)x[j] * x[j];
            double sd = sqrt(s2 / tab[i].numel);
            if (tab[i].numel > 500) assert_true(fabs(sd - c->initializer_range) < 0.25 * c->initializer_range);
        }
        assert_int_equal(tab[i].no_decay, strstr(tab[i].name, ".bias") || strstr(tab[i].name, "LayerNorm"));
    }
    for (int j = 0; j < c->hidden_size; j++) assert_true(p[(size_t)c->pad_token_id * c->hidden_size + j] == 0.0f);
    /* layer indices: embeddings 0, encoder 1..L, head L+1 */
    assert_int_equal(tab[0].layer, 0);
    assert_int_equal(tab[nt - 1].layer, c->num_hidden_layers + 1);
    assert_string_equal(tab[5].name, "bert.encoder.layer.0.attention.self.query.weight");
    assert_int_equal(tab[5].layer, 1);
    /* each layer's query, key and value weights one after the other, then their biases: bert.c
     * runs them as one (3C,C) Linear with one (3C) bias */
    size_t CC = (size_t)c->hidden_size * c->hidden_size;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        static const char *const parts[] = {"query.weight", "key.weight", "value.weight",
                                            "query.bias", "key.bias", "value.bias"};
        size_t at[6];
        for (int k = 0; k < 6; k++) {
            char name[96];
            snprintf(name, sizeof name, "bert.encoder.layer.%d.attention.self.%s", l, parts[k]);
            size_t i = 0;
            while (i < nt && strcmp(tab[i].name, name)) i++;
            assert_true(i < nt);
            at[k] = tab[i].offset;
        }
        assert_true(at[1] == at[0] + CC && at[2] == at[1] + CC && at[3] == at[2] + CC);
        assert_true(at[4] == at[3] + (size_t)c->hidden_size && at[5] == at[4] + (size_t)c->hidden_size);
    }
    bert_free(m);
    bert_free(tiny);
}

/* ---- load options and bad files ------------------------------------------------------------ */

static void copy_file(const char *src, const char *dst) {
    bertc_error err;
    if (fs_copy_file(src, dst, &err)) fail_msg("copy: %s", err.msg);
}

/* Writes DIR/config.json from the tiny one with `from` replaced by `to`. */
static void write_config(const char *dir, const char *from, const char *to) {
    char *text;
    size_t n;
    bertc_error err;
    assert_int_equal(fs_read_all(TINY "/config.json", &text, &n, 1 << 20, &err), 0);
    char *at = from ? strstr(text, from) : NULL;
    if (from) assert_non_null(at);
    char out[8192];
    if (at) snprintf(out, sizeof out, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
    else snprintf(out, sizeof out, "%s", text);
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(fs_write_atomic(path, out, strlen(out), &err), 0);
    free(text);
}

/* Writes DIR/model.safetensors from the tiny one without the tensors whose names contain `drop`
 * (and with names rewritten by `rename` when given: "old->new" substring). */
static void write_weights(const char *dir, const char *drop, const char *from, const char *to) {
    safetensors_file f;
    bertc_error err;
    assert_int_equal(safetensors_open(&f, TINY "/model.safetensors", &err), 0);
    st_write_tensor *w = calloc(f.n, sizeof *w);
    char (*names)[200] = calloc(f.n, sizeof *names);
    float **data = calloc(f.n, sizeof *data);
    size_t k = 0;
    for (size_t i = 0; i < f.n; i++) {
        const st_tensor *t = &f.tensors[i];
        if (drop && strstr(t->name, drop)) continue;
        char *at = from ? strstr(t->name, from) : NULL;
        if (at) snprintf(names[k], sizeof names[k], "%.*s%s%s", (int)(at - t->name), t->name, to, at + strlen(from));
        else snprintf(names[k], sizeof names[k], "%s", t->name);
        data[k] = malloc(t->numel * sizeof(float));
        assert_int_equal(safetensors_to_f32(t, data[k], t->numel, &err), 0);
        w[k].name = names[k];
        w[k].data = data[k];
        w[k].ndim = t->ndim;
        memcpy(w[k].shape, t->shape, sizeof t->shape);
        k++;
    }
    char path[400];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(safetensors_write(path, w, k, NULL, 0, &err), 0);
    for (size_t i = 0; i < k; i++) free(data[i]);
    free(data);
    free(names);
    free(w);
    safetensors_close(&f);
}

static void make_dir(char *dir, size_t n, const char *name) {
    snprintf(dir, n, "%s/%s", tmpdir, name);
    bertc_error err;
    assert_int_equal(fs_mkdir_p(dir, &err), 0);
}

static void expect_load_error(const char *dir, const char *needle) {
    bert_model *m = NULL;
    bertc_error err;
    bert_load_options o;
    bert_load_options_default(&o);
    int rc = bert_load(&m, dir, &o, &err);
    printf("  %s -> %s\n", dir, rc ? err.msg : "(loaded)");
    assert_int_not_equal(rc, 0);
    assert_null(m);
    if (!strstr(err.msg, needle)) fail_msg("error '%s' does not mention '%s'", err.msg, needle);
}

static void test_bad_files(void **state) {
    (void)state;
    char dir[300];
    /* sizes that disagree with the weights: intermediate_size 64 -> 48 */
    make_dir(dir, sizeof dir, "bad_size");
    write_config(dir, "\"intermediate_size\": 64", "\"intermediate_size\": 48");
    copy_file(TINY "/model.safetensors", strcat(strcpy((char[400]){0}, dir), "/model.safetensors"));
    expect_load_error(dir, "bert.encoder.layer.0.intermediate.dense.weight");
    /* a missing required tensor */
    make_dir(dir, sizeof dir, "missing");
    write_config(dir, NULL, NULL);
    write_weights(dir, "layer.1.attention.self.key.bias", NULL, NULL);
    expect_load_error(dir, "bert.encoder.layer.1.attention.self.key.bias");
    /* an unknown activation (the config loader's error) */
    make_dir(dir, sizeof dir, "bad_act");
    write_config(dir, "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swishy\"");
    copy_file(TINY "/model.safetensors", strcat(strcpy((char[400]){0}, dir), "/model.safetensors"));
    expect_load_error(dir, "hidden_act");
    /* no weights file */
    make_dir(dir, sizeof dir, "no_weights");
    write_config(dir, NULL, NULL);
    expect_load_error(dir, "model.safetensors");
}

/* Older checkpoints: no "bert." prefix, LayerNorm gamma/beta, a cls.* head and no classifier. */
static void test_old_names_and_missing_head(void **state) {
    (void)state;
    char dir[300];
    make_dir(dir, sizeof dir, "old_names");
    write_config(dir, NULL, NULL);
    write_weights(dir, "classifier.", "LayerNorm.weight", "LayerNorm.gamma");
    /* second pass: also beta and the prefix (rewrite the just-written file) */
    char tmp2[300];
    make_dir(tmp2, sizeof tmp2, "old_names2");
    write_config(tmp2, NULL, NULL);
    {
        safetensors_file f;
        bertc_error err;
        char path[400];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        assert_int_equal(safetensors_open(&f, path, &err), 0);
        st_write_tensor *w = calloc(f.n + 1, sizeof *w);
        char (*names)[200] = calloc(f.n + 1, sizeof *names);
        float **data = calloc(f.n + 1, sizeof *data);
        for (size_t i = 0; i < f.n; i++) {
            const st_tensor *t = &f.tensors[i];
            const char *nm = strncmp(t->name, "bert.", 5) == 0 ? t->name + 5 : t->name;
            char *at = strstr(nm, "LayerNorm.bias");
            if (at) snprintf(names[i], 200, "%.*sLayerNorm.beta", (int)(at - nm), nm);
            else snprintf(names[i], 200, "%s", nm);
            data[i] = malloc(t->numel * sizeof(float));
            assert_int_equal(safetensors_to_f32(t, data[i], t->numel, &err), 0);
            w[i] = (st_write_tensor){.name = names[i], .data = data[i], .ndim = t->ndim};
            memcpy(w[i].shape, t->shape, sizeof t->shape);
        }
        static float junk[4];
        w[f.n] = (st_write_tensor){.name = "cls.predictions.bias", .data = junk, .ndim = 1, .shape = {4}};
        snprintf(path, sizeof path, "%s/model.safetensors", tmp2);
        assert_int_equal(safetensors_write(path, w, f.n + 1, NULL, 0, &err), 0);
        for (size_t i = 0; i < f.n; i++) free(data[i]);
        free(data);
        free(names);
        free(w);
        safetensors_close(&f);
    }
    bert_model *m = NULL, *tiny = load_tiny();
    bertc_error err;
    bert_load_options o;
    bert_load_options_default(&o);
    char *buf = NULL;
    size_t len = 0;
    o.notices = open_memstream(&buf, &len);
    if (bert_load(&m, tmp2, &o, &err)) fail_msg("bert_load: %s", err.msg);
    fclose(o.notices);
    printf("  notices: %s", buf);
    assert_non_null(strstr(buf, "classifier.weight"));
    free(buf);
    /* everything but the classifier equals the original */
    const bert_param_info *tab;
    size_t nt = bert_param_table(m, &tab);
    size_t body = tab[nt - 2].offset;
    assert_memory_equal(bert_params(m), bert_params(tiny), body * sizeof(float));
    bert_free(m);

    /* a task with 5 labels replaces the 3-label classifier, with a notice */
    o.num_labels = 5;
    buf = NULL;
    o.notices = open_memstream(&buf, &len);
    if (bert_load(&m, TINY, &o, &err)) fail_msg("bert_load: %s", err.msg);
    fclose(o.notices);
    printf("  notices: %s", buf);
    assert_non_null(strstr(buf, "classifier"));
    free(buf);
    assert_int_equal(bert_get_config(m)->num_labels, 5);
    assert_int_equal(bert_prepare(m, B, T, &err), 0);
    float loss = bert_forward(m, ids, mask, types, labels, B, T, 0, 0);
    assert_true(isfinite(loss));
    bert_free(m);
    bert_free(tiny);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_logits_loss_grads),
        cmocka_unit_test(test_label_smoothing),
        cmocka_unit_test(test_activation_variants),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_dropout_determinism),
        cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_grad_accumulation),
        cmocka_unit_test(test_smaller_batch),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_inference_plan),
        cmocka_unit_test(test_train_eval_plan),
        cmocka_unit_test(test_init_random),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_old_names_and_missing_head),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
