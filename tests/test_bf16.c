/* bf16 mixed precision (--precision bf16): the fp32 -> bf16 rounding against hand-computed bit
 * patterns, the bf16 products against fp32 and against each other (fast path and fallback), a
 * tiny model's forward and backward in bf16 against fp32, and training in bf16.
 *
 * Tolerances follow from bf16's 8-bit significand: rounding an input costs a relative error of
 * at most u = 2^-9, so a product sum_k a_k b_k of two rounded inputs errs by at most
 * (2u + u^2) sum_k |a_k b_k| against fp32; fp32 accumulation adds K * 2^-24 * sum_k |a_k b_k|.
 * Two implementations that sum the same bf16 products in fp32 (oneDNN and the fallback) differ
 * only by the accumulation term. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/cpu/gemm.h"
#include "backend/ops.h"
#include "bertc.h"
#include "model/bert.h"
#include "model/safetensors.h"
#include "train/optim.h"
#include "util/rng.h"

#include "synthetic.h"

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ------------------------------------------------------------------------------------------
 * conversion */

static void test_rounding_hand_computed(void **state) {
    (void)state;
    static const struct { uint32_t in; uint16_t out; const char *why; } cases[] = {
        {0x3F800000u, 0x3F80, "1.0 is exact"},
        {0x3F808000u, 0x3F80, "1 + 2^-8: halfway between 0x3F80 and 0x3F81, ties to even (down)"},
        {0x3F818000u, 0x3F82, "halfway between 0x3F81 and 0x3F82, ties to even (up)"},
        {0x3F808001u, 0x3F81, "just above halfway rounds up"},
        {0x3F807FFFu, 0x3F80, "just below halfway rounds down"},
        {0xBF808001u, 0xBF81, "negative: magnitude rounds the same way"},
        {0x3FFFFFFFu, 0x4000, "rounding up carries into the exponent (2 - 2^-23 -> 2.0)"},
        {0x00000000u, 0x0000, "+0"},
        {0x80000000u, 0x8000, "-0 keeps its sign"},
        {0x7F800000u, 0x7F80, "+inf"},
        {0xFF800000u, 0xFF80, "-inf"},
        {0x7F7FFFFFu, 0x7F80, "FLT_MAX rounds to +inf (above the largest bf16 + half an ulp)"},
        {0x7F7F7FFFu, 0x7F7F, "just below the overflow threshold stays finite"},
        {0x7FC00000u, 0x7FC0, "quiet NaN"},
        {0x7F800001u, 0x7FC0, "signalling NaN whose payload would round to inf stays NaN"},
        {0xFFFFFFFFu, 0x7FC0, "negative NaN whose rounding would carry out stays NaN (torch's 0x7FC0)"},
        {0x00000001u, 0x0000, "smallest subnormal rounds to 0 (no flush: it is below half an ulp)"},
        {0x00008000u, 0x0000, "subnormal halfway to 0x0001, ties to even (down)"},
        {0x00018000u, 0x0002, "subnormal halfway between 0x0001 and 0x0002, ties to even (up)"},
        {0x00008001u, 0x0001, "subnormal above halfway rounds up to the smallest bf16 subnormal"},
        {0x007FFFFFu, 0x0080, "largest subnormal rounds up to the smallest normal"},
        {0x80010000u, 0x8001, "negative subnormal exact in bf16"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint16_t got = bf16_from_f32(float_of(cases[i].in));
        if (got != cases[i].out)
            fail_msg("0x%08X -> 0x%04X, want 0x%04X (%s)", cases[i].in, got, cases[i].out, cases[i].why);
        /* the vectorised, threaded conversion agrees */
        float f = float_of(cases[i].in);
        uint16_t v;
        bf16_convert(&v, &f, 1);
        assert_int_equal(v, cases[i].out);
    }
    /* widening is exact */
    assert_true(bf16_to_f32(0x3F80) == 1.0f);
    assert_true(bf16_to_f32(0xC040) == -3.0f);
    assert_true(bf16_to_f32(0x0001) == ldexpf(1.0f, -133));
    assert_true(isinf(bf16_to_f32(0xFF80)) && bf16_to_f32(0xFF80) < 0);
    assert_true(isnan(bf16_to_f32(0x7FC0)));
}

/* An independent rounding: the two bf16 neighbours of x, the nearer one in double, ties to the
 * even significand. For finite x only. */
static uint16_t reference_round(float x) {
    uint32_t u = bits_of(x);
    uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
    double dx = x, dlo = bf16_to_f32(lo);
    double dhi = (hi & 0x7F80) == 0x7F80 ? copysign(ldexp(1.0, 128), x) : bf16_to_f32(hi); /* past FLT_MAX: 2^128 */
    double elo = fabs(dx - dlo), ehi = fabs(dhi - dx);
    if (elo < ehi) return lo;
    if (ehi < elo) return hi;
    return (lo & 1) ? hi : lo;
}

static void test_rounding_random_bits(void **state) {
    (void)state;
    size_t n = 300007; /* odd, and large enough for the threaded path */
    float *x = malloc(n * sizeof *x);
    uint16_t *y = malloc(n * sizeof *y);
    assert_non_null(x);
    assert_non_null(y);
    rng r;
    rng_seed(&r, 11);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)rng_next(&r);
        if (i % 7 == 0) u = (u & 0xFFFF0000u) | 0x8000u; /* many exact ties */
        x[i] = float_of(u);
    }
    bf16_convert(y, x, n);
    for (size_t i = 0; i < n; i++) {
        uint16_t want = isnan(x[i]) ? 0x7FC0 : reference_round(x[i]);
        if (y[i] != want) fail_msg("0x%08X -> 0x%04X, want 0x%04X", bits_of(x[i]), y[i], want);
    }
    free(x);
    free(y);
}

/* ------------------------------------------------------------------------------------------
 * products */

typedef struct prod_case { int M, N, K, ta, tb, bias, acc; } prod_case;

static void random_fill(float *x, size_t n, rng *r, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = (rng_uniform(r) * 2.0f - 1.0f) * scale;
}

/* One product with strided operands (ld = cols + 3) through both gemm_bf16 paths, against
 * double-precision sums of the rounded inputs and of the unrounded fp32 inputs. */
static void check_product(const prod_case *c, rng *r) {
    int ar = c->ta ? c->K : c->M, ac = c->ta ? c->M : c->K, br = c->tb ? c->N : c->K, bc = c->tb ? c->K : c->N;
    int lda = ac + 3, ldb = bc + 3, ldc = c->N + 3;
    float *a = malloc((size_t)ar * lda * sizeof *a), *b = malloc((size_t)br * ldb * sizeof *b);
    float *bias = malloc((size_t)c->N * sizeof *bias), *c0 = malloc((size_t)c->M * ldc * sizeof *c0);
    float *fast = malloc((size_t)c->M * ldc * sizeof *fast), *slow = malloc((size_t)c->M * ldc * sizeof *slow);
    uint16_t *a16 = malloc((size_t)ar * lda * sizeof *a16), *b16 = malloc((size_t)br * ldb * sizeof *b16);
    assert_true(a && b && bias && c0 && fast && slow && a16 && b16);
    random_fill(a, (size_t)ar * lda, r, 1.0f);
    random_fill(b, (size_t)br * ldb, r, 0.5f);
    random_fill(bias, (size_t)c->N, r, 1.0f);
    random_fill(c0, (size_t)c->M * ldc, r, 1.0f);
    bf16_convert(a16, a, (size_t)ar * lda);
    bf16_convert(b16, b, (size_t)br * ldb);
    memcpy(fast, c0, (size_t)c->M * ldc * sizeof *fast);
    memcpy(slow, c0, (size_t)c->M * ldc * sizeof *slow);
    const float *bp = c->bias ? bias : NULL;
    gemm_bf16_set_path(GEMM_BF16_AUTO);
    gemm_bf16(c->ta, c->tb, c->M, c->N, c->K, a16, lda, b16, ldb, bp, c->acc, fast, ldc);
    gemm_bf16_set_path(GEMM_BF16_FALLBACK);
    gemm_bf16(c->ta, c->tb, c->M, c->N, c->K, a16, lda, b16, ldb, bp, c->acc, slow, ldc);
    gemm_bf16_set_path(GEMM_BF16_AUTO);
    const double u = ldexp(1.0, -9), eps32 = ldexp(1.0, -24);
    double worst_rounded = 0, worst_fp32 = 0, worst_paths = 0;
    for (int i = 0; i < c->M; i++) {
        for (int j = 0; j < c->N; j++) {
            double exact16 = 0, exact32 = 0, mag = 0;
            for (int k = 0; k < c->K; k++) {
                size_t ia = c->ta ? (size_t)k * lda + i : (size_t)i * lda + k;
                size_t ib = c->tb ? (size_t)j * ldb + k : (size_t)k * ldb + j;
                exact16 += (double)bf16_to_f32(a16[ia]) * bf16_to_f32(b16[ib]);
                exact32 += (double)a[ia] * b[ib];
                mag += fabs((double)a[ia] * b[ib]);
            }
            double base = (c->acc ? c0[(size_t)i * ldc + j] : 0.0) + (c->bias ? bias[j] : 0.0);
            double f = fast[(size_t)i * ldc + j], s = slow[(size_t)i * ldc + j];
            /* fp32 accumulation of K products plus the bias and C terms */
            double acc_tol = (c->K + 2) * eps32 * (mag + fabs(base)) + 1e-30;
            double round_tol = (2 * u + u * u) * mag * 1.01 + acc_tol;
            double e16 = fabs(f - (base + exact16)), e32 = fabs(f - (base + exact32)), ep = fabs(f - s);
            if (e16 > acc_tol || fabs(s - (base + exact16)) > acc_tol)
                fail_msg("M%d N%d K%d ta%d tb%d bias%d acc%d: [%d,%d] %s %g fallback %g exact %g (tol %g)", c->M,
                         c->N, c->K, c->ta, c->tb, c->bias, c->acc, i, j, gemm_bf16_impl(), f, s, base + exact16, acc_tol);
            if (e32 > round_tol)
                fail_msg("M%d N%d K%d: [%d,%d] bf16 %g vs fp32 %g beyond the rounding bound %g", c->M, c->N, c->K, i, j,
                         f, base + exact32, round_tol);
            if (mag > 0) {
                worst_rounded = fmax(worst_rounded, e16 / mag);
                worst_fp32 = fmax(worst_fp32, e32 / mag);
                worst_paths = fmax(worst_paths, ep / mag);
            }
            assert_true(isnan(f) == 0);
        }
        /* the padding columns of C are never written */
        for (int j = c->N; j < ldc; j++) {
            assert_true(bits_of(fast[(size_t)i * ldc + j]) == bits_of(c0[(size_t)i * ldc + j]));
            assert_true(bits_of(slow[(size_t)i * ldc + j]) == bits_of(c0[(size_t)i * ldc + j]));
        }
    }
    printf("  M %4d N %4d K %4d ta %d tb %d bias %d acc %d: |err|/sum|ab| vs rounded-exact %.2g, vs fp32 %.2g, paths %.2g\n",
           c->M, c->N, c->K, c->ta, c->tb, c->bias, c->acc, worst_rounded, worst_fp32, worst_paths);
    free(a);
    free(b);
    free(bias);
    free(c0);
    free(fast);
    free(slow);
    free(a16);
    free(b16);
}

static void test_products_vs_fp32(void **state) {
    (void)state;
    printf("  gemm_bf16 runs on: %s\n", gemm_bf16_impl());
    static const prod_case cases[] = {
        {1, 1, 1, 0, 0, 0, 0},     {3, 5, 7, 0, 1, 1, 0},      {17, 33, 65, 1, 0, 0, 1},  {33, 17, 129, 1, 1, 1, 1},
        {64, 64, 64, 0, 1, 1, 0},  {129, 31, 257, 0, 0, 0, 1}, {31, 129, 250, 1, 0, 0, 1}, {300, 96, 40, 0, 1, 1, 1},
        {96, 300, 513, 1, 0, 0, 1}, {2, 700, 33, 0, 1, 1, 0},  {600, 3, 99, 0, 0, 1, 1},
        /* whole 32 x 32 blocks and 32-deep k steps in every transpose combination (the AMX
         * kernel's packed fast paths), with ragged edges after them */
        {96, 160, 96, 0, 0, 1, 0}, {96, 160, 96, 0, 1, 0, 1},  {96, 160, 96, 1, 0, 1, 1},  {96, 160, 96, 1, 1, 0, 0},
        {100, 70, 200, 0, 1, 1, 1}, {70, 100, 200, 1, 0, 0, 1}, {128, 64, 1024, 0, 1, 0, 1},
        {100, 64, 96, 0, 0, 1, 1},  {48, 64, 64, 0, 1, 1, 0},   {48, 40, 64, 0, 0, 0, 1},
    };
    rng r;
    rng_seed(&r, 5);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_product(&cases[i], &r);
}

/* The backend's Linear ops in bf16 against their fp32 versions: same shapes and semantics,
 * bias gradients identical (they never go through bf16). */
static void test_linear_ops(void **state) {
    (void)state;
    const bertc_backend *be = bertc_backend_cpu();
    const int N = 37, IC = 24, OC = 40;
    rng r;
    rng_seed(&r, 9);
    float *inp = malloc((size_t)N * IC * 4), *w = malloc((size_t)OC * IC * 4), *bias = malloc((size_t)OC * 4);
    float *dout = malloc((size_t)N * OC * 4), *out32 = malloc((size_t)N * OC * 4), *out16 = malloc((size_t)N * OC * 4);
    float *dinp32 = malloc((size_t)N * IC * 4), *dinp16 = malloc((size_t)N * IC * 4);
    float *dw32 = malloc((size_t)OC * IC * 4), *dw16 = malloc((size_t)OC * IC * 4);
    float *db32 = malloc((size_t)OC * 4), *db16 = malloc((size_t)OC * 4);
    uint16_t *w16 = malloc((size_t)OC * IC * 2), *scratch = malloc((size_t)N * OC * 2), *inp16 = malloc((size_t)N * IC * 2);
    random_fill(inp, (size_t)N * IC, &r, 1.0f);
    random_fill(w, (size_t)OC * IC, &r, 0.2f);
    random_fill(bias, (size_t)OC, &r, 0.5f);
    random_fill(dout, (size_t)N * OC, &r, 1.0f);
    random_fill(dinp32, (size_t)N * IC, &r, 1.0f);
    memcpy(dinp16, dinp32, (size_t)N * IC * 4);
    random_fill(dw32, (size_t)OC * IC, &r, 1.0f);
    memcpy(dw16, dw32, (size_t)OC * IC * 4);
    random_fill(db32, (size_t)OC, &r, 1.0f);
    memcpy(db16, db32, (size_t)OC * 4);
    be->to_bf16(w16, w, (size_t)OC * IC);
    be->matmul_forward(out32, inp, w, bias, N, IC, OC);
    be->matmul_forward_bf16(out16, inp, inp16, 0, w16, bias, N, IC, OC);
    /* inp16 now holds inp rounded; a second forward may reuse it */
    for (int i = 0; i < N * IC; i++) assert_int_equal(inp16[i], bf16_from_f32(inp[i]));
    float *again = malloc((size_t)N * OC * 4);
    be->matmul_forward_bf16(again, inp, inp16, 1, w16, bias, N, IC, OC);
    assert_memory_equal(again, out16, (size_t)N * OC * 4);
    free(again);
    be->matmul_backward(dinp32, dw32, db32, dout, inp, w, N, IC, OC, 1);
    be->matmul_backward_bf16(dinp16, dw16, db16, dout, inp16, w16, N, IC, OC, 1, scratch, 0);
    /* sum |a b| <= K * max|a| * max|b|; allow the rounding bound of the header comment */
    double tol_out = 2.1 * ldexp(1.0, -9) * IC * 1.0 * 0.2, tol_dinp = 2.1 * ldexp(1.0, -9) * OC * 1.0 * 0.2;
    double tol_dw = 2.1 * ldexp(1.0, -9) * N * 1.0 * 1.0;
    for (int i = 0; i < N * OC; i++) assert_true(fabs(out16[i] - out32[i]) <= tol_out);
    for (int i = 0; i < N * IC; i++) assert_true(fabs(dinp16[i] - dinp32[i]) <= tol_dinp);
    for (int i = 0; i < OC * IC; i++) assert_true(fabs(dw16[i] - dw32[i]) <= tol_dw);
    assert_memory_equal(db16, db32, (size_t)OC * 4);
    { /* scratch_ready: dout's rounding taken from scratch as it is (here: what the call above left,
       * dout rounded), not made again; a scratch of zeros would give zero weight gradients */
        float *dw_again = calloc((size_t)OC * IC, 4), *dw_zero = calloc((size_t)OC * IC, 4);
        float *dw_first = calloc((size_t)OC * IC, 4);
        be->matmul_backward_bf16(NULL, dw_first, NULL, dout, inp16, w16, N, IC, OC, 0, scratch, 0);
        be->matmul_backward_bf16(NULL, dw_again, NULL, dout, inp16, w16, N, IC, OC, 0, scratch, 1);
        assert_memory_equal(dw_again, dw_first, (size_t)OC * IC * 4);
        memset(scratch, 0, (size_t)N * OC * 2);
        be->matmul_backward_bf16(NULL, dw_zero, NULL, dout, inp16, w16, N, IC, OC, 0, scratch, 1);
        for (int i = 0; i < OC * IC; i++) assert_true(dw_zero[i] == 0.0f);
        free(dw_again), free(dw_zero), free(dw_first);
    }
    /* and not trivially equal: the products did go through bf16 */
    int differ = 0;
    for (int i = 0; i < N * OC; i++) differ |= out16[i] != out32[i];
    assert_true(differ);
    free(inp), free(w), free(bias), free(dout), free(out32), free(out16), free(dinp32), free(dinp16);
    free(dw32), free(dw16), free(db32), free(db16), free(w16), free(scratch), free(inp16);
}

/* ------------------------------------------------------------------------------------------
 * the model */

#define TINY "tests/fixtures/bert/tiny"
#define REF "tests/fixtures/bert/tiny_ref.safetensors"

typedef struct batch_ref { int B, T; int32_t *ids, *mask, *types, *labels; } batch_ref;

static int32_t *ints(safetensors_file *f, const char *name) {
    const st_tensor *t = safetensors_find(f, name);
    if (!t || t->dtype != ST_I32) fail_msg("%s missing", name);
    int32_t *out = malloc(t->nbytes);
    memcpy(out, t->data, t->nbytes);
    return out;
}

static void load_batch(batch_ref *b) {
    safetensors_file f;
    bertc_error err;
    if (safetensors_open(&f, REF, &err)) fail_msg("%s", err.msg);
    const st_tensor *t = safetensors_find(&f, "input.ids");
    assert_non_null(t);
    b->B = (int)t->shape[0];
    b->T = (int)t->shape[1];
    b->ids = ints(&f, "input.ids");
    b->mask = ints(&f, "input.mask");
    b->types = ints(&f, "input.types");
    b->labels = ints(&f, "input.labels");
    safetensors_close(&f);
}

static void free_batch(batch_ref *b) {
    free(b->ids), free(b->mask), free(b->types), free(b->labels);
}

static bert_model *tiny(int bf16, const batch_ref *b) {
    bert_model *m = NULL;
    bertc_error err;
    if (bert_load(&m, TINY, NULL, &err)) fail_msg("bert_load: %s", err.msg);
    if (bert_set_precision(m, bf16, &err)) fail_msg("bert_set_precision: %s", err.msg);
    if (bert_prepare(m, b->B, b->T, &err)) fail_msg("bert_prepare: %s", err.msg);
    return m;
}

/* One forward and backward of the fixture batch from zeroed gradients; returns the loss. */
static float step(bert_model *m, const batch_ref *b, int train, uint64_t seed) {
    bert_zero_grad(m);
    float loss = bert_forward(m, b->ids, b->mask, b->types, b->labels, b->B, b->T, train, seed);
    bert_backward(m, 1.0f);
    return loss;
}

/* max |a-b| / max |b| */
static double rel_err(const float *a, const float *b, size_t n) {
    double worst = 0, scale = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        worst = isnan(d) ? INFINITY : fmax(worst, d);
        scale = fmax(scale, fabs(b[i]));
    }
    return scale > 0 ? worst / scale : worst;
}

/* Forward + backward of the tiny 2-layer model (hidden 32, weights ~N(0, 0.02)) on the fixture
 * batch, eval mode, in bf16 against fp32.
 *
 * The bound: every bf16 product errs by at most 2^-8 of its sum of |terms| (header comment), and
 * with random-signed terms typically by ~2^-9 of its value; each layer has 6 such products
 * forward (and 12 backward) whose errors LayerNorm rescales but does not damp, and a gradient
 * goes through all of them, so errors of a few 2^-9 compound to a few percent. Attention makes it
 * worse for the query and key gradients: with weights this small the probabilities are nearly
 * uniform, and softmax backward (P * (dP - sum P dP)) subtracts nearly equal numbers, which
 * multiplies their relative error. We allow 2^-5 (3%) for the logits and the loss, and 2^-3
 * (12.5%) of each gradient tensor's scale, worst element and norm-wise; measured: 1.4% for the
 * logits, 0.6% for the loss, 2-7% for the gradients (the most for layer 1's query, whose
 * gradient comes from [CLS] alone). A bug (a wrong or stale weight copy, a missing bias, a
 * transposed operand) gives errors of order 100%. */
static void test_tiny_model_bf16_vs_fp32(void **state) {
    (void)state;
    batch_ref b;
    load_batch(&b);
    bert_model *m32 = tiny(0, &b), *m16 = tiny(1, &b);
    assert_false(bert_precision_bf16(m32));
    assert_true(bert_precision_bf16(m16));
    int K = bert_get_config(m32)->num_labels;
    size_t np = bert_num_params(m32);
    float l32 = step(m32, &b, 0, 0), l16 = step(m16, &b, 0, 0);
    double el = rel_err(bert_logits(m16), bert_logits(m32), (size_t)b.B * K);
    printf("  loss fp32 %.6f bf16 %.6f; logits relative error %.3g\n", l32, l16, el);
    assert_true(isfinite(l16));
    assert_true(fabs(l16 - l32) <= ldexp(1.0, -5) * fabs(l32));
    assert_true(el <= ldexp(1.0, -5));
    assert_true(el > 0); /* bf16 did change something */
    const bert_param_info *info;
    size_t nt = bert_param_table(m32, &info);
    double worst = 0, worst_norm = 0;
    const char *worst_name = "";
    for (size_t i = 0; i < nt; i++) {
        const float *g32 = bert_grads(m32) + info[i].offset, *g16 = bert_grads(m16) + info[i].offset;
        double scale = 0;
        for (size_t j = 0; j < info[i].numel; j++) scale = fmax(scale, fabs(g32[j]));
        if (scale < 1e-6) continue; /* key biases: zero gradient (softmax shift invariance) */
        double e = rel_err(g16, g32, info[i].numel), d2 = 0, n2 = 0;
        for (size_t j = 0; j < info[i].numel; j++) {
            d2 += ((double)g16[j] - g32[j]) * ((double)g16[j] - g32[j]);
            n2 += (double)g32[j] * g32[j];
        }
        double en = sqrt(d2 / n2);
        if (e > worst) worst = e, worst_name = info[i].name;
        worst_norm = fmax(worst_norm, en);
        if (e > ldexp(1.0, -3) || en > ldexp(1.0, -3))
            fail_msg("%s: gradient relative error %.3g (worst element), %.3g (norm)", info[i].name, e, en);
    }
    printf("  gradients: worst element relative error %.3g (%s), worst norm-wise %.3g\n", worst, worst_name, worst_norm);

    /* The fallback computes the same bf16 products: only fp32 summation order differs. */
    gemm_bf16_set_path(GEMM_BF16_FALLBACK);
    float *logits16 = malloc((size_t)b.B * K * sizeof(float)), *grads16 = malloc(np * sizeof(float));
    memcpy(logits16, bert_logits(m16), (size_t)b.B * K * sizeof(float));
    memcpy(grads16, bert_grads(m16), np * sizeof(float));
    float lfb = step(m16, &b, 0, 0);
    gemm_bf16_set_path(GEMM_BF16_AUTO);
    double efb = rel_err(bert_logits(m16), logits16, (size_t)b.B * K), gfb = rel_err(bert_grads(m16), grads16, np);
    printf("  fallback vs %s: loss %.7f vs %.7f, logits %.3g, gradients %.3g\n", gemm_bf16_impl(), lfb, l16, efb, gfb);
    assert_true(efb <= 1e-4);
    assert_true(gfb <= 1e-3);
    /* --deterministic: the same step twice on the same threads gives the same bits */
    float again = step(m16, &b, 0, 0);
    assert_true(bits_of(again) == bits_of(l16));
    assert_memory_equal(bert_logits(m16), logits16, (size_t)b.B * K * sizeof(float));
    assert_memory_equal(bert_grads(m16), grads16, np * sizeof(float));

    /* Back to fp32: bit-identical to a model that was never bf16. */
    bertc_error err;
    assert_int_equal(bert_set_precision(m16, 0, &err), 0);
    assert_int_equal(bert_prepare(m16, b.B, b.T, &err), 0);
    float a = step(m16, &b, 1, 7), c = step(m32, &b, 1, 7);
    assert_true(bits_of(a) == bits_of(c));
    assert_memory_equal(bert_grads(m16), bert_grads(m32), np * sizeof(float));
    free(logits16);
    free(grads16);
    bert_free(m32);
    bert_free(m16);
    free_batch(&b);
}

/* The bf16 fused ops (bias_act_forward_bf16: the activation written straight to bf16, no fp32
 * copy; residual_layernorm_forward_bf16, residual_layernorm_backward_bf16 and
 * act_bias_backward_bf16: the next product's bf16 operand rounded in the op's own pass) against
 * the composition they replace (a backend table without them: the fp32 op, then the rounding in
 * the product): the same bits in loss, logits and every gradient, with dropout on and with the
 * hidden dropout off (the backward's dx is then dres). */
static void test_fused_bf16_bit_identical(void **state) {
    (void)state;
    batch_ref b;
    load_batch(&b);
    for (int no_hidden_dropout = 0; no_hidden_dropout < 2; no_hidden_dropout++) {
        bert_model *fused = tiny(1, &b), *plain = NULL;
        bertc_error err;
        if (bert_load(&plain, TINY, NULL, &err)) fail_msg("bert_load: %s", err.msg);
        assert_int_equal(bert_set_precision(plain, 1, &err), 0);
        static bertc_backend unfused;
        unfused = *bert_backend(plain);
        assert_non_null(unfused.bias_act_forward_bf16);
        assert_non_null(unfused.residual_layernorm_forward_bf16);
        assert_non_null(unfused.residual_layernorm_backward_bf16);
        assert_non_null(unfused.act_bias_backward_bf16);
        unfused.bias_act_forward_bf16 = NULL;
        unfused.residual_layernorm_forward_bf16 = NULL;
        unfused.residual_layernorm_backward_bf16 = NULL;
        unfused.act_bias_backward_bf16 = NULL;
        bert_swap_ops(plain, &unfused); /* before bert_prepare: it then plans the fp32 copy */
        assert_int_equal(bert_prepare(plain, b.B, b.T, &err), 0);
        if (no_hidden_dropout) {
            assert_true(bert_config_mut(fused)->hidden_dropout_prob > 0.0f); /* so the first pass had it */
            bert_config_mut(fused)->hidden_dropout_prob = 0.0f;
            bert_config_mut(plain)->hidden_dropout_prob = 0.0f;
        }
        int K = bert_get_config(fused)->num_labels;
        size_t np = bert_num_params(fused);
        float lf = step(fused, &b, 1, 11), lp = step(plain, &b, 1, 11);
        assert_true(isfinite(lf) && bits_of(lf) == bits_of(lp));
        assert_memory_equal(bert_logits(fused), bert_logits(plain), (size_t)b.B * K * sizeof(float));
        assert_memory_equal(bert_grads(fused), bert_grads(plain), np * sizeof(float));
        bert_free(fused);
        bert_free(plain);
    }
    free_batch(&b);
}

/* AdamW on the fixture batch from the same weights: bf16 must lower the loss as fp32 does. This
 * also catches a bf16 weight copy that is not refreshed after an update (its loss would stay). */
static void test_training_steps_decrease_loss(void **state) {
    (void)state;
    batch_ref b;
    load_batch(&b);
    enum { STEPS = 30 };
    float loss[2][STEPS];
    for (int p = 0; p < 2; p++) {
        bert_model *m = tiny(p, &b);
        adamw opt;
        bertc_error err;
        adamw_group all = {.offset = 0, .numel = bert_num_params(m), .weight_decay = 0.0f, .lr_scale = 1.0f};
        assert_int_equal(adamw_init(&opt, bert_num_params(m), &all, 1, &err), 0);
        float *params = bert_params(m); /* kept, as the trainer does: updates are announced */
        for (int s = 0; s < STEPS; s++) {
            bert_zero_grad(m);
            loss[p][s] = bert_forward(m, b.ids, b.mask, b.types, b.labels, b.B, b.T, 0, 0); /* no dropout: a smooth curve */
            bert_backward(m, 1.0f);
            adamw_step(&opt, params, bert_grads(m), 3e-3f);
            bert_params_changed(m);
        }
        adamw_free(&opt);
        bert_free(m);
    }
    printf("  B %d T %d\n", b.B, b.T);
    for (int s = 0; s < STEPS; s += 5) printf("  step %2d loss fp32 %.4f bf16 %.4f\n", s, loss[0][s], loss[1][s]);
    printf("  loss fp32 %.4f -> %.4f, bf16 %.4f -> %.4f\n", loss[0][0], loss[0][STEPS - 1], loss[1][0],
           loss[1][STEPS - 1]);
    assert_true(loss[0][STEPS - 1] < 0.5f * loss[0][0]); /* the setting does learn */
    assert_true(loss[1][STEPS - 1] < 0.5f * loss[1][0]);
    /* and bf16 follows fp32's curve: the last 5 losses within 25% (relative) of fp32's, or 0.05 */
    for (int s = STEPS - 5; s < STEPS; s++)
        assert_true(fabsf(loss[1][s] - loss[0][s]) <= fmaxf(0.25f * loss[0][s], 0.05f));
    free_batch(&b);
}

/* ------------------------------------------------------------------------------------------
 * through the public API: train in bf16, stop, resume (the checkpoint keeps the precision) */

static const char *filler[] = {"the", "a", "movie", "film", "plot", "actor", "was", "is", "very", "quite",
                               "story", "scene", "music", "it", "and", "but", "this", "that", "ending", "cast"};
static const synthetic_task task = {filler, sizeof filler / sizeof *filler, 4, 8};

static volatile sig_atomic_t stop_now;

static void log_stop_after_first(const bertc_progress *p, void *user) {
    (void)user;
    if (p->step >= 3) stop_now = 1;
}

static void test_train_bf16_end_to_end(void **state) {
    (void)state;
    char dir[256], model[300], train[300], val[300], out[300];
    snprintf(dir, sizeof dir, "/tmp/bertc-test-bf16-%d", (int)getpid());
    assert_int_equal(mkdir(dir, 0755), 0);
    snprintf(model, sizeof model, "%s/model", dir);
    snprintf(train, sizeof train, "%s/train.jsonl", dir);
    snprintf(val, sizeof val, "%s/val.jsonl", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    bert_config cfg;
    bertc_error err = {0};
    if (synthetic_make_model(&task, model, &cfg, 32, 2, 4, 64, 64, 0.0f, 1234, &err)) fail_msg("%s", err.msg);
    bert_config_free(&cfg);
    assert_int_equal(synthetic_write_jsonl(&task, train, 256, 1), 0);
    assert_int_equal(synthetic_write_jsonl(&task, val, 128, 2), 0);

    bertc_train_options o;
    bertc_train_options_default(&o);
    o.model_dir = model;
    o.train_spec = train;
    o.val_spec = val;
    o.out_dir = out;
    o.max_length = 24;
    o.epochs = 6;
    o.lr = 2e-3f;
    o.warmup_ratio = 0.1f;
    o.threads = 2;
    o.precision = "bf16";
    o.stop = &stop_now;
    o.on_progress = log_stop_after_first;
    bertc_train_result r;
    /* an unknown precision is refused */
    o.precision = "fp16";
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "precision"));
    o.precision = "bf16";
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EINTERRUPTED);

    bertc_train_options ro;
    bertc_train_options_default(&ro);
    void *keep = NULL;
    if (bertc_train_options_load(&ro, out, &keep, &err)) fail_msg("%s", err.msg);
    assert_non_null(ro.precision);
    assert_string_equal(ro.precision, "bf16");
    ro.threads = 2;
    if (bertc_train(&ro, &r, &err)) fail_msg("%s", err.msg);
    bertc_train_options_release(keep);
    printf("  bf16: val accuracy %.4f, train accuracy %.4f after %ld updates\n", r.val.accuracy, r.train.accuracy,
           r.steps);
    assert_true(r.val.accuracy >= 0.95);

    /* the summary records it, and the model evaluates in bf16 as in fp32 */
    char summary[400];
    snprintf(summary, sizeof summary, "%s/summary.json", out);
    FILE *f = fopen(summary, "r");
    assert_non_null(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, "\"precision\":\t\"bf16\""));
    bertc_open_options oo;
    bertc_open_options_default(&oo);
    oo.precision = "bf16";
    bertc_model *m = NULL;
    if (bertc_model_open(&m, out, &oo, &err)) fail_msg("%s", err.msg);
    bertc_eval_options eo;
    bertc_eval_options_default(&eo);
    eo.data_spec = val;
    eo.max_length = 24;
    bertc_eval_result er;
    if (bertc_evaluate(m, &eo, &er, NULL, NULL, &err)) fail_msg("%s", err.msg);
    assert_true(er.accuracy >= 0.95);
    bertc_model_free(m);
    oo.precision = "half";
    assert_int_equal(bertc_model_open(&m, out, &oo, &err), BERTC_EINVAL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* bertc bench --precision bf16 times the bf16 step and says why it does not replay its products. */
static void test_bench_bf16(void **state) {
    (void)state;
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    o.config_path = "tests/fixtures/bert/tiny/config.json";
    o.precision = "bf16";
    o.seq = 16;
    o.reps = 1;
    o.warmup = 1;
    o.threads = 2;
    o.what = "step,matmul";
    FILE *f = tmpfile();
    assert_non_null(f);
    bertc_error err = {0};
    if (bertc_bench(&o, f, NULL, &err)) fail_msg("%s", err.msg);
    rewind(f);
    char line[4096];
    int step = 0, note = 0;
    while (fgets(line, sizeof line, f)) {
        step |= strstr(line, "\"what\":\"train_step\"") && strstr(line, "\"precision\":\"bf16\"");
        note |= strstr(line, "\"what\":\"matmul_step\"") && strstr(line, "not replayed");
    }
    fclose(f);
    assert_true(step);
    assert_true(note);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding_hand_computed),
        cmocka_unit_test(test_rounding_random_bits),
        cmocka_unit_test(test_products_vs_fp32),
        cmocka_unit_test(test_linear_ops),
        cmocka_unit_test(test_tiny_model_bf16_vs_fp32),
        cmocka_unit_test(test_fused_bf16_bit_identical),
        cmocka_unit_test(test_training_steps_decrease_loss),
        cmocka_unit_test(test_train_bf16_end_to_end),
        cmocka_unit_test(test_bench_bf16),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
