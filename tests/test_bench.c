/* bertc bench on the tiny fixture model: every measurement row is there with sane fields,
 * the FLOP counts equal the documented formula (computed here independently, product by
 * product), the recorded matrix products are at most the dense model's, the built-in shapes
 * are the real config.json files, and bad options are refused with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backend/ops.h"
#include "bench/bench.h"
#include "model/config.h"

#define TINY "tests/fixtures/bert/tiny"

/* The tiny fixture: 2 layers, hidden 32, 4 heads, ffn 64, 3 labels. */
enum { L = 2, C = 32, NH = 4, F = 64, K = 3 };

/* The dense model's FLOPs, one product at a time: Q, K, V, O and the two FFN Linear layers
 * over every token, Q K^T and P V per head, the pooler and the classifier per sequence. */
static double expected_flop(int B, int T, int train) {
    double N = (double)B * T, HS = C / NH, f = 0;
    for (int l = 0; l < L; l++) {
        f += 4 * (2 * N * C * C);             /* query, key, value, attention output */
        f += 2 * N * C * F + 2 * N * F * C;   /* feed-forward up and down */
        f += 2.0 * B * NH * T * T * HS;       /* scores */
        f += 2.0 * B * NH * T * T * HS;       /* probabilities @ values */
    }
    f += 2.0 * B * C * C + 2.0 * B * C * K;   /* pooler, classifier */
    return train ? 3 * f : f;
}

/* Runs bertc_bench and returns its JSON lines as an array. */
static cJSON *run_bench(const bertc_bench_options *o) {
    FILE *f = tmpfile();
    assert_non_null(f);
    bertc_error err = {0};
    int rc = bertc_bench(o, f, NULL, &err);
    if (rc) fail_msg("bertc_bench: %s", err.msg);
    rewind(f);
    cJSON *rows = cJSON_CreateArray();
    char line[8192];
    while (fgets(line, sizeof line, f)) {
        cJSON *j = cJSON_Parse(line);
        if (!j) fail_msg("not JSON: %s", line);
        cJSON_AddItemToArray(rows, j);
    }
    fclose(f);
    return rows;
}

static double num(const cJSON *row, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    if (!cJSON_IsNumber(v)) fail_msg("field %s missing or not a number", key);
    return v->valuedouble;
}

static const char *str(const cJSON *row, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(row, key);
    if (!cJSON_IsString(v)) fail_msg("field %s missing or not a string", key);
    return v->valuestring;
}

static int close_rel(double a, double b, double tol) { return fabs(a - b) <= tol * fabs(b); }

static void test_tiny_rows(void **state) {
    (void)state;
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    o.model_dir = TINY;
    o.seq = 16;
    o.train_batch = 4;
    o.eval_batch = 8;
    o.reps = 1;
    o.threads = 2;
    cJSON *rows = run_bench(&o);
    static const char *whats[] = {"latency", "eval_forward", "train_step", "matmul_step"};
    static const int batches[] = {1, 8, 4, 4};
    assert_int_equal(cJSON_GetArraySize(rows), 4);
    for (int i = 0; i < 4; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, i);
        assert_string_equal(str(r, "tool"), "bertc");
        assert_string_equal(str(r, "what"), whats[i]);
        assert_string_equal(str(r, "precision"), "fp32");
        assert_string_equal(str(r, "shape"), TINY);
        assert_int_equal((int)num(r, "batch"), batches[i]);
        assert_int_equal((int)num(r, "seq"), 16);
        assert_int_equal((int)num(r, "threads"), 2);
        assert_int_equal((int)num(r, "reps"), 1);
        assert_int_equal((int)num(r, "layers"), L);
        assert_int_equal((int)num(r, "hidden"), C);
        assert_int_equal((int)num(r, "heads"), NH);
        assert_int_equal((int)num(r, "intermediate"), F);
        assert_int_equal((int)num(r, "num_labels"), K);
        double med = num(r, "seconds_median"), mn = num(r, "seconds_min");
        assert_true(mn > 0 && mn <= med && med < 60);
        assert_true(close_rel(num(r, "examples_per_s"), batches[i] / med, 1e-4));
        assert_true(close_rel(num(r, "gflop_per_s"), num(r, "gflop") / med, 1e-4));
        assert_true(close_rel(num(r, "gflop_per_s_best"), num(r, "gflop") / mn, 1e-4));
        double rss = num(r, "peak_rss_mib");
        assert_true(rss > 1 && rss < 4096);
        /* the report says whether both tools ran on huge pages (bench/compare.py) */
        const cJSON *hp = cJSON_GetObjectItemCaseSensitive(r, "huge_pages");
        assert_true(cJSON_IsBool(hp) && cJSON_IsTrue(hp) == cpu_huge_pages_wanted());
    }
    const cJSON *lat = cJSON_GetArrayItem(rows, 0), *ev = cJSON_GetArrayItem(rows, 1);
    const cJSON *st = cJSON_GetArrayItem(rows, 2), *mm = cJSON_GetArrayItem(rows, 3);
    assert_true(close_rel(num(lat, "gflop") * 1e9, expected_flop(1, 16, 0), 1e-5));
    assert_true(close_rel(num(ev, "gflop") * 1e9, expected_flop(8, 16, 0), 1e-5));
    assert_true(close_rel(num(st, "gflop") * 1e9, expected_flop(4, 16, 1), 1e-5));
    /* The recorded products: some of them, at most the dense model's work (bertc's last layer
     * skips the positions whose output does not reach [CLS]). */
    assert_true(num(mm, "calls") > 0);
    /* product-running ops, forward and backward alike: per layer one Linear for queries, keys
     * and values, attention, the output dense and the FFN's two (the [CLS]-only last layer one
     * more: its queries apart), then the pooler and the classifier */
    printf("  recorded regions %.0f, calls %.0f\n", num(mm, "regions"), num(mm, "calls"));
    assert_true(num(mm, "regions") >= 2 * (5 * L + 3) - 1);
    assert_true(close_rel(num(mm, "model_gflop_step") * 1e9, expected_flop(4, 16, 1), 1e-5));
    double rec = num(mm, "gflop") * 1e9;
    assert_true(rec > 0.3 * expected_flop(4, 16, 1) && rec <= expected_flop(4, 16, 1) * (1 + 1e-9));
    assert_true(num(mm, "in_step_seconds") > 0);
    /* time inside the products, per thread, is part of that step's wall time */
    assert_true(num(mm, "in_step_seconds") <= num(mm, "recorded_step_seconds"));
    cJSON_Delete(rows);
}

static void test_only_and_formula_shape(void **state) {
    (void)state;
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    o.config_path = TINY "/config.json";
    o.seq = 8;
    o.train_batch = 2;
    o.reps = 2;
    o.warmup = 0;
    o.threads = 1;
    o.what = "step";
    cJSON *rows = run_bench(&o);
    assert_int_equal(cJSON_GetArraySize(rows), 1);
    const cJSON *r = cJSON_GetArrayItem(rows, 0);
    assert_string_equal(str(r, "what"), "train_step");
    assert_int_equal((int)num(r, "threads"), 1);
    assert_true(close_rel(num(r, "gflop") * 1e9, expected_flop(2, 8, 1), 1e-5));
    cJSON_Delete(rows);
}

static void test_peak(void **state) {
    (void)state;
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    o.peak = 1;
    o.config_path = TINY "/config.json";
    o.square = 64;
    o.seq = 16;
    o.train_batch = 2;
    o.reps = 1;
    o.threads = 2;
    cJSON *rows = run_bench(&o);
    int n = cJSON_GetArraySize(rows);
    assert_true(n >= 3);
    double best = 0;
    for (int i = 0; i < n - 1; i++) {
        const cJSON *r = cJSON_GetArrayItem(rows, i);
        assert_string_equal(str(r, "what"), "peak_sgemm");
        double gf = num(r, "gflop_per_s"), t = num(r, "seconds_min");
        assert_true(t > 0 && gf > 0);
        assert_true(close_rel(gf, 2 * num(r, "m") * num(r, "n") * num(r, "k") * 1e-9 / t, 1e-4));
        if (gf > best) best = gf;
    }
    const cJSON *last = cJSON_GetArrayItem(rows, n - 1);
    assert_string_equal(str(last, "what"), "peak");
    assert_true(close_rel(num(last, "gflop_per_s"), best, 1e-5));
    assert_int_equal((int)num(last, "threads"), 2);
    cJSON_Delete(rows);
}

/* The built-in shapes are exactly the real models' config.json. */
static void same_shape(const char *name, const char *path) {
    bert_config a, b;
    bertc_error err = {0};
    assert_int_equal(bench_shape_config(name, &a, &err), 0);
    if (bert_config_load(&b, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(a.vocab_size, b.vocab_size);
    assert_int_equal(a.hidden_size, b.hidden_size);
    assert_int_equal(a.num_hidden_layers, b.num_hidden_layers);
    assert_int_equal(a.num_attention_heads, b.num_attention_heads);
    assert_int_equal(a.intermediate_size, b.intermediate_size);
    assert_int_equal(a.max_position_embeddings, b.max_position_embeddings);
    assert_int_equal(a.type_vocab_size, b.type_vocab_size);
    assert_int_equal(a.pad_token_id, b.pad_token_id);
    assert_int_equal(a.hidden_act, b.hidden_act);
    assert_true(a.hidden_dropout_prob == b.hidden_dropout_prob);
    assert_true(a.attention_probs_dropout_prob == b.attention_probs_dropout_prob);
    assert_true(a.layer_norm_eps == b.layer_norm_eps);
    assert_int_equal(a.num_labels, 2);
    bert_config_free(&b);
}

static void test_builtin_shapes(void **state) {
    (void)state;
    same_shape("bert-base", "tests/fixtures/model_io/bert_base_uncased_config.json");
    same_shape("minilm", "tests/fixtures/model_io/minilm_l6_config.json");
    bert_config c;
    bertc_error err = {0};
    assert_int_equal(bench_shape_config("gpt2", &c, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "gpt2"));
    /* The documented formula on bert-base: 2*B*T*L*(4C^2+2CF) + 4*B*T^2*C*L + 2*B*(C^2+CK). */
    assert_int_equal(bench_shape_config("bert-base", &c, &err), 0);
    double want = 2.0 * 16 * 128 * 12 * (4.0 * 768 * 768 + 2.0 * 768 * 3072) + 4.0 * 16 * 128 * 128 * 768 * 12 +
                  2.0 * 16 * (768.0 * 768 + 768 * 2);
    assert_true(close_rel(bench_model_flop(&c, 16, 128, 1), 3 * want, 1e-12));
}

static void refused(bertc_bench_options *o, int code, const char *needle) {
    bertc_error err = {0};
    int rc = bertc_bench(o, NULL, NULL, &err);
    assert_int_equal(rc, code);
    if (!strstr(err.msg, needle)) fail_msg("message '%s' does not mention '%s'", err.msg, needle);
}

static void test_bad_options(void **state) {
    (void)state;
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    o.model_dir = TINY;
    o.seq = 16;
    o.reps = 1;
    o.precision = "fp8";
    refused(&o, BERTC_EUNSUPPORTED, "fp8");
    o.precision = "fp32";
    o.what = "eval,warp";
    refused(&o, BERTC_EINVAL, "warp");
    o.what = NULL;
    o.seq = 64; /* the fixture has 32 positions */
    refused(&o, BERTC_EINVAL, "max_position_embeddings");
    o.seq = 16;
    o.shape = "minilm";
    refused(&o, BERTC_EINVAL, "one of");
    o.shape = NULL;
    o.model_dir = NULL;
    refused(&o, BERTC_EINVAL, "model folder");
    o.model_dir = "tests/fixtures/nope";
    refused(&o, BERTC_EIO, "nope");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_rows),
        cmocka_unit_test(test_only_and_formula_shape),
        cmocka_unit_test(test_peak),
        cmocka_unit_test(test_builtin_shapes),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
