/* AdamW and gradient clipping replayed against PyTorch: tests/fixtures/optim/adamw.json holds
 * torch.optim.AdamW (single-tensor path, float32) runs written by reference/make_optim_fixture.py;
 * every parameter after every step must agree within 1e-6 (absolute, relative above 1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "train/grad_sync.h"
#include "train/optim.h"
#include "train/schedule.h"

#define FIXTURE "tests/fixtures/optim/adamw.json"

/* Copies a JSON number array of exactly n entries into out. */
static void read_floats(const cJSON *array, float *out, size_t n) {
    assert_true(cJSON_IsArray(array));
    assert_int_equal(cJSON_GetArraySize(array), n);
    size_t i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, array) out[i++] = (float)x->valuedouble;
}

static double number(const cJSON *obj, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

/* |got - want| measured absolutely up to 1 and relatively above. */
static double scaled_diff(float got, float want) {
    double d = fabs((double)got - want);
    return fabs(want) > 1.0 ? d / fabs(want) : d;
}

static void test_adamw_matches_torch(void **state) {
    (void)state;
    cJSON *fx = test_load_json(FIXTURE);
    assert_non_null(fx);
    const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(fx, "tensors");
    size_t n_groups = (size_t)cJSON_GetArraySize(tensors), n = 0;
    adamw_group groups[8];
    assert_true(n_groups > 0 && n_groups <= 8);
    for (size_t i = 0; i < n_groups; i++) {
        const cJSON *t = cJSON_GetArrayItem(tensors, (int)i);
        groups[i].offset = n;
        groups[i].numel = (size_t)number(t, "numel");
        groups[i].weight_decay = (float)number(t, "weight_decay");
        groups[i].lr_scale = (float)number(t, "lr_scale");
        n += groups[i].numel;
    }
    float *init = malloc(n * sizeof(float)), *params = malloc(n * sizeof(float));
    float *grads = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    assert_true(init && params && grads && want);
    read_floats(cJSON_GetObjectItemCaseSensitive(fx, "init"), init, n);

    const cJSON *run;
    cJSON_ArrayForEach(run, cJSON_GetObjectItemCaseSensitive(fx, "runs")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(run, "name")->valuestring;
        lr_schedule sched = {.base_lr = (float)number(run, "base_lr"),
                             .warmup_steps = (long)number(run, "warmup"),
                             .total_steps = (long)number(run, "total")};
        assert_int_equal(lr_schedule_parse(cJSON_GetObjectItemCaseSensitive(run, "schedule")->valuestring, &sched.kind), 0);
        float max_norm = (float)number(run, "max_norm");

        adamw opt;
        bertc_error err;
        assert_int_equal(adamw_init(&opt, n, groups, n_groups, &err), BERTC_OK);
        memcpy(params, init, n * sizeof(float));
        double max_diff = 0.0, max_lr_diff = 0.0, max_norm_diff = 0.0;
        long k = 0, ulps_off = 0;
        const cJSON *step;
        cJSON_ArrayForEach(step, cJSON_GetObjectItemCaseSensitive(run, "steps")) {
            double want_lr = number(step, "lr");
            float lr = lr_schedule_at(&sched, k);
            double lr_diff = fabs(lr - want_lr) / (want_lr > 0 ? want_lr : 1.0);
            if (lr_diff > max_lr_diff) max_lr_diff = lr_diff;
            read_floats(cJSON_GetObjectItemCaseSensitive(step, "grad"), grads, n);
            float clip = 1.0f; /* as the trainer: the norm measured, its factor folded into the update */
            if (max_norm > 0) {
                float norm = clip_grad_norm(grads, n, 0.0f);
                double want_norm = number(step, "norm");
                double d = fabs(norm - want_norm) / want_norm;
                if (d > max_norm_diff) max_norm_diff = d;
                clip = grad_clip_coef(norm, max_norm);
            }
            adamw_step_scaled(&opt, params, grads, lr, clip);
            read_floats(cJSON_GetObjectItemCaseSensitive(step, "params"), want, n);
            for (size_t i = 0; i < n; i++) {
                double d = scaled_diff(params[i], want[i]);
                if (d > max_diff) max_diff = d;
                ulps_off += params[i] != want[i];
                if (d > 1e-6) fail_msg("%s: step %ld: parameter %zu is %.9g, torch has %.9g", name, k, i, params[i], want[i]);
            }
            k++;
        }
        assert_int_equal(opt.step, k);
        print_message("%s: %ld steps, max |param - torch| %.3g (%ld of %ld values not bit-identical), "
                      "max lr rel diff %.3g, max clip-norm rel diff %.3g\n",
                      name, k, max_diff, ulps_off, k * (long)n, max_lr_diff, max_norm_diff);
        assert_true(max_lr_diff <= 1e-7);
        assert_true(max_norm_diff <= 1e-6);
        adamw_free(&opt);
    }
    free(init);
    free(params);
    free(grads);
    free(want);
    cJSON_Delete(fx);
}

/* One Adam step from zero moments moves each parameter by lr*sign(g) (up to eps): a check of the
 * bias corrections that does not depend on the fixture. */
static void test_first_step_is_sign(void **state) {
    (void)state;
    float p[4] = {1, -1, 0.5f, 2}, g[4] = {0.3f, -2, 1e-3f, -1e-4f};
    adamw_group grp = {.offset = 0, .numel = 4, .weight_decay = 0, .lr_scale = 1};
    adamw opt;
    assert_int_equal(adamw_init(&opt, 4, &grp, 1, NULL), BERTC_OK);
    adamw_step(&opt, p, g, 0.01f);
    assert_float_equal(p[0], 0.99f, 1e-6);
    assert_float_equal(p[1], -0.99f, 1e-6);
    assert_float_equal(p[2], 0.49f, 1e-5);
    assert_float_equal(p[3], 2.01f, 1e-4);
    adamw_free(&opt);
}

/* Decay happens even where the gradient is 0, scaled by lr*lr_scale*wd; the lr_scale 0 group is frozen. */
static void test_decay_and_scale(void **state) {
    (void)state;
    float p[2] = {2, 2}, g[2] = {0, 0};
    adamw_group grp[2] = {{.offset = 0, .numel = 1, .weight_decay = 0.5f, .lr_scale = 1},
                          {.offset = 1, .numel = 1, .weight_decay = 0.5f, .lr_scale = 0}};
    adamw opt;
    assert_int_equal(adamw_init(&opt, 2, grp, 2, NULL), BERTC_OK);
    adamw_step(&opt, p, g, 0.1f);
    assert_float_equal(p[0], 2 * (1 - 0.1 * 0.5), 1e-6);
    assert_float_equal(p[1], 2, 0);
    adamw_free(&opt);
}

/* A group large enough for the threaded, vectorised path gives bit for bit what the scalar
 * formula gives (the fixture's tensors are small: they mostly run the scalar tail). */
static void test_large_group_matches_scalar_formula(void **state) {
    (void)state;
    const size_t n = 100003;
    float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
    float *m = calloc(n, sizeof(float)), *v = calloc(n, sizeof(float));
    assert_true(p && g && want && m && v);
    for (size_t i = 0; i < n; i++) {
        p[i] = want[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
        g[i] = (float)((i * 104729) % 2001) / 1000.0f - 1.0f;
    }
    adamw_group grp = {.offset = 0, .numel = n, .weight_decay = 0.01f, .lr_scale = 1};
    adamw opt;
    assert_int_equal(adamw_init(&opt, n, &grp, 1, NULL), BERTC_OK);
    for (int t = 1; t <= 3; t++) {
        const float lr = 1e-3f;
        adamw_step(&opt, p, g, lr);
        const double bc1 = 1.0 - pow(0.9, t), bc2_sqrt = sqrt(1.0 - pow(0.999, t));
        const float decay = (float)(1.0 - (double)lr * 0.01), step = (float)-((double)lr / bc1);
        for (size_t i = 0; i < n; i++) {
            float pi = want[i] * decay;
            m[i] = fmaf(0.1f, g[i] - m[i], m[i]);
            v[i] = fmaf(0.001f * g[i], g[i], v[i] * 0.999f);
            float denom = sqrtf(v[i]) / (float)bc2_sqrt + 1e-8f;
            want[i] = pi + step * m[i] / denom;
        }
    }
    assert_memory_equal(p, want, n * sizeof(float));
    assert_memory_equal(opt.m, m, n * sizeof(float));
    assert_memory_equal(opt.v, v, n * sizeof(float));
    adamw_free(&opt);
    free(p);
    free(g);
    free(want);
    free(m);
    free(v);
}

static void test_init_rejects_bad_groups(void **state) {
    (void)state;
    adamw opt;
    bertc_error err;
    adamw_group outside = {.offset = 8, .numel = 4, .weight_decay = 0, .lr_scale = 1};
    assert_int_equal(adamw_init(&opt, 10, &outside, 1, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "outside"));
    adamw_group huge = {.offset = 1, .numel = SIZE_MAX, .weight_decay = 0, .lr_scale = 1};
    assert_int_equal(adamw_init(&opt, 10, &huge, 1, &err), BERTC_EINVAL);
    adamw_group nan_wd = {.offset = 0, .numel = 4, .weight_decay = NAN, .lr_scale = 1};
    assert_int_equal(adamw_init(&opt, 10, &nan_wd, 1, &err), BERTC_EINVAL);
    assert_int_equal(adamw_init(&opt, 10, NULL, 1, &err), BERTC_EINVAL);
    adamw_free(&opt); /* safe after a failed init */
}

static void test_clip_grad_norm(void **state) {
    (void)state;
    float g[2] = {3, 4};
    assert_float_equal(clip_grad_norm(g, 2, 0), 5, 1e-6); /* measure only */
    assert_float_equal(g[0], 3, 0);
    assert_float_equal(clip_grad_norm(g, 2, 10), 5, 1e-6); /* below max: untouched */
    assert_float_equal(g[1], 4, 0);
    assert_float_equal(clip_grad_norm(g, 2, 1), 5, 1e-6);
    assert_float_equal(g[0], 0.6f, 1e-6);
    assert_float_equal(g[1], 0.8f, 1e-6);
    assert_float_equal(clip_grad_norm(g, 0, 1), 0, 0); /* empty */

    /* A large array takes the OpenMP path; its norm is sqrt(n) for all-ones gradients. */
    size_t n = 1 << 20;
    float *big = malloc(n * sizeof(float));
    assert_non_null(big);
    for (size_t i = 0; i < n; i++) big[i] = 1;
    assert_float_equal(clip_grad_norm(big, n, 1), 1024, 1e-3);
    assert_float_equal(big[12345], 1.0f / (1024 + 1e-6f), 1e-9);
    free(big);
}

static void test_grad_clip_coef(void **state) {
    (void)state;
    assert_true(grad_clip_coef(5.0f, 0.0f) == 1.0f);  /* no clipping */
    assert_true(grad_clip_coef(5.0f, -1.0f) == 1.0f);
    assert_true(grad_clip_coef(0.5f, 1.0f) == 1.0f);  /* within bounds */
    assert_true(grad_clip_coef(NAN, 1.0f) == 1.0f);   /* left to the caller's finiteness test */
    assert_true(grad_clip_coef(5.0f, 1.0f) == 1.0f / (5.0f + 1e-6f));
    assert_true(grad_clip_coef(INFINITY, 1.0f) == 0.0f);
}

/* The clip folded into AdamW (what the trainer runs) against the separate scaling pass followed
 * by the plain update: the same bits in the parameters and both moments, through optim.c's host
 * loops (vector body, scalar tail, threaded) and through the CPU backend's table. */
static void test_folded_clip_matches_scaling_pass(void **state) {
    (void)state;
    const size_t sizes[] = {13, 8192 + 5, 100003};
    for (int on_table = 0; on_table < 2; on_table++) {
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si];
            adamw_group groups[2] = {{0, n / 2, 0.01f, 1.0f}, {n / 2, n - n / 2, 0.0f, 0.5f}};
            float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
            float *g1 = malloc(n * sizeof(float)), *g2 = malloc(n * sizeof(float));
            assert_true(p1 && p2 && g1 && g2);
            adamw a, b;
            bertc_error err;
            const bertc_backend *be = on_table ? bertc_backend_cpu() : NULL;
            assert_int_equal(adamw_init_on(&a, be, n, groups, 2, &err), BERTC_OK);
            assert_int_equal(adamw_init_on(&b, be, n, groups, 2, &err), BERTC_OK);
            uint32_t x = 12345;
            for (size_t i = 0; i < n; i++) {
                x = x * 1664525u + 1013904223u;
                p1[i] = p2[i] = ((float)(x >> 8) / 16777216.0f - 0.5f);
            }
            for (int step = 0; step < 3; step++) {
                for (size_t i = 0; i < n; i++) {
                    x = x * 1664525u + 1013904223u;
                    g1[i] = g2[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * 4.0f * (step + 1);
                }
                /* max_norm 1 clips every step here (the norms are in the tens to hundreds) */
                float n1 = clip_grad_norm_on(be, g1, n, 1.0f);
                float n2 = clip_grad_norm_on(be, g2, n, 0.0f);
                assert_memory_equal(&n1, &n2, sizeof n1);
                float coef = grad_clip_coef(n2, 1.0f);
                assert_true(coef < 1.0f);
                adamw_step(&a, p1, g1, 1e-3f);
                adamw_step_scaled(&b, p2, g2, 1e-3f, coef);
                assert_memory_equal(p1, p2, n * sizeof(float));
            }
            assert_memory_equal(a.m, b.m, n * sizeof(float));
            assert_memory_equal(a.v, b.v, n * sizeof(float));
            adamw_step_scaled(&b, p2, g1, 1e-3f, 1.0f); /* a factor of 1: the plain update */
            adamw_step(&a, p1, g1, 1e-3f);
            assert_memory_equal(p1, p2, n * sizeof(float));
            adamw_free(&a), adamw_free(&b);
            free(p1), free(p2), free(g1), free(g2);
        }
    }
}

/* adamw_set_mirror: the update also writes each updated parameter rounded to bf16, exactly what
 * the backend's to_bf16 makes of the new parameters; parameters and moments are those of an
 * update without the mirror, bit for bit; what no group covers is not written. Both CPU paths
 * (optim.c's host loops and the backend table), sizes that end inside a vector and a chunk, a
 * group that starts off an 8-element boundary, NaN and overflow among the parameters. */
static void test_mirror_is_the_rounding(void **state) {
    (void)state;
    const bertc_backend *cpu = bertc_backend_cpu();
    const size_t sizes[] = {13, 8192 + 5, 100003};
    for (int on_table = 0; on_table < 2; on_table++) {
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++) {
            size_t n = sizes[si], gap = 3; /* elements [n/2 - gap, n/2) are in no group */
            adamw_group groups[2] = {{0, n / 2 - gap, 0.01f, 1.0f}, {n / 2, n - n / 2, 0.0f, 0.5f}};
            float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
            uint16_t *mirror = malloc(n * sizeof(uint16_t)), *want = malloc(n * sizeof(uint16_t));
            assert_true(p1 && p2 && g && mirror && want);
            adamw a, b;
            bertc_error err;
            const bertc_backend *be = on_table ? cpu : NULL;
            assert_int_equal(adamw_init_on(&a, be, n, groups, 2, &err), BERTC_OK);
            assert_int_equal(adamw_init_on(&b, be, n, groups, 2, &err), BERTC_OK);
            assert_int_equal(adamw_set_mirror(&b, mirror, 0, n), 0);
            uint32_t x = 777;
            for (size_t i = 0; i < n; i++) {
                x = x * 1664525u + 1013904223u;
                p1[i] = p2[i] = ((float)(x >> 8) / 16777216.0f - 0.5f);
            }
            p1[n - 1] = p2[n - 1] = NAN;
            if (n > 20) p1[17] = p2[17] = 3.4e38f; /* rounds to infinity in bf16 */
            for (size_t i = 0; i < n; i++) mirror[i] = 0xABCD;
            for (int step = 0; step < 2; step++) {
                for (size_t i = 0; i < n; i++) {
                    x = x * 1664525u + 1013904223u;
                    g[i] = ((float)(x >> 8) / 16777216.0f - 0.5f) * (step + 1);
                }
                adamw_step(&a, p1, g, 1e-3f);
                adamw_step(&b, p2, g, 1e-3f);
                assert_memory_equal(p1, p2, n * sizeof(float));
            }
            assert_memory_equal(a.m, b.m, n * sizeof(float));
            assert_memory_equal(a.v, b.v, n * sizeof(float));
            cpu->to_bf16(want, p2, n);
            for (size_t i = 0; i < n; i++) {
                int covered = i < n / 2 - gap || i >= n / 2;
                assert_int_equal(mirror[i], covered ? want[i] : 0xABCD);
            }
            if (n > 20) assert_int_equal(mirror[17], 0x7F80); /* +inf */
            assert_int_equal(mirror[n - 1], 0x7FC0);           /* the quiet NaN, as to_bf16 */
            /* a span over the second group only: the first group's entries stay as they are */
            uint16_t keep0 = mirror[0];
            assert_int_equal(adamw_set_mirror(&b, mirror, 1, n), -1); /* across the first group */
            assert_null(b.mirror);
            assert_int_equal(adamw_set_mirror(&b, mirror, n / 2, n), 0);
            adamw_step(&a, p1, g, 1e-3f);
            adamw_step(&b, p2, g, 1e-3f);
            assert_memory_equal(p1, p2, n * sizeof(float));
            cpu->to_bf16(want, p2, n);
            assert_int_equal(mirror[0], keep0);
            assert_true(mirror[0] != want[0]); /* it would have moved */
            assert_memory_equal(mirror + n / 2, want + n / 2, (n - n / 2) * sizeof(uint16_t));
            adamw_free(&a), adamw_free(&b);
            free(p1), free(p2), free(g), free(mirror), free(want);
        }
    }
}

/* One process: the mean over one rank is the gradient itself. */
static void test_grad_sync_single(void **state) {
    (void)state;
    grad_sync sync;
    grad_sync_single(&sync);
    float g[3] = {1, -2, 3};
    assert_int_equal(sync.world_size, 1);
    assert_int_equal(sync.rank, 0);
    assert_int_equal(sync.allreduce_mean(&sync, g, 3), 0);
    assert_true(g[0] == 1 && g[1] == -2 && g[2] == 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_torch),
        cmocka_unit_test(test_first_step_is_sign),
        cmocka_unit_test(test_decay_and_scale),
        cmocka_unit_test(test_large_group_matches_scalar_formula),
        cmocka_unit_test(test_init_rejects_bad_groups),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_grad_clip_coef),
        cmocka_unit_test(test_folded_clip_matches_scaling_pass),
        cmocka_unit_test(test_mirror_is_the_rounding),
        cmocka_unit_test(test_grad_sync_single),
    };
    return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
