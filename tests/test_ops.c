/* The CPU op set on small in-memory inputs, against plain double-precision formulas:
 * activations and their derivatives over a range, dropout's keep rate and scaling, the
 * attention mask giving exactly zero probability, cross-entropy with label smoothing, and
 * matmul_backward's accumulate flag. (The whole model is checked against transformers in
 * test_bert.c.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"

static void test_activations(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { N = 2001 };
    static float x[N], y[N], dy[N], ones[N];
    for (int i = 0; i < N; i++) {
        x[i] = -10.0f + 20.0f * i / (N - 1);
        ones[i] = 1.0f;
    }
    double worst[3] = {0}, worst_d[3] = {0};
    for (int a = 0; a < 3; a++) {
        be->act_forward((ops_act)a, y, x, N);
        be->act_backward((ops_act)a, dy, ones, x, N);
        for (int i = 0; i < N; i++) {
            double v = x[i], want, dwant;
            if (a == OPS_ACT_GELU) {
                want = 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
                dwant = 0.5 * (1.0 + erf(v / sqrt(2.0))) + v * exp(-0.5 * v * v) / sqrt(2.0 * M_PI);
            } else if (a == OPS_ACT_GELU_NEW) {
                double u = sqrt(2.0 / M_PI) * (v + 0.044715 * v * v * v), t = tanh(u);
                want = 0.5 * v * (1.0 + t);
                dwant = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * sqrt(2.0 / M_PI) * (1.0 + 3.0 * 0.044715 * v * v);
            } else {
                want = v > 0 ? v : 0;
                dwant = v > 0 ? 1 : 0;
            }
            worst[a] = fmax(worst[a], fabs(y[i] - want));
            worst_d[a] = fmax(worst_d[a], fabs(dy[i] - dwant));
        }
        printf("  act %d: max |f - exact| %.2g, max |f' - exact| %.2g\n", a, worst[a], worst_d[a]);
        assert_true(worst[a] <= 2e-6);   /* |x| up to 10: a few float ulps of x */
        /* gelu_new' at |x| ~ 10 multiplies tanh's float rounding by ~50 */
        assert_true(worst_d[a] <= 5e-6);
    }
}

static void test_dropout(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { N = 100000 };
    float *x = malloc(N * sizeof(float)), *d = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = 1.0f;
    be->dropout_forward(x, N, 0.1f, 5, 3);
    int dropped = 0;
    for (int i = 0; i < N; i++) {
        if (x[i] == 0.0f) dropped++;
        else assert_true(fabsf(x[i] - 1.0f / 0.9f) < 1e-6f);
        /* the mask is the documented hash */
        assert_int_equal(x[i] != 0.0f, dropout_keep(5, 3, (uint64_t)i, 0.1f));
    }
    printf("  dropped %d of %d at p = 0.1\n", dropped, N);
    assert_true(abs(dropped - N / 10) < 600); /* ~6 sigma */
    /* backward drops the same elements */
    for (int i = 0; i < N; i++) d[i] = 2.0f;
    be->dropout_backward(d, d, N, 0.1f, 5, 3);
    for (int i = 0; i < N; i++) assert_true((d[i] == 0.0f) == (x[i] == 0.0f));
    /* another stream, another mask */
    for (int i = 0; i < N; i++) d[i] = 1.0f;
    be->dropout_forward(d, N, 0.1f, 5, 4);
    int same = 0;
    for (int i = 0; i < N; i++) same += (d[i] == 0.0f) && (x[i] == 0.0f);
    assert_true(same < 2 * N / 100);
    free(x);
    free(d);
}

static void test_attention_mask(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { B = 1, T = 5, C = 4, NH = 2 };
    float q[B * T * C], k[B * T * C], v[B * T * C], ctx[B * T * C], att[B * NH * T * T], scratch[2 * B * NH * T * T];
    for (int i = 0; i < B * T * C; i++) {
        q[i] = sinf((float)i);
        k[i] = cosf(1.5f * i);
        v[i] = (float)i;
    }
    int32_t mask[T] = {1, 1, 1, 0, 0};
    be->attention_forward(ctx, att, q, k, v, mask, scratch, B, T, T, C, NH, 0.0f, 0, 0);
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < T; i++) {
            float *row = att + ((size_t)h * T + i) * T;
            double s = 0;
            for (int j = 0; j < T; j++) s += row[j];
            assert_true(fabs(s - 1.0) < 1e-6);
            assert_true(row[3] == 0.0f && row[4] == 0.0f);
        }
    /* context of query 0, head 0 by hand */
    int HS = C / NH;
    double sc[3], mx = -1e30, sum = 0;
    for (int j = 0; j < 3; j++) {
        sc[j] = 0;
        for (int d = 0; d < HS; d++) sc[j] += (double)q[d] * k[j * C + d];
        sc[j] /= sqrt((double)HS);
        mx = fmax(mx, sc[j]);
    }
    for (int j = 0; j < 3; j++) sum += exp(sc[j] - mx);
    for (int d = 0; d < HS; d++) {
        double want = 0;
        for (int j = 0; j < 3; j++) want += exp(sc[j] - mx) / sum * v[j * C + d];
        assert_true(fabs(ctx[d] - want) < 1e-5);
    }
}

static void test_crossentropy(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    float logits[6] = {1.0f, 2.0f, 0.5f, -1.0f, 0.0f, 3.0f}, probs[6], losses[2], dl[6];
    int32_t labels[2] = {1, 0};
    float eps = 0.2f;
    be->crossentropy_forward(losses, probs, logits, labels, 2, 3, eps);
    be->crossentropy_backward(dl, probs, labels, 2, 3, eps, 0.5f);
    for (int b = 0; b < 2; b++) {
        const float *z = logits + 3 * b;
        double lse = log(exp(z[0]) + exp(z[1]) + exp(z[2]));
        double want = 0;
        for (int j = 0; j < 3; j++) {
            double q = eps / 3 + (j == labels[b] ? 1 - eps : 0);
            want -= q * (z[j] - lse);
            assert_true(fabs(dl[3 * b + j] - 0.5 * (exp(z[j] - lse) - q)) < 1e-6);
        }
        assert_true(fabs(losses[b] - want) < 1e-6);
    }
    /* an ignored label (< 0) contributes nothing */
    labels[1] = -100;
    be->crossentropy_forward(losses, probs, logits, labels, 2, 3, eps);
    be->crossentropy_backward(dl, probs, labels, 2, 3, eps, 1.0f);
    assert_true(losses[1] == 0.0f && dl[3] == 0.0f && dl[4] == 0.0f && dl[5] == 0.0f);
}

static void test_matmul(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { N = 7, IC = 5, OC = 3 };
    float inp[N * IC], w[OC * IC], b[OC], out[N * OC], dout[N * OC], dinp[N * IC], dw[OC * IC] = {0}, db[OC] = {0};
    for (int i = 0; i < N * IC; i++) inp[i] = 0.1f * (float)(i % 11) - 0.4f;
    for (int i = 0; i < OC * IC; i++) w[i] = 0.05f * (float)(i % 7) - 0.1f;
    for (int i = 0; i < OC; i++) b[i] = (float)i;
    for (int i = 0; i < N * OC; i++) dout[i] = 0.3f * (float)(i % 5) - 0.5f;
    be->matmul_forward(out, inp, w, b, N, IC, OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = b[o];
            for (int i = 0; i < IC; i++) s += (double)inp[n * IC + i] * w[o * IC + i];
            assert_true(fabs(out[n * OC + o] - s) < 1e-5);
        }
    for (int i = 0; i < N * IC; i++) dinp[i] = 1.0f; /* accumulate adds to what is there */
    be->matmul_backward(dinp, dw, db, dout, inp, w, N, IC, OC, 1);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) {
            double s = 1.0;
            for (int o = 0; o < OC; o++) s += (double)dout[n * OC + o] * w[o * IC + i];
            assert_true(fabs(dinp[n * IC + i] - s) < 1e-5);
        }
    be->matmul_backward(dinp, dw, db, dout, inp, w, N, IC, OC, 0); /* overwrite; dw, db accumulate */
    for (int o = 0; o < OC; o++) {
        double sb = 0;
        for (int n = 0; n < N; n++) sb += dout[n * OC + o];
        assert_true(fabs(db[o] - 2 * sb) < 1e-5);
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += (double)dout[n * OC + o] * inp[n * IC + i];
            assert_true(fabs(dw[o * IC + i] - 2 * s) < 1e-5);
        }
    }
    for (int n = 0; n < N; n++)
        for (int i = 0; i < IC; i++) {
            double s = 0;
            for (int o = 0; o < OC; o++) s += (double)dout[n * OC + o] * w[o * IC + i];
            assert_true(fabs(dinp[n * IC + i] - s) < 1e-5);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_attention_mask),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_matmul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
