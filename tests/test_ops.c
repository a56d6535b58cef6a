/* The CPU op set on small in-memory inputs, against plain double-precision formulas:
 * activations and their derivatives over a range, dropout's keep rate and scaling, the
 * attention mask giving exactly zero probability, cross-entropy with label smoothing, and
 * matmul_backward's accumulate flag; each fused op against the composition of unfused ops it
 * replaces, forward and backward, on odd sizes, with dropout on and off; attention with dropout
 * against a double-precision reference. (The whole model is checked against transformers in
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

#include <omp.h>

#include "backend/ops.h"
#include "backend/cpu/gemm.h"

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

/* dropout_keep compares integers; its answers must be the documented u = (h >> 40) * 2^-24 >= p
 * in float, for every p, including those that land exactly on a multiple of 2^-24 and those
 * between two (where a ceiling one off would show). */
static void test_dropout_threshold(void **state) {
    (void)state;
    const float ps[] = {0.0f, 1e-9f, 0x1p-24f, 0x1.8p-24f, 0.1f, 0.3f, 0.5f, 0.75f, 0.9f, 0x1.fffffep-1f, 1.0f, -0.5f, 1.5f};
    long checked = 0;
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        for (uint64_t i = 0; i < 200000; i++) {
            uint64_t h = ops_mix64(7 ^ ops_mix64(2 * 0x9E3779B97F4A7C15ULL + i));
            int want = (float)(h >> 40) * (1.0f / 16777216.0f) >= ps[k];
            assert_int_equal(dropout_keep(7, 2, i, ps[k]), want);
            checked++;
        }
        /* the integers either side of the threshold, where the answer flips */
        int64_t t = dropout_threshold(ps[k]);
        for (int64_t u = t - 2; u <= t + 2; u++) {
            if (u < 0 || u >= (1 << 24)) continue;
            assert_int_equal(u >= t, (float)u * (1.0f / 16777216.0f) >= ps[k]);
        }
    }
    assert_int_equal(dropout_threshold(NAN), 1 << 24); /* u >= NaN is false: all dropped */
    printf("  %ld keep decisions match the float formula\n", checked);
}

static void test_dropout(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { N = 100000 };
    float *x = malloc(N * sizeof(float)), *d = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) x[i] = 1.0f;
    be->dropout_forward(x, N, 0.1f, 5, 3, NULL);
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
    be->dropout_backward(d, d, N, 0.1f, 5, 3, NULL);
    for (int i = 0; i < N; i++) assert_true((d[i] == 0.0f) == (x[i] == 0.0f));
    /* the draw kept as bytes (keeps_dropout_draw): the same output bit for bit, every byte the
     * hash's answer, and a backward that reads the bytes rather than hashing again (a flipped
     * byte moves its element) and otherwise gives the redrawn backward's bits */
    assert_int_equal(be->keeps_dropout_draw, 1);
    uint8_t *keep = malloc(N);
    float *xk = malloc(N * sizeof(float)), *dk = malloc(N * sizeof(float));
    for (int i = 0; i < N; i++) xk[i] = 1.0f;
    be->dropout_forward(xk, N, 0.1f, 5, 3, keep);
    assert_memory_equal(xk, x, N * sizeof(float));
    for (int i = 0; i < N; i++) assert_int_equal(keep[i], dropout_keep(5, 3, (uint64_t)i, 0.1f));
    for (int i = 0; i < N; i++) dk[i] = 2.0f;
    be->dropout_backward(dk, dk, N, 0.1f, 5, 3, keep);
    assert_memory_equal(dk, d, N * sizeof(float));
    keep[7] ^= 1;
    keep[N - 1] ^= 1;
    for (int i = 0; i < N; i++) dk[i] = 2.0f;
    be->dropout_backward(dk, dk, N, 0.1f, 5, 3, keep);
    for (int i = 0; i < N; i++) assert_true(dk[i] == (keep[i] ? 2.0f * (1.0f / 0.9f) : 0.0f));
    assert_true(dk[7] != d[7] && dk[N - 1] != d[N - 1]);
    free(keep);
    free(xk);
    free(dk);
    /* another stream, another mask */
    for (int i = 0; i < N; i++) d[i] = 1.0f;
    be->dropout_forward(d, N, 0.1f, 5, 4, NULL);
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
    be->attention_forward(ctx, att, q, k, v, mask, scratch, B, T, T, C, NH, C, C, 0.0f, 0, 0, NULL);
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

/* gather picks rows by index; scatter writes them back and leaves the other rows alone */
static void test_rows(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { R = 5, C = 3 };
    float x[R * C], picked[2 * C], back[R * C];
    for (int i = 0; i < R * C; i++) x[i] = (float)i, back[i] = -1.0f;
    int32_t rows[2] = {3, 0};
    be->rows_gather(picked, x, rows, 2, C);
    for (int c = 0; c < C; c++) {
        assert_true(picked[c] == x[3 * C + c]);
        assert_true(picked[C + c] == x[c]);
    }
    be->rows_scatter(back, picked, rows, 2, C);
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) assert_true(back[r * C + c] == (r == 0 || r == 3 ? x[r * C + c] : -1.0f));
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

/* ---- fused ops against their unfused compositions ---- */

static float frand(uint64_t *st) { /* uniform in [-1, 1), xorshift: inputs only */
    *st ^= *st << 13;
    *st ^= *st >> 7;
    *st ^= *st << 17;
    return (float)(*st >> 40) / 8388608.0f - 1.0f;
}
static float *rand_buf(size_t n, uint64_t *st, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = scale * frand(st);
    return p;
}
static double max_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

/* The same fused ops with the draw kept as bytes: every output the same bits as with the draw
 * redrawn (out ... db, from check_residual_layernorm, whose gradients started at 0.25), every
 * byte the hash's answer, and a backward that reads the bytes (a flipped byte moves its element). */
static void check_residual_layernorm_kept(int N, int C, float p, const float *x, const float *xbias, const float *inp,
                                          const float *w, const float *b, const float *dout, float eps,
                                          const float *out, const float *res, const float *mean, const float *rstd,
                                          const float *dres, const float *dx, const float *dxb, const float *dw,
                                          const float *db) {
    const bertc_backend *be = bertc_backend_cpu();
    size_t NC = (size_t)N * C;
    uint8_t *keep = malloc(NC);
    float *out_k = malloc(NC * 4), *res_k = malloc(NC * 4), *mean_k = malloc((size_t)N * 4);
    float *rstd_k = malloc((size_t)N * 4), *dres_k = malloc(NC * 4), *dx_k = malloc(NC * 4);
    float *dxb_k = malloc((size_t)C * 4), *dw_k = malloc((size_t)C * 4), *db_k = malloc((size_t)C * 4);
    be->residual_layernorm_forward(out_k, res_k, mean_k, rstd_k, x, xbias, inp, w, b, N, C, eps, p, 11, 5, keep);
    assert_memory_equal(out_k, out, NC * 4);
    assert_memory_equal(res_k, res, NC * 4);
    assert_memory_equal(mean_k, mean, (size_t)N * 4);
    assert_memory_equal(rstd_k, rstd, (size_t)N * 4);
    for (size_t i = 0; i < NC; i++) assert_int_equal(keep[i], dropout_keep(11, 5, i, p));
    for (int c = 0; c < C; c++) dw_k[c] = db_k[c] = dxb_k[c] = 0.25f;
    be->residual_layernorm_backward(dres_k, dx_k, dxb_k, dw_k, db_k, dout, res, w, mean, rstd, N, C, p, 11, 5, keep);
    assert_memory_equal(dres_k, dres, NC * 4);
    assert_memory_equal(dx_k, dx, NC * 4);
    assert_memory_equal(dw_k, dw, (size_t)C * 4);
    assert_memory_equal(db_k, db, (size_t)C * 4);
    assert_memory_equal(dxb_k, dxb, (size_t)C * 4);
    size_t flip[2] = {0, NC - 1};
    for (int j = 0; j < 2; j++) keep[flip[j]] ^= 1;
    be->residual_layernorm_backward(dres_k, dx_k, NULL, dw_k, db_k, dout, res, w, mean, rstd, N, C, p, 11, 5, keep);
    for (size_t i = 0; i < NC; i++) assert_true(dx_k[i] == (keep[i] ? dres_k[i] * (1.0f / (1.0f - p)) : 0.0f));
    for (int j = 0; j < 2; j++) assert_true(dx_k[flip[j]] != dx[flip[j]] || dres_k[flip[j]] == 0.0f);
    free(keep); free(out_k); free(res_k); free(mean_k); free(rstd_k); free(dres_k); free(dx_k); free(dxb_k);
    free(dw_k); free(db_k);
}

/* residual_layernorm_forward/backward = matmul's bias + dropout_residual_forward +
 * layernorm_forward, and layernorm_backward + dropout_backward + the bias's column sums */
static void check_residual_layernorm(int N, int C, float p, int with_bias, int in_place) {
    const bertc_backend *be = bertc_backend_cpu();
    uint64_t st = 0x9E3779B97F4A7C15ULL ^ (uint64_t)(N * 131 + C);
    size_t NC = (size_t)N * C;
    float *x = rand_buf(NC, &st, 2.0f), *inp = rand_buf(NC, &st, 1.0f), *xb = rand_buf((size_t)C, &st, 0.5f);
    float *w = rand_buf((size_t)C, &st, 1.0f), *b = rand_buf((size_t)C, &st, 0.3f), *dout = rand_buf(NC, &st, 1.0f);
    const float *xbias = with_bias ? xb : NULL;
    float eps = 1e-12f;
    /* fused */
    float *out = malloc(NC * 4), *res = malloc(NC * 4), *mean = malloc((size_t)N * 4), *rstd = malloc((size_t)N * 4);
    be->residual_layernorm_forward(out, res, mean, rstd, x, xbias, inp, w, b, N, C, eps, p, 11, 5, NULL);
    /* unfused */
    float *xr = malloc(NC * 4), *res_r = malloc(NC * 4), *out_r = malloc(NC * 4);
    float *mean_r = malloc((size_t)N * 4), *rstd_r = malloc((size_t)N * 4);
    for (size_t i = 0; i < NC; i++) xr[i] = with_bias ? x[i] + xb[i % (size_t)C] : x[i];
    be->dropout_residual_forward(res_r, xr, inp, NC, p, 11, 5);
    be->layernorm_forward(out_r, mean_r, rstd_r, res_r, w, b, N, C, eps);
    double dres_ = max_diff(res, res_r, NC), dout_ = max_diff(out, out_r, NC);
    double dmean = max_diff(mean, mean_r, (size_t)N), drstd = max_diff(rstd, rstd_r, (size_t)N);
    assert_true(dres_ == 0.0); /* the same additions in the same order */
    assert_true(dout_ <= 2e-5 && dmean <= 1e-6 && drstd <= 1e-5 * fabs(rstd_r[0]));

    /* backward; parameter gradients accumulate onto what is there */
    float *g_in = malloc(NC * 4), *dx = malloc(NC * 4), *dxb = calloc((size_t)C, 4), *dw = calloc((size_t)C, 4);
    float *db = calloc((size_t)C, 4);
    for (int c = 0; c < C; c++) dw[c] = db[c] = dxb[c] = 0.25f;
    float *dres = g_in;
    memcpy(g_in, dout, NC * 4);
    const float *dsrc = in_place ? g_in : dout; /* dres may alias dout */
    be->residual_layernorm_backward(dres, p > 0.0f ? dx : NULL, dxb, dw, db, dsrc, res, w, mean, rstd, N, C, p, 11, 5,
                                    NULL);
    float *dres_r = malloc(NC * 4), *dx_r = malloc(NC * 4), *dw_r = calloc((size_t)C, 4), *db_r = calloc((size_t)C, 4);
    for (int c = 0; c < C; c++) dw_r[c] = db_r[c] = 0.25f;
    be->layernorm_backward(dres_r, dw_r, db_r, dout, res_r, w, mean_r, rstd_r, N, C);
    be->dropout_backward(dx_r, dres_r, NC, p, 11, 5, NULL);
    double dxb_err = 0, dxb_scale = 0;
    for (int c = 0; c < C; c++) {
        double sum = 0.25;
        for (int n = 0; n < N; n++) sum += dx_r[(size_t)n * C + c];
        dxb_err = fmax(dxb_err, fabs(dxb[c] - sum));
        dxb_scale = fmax(dxb_scale, fabs(sum));
    }
    double e_dres = max_diff(dres, dres_r, NC), e_dx = p > 0.0f ? max_diff(dx, dx_r, NC) : 0.0;
    double e_dw = max_diff(dw, dw_r, (size_t)C), e_db = max_diff(db, db_r, (size_t)C);
    printf("  N %d C %d p %.1f bias %d in-place %d: out %.1e dres %.1e dx %.1e dw %.1e db %.1e dxbias %.1e\n", N, C, p,
           with_bias, in_place, dout_, e_dres, e_dx, e_dw, e_db, dxb_err);
    /* LayerNorm's input gradient scales with rstd (inputs here have rstd ~ 1) */
    assert_true(e_dres <= 1e-5 && e_dx <= 2e-5);
    assert_true(e_dw <= 1e-6 * N + 1e-6 && e_db <= 1e-6 * N + 1e-6);
    assert_true(dxb_err <= 1e-5 * fmax(dxb_scale, 1.0) + 1e-6 * N);
    if (p > 0.0f) /* dropped elements get exactly no gradient, kept ones are scaled */
        for (size_t i = 0; i < NC; i++)
            assert_true(dropout_keep(11, 5, i, p) ? dx[i] == dres[i] * (1.0f / (1.0f - p)) : dx[i] == 0.0f);
    if (p > 0.0f) check_residual_layernorm_kept(N, C, p, x, xbias, inp, w, b, dout, eps, out, res, mean, rstd, dres, dx,
                                                dxb, dw, db);
    free(x); free(inp); free(xb); free(w); free(b); free(dout); free(out); free(res); free(mean); free(rstd);
    free(xr); free(res_r); free(out_r); free(mean_r); free(rstd_r); free(g_in); free(dx); free(dxb); free(dw);
    free(db); free(dres_r); free(dx_r); free(dw_r); free(db_r);
}

static void test_residual_layernorm(void **state) {
    (void)state;
    /* odd sizes, one that runs on one thread and ones large enough to be split */
    check_residual_layernorm(1, 7, 0.0f, 1, 0);
    check_residual_layernorm(5, 13, 0.1f, 1, 1);
    check_residual_layernorm(33, 100, 0.0f, 0, 1);
    check_residual_layernorm(131, 257, 0.1f, 1, 0);
    check_residual_layernorm(131, 257, 0.3f, 0, 1);
    check_residual_layernorm(97, 384, 0.0f, 1, 1);
    check_residual_layernorm(3, 4099, 0.1f, 1, 1); /* wider than the per-thread stack partials */
}

/* bias_act_forward = bias + act_forward; act_bias_backward = act_backward + the bias's column sums */
static void test_bias_act(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    int sizes[][2] = {{1, 5}, {7, 33}, {67, 611}, {130, 1536}};
    for (int a = 0; a < 3; a++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            int N = sizes[k][0], F = sizes[k][1];
            size_t NF = (size_t)N * F;
            uint64_t st = 77 + k;
            float *pre = rand_buf(NF, &st, 4.0f), *bias = rand_buf((size_t)F, &st, 1.0f);
            float *dout = rand_buf(NF, &st, 1.0f);
            float *pre_r = malloc(NF * 4), *out = malloc(NF * 4), *out_r = malloc(NF * 4);
            for (size_t i = 0; i < NF; i++) pre_r[i] = pre[i] + bias[i % (size_t)F];
            be->bias_act_forward((ops_act)a, out, pre, bias, N, F);
            be->act_forward((ops_act)a, out_r, pre_r, NF);
            assert_true(max_diff(pre, pre_r, NF) == 0.0 && max_diff(out, out_r, NF) == 0.0);
            float *g = malloc(NF * 4), *g_r = malloc(NF * 4), *db = malloc((size_t)F * 4);
            for (int f = 0; f < F; f++) db[f] = 1.0f;
            memcpy(g, dout, NF * 4);
            be->act_bias_backward((ops_act)a, g, db, g, pre, N, F); /* in place, as bert.c calls it */
            be->act_backward((ops_act)a, g_r, dout, pre_r, NF);
            assert_true(max_diff(g, g_r, NF) == 0.0);
            double worst = 0;
            for (int f = 0; f < F; f++) {
                double sum = 1.0;
                for (int n = 0; n < N; n++) sum += g_r[(size_t)n * F + f];
                worst = fmax(worst, fabs(db[f] - sum));
            }
            assert_true(worst <= 1e-6 * N + 1e-6);
            free(pre); free(bias); free(dout); free(pre_r); free(out); free(out_r); free(g); free(g_r); free(db);
        }
}

/* Where q, k, v are column blocks of wider rows (ldq, ldkv > C: bert.c's fused query/key/value
 * product, q | k | v in rows of 3C, or k | v in rows of 2C beside a separate q), the ops also run
 * on such copies: they must give what the tensors stored apart give (within 1e-6), and backward
 * must write only dq's, dk's and dv's own columns (the others hold a sentinel). */
static void check_attention_strided(const float *q, const float *k, const float *v, const float *dctx,
                                    const int32_t *mask, const float *ctx, const float *att, const float *dq,
                                    const float *dk, const float *dv, float *scratch, int B, int Tq, int T, int C,
                                    int NH, int ldq, int ldkv, float p) {
    const bertc_backend *be = bertc_backend_cpu();
    size_t nq = (size_t)B * Tq * C, na = (size_t)B * NH * Tq * T;
    size_t wq = (size_t)B * Tq * ldq, wk = (size_t)B * T * ldkv;
    float *ctx2 = malloc(nq * 4), *att2 = malloc(na * 4);
    float *q2 = malloc(wq * 4), *kv2 = malloc(wk * 4), *dq2 = malloc(wq * 4), *dkv2 = malloc(wk * 4);
    assert_true(ldq >= C && ldkv >= 2 * C);
    for (size_t i = 0; i < wq; i++) q2[i] = dq2[i] = 12345.0f;
    for (size_t i = 0; i < wk; i++) kv2[i] = dkv2[i] = 12345.0f;
    for (size_t r = 0; r < (size_t)B * Tq; r++) memcpy(q2 + r * ldq, q + r * C, (size_t)C * 4);
    for (size_t r = 0; r < (size_t)B * T; r++) {
        memcpy(kv2 + r * ldkv, k + r * C, (size_t)C * 4);
        memcpy(kv2 + r * ldkv + C, v + r * C, (size_t)C * 4);
    }
    /* this run redraws the mask in backward; check_attention's kept forward's draw */
    be->attention_forward(ctx2, att2, q2, kv2, kv2 + C, mask, scratch, B, Tq, T, C, NH, ldq, ldkv, p, 9, 2, NULL);
    be->attention_backward(dq2, dkv2, dkv2 + C, dctx, q2, kv2, kv2 + C, att2, scratch, B, Tq, T, C, NH, ldq, ldkv, p,
                           9, 2, NULL);
    double e = 0;
    for (size_t i = 0; i < na; i++) e = fmax(e, fabs(att[i] - att2[i]));
    for (size_t i = 0; i < nq; i++) e = fmax(e, fabs(ctx[i] - ctx2[i]));
    int sentinels = 1;
    for (size_t r = 0; r < (size_t)B * Tq; r++)
        for (int c = 0; c < ldq; c++) {
            float x = dq2[r * ldq + c];
            if (c < C) e = fmax(e, fabs(x - dq[r * C + c]));
            else sentinels &= x == 12345.0f;
        }
    for (size_t r = 0; r < (size_t)B * T; r++)
        for (int c = 0; c < ldkv; c++) {
            float x = dkv2[r * ldkv + c];
            if (c < C) e = fmax(e, fabs(x - dk[r * C + c]));
            else if (c < 2 * C) e = fmax(e, fabs(x - dv[r * C + c - C]));
            else sentinels &= x == 12345.0f;
        }
    printf("  attention strided ldq %d ldkv %d: largest difference from the tensors apart %.1e, other columns %s\n",
           ldq, ldkv, e, sentinels ? "untouched" : "WRITTEN");
    assert_true(e <= 1e-6 && sentinels);
    free(ctx2); free(att2); free(q2); free(kv2); free(dq2); free(dkv2);
}

/* attention with dropout on, forward and backward, against a double-precision reference that
 * draws the documented masks: forward's dropout and the one backward redraws (folded into its softmax pass).
 * ldq, ldkv: C, or the row strides of a strided run checked against this one (check_attention_strided). */
static void check_attention(int B, int Tq, int T, int C, int NH, int ldq, int ldkv, float p) {
    const bertc_backend *be = bertc_backend_cpu();
    int HS = C / NH;
    uint64_t st = 1234 + (uint64_t)(B * 7 + T);
    size_t nq = (size_t)B * Tq * C, nk = (size_t)B * T * C, na = (size_t)B * NH * Tq * T;
    float *q = rand_buf(nq, &st, 1.5f), *k = rand_buf(nk, &st, 1.5f), *v = rand_buf(nk, &st, 1.0f);
    float *dctx = rand_buf(nq, &st, 1.0f);
    float *ctx = malloc(nq * 4), *att = malloc(na * 4), *scratch = malloc(2 * na * 4);
    float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
    int32_t *mask = malloc((size_t)B * T * sizeof(int32_t));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) mask[b * T + t] = t < T - b; /* sequence b has b padding tokens */
    /* forward keeps its dropout draw for backward (bert.c's training path): every byte is the
     * documented hash's answer, and a backward that redraws the mask instead gives the same bits */
    uint8_t *keep = malloc(na);
    memset(keep, 7, na);
    be->attention_forward(ctx, att, q, k, v, mask, scratch, B, Tq, T, C, NH, C, C, p, 9, 2, keep);
    be->attention_backward(dq, dk, dv, dctx, q, k, v, att, scratch, B, Tq, T, C, NH, C, C, p, 9, 2, p > 0 ? keep : NULL);
    if (p > 0) {
        size_t wrong = 0;
        for (size_t e = 0; e < na; e++) wrong += keep[e] != dropout_keep(9, 2, e, p);
        float *dq3 = malloc(nq * 4), *dk3 = malloc(nk * 4), *dv3 = malloc(nk * 4);
        be->attention_backward(dq3, dk3, dv3, dctx, q, k, v, att, scratch, B, Tq, T, C, NH, C, C, p, 9, 2, NULL);
        printf("  attention B %d Tq %d p %.1f: kept draw %zu of %zu bytes wrong; backward redrawing it: %s\n", B, Tq, p,
               wrong, na, !memcmp(dq3, dq, nq * 4) && !memcmp(dk3, dk, nk * 4) && !memcmp(dv3, dv, nk * 4) ? "same bits" : "DIFFERENT");
        assert_true(wrong == 0);
        assert_memory_equal(dq3, dq, nq * 4);
        assert_memory_equal(dk3, dk, nk * 4);
        assert_memory_equal(dv3, dv, nk * 4);
        free(dq3), free(dk3), free(dv3);
    }
    free(keep);
    if (ldq != C || ldkv != C)
        check_attention_strided(q, k, v, dctx, mask, ctx, att, dq, dk, dv, scratch, B, Tq, T, C, NH, ldq, ldkv, p);
    double *P = malloc((size_t)T * sizeof(double)), *dP = malloc((size_t)T * sizeof(double));
    double *rdq = calloc(nq, sizeof(double)), *rdk = calloc(nk, sizeof(double)), *rdv = calloc(nk, sizeof(double));
    double e_ctx = 0, e_att = 0, scale = 1.0 / sqrt((double)HS), ks = 1.0 / (1.0 - p);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < Tq; i++) {
                const float *qi = q + ((size_t)b * Tq + i) * C + h * HS;
                size_t first = (((size_t)b * NH + h) * Tq + i) * T;
                double mx = -1e300, sum = 0;
                for (int j = 0; j < T; j++) {
                    double s = 0;
                    for (int d = 0; d < HS; d++) s += (double)qi[d] * k[((size_t)b * T + j) * C + h * HS + d];
                    P[j] = mask[b * T + j] ? s * scale : -1e300;
                    mx = fmax(mx, P[j]);
                }
                for (int j = 0; j < T; j++) sum += (P[j] = mask[b * T + j] ? exp(P[j] - mx) : 0.0);
                for (int j = 0; j < T; j++) {
                    P[j] /= sum;
                    e_att = fmax(e_att, fabs(att[first + j] - P[j]));
                }
                /* ctx = Pd v, Pd = dropout(P) */
                for (int d = 0; d < HS; d++) {
                    double c = 0;
                    for (int j = 0; j < T; j++)
                        c += (p > 0 && !dropout_keep(9, 2, first + j, p) ? 0.0 : P[j] * (p > 0 ? ks : 1.0)) *
                             v[((size_t)b * T + j) * C + h * HS + d];
                    e_ctx = fmax(e_ctx, fabs(ctx[((size_t)b * Tq + i) * C + h * HS + d] - c));
                }
                /* backward */
                const float *dci = dctx + ((size_t)b * Tq + i) * C + h * HS;
                double dot = 0;
                for (int j = 0; j < T; j++) {
                    int keep = p > 0 ? dropout_keep(9, 2, first + j, p) : 1;
                    double m = keep ? (p > 0 ? ks : 1.0) : 0.0, dpd = 0;
                    for (int d = 0; d < HS; d++) {
                        dpd += (double)dci[d] * v[((size_t)b * T + j) * C + h * HS + d];
                        rdv[((size_t)b * T + j) * C + h * HS + d] += P[j] * m * dci[d];
                    }
                    dP[j] = dpd * m;
                    dot += P[j] * dP[j];
                }
                for (int j = 0; j < T; j++) {
                    double ds = P[j] * (dP[j] - dot) * scale;
                    for (int d = 0; d < HS; d++) {
                        rdq[((size_t)b * Tq + i) * C + h * HS + d] += ds * k[((size_t)b * T + j) * C + h * HS + d];
                        rdk[((size_t)b * T + j) * C + h * HS + d] += ds * qi[d];
                    }
                }
            }
    double e_dq = 0, e_dk = 0, e_dv = 0;
    for (size_t i = 0; i < nq; i++) e_dq = fmax(e_dq, fabs(dq[i] - rdq[i]));
    for (size_t i = 0; i < nk; i++) {
        e_dk = fmax(e_dk, fabs(dk[i] - rdk[i]));
        e_dv = fmax(e_dv, fabs(dv[i] - rdv[i]));
    }
    printf("  attention B %d Tq %d T %d C %d NH %d p %.1f: att %.1e ctx %.1e dq %.1e dk %.1e dv %.1e\n", B, Tq, T, C,
           NH, p, e_att, e_ctx, e_dq, e_dk, e_dv);
    assert_true(e_att <= 1e-6 && e_ctx <= 1e-5 && e_dq <= 1e-5 && e_dk <= 1e-5 && e_dv <= 1e-5);
    free(q); free(k); free(v); free(dctx); free(ctx); free(att); free(scratch); free(dq); free(dk); free(dv);
    free(mask); free(P); free(dP); free(rdq); free(rdk); free(rdv);
}

static void test_attention_dropout(void **state) {
    (void)state;
    check_attention(2, 7, 7, 12, 3, 12, 12, 0.0f);
    check_attention(3, 9, 9, 10, 2, 10, 10, 0.1f);
    check_attention(3, 1, 11, 12, 4, 12, 12, 0.3f); /* the [CLS]-only last layer */
    check_attention(2, 33, 33, 24, 3, 24, 24, 0.1f);
    check_attention(2, 9, 9, 12, 3, 36, 36, 0.1f); /* also q | k | v in rows of 3C */
    check_attention(3, 1, 11, 12, 4, 12, 24, 0.3f); /* [CLS]-only: q apart, k | v in rows of 2C */
    check_attention(2, 7, 7, 12, 3, 20, 30, 0.0f);  /* strides that are not multiples of C */
}

/* The fused ops with reductions give the same bits on every call for a given thread count, and
 * the same values up to rounding on another count. */
static void test_fused_determinism(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    enum { N = 300, C = 200 };
    uint64_t st = 5;
    float *dout = rand_buf((size_t)N * C, &st, 1.0f), *res = rand_buf((size_t)N * C, &st, 1.0f);
    float *w = rand_buf(C, &st, 1.0f), mean[N], rstd[N];
    for (int n = 0; n < N; n++) {
        mean[n] = 0.01f * (float)(n % 7);
        rstd[n] = 1.0f + 0.001f * (float)n;
    }
    float *dres = malloc((size_t)N * C * 4), *dx = malloc((size_t)N * C * 4), sums[4][3][C];
    int saved = omp_get_max_threads();
    int threads[4] = {2, 2, 1, 3};
    for (int r = 0; r < 4; r++) {
        omp_set_num_threads(threads[r]);
        memset(sums[r], 0, sizeof sums[r]);
        be->residual_layernorm_backward(dres, dx, sums[r][0], sums[r][1], sums[r][2], dout, res, w, mean, rstd, N, C,
                                        0.1f, 3, 4, NULL);
    }
    omp_set_num_threads(saved);
    assert_memory_equal(sums[0], sums[1], sizeof sums[0]);
    for (int r = 2; r < 4; r++)
        for (int i = 0; i < 3; i++) assert_true(max_diff(sums[0][i], sums[r][i], C) <= 1e-4);
    free(dout); free(res); free(w); free(dres); free(dx);
}

/* The Linear products at sizes that split into chunks over the threads (by rows, by output
 * features for a few rows, and the weight gradient along either side), on 1 to 4 threads, and
 * as one product threaded by oneDNN where bertc has it (gemm.h; enough rows): every element of
 * out, dinp, dweight and dbias is checked against a double-precision sum, so a chunk count or
 * slice that left a row or column out, or did one twice, fails here. The threaded runs also
 * check that dinp is accumulated into when asked and dweight always. */
static void check_matmul_chunked(int N, int IC, int OC) {
    const bertc_backend *be = bertc_backend_cpu();
    uint64_t st = (uint64_t)(N * 131 + IC * 7 + OC);
    float *inp = rand_buf((size_t)N * IC, &st, 1.0f), *w = rand_buf((size_t)OC * IC, &st, 0.1f);
    float *b = rand_buf((size_t)OC, &st, 1.0f), *dout = rand_buf((size_t)N * OC, &st, 1.0f);
    float *out = malloc((size_t)N * OC * 4), *dinp = malloc((size_t)N * IC * 4);
    float *dw = malloc((size_t)OC * IC * 4), *db = malloc((size_t)OC * 4);
    int saved = omp_get_max_threads();
    for (int run = 0; run < 8; run++) {
        int threads = 1 + run / 2, threaded = run % 2;
        omp_set_num_threads(threads);
        gemm_linear_set_path(threaded ? GEMM_LINEAR_THREADED : GEMM_LINEAR_CHUNKED);
        /* accumulate: dinp and dweight start at 1 and 0.5, and the sums below expect them */
        int acc = threaded;
        for (size_t i = 0; i < (size_t)N * OC; i++) out[i] = NAN;
        for (size_t i = 0; i < (size_t)N * IC; i++) dinp[i] = acc ? 1.0f : NAN;
        for (size_t i = 0; i < (size_t)OC * IC; i++) dw[i] = acc ? 0.5f : 0.0f;
        memset(db, 0, (size_t)OC * 4);
        be->matmul_forward(out, inp, w, b, N, IC, OC);
        be->matmul_backward(dinp, dw, db, dout, inp, w, N, IC, OC, acc);
        double worst = 0;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double s = b[o];
                for (int i = 0; i < IC; i++) s += (double)inp[(size_t)n * IC + i] * w[(size_t)o * IC + i];
                worst = fmax(worst, fabs(out[(size_t)n * OC + o] - s)); /* NaN left: fmax skips it */
                assert_false(isnan(out[(size_t)n * OC + o]));
            }
        for (int n = 0; n < N; n++)
            for (int i = 0; i < IC; i++) {
                double s = acc ? 1.0 : 0.0;
                for (int o = 0; o < OC; o++) s += (double)dout[(size_t)n * OC + o] * w[(size_t)o * IC + i];
                worst = fmax(worst, fabs(dinp[(size_t)n * IC + i] - s));
                assert_false(isnan(dinp[(size_t)n * IC + i]));
            }
        for (int o = 0; o < OC; o++) {
            double sb = 0;
            for (int n = 0; n < N; n++) sb += dout[(size_t)n * OC + o];
            worst = fmax(worst, fabs(db[o] - sb) / (double)N);
            for (int i = 0; i < IC; i++) {
                double s = acc ? 0.5 : 0.0;
                for (int n = 0; n < N; n++) s += (double)dout[(size_t)n * OC + o] * inp[(size_t)n * IC + i];
                worst = fmax(worst, fabs(dw[(size_t)o * IC + i] - s) / (double)N);
            }
        }
        if (worst > 1e-4)
            fail_msg("matmul %dx%d->%d on %d threads (%s): off by %g", N, IC, OC, threads,
                     gemm_linear_threaded(N) ? "threaded" : "chunked", worst);
        /* --deterministic: the same products on the same threads give the same bits */
        float *again[4] = {malloc((size_t)N * OC * 4), malloc((size_t)N * IC * 4), malloc((size_t)OC * IC * 4),
                           calloc((size_t)OC, 4)};
        for (size_t i = 0; i < (size_t)N * IC; i++) again[1][i] = acc ? 1.0f : 0.0f;
        for (size_t i = 0; i < (size_t)OC * IC; i++) again[2][i] = acc ? 0.5f : 0.0f;
        be->matmul_forward(again[0], inp, w, b, N, IC, OC);
        be->matmul_backward(again[1], again[2], again[3], dout, inp, w, N, IC, OC, acc);
        assert_memory_equal(again[0], out, (size_t)N * OC * 4);
        assert_memory_equal(again[1], dinp, (size_t)N * IC * 4);
        assert_memory_equal(again[2], dw, (size_t)OC * IC * 4);
        assert_memory_equal(again[3], db, (size_t)OC * 4);
        for (int i = 0; i < 4; i++) free(again[i]);
    }
    omp_set_num_threads(saved);
    gemm_linear_set_path(GEMM_LINEAR_THREADED); /* the default */
    free(inp); free(w); free(b); free(dout); free(out); free(dinp); free(dw); free(db);
}

static void test_matmul_chunked(void **state) {
    (void)state;
    check_matmul_chunked(128, 64, 384);  /* one example, MiniLM's width: split by output features */
    check_matmul_chunked(128, 96, 1000); /* the same, features not a multiple of the chunks */
    check_matmul_chunked(1100, 40, 24);  /* many rows: split by rows */
    check_matmul_chunked(600, 300, 520); /* weight gradient split along OC */
    check_matmul_chunked(300, 520, 200); /* weight gradient split along IC */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_dropout_threshold),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_attention_mask),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_matmul_chunked),
        cmocka_unit_test(test_residual_layernorm),
        cmocka_unit_test(test_bias_act),
        cmocka_unit_test(test_attention_dropout),
        cmocka_unit_test(test_fused_determinism),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
