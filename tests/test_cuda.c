/* The CUDA backend against the CPU backend.
 *
 * Every op of backend/ops.h, forward and backward, on random inputs of odd sizes: the GPU's
 * result must match the CPU's within 1e-5 relative to the tensor's scale (max|a - b| <=
 * 1e-5 * max(max|cpu|, 1e-2)); dropout masks, embeddings and AdamW must match bit for bit.
 * Then a whole training step of a tiny random model (loss, logits, every gradient, the weights
 * after one AdamW update) within 1e-4, and all-MiniLM-L6-v2's logits within 1e-4 when its folder
 * is at hand (BERTC_MINILM, default models/minilm).
 *
 * Without a GPU (or in a build without CUDA) the comparisons are skipped with a message, and
 * what can be checked is: asking for the CUDA backend fails cleanly with one line that says why,
 * and bertc_train refuses --device cuda before it reads any data. */
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

#include "backend/ops.h"
#include "bertc.h"
#include "model/bert.h"
#include "model/safetensors.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "util/rng.h"
#include "synthetic.h"

#define TOL 1e-5
#define FLOOR 1e-2

static const bertc_backend *cpu, *gpu;
static char why[512];
static rng R;
static char tmp[64] = "/tmp/bertc_test_cuda_XXXXXX";
static char model_dir[128], data_path[128];

static const char *const filler[] = {"the", "a", "movie", "film", "was", "plot", "acting", "is", "very", "quite"};
static const synthetic_task task = {filler, sizeof filler / sizeof *filler, 4, 8};

/* ------------------------------------------------------------------------------------------
 * helpers: host arrays, device copies, comparisons */

static float *rand_floats(size_t n, float scale) {
    float *x = malloc(n * sizeof(float) + 4);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_uniform(&R) * 2.0 - 1.0) * scale;
    return x;
}

static float *dup_floats(const float *x, size_t n) {
    float *y = malloc(n * sizeof(float) + 4);
    assert_non_null(y);
    memcpy(y, x, n * sizeof(float));
    return y;
}

/* a device copy of host memory */
static void *dev(const void *host, size_t bytes) {
    void *d = gpu->alloc(bytes);
    assert_non_null(d);
    if (host) gpu->to_device(d, host, bytes);
    return d;
}

/* the device array back in a fresh host array */
static float *back(const float *d, size_t n) {
    float *h = malloc(n * sizeof(float) + 4);
    assert_non_null(h);
    gpu->to_host(h, d, n * sizeof(float));
    return h;
}

/* max|a - b| relative to b's scale, printed with the name */
static double rel_err(const char *name, const float *a, const float *b, size_t n) {
    double worst = 0, scale = FLOOR;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) worst = d; /* NaN wins */
        if (fabs((double)b[i]) > scale) scale = fabs((double)b[i]);
    }
    double r = worst / scale;
    printf("  %-28s max|gpu - cpu| / scale = %.3g\n", name, r);
    return r;
}

static void expect_close(const char *name, const float *d_gpu, const float *h_cpu, size_t n, double tol) {
    float *h = back(d_gpu, n);
    double r = rel_err(name, h, h_cpu, n);
    free(h);
    if (!(r <= tol)) fail_msg("%s: relative error %.3g above %.1g", name, r, tol);
}

static void expect_equal(const char *name, const float *d_gpu, const float *h_cpu, size_t n) {
    float *h = back(d_gpu, n);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += memcmp(&h[i], &h_cpu[i], sizeof(float)) != 0;
    printf("  %-28s %zu of %zu elements differ in their bits\n", name, diff, n);
    free(h);
    if (diff) fail_msg("%s: %zu elements differ from the CPU's", name, diff);
}

/* Without a GPU, "gpu" is a copy of the CPU table under another name: the comparisons then
 * check this test and the model's device plumbing (bert_set_backend, the optimiser through the
 * table, host copies), though not the CUDA kernels. */
static bertc_backend stand_in;
static int standing_in;
static const char *no_error(void) { return ""; }

static int have_gpu(void) { return gpu != NULL; }

/* The kernels emulated on the CPU (libbertc_cuda_emu.so, see backend/cuda/cuda_emu.h): right but
 * slow, so the large checks are left to a real GPU. */
static int emulated(void) { return gpu && strstr(gpu->name, "emulated") != NULL; }

/* ------------------------------------------------------------------------------------------
 * without a device: clean refusals */

static void test_refusal_is_one_clear_line(void **state) {
    (void)state;
    char msg[512] = "";
    const bertc_backend *be = bertc_backend_by_name("cuda", msg, sizeof msg);
    if (be) {
        printf("  a CUDA device is present: nothing to refuse\n");
        return;
    }
    printf("  %s\n", msg);
    assert_null(strchr(msg, '\n'));
#ifdef BERTC_CUDA
    assert_non_null(strstr(msg, "--device cuda: no CUDA device found (cudaGetDeviceCount: "));
#else
    assert_non_null(strstr(msg, "--device cuda: this bertc was built without CUDA"));
#endif
    /* unknown names are refused too; cpu and the default are always there */
    assert_null(bertc_backend_by_name("tpu", msg, sizeof msg));
    assert_non_null(strstr(msg, "--device tpu: unknown device"));
    assert_ptr_equal(bertc_backend_by_name(NULL, msg, sizeof msg), bertc_backend_cpu());
    assert_ptr_equal(bertc_backend_by_name("cpu", msg, sizeof msg), bertc_backend_cpu());

    /* bertc_train reports the device, not the data: the training set named here does not exist
     * (the device starts while the data is read) */
    bertc_train_options o;
    bertc_train_options_default(&o);
    o.model_dir = model_dir;
    o.train_spec = "/nonexistent/train.jsonl";
    o.out_dir = "/tmp/bertc_test_cuda_never_written";
    o.device = "cuda";
    bertc_train_result r;
    bertc_error err = {0};
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EUNSUPPORTED);
    printf("  bertc_train: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "--device cuda: "));
    /* bertc bench refuses the same way */
    bertc_bench_options bo;
    bertc_bench_options_default(&bo);
    bo.shape = "minilm";
    bo.device = "cuda";
    memset(&err, 0, sizeof err);
    assert_int_equal(bertc_bench(&bo, NULL, NULL, &err), BERTC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "--device cuda: "));
    /* in bf16 precision too (the GPU's bf16 products need the GPU) */
    o.precision = "bf16";
    memset(&err, 0, sizeof err);
    assert_int_equal(bertc_train(&o, &r, &err), BERTC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "--device cuda: "));
    o.precision = "fp32";

    /* and opening a model on it fails the same way, leaving nothing behind */
    bertc_open_options oo;
    bertc_open_options_default(&oo);
    oo.device = "cuda";
    oo.quiet = 1;
    bertc_model *m = NULL;
    memset(&err, 0, sizeof err);
    assert_int_equal(bertc_model_open(&m, model_dir, &oo, &err), BERTC_EUNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(err.msg, "--device cuda: "));
}

/* ------------------------------------------------------------------------------------------
 * op by op (sizes chosen odd so that no kernel can rely on multiples of 32) */

enum { B = 3, T = 19, C = 48, NH = 4, F = 100, V = 37, P = 24, TT = 2, K = 3 };

/* Bn sequences of Tn tokens with ids below nid (few ids: many repeats in the scatter-add). */
/* runs: token types 0 over the first half of the batch and 1 over the rest, so the type table's
 * rows come in long runs (a real batch of single sentences is all 0), with a run crossing the
 * kernel's tile of keys; else random */
static void check_embeddings(int Bn, int Tn, int nid, int runs) {
    const size_t BT = (size_t)Bn * Tn;
    int32_t *ids = malloc(BT * 4), *types = malloc(BT * 4);
    assert_true(ids && types);
    for (size_t i = 0; i < BT; i++) {
        ids[i] = (int32_t)rng_below(&R, (uint64_t)nid);
        types[i] = runs ? (int32_t)(i >= BT / 2) : (int32_t)rng_below(&R, TT);
    }
    ids[5] = 0; /* the padding id gets no gradient */
    float *wte = rand_floats((size_t)V * C, 1), *wpe = rand_floats((size_t)P * C, 1), *wtt = rand_floats((size_t)TT * C, 1);
    float *out = rand_floats(BT * C, 1);
    float *dout = rand_floats(BT * C, 1);
    float *dwte = rand_floats((size_t)V * C, 1), *dwpe = rand_floats((size_t)P * C, 1), *dwtt = rand_floats((size_t)TT * C, 1);
    int32_t *d_ids = dev(ids, BT * 4), *d_types = dev(types, BT * 4);
    float *d_wte = dev(wte, (size_t)V * C * 4), *d_wpe = dev(wpe, (size_t)P * C * 4), *d_wtt = dev(wtt, (size_t)TT * C * 4);
    float *d_out = dev(NULL, BT * C * 4), *d_dout = dev(dout, BT * C * 4);
    float *d_dwte = dev(dwte, (size_t)V * C * 4), *d_dwpe = dev(dwpe, (size_t)P * C * 4), *d_dwtt = dev(dwtt, (size_t)TT * C * 4);

    cpu->embeddings_forward(out, ids, types, wte, wpe, wtt, Bn, Tn, C);
    gpu->embeddings_forward(d_out, d_ids, d_types, d_wte, d_wpe, d_wtt, Bn, Tn, C);
    expect_equal("embeddings_forward", d_out, out, BT * C);
    cpu->embeddings_backward(dwte, dwpe, dwtt, dout, ids, types, Bn, Tn, C, 0);
    gpu->embeddings_backward(d_dwte, d_dwpe, d_dwtt, d_dout, d_ids, d_types, Bn, Tn, C, 0);
    expect_equal("embeddings_backward dwte", d_dwte, dwte, (size_t)V * C);
    expect_equal("embeddings_backward dwpe", d_dwpe, dwpe, (size_t)P * C);
    expect_equal("embeddings_backward dwtt", d_dwtt, dwtt, (size_t)TT * C);
    void *all[] = {d_ids, d_types, d_wte, d_wpe, d_wtt, d_out, d_dout, d_dwte, d_dwpe, d_dwtt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
    free(wte), free(wpe), free(wtt), free(out), free(dout), free(dwte), free(dwpe), free(dwtt), free(ids), free(types);
}

static void test_embeddings(void **state) {
    (void)state;
    if (!have_gpu()) return;
    check_embeddings(B, T, 6, 0);
    /* more rows than the kernel's tile of keys (1024): an id's rows span tiles */
    check_embeddings(50, P, V, 0);
}

/* Runs of one type longer than the kernel's groups of loads, and groups that mix two (last in
 * the list, so the random models of the tests before it stay as they were) */
static void test_embeddings_type_runs(void **state) {
    (void)state;
    if (!have_gpu()) return;
    check_embeddings(50, P, V, 1);
}

static void test_layernorm(void **state) {
    (void)state;
    if (!have_gpu()) return;
    const int N = B * T + 5, CC = 300; /* C > 32 * 9: several passes per lane */
    size_t n = (size_t)N * CC;
    float *inp = rand_floats(n, 3), *w = rand_floats((size_t)CC, 1), *b = rand_floats((size_t)CC, 1);
    for (int i = 0; i < N; i++) inp[(size_t)i * CC] += 5.0f; /* a non-zero mean */
    float *out = malloc(n * 4), *mean = malloc((size_t)N * 4), *rstd = malloc((size_t)N * 4);
    float *dout = rand_floats(n, 1), *dw = rand_floats((size_t)CC, 1), *db = rand_floats((size_t)CC, 1);
    float *d_inp = dev(inp, n * 4), *d_w = dev(w, (size_t)CC * 4), *d_b = dev(b, (size_t)CC * 4);
    float *d_out = dev(NULL, n * 4), *d_mean = dev(NULL, (size_t)N * 4), *d_rstd = dev(NULL, (size_t)N * 4);
    float *d_dout = dev(dout, n * 4), *d_dw = dev(dw, (size_t)CC * 4), *d_db = dev(db, (size_t)CC * 4);
    cpu->layernorm_forward(out, mean, rstd, inp, w, b, N, CC, 1e-12f);
    gpu->layernorm_forward(d_out, d_mean, d_rstd, d_inp, d_w, d_b, N, CC, 1e-12f);
    expect_close("layernorm_forward out", d_out, out, n, TOL);
    expect_close("layernorm_forward mean", d_mean, mean, (size_t)N, TOL);
    expect_close("layernorm_forward rstd", d_rstd, rstd, (size_t)N, TOL);
    /* in place: dinp aliases dout, as bert.c uses it */
    cpu->layernorm_backward(dout, dw, db, dout, inp, w, mean, rstd, N, CC);
    gpu->layernorm_backward(d_dout, d_dw, d_db, d_dout, d_inp, d_w, d_mean, d_rstd, N, CC);
    expect_close("layernorm_backward dinp", d_dout, dout, n, TOL);
    expect_close("layernorm_backward dweight", d_dw, dw, (size_t)CC, TOL);
    expect_close("layernorm_backward dbias", d_db, db, (size_t)CC, TOL);
    void *all[] = {d_inp, d_w, d_b, d_out, d_mean, d_rstd, d_dout, d_dw, d_db};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
    free(inp), free(w), free(b), free(out), free(mean), free(rstd), free(dout), free(dw), free(db);
}

/* The fused ops bert.c uses (ops.h): the end of a sub-block, in place as bert.c calls it (dres
 * over dout), with and without dropout, the Linear's bias and its gradient; bias + activation. */
static void test_fused(void **state) {
    (void)state;
    if (!have_gpu()) return;
    const int N = B * T + 5;
    rng before_384 = R;
    /* dropout + biases; no dropout; dropout, no biases: at C = 300 (> 32 * 9: several passes per
     * lane), then at C = 384, where the forward runs its kernel for multiples of 128 (registers,
     * 16-byte loads), on random numbers of their own (R is restored after them, so the later tests'
     * models are the same as without them) */
    for (int variant = 0; variant < 6; variant++) {
        if (variant == 3) before_384 = R;
        const int CC = variant < 3 ? 300 : 384;
        size_t n = (size_t)N * CC;
        float p = variant % 3 == 1 ? 0.0f : 0.25f;
        int with_bias = variant % 3 != 2;
        float *x = rand_floats(n, 2), *xb = rand_floats((size_t)CC, 1), *ir = rand_floats(n, 2);
        float *w = rand_floats((size_t)CC, 1), *b = rand_floats((size_t)CC, 1);
        float *out = malloc(n * 4), *res = malloc(n * 4), *mean = malloc((size_t)N * 4), *rstd = malloc((size_t)N * 4);
        float *dout = rand_floats(n, 1), *dx = rand_floats(n, 1);
        float *dxb = rand_floats((size_t)CC, 1), *dw = rand_floats((size_t)CC, 1), *db = rand_floats((size_t)CC, 1);
        float *d_x = dev(x, n * 4), *d_xb = dev(xb, (size_t)CC * 4), *d_ir = dev(ir, n * 4);
        float *d_w = dev(w, (size_t)CC * 4), *d_b = dev(b, (size_t)CC * 4);
        float *d_out = dev(NULL, n * 4), *d_res = dev(NULL, n * 4), *d_mean = dev(NULL, (size_t)N * 4),
              *d_rstd = dev(NULL, (size_t)N * 4);
        float *d_dout = dev(dout, n * 4), *d_dx = dev(dx, n * 4);
        float *d_dxb = dev(dxb, (size_t)CC * 4), *d_dw = dev(dw, (size_t)CC * 4), *d_db = dev(db, (size_t)CC * 4);
        /* the CPU keeps its draw as bytes (keeps_dropout_draw), the device redraws it in backward */
        uint8_t *keep = malloc(n);
        cpu->residual_layernorm_forward(out, res, mean, rstd, x, with_bias ? xb : NULL, ir, w, b, N, CC, 1e-12f, p, 7,
                                        3, keep);
        gpu->residual_layernorm_forward(d_out, d_res, d_mean, d_rstd, d_x, with_bias ? d_xb : NULL, d_ir, d_w, d_b, N,
                                        CC, 1e-12f, p, 7, 3, NULL);
        expect_close("residual_layernorm_fwd res", d_res, res, n, TOL);
        expect_close("residual_layernorm_fwd out", d_out, out, n, TOL);
        expect_close("residual_layernorm_fwd mean", d_mean, mean, (size_t)N, TOL);
        expect_close("residual_layernorm_fwd rstd", d_rstd, rstd, (size_t)N, TOL);
        expect_equal("residual_layernorm_fwd x kept", d_x, x, n);
        cpu->residual_layernorm_backward(dout, p > 0 ? dx : NULL, with_bias ? dxb : NULL, dw, db, dout, res, w, mean,
                                         rstd, N, CC, p, 7, 3, keep);
        gpu->residual_layernorm_backward(d_dout, p > 0 ? d_dx : NULL, with_bias ? d_dxb : NULL, d_dw, d_db, d_dout,
                                         d_res, d_w, d_mean, d_rstd, N, CC, p, 7, 3, NULL);
        free(keep);
        expect_close("residual_layernorm_bwd dres", d_dout, dout, n, TOL);
        if (p > 0) expect_close("residual_layernorm_bwd dx", d_dx, dx, n, TOL);
        expect_close("residual_layernorm_bwd dxbias", d_dxb, dxb, (size_t)CC, TOL);
        expect_close("residual_layernorm_bwd dweight", d_dw, dw, (size_t)CC, TOL);
        expect_close("residual_layernorm_bwd dbias", d_db, db, (size_t)CC, TOL);
        void *all[] = {d_x, d_xb, d_ir, d_w, d_b, d_out, d_res, d_mean, d_rstd, d_dout, d_dx, d_dxb, d_dw, d_db};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
        free(x), free(xb), free(ir), free(w), free(b), free(out), free(res), free(mean), free(rstd);
        free(dout), free(dx), free(dxb), free(dw), free(db);
    }
    R = before_384;
    const int M = B * T;
    size_t m = (size_t)M * F;
    for (int act = OPS_ACT_GELU; act <= OPS_ACT_RELU; act++) {
        float *pre = rand_floats(m, 2), *bias = rand_floats((size_t)F, 1), *out = malloc(m * 4);
        float *dout = rand_floats(m, 1), *dbias = rand_floats((size_t)F, 1);
        float *d_pre = dev(pre, m * 4), *d_bias = dev(bias, (size_t)F * 4), *d_out = dev(NULL, m * 4);
        float *d_dout = dev(dout, m * 4), *d_dbias = dev(dbias, (size_t)F * 4);
        cpu->bias_act_forward((ops_act)act, out, pre, bias, M, F);
        gpu->bias_act_forward((ops_act)act, d_out, d_pre, d_bias, M, F);
        expect_close("bias_act_forward pre", d_pre, pre, m, TOL);
        expect_close("bias_act_forward out", d_out, out, m, TOL);
        /* in place: dinp over dout */
        cpu->act_bias_backward((ops_act)act, dout, dbias, dout, pre, M, F);
        gpu->act_bias_backward((ops_act)act, d_dout, d_dbias, d_dout, d_pre, M, F);
        expect_close("act_bias_backward dinp", d_dout, dout, m, TOL);
        expect_close("act_bias_backward dbias", d_dbias, dbias, (size_t)F, TOL);
        void *all[] = {d_pre, d_bias, d_out, d_dout, d_dbias};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
        free(pre), free(bias), free(out), free(dout), free(dbias);
    }
}

static void test_matmul(void **state) {
    (void)state;
    if (!have_gpu()) return;
    const int N = B * T, IC = 70, OC = 45;
    for (int variant = 0; variant < 2; variant++) { /* with bias and dinp written; without bias, dinp accumulated */
        int bias = variant == 0, acc = variant == 1;
        float *inp = rand_floats((size_t)N * IC, 1), *w = rand_floats((size_t)OC * IC, 1), *b = rand_floats((size_t)OC, 1);
        float *out = malloc((size_t)N * OC * 4), *dout = rand_floats((size_t)N * OC, 1);
        float *dinp = rand_floats((size_t)N * IC, 1), *dw = rand_floats((size_t)OC * IC, 1), *db = rand_floats((size_t)OC, 1);
        float *d_inp = dev(inp, (size_t)N * IC * 4), *d_w = dev(w, (size_t)OC * IC * 4), *d_b = dev(b, (size_t)OC * 4);
        float *d_out = dev(NULL, (size_t)N * OC * 4), *d_dout = dev(dout, (size_t)N * OC * 4);
        float *d_dinp = dev(dinp, (size_t)N * IC * 4), *d_dw = dev(dw, (size_t)OC * IC * 4), *d_db = dev(db, (size_t)OC * 4);
        cpu->matmul_forward(out, inp, w, bias ? b : NULL, N, IC, OC);
        gpu->matmul_forward(d_out, d_inp, d_w, bias ? d_b : NULL, N, IC, OC);
        expect_close(bias ? "matmul_forward (bias)" : "matmul_forward (no bias)", d_out, out, (size_t)N * OC, TOL);
        cpu->matmul_backward(dinp, dw, bias ? db : NULL, dout, inp, w, N, IC, OC, acc);
        gpu->matmul_backward(d_dinp, d_dw, bias ? d_db : NULL, d_dout, d_inp, d_w, N, IC, OC, acc);
        expect_close(acc ? "matmul_backward dinp (+=)" : "matmul_backward dinp", d_dinp, dinp, (size_t)N * IC, TOL);
        expect_close("matmul_backward dweight", d_dw, dw, (size_t)OC * IC, TOL);
        expect_close("matmul_backward dbias", d_db, db, (size_t)OC, TOL); /* untouched without bias */
        void *all[] = {d_inp, d_w, d_b, d_out, d_dout, d_dinp, d_dw, d_db};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
        free(inp), free(w), free(b), free(out), free(dout), free(dinp), free(dw), free(db);
    }
}

typedef void (*attention_fwd_fn)(float *, float *, const float *, const float *, const float *, const int32_t *,
                                 float *, int, int, int, int, int, int, int, float, uint64_t, uint64_t, uint8_t *);
typedef void (*attention_bwd_fn)(float *, float *, float *, const float *, const float *, const float *,
                                 const float *, const float *, float *, int, int, int, int, int, int, int, float,
                                 uint64_t, uint64_t, const uint8_t *);

/* rows x C of the (rows, ld) device buffer d from column col0, packed */
static float *back_cols(const float *d, size_t rows, int ld, int col0) {
    float *wide = back(d, rows * (size_t)ld), *out = malloc(rows * C * sizeof(float));
    for (size_t r = 0; r < rows; r++) memcpy(out + r * C, wide + r * ld + col0, C * sizeof(float));
    free(wide);
    return out;
}

static void expect_close_cols(const char *name, const float *d, size_t rows, int ld, int col0, const float *h_cpu,
                              double tol) {
    float *h = back_cols(d, rows, ld, col0);
    double r = rel_err(name, h, h_cpu, rows * C);
    free(h);
    if (!(r <= tol)) fail_msg("%s: relative error %.3g above %.1g", name, r, tol);
}

/* The device's attention (fwd, bwd: the fp32 ops or a bf16 model's) against the CPU's fp32 ops on
 * random q, k, v, dctx, for Tq queries (T, or 1 for the [CLS] shortcut) and dropout p; every
 * output within tol of each tensor's scale. kind names the ops in the printed lines. The CPU
 * reads q, k, v stored apart; the device reads them as bert.c lays them out: q | k | v in rows of
 * 3C (Tq = T), or q apart and k | v in rows of 2C (Tq = 1). */
static void check_attention(const char *kind, attention_fwd_fn fwd, attention_bwd_fn bwd, int Tq, float p, double tol,
                            const int32_t *mask, const int32_t *d_mask) {
    size_t nq = (size_t)B * Tq * C, nk = (size_t)B * T * C, na = (size_t)B * NH * Tq * T;
    float *q = rand_floats(nq, 1), *k = rand_floats(nk, 1), *v = rand_floats(nk, 1), *dctx = rand_floats(nq, 1);
    float *ctx = malloc(nq * 4), *att = malloc(na * 4), *scr = calloc(2 * na, 4);
    float *dq = malloc(nq * 4), *dk = malloc(nk * 4), *dv = malloc(nk * 4);
    /* the device's layout: one (B*T, ld) buffer, q at column 0 when fused, then k, then v */
    int fused = Tq == T, ld = fused ? 3 * C : 2 * C, ldq = fused ? ld : C, kcol = fused ? C : 0;
    size_t rows = (size_t)B * T;
    float *wide = malloc(rows * ld * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        if (fused) memcpy(wide + r * ld, q + r * C, C * sizeof(float));
        memcpy(wide + r * ld + kcol, k + r * C, C * sizeof(float));
        memcpy(wide + r * ld + kcol + C, v + r * C, C * sizeof(float));
    }
    float *d_qkv = dev(wide, rows * ld * 4), *d_dqkv = dev(NULL, rows * ld * 4);
    float *d_qsep = fused ? NULL : dev(q, nq * 4), *d_dqsep = fused ? NULL : dev(NULL, nq * 4);
    const float *d_q = fused ? d_qkv : d_qsep, *d_k = d_qkv + kcol, *d_v = d_qkv + kcol + C;
    float *d_dq = fused ? d_dqkv : d_dqsep, *d_dk = d_dqkv + kcol, *d_dv = d_dqkv + kcol + C;
    float *d_dctx = dev(dctx, nq * 4);
    float *d_ctx = dev(NULL, nq * 4), *d_att = dev(NULL, na * 4), *d_scr = dev(NULL, 2 * na * 4);
    char name[64];
    /* the CPU keeps its dropout draw from forward to backward; the device redraws it */
    uint8_t *keep = malloc(na);
    cpu->attention_forward(ctx, att, q, k, v, mask, scr, B, Tq, T, C, NH, C, C, p, 7, 11, keep);
    fwd(d_ctx, d_att, d_q, d_k, d_v, d_mask, d_scr, B, Tq, T, C, NH, ldq, ld, p, 7, 11, NULL);
    snprintf(name, sizeof name, "%s Tq=%d p=%.1f att", kind, Tq, p);
    expect_close(name, d_att, att, na, tol);
    snprintf(name, sizeof name, "%s Tq=%d p=%.1f ctx", kind, Tq, p);
    expect_close(name, d_ctx, ctx, nq, tol);
    cpu->attention_backward(dq, dk, dv, dctx, q, k, v, att, scr, B, Tq, T, C, NH, C, C, p, 7, 11, p > 0 ? keep : NULL);
    bwd(d_dq, d_dk, d_dv, d_dctx, d_q, d_k, d_v, d_att, d_scr, B, Tq, T, C, NH, ldq, ld, p, 7, 11, NULL);
    free(keep);
    snprintf(name, sizeof name, "%s Tq=%d p=%.1f dq", kind, Tq, p);
    expect_close_cols(name, d_dq, (size_t)B * Tq, ldq, 0, dq, tol);
    snprintf(name, sizeof name, "%s Tq=%d p=%.1f dk", kind, Tq, p);
    expect_close_cols(name, d_dqkv, rows, ld, kcol, dk, tol);
    snprintf(name, sizeof name, "%s Tq=%d p=%.1f dv", kind, Tq, p);
    expect_close_cols(name, d_dqkv, rows, ld, kcol + C, dv, tol);
    void *all[] = {d_qkv, d_dqkv, d_qsep, d_dqsep, d_dctx, d_ctx, d_att, d_scr};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (all[i]) gpu->free(all[i]);
    free(q), free(k), free(v), free(dctx), free(ctx), free(att), free(scr), free(dq), free(dk), free(dv), free(wide);
}

/* sequence b has T - 4b real tokens, then padding */
static void attention_mask(int32_t *mask) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) mask[b * T + t] = t < T - 4 * b;
}

static void test_attention(void **state) {
    (void)state;
    if (!have_gpu()) return;
    int32_t mask[B * T];
    attention_mask(mask);
    int32_t *d_mask = dev(mask, sizeof mask);
    for (int variant = 0; variant < 4; variant++)
        check_attention("attention", gpu->attention_forward, gpu->attention_backward, variant & 1 ? 1 : T,
                        variant & 2 ? 0.1f : 0.0f, TOL, mask, d_mask);
    gpu->free(d_mask);
}

/* A bf16 model's attention (attention_forward_bf16 / _backward_bf16: the products' operands
 * rounded to bf16 inside cuBLAS) against the CPU's fp32 attention: bf16 keeps 8 bits, so the
 * bound is loose (3e-2 of each tensor's scale); it catches a wrong compute type or a missing
 * table entry, not the last bit. The emulation does not round inside its products, so there the
 * difference is fp32's. Last in the list, so the random models of the tests before it stay. */
static void test_attention_bf16(void **state) {
    (void)state;
    if (!have_gpu()) return;
    if (!strcmp(gpu->name, "cpu-as-device")) return; /* the CPU's table has no bf16 attention */
    assert_non_null(gpu->attention_forward_bf16);
    assert_non_null(gpu->attention_backward_bf16);
    int32_t mask[B * T];
    attention_mask(mask);
    int32_t *d_mask = dev(mask, sizeof mask);
    for (int Tq = T; Tq >= 1; Tq = Tq == 1 ? 0 : 1)
        check_attention("attention bf16", gpu->attention_forward_bf16, gpu->attention_backward_bf16, Tq, 0.1f, 3e-2,
                        mask, d_mask);
    gpu->free(d_mask);
}

/* The column sums in one launch (the default, the last block of a strip adding the chunks)
 * against BERTC_CUDA_COLSUM=split's two launches, and with four columns per thread (16-byte
 * loads, C = 300 a multiple of 4) against one (the inputs one float off 16-byte alignment): the
 * same sums bit for bit, through the ops that use them (LayerNorm's weight and bias gradients,
 * a Linear's bias gradient), over several chunks and strips and called twice (the strip counters
 * must be back at zero); and the switches' refusal of values they do not know. */
static void test_colsum_fused(void **state) {
    (void)state;
    if (!have_gpu() || !strcmp(gpu->name, "cpu-as-device")) return;
    const int N = 300, CC = 300, IC = 40; /* 5 chunks of 64 rows, 10 strips of 32 columns */
    size_t n = (size_t)N * CC;
    float *inp = rand_floats(n, 2), *w = rand_floats((size_t)CC, 1), *b = rand_floats((size_t)CC, 1);
    float *x = rand_floats((size_t)N * IC, 1), *wl = rand_floats((size_t)CC * IC, 1), *dout = rand_floats(n, 1);
    float *mean = malloc((size_t)N * 4), *rstd = malloc((size_t)N * 4), *out = malloc(n * 4);
    cpu->layernorm_forward(out, mean, rstd, inp, w, b, N, CC, 1e-12f);
    float *res[3][4]; /* [split, fused, fused one column per thread][dweight, dbias, dlinear bias, dinp] */
    for (int variant = 0; variant < 3; variant++) {
        int fused = variant > 0, off = variant == 2; /* off: dout and inp one float past alignment */
        char why[256];
        /* fused is the default: split by name, fused by default (no variable) */
        if (fused) unsetenv("BERTC_CUDA_COLSUM");
        else setenv("BERTC_CUDA_COLSUM", "split", 1);
        const bertc_backend *be = bertc_backend_by_name("cuda", why, sizeof why);
        assert_ptr_equal(be, gpu);
        float *d_inp_base = dev(NULL, (n + 1) * 4), *d_inp = d_inp_base + off;
        gpu->to_device(d_inp, inp, n * 4);
        float *d_w = dev(w, (size_t)CC * 4), *d_mean = dev(mean, (size_t)N * 4);
        float *d_rstd = dev(rstd, (size_t)N * 4), *d_dw = dev(NULL, (size_t)CC * 4), *d_db = dev(NULL, (size_t)CC * 4);
        float *d_x = dev(x, (size_t)N * IC * 4), *d_wl = dev(wl, (size_t)CC * IC * 4), *d_dlb = dev(NULL, (size_t)CC * 4);
        float *d_dwl = dev(NULL, (size_t)CC * IC * 4), *d_dx = dev(NULL, (size_t)N * IC * 4);
        float *d_dout_base = dev(NULL, (n + 1) * 4), *d_dout = d_dout_base + off;
        gpu->zero(d_dw, (size_t)CC * 4), gpu->zero(d_db, (size_t)CC * 4), gpu->zero(d_dlb, (size_t)CC * 4);
        gpu->zero(d_dwl, (size_t)CC * IC * 4);
        for (int call = 0; call < 2; call++) {
            gpu->to_device(d_dout, dout, n * 4); /* layernorm_backward writes dinp over dout */
            gpu->matmul_backward(d_dx, d_dwl, d_dlb, d_dout, d_x, d_wl, N, IC, CC, 0);
            gpu->layernorm_backward(d_dout, d_dw, d_db, d_dout, d_inp, d_w, d_mean, d_rstd, N, CC);
        }
        res[variant][0] = back(d_dw, (size_t)CC), res[variant][1] = back(d_db, (size_t)CC);
        res[variant][2] = back(d_dlb, (size_t)CC), res[variant][3] = back(d_dout, n);
        void *all[] = {d_inp_base, d_w, d_mean, d_rstd, d_dw, d_db, d_x, d_wl, d_dlb, d_dwl, d_dx, d_dout_base};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
    }
    char why[256];
    /* a value a switch does not know is refused in one line, not ignored */
    setenv("BERTC_CUDA_COLSUM", "yes", 1);
    assert_null(bertc_backend_by_name("cuda", why, sizeof why));
    assert_string_equal(why, "BERTC_CUDA_COLSUM=yes: expected fused or split");
    unsetenv("BERTC_CUDA_COLSUM");
    setenv("BERTC_CUDA_ATTN_MATH", "bf17", 1);
    assert_null(bertc_backend_by_name("cuda", why, sizeof why));
    assert_string_equal(why, "BERTC_CUDA_ATTN_MATH=bf17: expected fp32, tf32 or bf16");
    unsetenv("BERTC_CUDA_ATTN_MATH");
    assert_ptr_equal(bertc_backend_by_name("cuda", why, sizeof why), gpu); /* back to the default */
    static const char *const names[] = {"LN dweight", "LN dbias", "Linear dbias", "LN dinp"};
    static const char *const pairs[] = {"fused/split", "4 columns/1"};
    static const size_t counts[] = {300, 300, 300, 300 * 300};
    for (int pair = 0; pair < 2; pair++)
        for (int i = 0; i < 4; i++) {
            size_t diff = 0;
            for (size_t j = 0; j < counts[i]; j++) diff += memcmp(&res[pair][i][j], &res[pair + 1][i][j], sizeof(float)) != 0;
            printf("  colsum %-12s %-13s %zu of %zu elements differ in their bits\n", pairs[pair], names[i], diff, counts[i]);
            assert_int_equal(diff, 0);
        }
    for (int v = 0; v < 3; v++)
        for (int i = 0; i < 4; i++) free(res[v][i]);
    free(inp), free(w), free(b), free(x), free(wl), free(dout), free(mean), free(rstd), free(out);
}

static void test_elementwise(void **state) {
    (void)state;
    if (!have_gpu()) return;
    const size_t n = 10007;
    float *x = rand_floats(n, 6), *dout = rand_floats(n, 1), *res = rand_floats(n, 1);
    float *y = malloc(n * 4), *dx = malloc(n * 4);
    float *d_x = dev(x, n * 4), *d_dout = dev(dout, n * 4), *d_res = dev(res, n * 4);
    float *d_y = dev(NULL, n * 4), *d_dx = dev(NULL, n * 4);
    static const char *const acts[] = {"gelu", "gelu_new", "relu"};
    char name[64];
    for (int a = 0; a < 3; a++) {
        cpu->act_forward((ops_act)a, y, x, n);
        gpu->act_forward((ops_act)a, d_y, d_x, n);
        snprintf(name, sizeof name, "act_forward %s", acts[a]);
        expect_close(name, d_y, y, n, TOL);
        cpu->act_backward((ops_act)a, dx, dout, x, n);
        gpu->act_backward((ops_act)a, d_dx, d_dout, d_x, n);
        snprintf(name, sizeof name, "act_backward %s", acts[a]);
        expect_close(name, d_dx, dx, n, TOL);
    }
    cpu->tanh_forward(y, x, n);
    gpu->tanh_forward(d_y, d_x, n);
    expect_close("tanh_forward", d_y, y, n, TOL);
    cpu->tanh_backward(dx, dout, y, n);
    gpu->tanh_backward(d_dx, d_dout, d_y, n);
    expect_close("tanh_backward", d_dx, dx, n, TOL);

    /* dropout: the same hash, so exactly the same elements and values */
    float *xc = dup_floats(x, n);
    uint8_t *keep = malloc(n); /* kept by the CPU, redrawn by the device */
    cpu->dropout_forward(xc, n, 0.3f, 99, 5, keep);
    gpu->copy(d_y, d_x, n * 4);
    gpu->dropout_forward(d_y, n, 0.3f, 99, 5, NULL);
    expect_equal("dropout_forward", d_y, xc, n);
    cpu->dropout_backward(dx, dout, n, 0.3f, 99, 5, keep);
    gpu->dropout_backward(d_dx, d_dout, n, 0.3f, 99, 5, NULL);
    expect_equal("dropout_backward", d_dx, dx, n);
    cpu->dropout_backward(dx, dout, n, 0.3f, 99, 5, NULL);
    expect_equal("dropout_backward redrawn", d_dx, dx, n);
    free(keep);
    memcpy(xc, x, n * 4);
    float *out = malloc(n * 4);
    cpu->dropout_residual_forward(out, xc, res, n, 0.3f, 99, 6);
    gpu->copy(d_y, d_x, n * 4);
    gpu->dropout_residual_forward(d_dx, d_y, d_res, n, 0.3f, 99, 6);
    expect_equal("dropout_residual out", d_dx, out, n);
    expect_equal("dropout_residual x", d_y, xc, n);
    /* p = 0: identity and plain residual */
    memcpy(xc, x, n * 4);
    cpu->dropout_residual_forward(out, xc, res, n, 0.0f, 99, 6);
    gpu->copy(d_y, d_x, n * 4);
    gpu->dropout_residual_forward(d_dx, d_y, d_res, n, 0.0f, 99, 6);
    expect_equal("dropout_residual p=0", d_dx, out, n);
    cpu->dropout_backward(dx, dout, n, 0.0f, 99, 5, NULL);
    gpu->dropout_backward(d_dx, d_dout, n, 0.0f, 99, 5, NULL);
    expect_equal("dropout_backward p=0", d_dx, dx, n);

    /* first token */
    cpu->first_token_forward(y, x, B, T, C);
    gpu->first_token_forward(d_y, d_x, B, T, C);
    expect_equal("first_token_forward", d_y, y, (size_t)B * C);
    cpu->first_token_backward(dx, dout, B, T, C);
    gpu->first_token_backward(d_dx, d_dout, B, T, C);
    expect_equal("first_token_backward", d_dx, dx, (size_t)B * T * C);

    /* rows by index (the masked-LM head): gather three rows, scatter them back into dx */
    int32_t rows[3] = {1, 4, B * T - 1};
    int32_t *d_rows = dev(rows, sizeof rows);
    cpu->rows_gather(y, x, rows, 3, C);
    gpu->rows_gather(d_y, d_x, d_rows, 3, C);
    expect_equal("rows_gather", d_y, y, (size_t)3 * C);
    cpu->rows_scatter(dx, dout, rows, 3, C);
    gpu->rows_scatter(d_dx, d_dout, d_rows, 3, C);
    expect_equal("rows_scatter", d_dx, dx, (size_t)B * T * C);
    gpu->free(d_rows);
    void *all[] = {d_x, d_dout, d_res, d_y, d_dx};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
    free(x), free(dout), free(res), free(y), free(dx), free(xc), free(out);
}

static void test_crossentropy(void **state) {
    (void)state;
    if (!have_gpu()) return;
    enum { BB = 7 };
    float *logits = rand_floats(BB * K, 4), losses[BB], probs[BB * K], dl[BB * K];
    int32_t labels[BB] = {0, 2, 1, -100, 2, 0, 1};
    float *d_logits = dev(logits, sizeof(float) * BB * K), *d_losses = dev(NULL, sizeof losses);
    float *d_probs = dev(NULL, sizeof probs), *d_dl = dev(NULL, sizeof dl);
    int32_t *d_labels = dev(labels, sizeof labels);
    for (int s = 0; s < 2; s++) {
        float eps = s ? 0.1f : 0.0f;
        cpu->crossentropy_forward(losses, probs, logits, labels, BB, K, eps);
        gpu->crossentropy_forward(d_losses, d_probs, d_logits, d_labels, BB, K, eps);
        expect_close("crossentropy_forward losses", d_losses, losses, BB, TOL);
        expect_close("crossentropy_forward probs", d_probs, probs, (size_t)BB * K, TOL);
        cpu->crossentropy_backward(dl, probs, labels, BB, K, eps, 0.25f);
        gpu->crossentropy_backward(d_dl, d_probs, d_labels, BB, K, eps, 0.25f);
        expect_close("crossentropy_backward", d_dl, dl, (size_t)BB * K, TOL);
    }
    gpu->free(d_logits), gpu->free(d_losses), gpu->free(d_probs), gpu->free(d_dl), gpu->free(d_labels);
    free(logits);
}

static void test_optimiser_ops(void **state) {
    (void)state;
    if (!have_gpu()) return;
    const size_t n = 100003;
    float *p = rand_floats(n, 1), *m = rand_floats(n, 0.01f), *g = rand_floats(n, 0.1f), *v = malloc(n * 4);
    for (size_t i = 0; i < n; i++) v[i] = fabsf(g[i]) * 0.01f;
    float *d_p = dev(p, n * 4), *d_m = dev(m, n * 4), *d_v = dev(v, n * 4), *d_g = dev(g, n * 4);
    ops_adamw_scalars s = {0.99998f, 0.1f, 0.999f, 0.001f, 0.0447f, 1e-8f, -2e-5f, 1.0f};
    cpu->adamw_update(p, m, v, g, n, s, NULL);
    gpu->adamw_update(d_p, d_m, d_v, d_g, n, s, NULL);
    expect_equal("adamw_update p", d_p, p, n);
    expect_equal("adamw_update m", d_m, m, n);
    expect_equal("adamw_update v", d_v, v, n);
    ops_adamw_scalars clipped = s; /* gradient clipping's factor folded in */
    clipped.grad_scale = 0.37f;
    cpu->adamw_update(p, m, v, g, n, clipped, NULL);
    gpu->adamw_update(d_p, d_m, d_v, d_g, n, clipped, NULL);
    expect_equal("adamw_update with grad_scale p", d_p, p, n);
    expect_equal("adamw_update with grad_scale m", d_m, m, n);
    expect_equal("adamw_update with grad_scale v", d_v, v, n);
    /* with the bf16 mirror written in the same pass: the CPU's rounding bit for bit, every element */
    uint16_t *p16 = malloc(n * 2), *h16 = malloc(n * 2), *d_p16 = gpu->alloc(n * 2);
    cpu->adamw_update(p, m, v, g, n, s, p16);
    gpu->adamw_update(d_p, d_m, d_v, d_g, n, s, d_p16);
    expect_equal("adamw_update with mirror p", d_p, p, n);
    gpu->to_host(h16, d_p16, n * 2);
    assert_memory_equal(h16, p16, n * 2);
    uint16_t *want16 = malloc(n * 2);
    cpu->to_bf16(want16, p, n);
    assert_memory_equal(p16, want16, n * 2);
    double a = cpu->sum_squares(g, n), b = gpu->sum_squares(d_g, n);
    printf("  sum_squares cpu %.17g gpu %.17g\n", a, b);
    assert_true(fabs(a - b) <= 1e-12 * a);
    assert_true(gpu->sum_squares(d_g, n) == b); /* a fixed order: the same bits again */
    cpu->scale(g, n, 0.37f);
    gpu->scale(d_g, n, 0.37f);
    expect_equal("scale", d_g, g, n);
    if (gpu->adamw_update_segments) { /* three ranges with gaps between and around them, one call */
        ops_adamw_segment seg[3] = {{10, 990, 0.9999f, -3e-5f}, {1500, 38500, 1.0f, -2e-5f}, {40000, 60003, 0.99f, -1e-4f}};
        for (int k = 0; k < 3; k++) {
            ops_adamw_scalars sk = s;
            sk.decay = seg[k].decay, sk.neg_step_size = seg[k].neg_step_size;
            cpu->adamw_update(p + seg[k].offset, m + seg[k].offset, v + seg[k].offset, g + seg[k].offset, seg[k].numel, sk,
                              p16 + seg[k].offset);
        }
        gpu->adamw_update_segments(d_p, d_m, d_v, d_g, seg, 3, s, d_p16);
        expect_equal("adamw_update_segments p", d_p, p, n);
        expect_equal("adamw_update_segments m", d_m, m, n);
        expect_equal("adamw_update_segments v", d_v, v, n);
        gpu->to_host(h16, d_p16, n * 2); /* the ranges' entries new, the gaps' as before */
        assert_memory_equal(h16, p16, n * 2);
    }
    /* AdamW through optim.c with 300 groups (decay alternating, one group frozen: a gap), more
     * ranges than one segmented call takes: the device's steps are the CPU's bit for bit */
    enum { NG = 300 };
    adamw_group *groups = malloc(NG * sizeof *groups);
    size_t off = 0, per = n / NG;
    int ng = 0;
    for (int k = 0; k < NG; k++, off += per) {
        if (k == 7) continue; /* frozen */
        groups[ng++] = (adamw_group){off, k == NG - 1 ? n - off : per, k % 2 ? 0.0f : 0.01f, 1.0f};
    }
    adamw oc, og;
    bertc_error err;
    assert_int_equal(adamw_init_on(&oc, cpu, n, groups, (size_t)ng, &err), 0);
    assert_int_equal(adamw_init_on(&og, gpu, n, groups, (size_t)ng, &err), 0);
    /* the mirror over the upper half of the groups only: those ranges go in a call of their own */
    size_t lo = 150 * per;
    assert_int_equal(adamw_set_mirror(&oc, p16, lo, n), 0);
    assert_int_equal(adamw_set_mirror(&og, d_p16, lo, n), 0);
    assert_int_equal(adamw_set_mirror(&og, d_p16, lo + 1, n), -1); /* across a group: refused */
    assert_null(og.mirror);
    assert_int_equal(adamw_set_mirror(&og, d_p16, lo, n), 0);
    uint16_t *before16 = malloc(n * 2);
    memcpy(before16, p16, n * 2);
    for (int step = 0; step < 2; step++) {
        adamw_step(&oc, p, g, 1e-3f);
        adamw_step(&og, d_p, d_g, 1e-3f);
    }
    adamw_step_scaled(&oc, p, g, 1e-3f, 0.25f); /* segments with a clipping factor */
    adamw_step_scaled(&og, d_p, d_g, 1e-3f, 0.25f);
    expect_equal("adamw_step, 299 groups p", d_p, p, n);
    gpu->to_host(h16, d_p16, n * 2);
    assert_memory_equal(h16, p16, n * 2);
    cpu->to_bf16(want16, p, n); /* inside the span, the rounding of the new parameters; below it, untouched */
    assert_memory_equal(p16 + lo, want16 + lo, (n - lo) * 2);
    assert_memory_equal(p16, before16, lo * 2);
    assert_true(memcmp(p16, want16, lo * 2) != 0);
    free(before16);
    assert_string_equal(gpu->last_error(), "");
    free(p16), free(h16), free(want16);
    gpu->free(d_p16);
    adamw_free(&oc), adamw_free(&og);
    free(groups);
    gpu->free(d_p), gpu->free(d_m), gpu->free(d_v), gpu->free(d_g);
    free(p), free(m), free(v), free(g);
}

/* The trainer now runs AdamW and clipping through the backend's table; on the CPU that must be
 * the very same arithmetic as optim.c's own host loops (what test_optim checks against torch). */
static void test_cpu_table_optimiser_matches_host(void **state) {
    (void)state;
    const size_t n = 70001;
    adamw_group groups[3] = {{0, 30000, 0.01f, 1.0f}, {30000, 20001, 0.0f, 1.0f}, {50001, 20000, 0.0f, 1.0f}};
    float *p1 = rand_floats(n, 1), *p2 = dup_floats(p1, n);
    adamw a, b;
    bertc_error err;
    assert_int_equal(adamw_init(&a, n, groups, 3, &err), 0);
    assert_int_equal(adamw_init_on(&b, bertc_backend_cpu(), n, groups, 3, &err), 0);
    for (int step = 0; step < 3; step++) {
        float *g1 = rand_floats(n, 0.5f), *g2 = dup_floats(g1, n);
        float n1 = clip_grad_norm(g1, n, 1.0f), n2 = clip_grad_norm_on(bertc_backend_cpu(), g2, n, 1.0f);
        assert_memory_equal(&n1, &n2, sizeof n1);
        assert_memory_equal(g1, g2, n * sizeof(float));
        adamw_step(&a, p1, g1, 1e-3f);
        adamw_step(&b, p2, g2, 1e-3f);
        assert_memory_equal(p1, p2, n * sizeof(float));
        free(g1), free(g2);
    }
    assert_memory_equal(a.m, b.m, n * sizeof(float));
    assert_memory_equal(a.v, b.v, n * sizeof(float));
    adamw_free(&a), adamw_free(&b);
    free(p1), free(p2);
}

/* ------------------------------------------------------------------------------------------
 * whole model */

/* A random-weight model's config: vocabulary V, hidden C, L layers, NH heads, FFN F, P positions,
 * GELU, the given dropout and initialiser range, and K labels named "a", "b", ... */
static void small_config(bert_config *cfg, int V, int C, int L, int NH, int F, int P, float dropout, float init_range,
                         int K) {
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = V, cfg->hidden_size = C, cfg->num_hidden_layers = L, cfg->num_attention_heads = NH;
    cfg->intermediate_size = F, cfg->max_position_embeddings = P, cfg->type_vocab_size = 2;
    cfg->hidden_act = BERT_ACT_GELU, cfg->hidden_dropout_prob = dropout, cfg->attention_probs_dropout_prob = dropout;
    cfg->classifier_dropout = -1, cfg->layer_norm_eps = 1e-12f, cfg->initializer_range = init_range;
    char *names[3] = {"a", "b", "c"};
    bertc_error err;
    assert_true(K <= 3);
    assert_int_equal(bert_config_set_labels(cfg, names, K, &err), 0);
}

/* The same random model (cfg, seed) twice: *mc on the CPU, *mg moved to the device. */
static void twin_models(const bert_config *cfg, uint64_t seed, bert_model **mc, bert_model **mg) {
    bertc_error err;
    *mc = *mg = NULL;
    assert_int_equal(bert_init_random(mc, cfg, seed, &err), 0);
    assert_int_equal(bert_init_random(mg, cfg, seed, &err), 0);
    assert_int_equal(bert_set_backend(*mg, gpu, &err), 0);
}

static int32_t *make_batch(int Bn, int Tn, int vocab, int32_t **mask_out) {
    int32_t *ids = malloc((size_t)Bn * Tn * 4), *mask = malloc((size_t)Bn * Tn * 4);
    for (int b = 0; b < Bn; b++) {
        int len = Tn - (b * 5) % (Tn / 2); /* some padding in most rows */
        for (int t = 0; t < Tn; t++) {
            int real = t < len;
            ids[b * Tn + t] = !real ? 0 : t == 0 ? 2 : t == len - 1 ? 3 : 5 + (int32_t)rng_below(&R, (uint64_t)(vocab - 5));
            mask[b * Tn + t] = real;
        }
    }
    *mask_out = mask;
    return ids;
}

static void test_tiny_model_step(void **state) {
    (void)state;
    if (!have_gpu()) return;
    bert_config cfg;
    small_config(&cfg, 50, 64, 3, 4, 128, 40, 0.1f, 0.2f, 3); /* large weights: real signal */
    bertc_error err;
    bert_model *mc, *mg;
    twin_models(&cfg, 5, &mc, &mg);
    const int Bn = 6, Tn = 33;
    int32_t *mask, *ids = make_batch(Bn, Tn, cfg.vocab_size, &mask), labels[6] = {0, 1, 2, 1, 0, 2};
    assert_int_equal(bert_prepare(mc, Bn, Tn, &err), 0);
    assert_int_equal(bert_prepare(mg, Bn, Tn, &err), 0);
    size_t np = bert_num_params(mc);
    adamw oc, og;
    assert_int_equal(adamw_init_on(&oc, bertc_backend_cpu(), np, &(adamw_group){0, np, 0.01f, 1.0f}, 1, &err), 0);
    assert_int_equal(adamw_init_on(&og, gpu, np, &(adamw_group){0, np, 0.01f, 1.0f}, 1, &err), 0);
    for (int step = 0; step < 2; step++) {
        bert_zero_grad(mc), bert_zero_grad(mg);
        float lc = bert_forward(mc, ids, mask, NULL, labels, Bn, Tn, 1, 1234 + step);
        float lg = bert_forward(mg, ids, mask, NULL, labels, Bn, Tn, 1, 1234 + step);
        printf("  step %d: loss cpu %.7f gpu %.7f\n", step, lc, lg);
        assert_true(fabsf(lc - lg) <= 1e-4f * fmaxf(1.0f, fabsf(lc)));
        assert_true(rel_err("logits", bert_logits(mg), bert_logits(mc), (size_t)Bn * 3) <= 1e-4);
        bert_backward(mc, 1.0f), bert_backward(mg, 1.0f);
        /* every tensor's gradient, relative to its own scale */
        const bert_param_info *info;
        size_t nt = bert_param_table(mc, &info);
        float *gg = back(bert_grads(mg), np);
        const float *gc = bert_grads(mc);
        double worst = 0;
        const char *worst_name = "";
        for (size_t i = 0; i < nt; i++) {
            double scale = FLOOR, e = 0;
            for (size_t j = info[i].offset; j < info[i].offset + info[i].numel; j++) {
                scale = fmax(scale, fabs(gc[j]));
                e = fmax(e, fabs((double)gg[j] - gc[j]));
            }
            if (!(e / scale <= worst)) worst = e / scale, worst_name = info[i].name;
        }
        printf("  step %d: worst gradient error %.3g (%s)\n", step, worst, worst_name);
        assert_true(worst <= 1e-4);
        /* clipping and one AdamW update on each side: the CPU's as a scaling pass, the device's
         * folded into the update as the trainer runs it */
        float nc = clip_grad_norm_on(bertc_backend_cpu(), bert_grads(mc), np, 0.5f);
        float ng = clip_grad_norm_on(gpu, bert_grads(mg), np, 0.0f);
        printf("  step %d: grad norm cpu %.7g gpu %.7g\n", step, nc, ng);
        assert_true(fabsf(nc - ng) <= 1e-4f * nc);
        adamw_step(&oc, bert_params(mc), bert_grads(mc), 1e-3f);
        adamw_step_scaled(&og, bert_params(mg), bert_grads(mg), 1e-3f, grad_clip_coef(ng, 0.5f));
        /* Per tensor, except the attention key biases: their true gradient is exactly zero (softmax
         * ignores a shift), so theirs is rounding noise whose sign, on each side, AdamW's first
         * steps turn into a full +-lr move. */
        float *pg = back(bert_params(mg), np);
        const float *pc = bert_params(mc);
        double worst_w = 0;
        for (size_t i = 0; i < nt; i++) {
            if (strstr(info[i].name, "attention.self.key.bias")) continue;
            double scale = FLOOR, e = 0;
            for (size_t j = info[i].offset; j < info[i].offset + info[i].numel; j++) {
                scale = fmax(scale, fabs(pc[j]));
                e = fmax(e, fabs((double)pg[j] - pc[j]));
            }
            if (!(e / scale <= worst_w)) worst_w = e / scale;
        }
        /* Elsewhere too, AdamW divides by sqrt(v): where a gradient is near zero its rounding noise
         * moves the weight by up to lr, hence 5e-4 here (the update itself is bit-exact: test_optimiser_ops). */
        printf("  step %d: weights after AdamW, worst error %.3g\n", step, worst_w);
        assert_true(worst_w <= 5e-4);
        free(pg);
        free(gg);
    }
    assert_string_equal(gpu->last_error(), "");
    adamw_free(&oc), adamw_free(&og);
    bert_free(mc), bert_free(mg);
    bert_config_free(&cfg);
    free(ids), free(mask);
}

/* Copies of weights-sized arrays go through the pinned double buffer (several chunks and a
 * partial one here): every byte must arrive, both ways, whatever the chunk boundaries. */
static void test_large_copies(void **state) {
    (void)state;
    if (!have_gpu()) return;
    const size_t n = ((size_t)40 << 20) / 4 + 3; /* 40 MiB and 12 bytes */
    float *x = rand_floats(n, 1);
    float *d = dev(x, n * 4);
    float *y = back(d, n);
    assert_memory_equal(x, y, n * 4);
    /* and a device-side change is seen after the round trip (not a stale buffer) */
    gpu->scale(d, n, 2.0f);
    gpu->to_host(y, d, n * 4);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++) wrong += y[i] != 2.0f * x[i];
    printf("  40 MiB round trip: %zu of %zu elements wrong after scaling\n", wrong, n);
    assert_int_equal(wrong, 0);
    gpu->free(d);
    free(x), free(y);
}

/* A model saved from the device (the writer fetches each tensor in 16 MiB pieces) is the file
 * the CPU writes for the same weights, byte for byte; the embedding table here spans two pieces. */
/* Byte for byte comparison of two files; returns the size, fails on any difference. */
static size_t files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_true(fa && fb);
    size_t total = 0, differ = 0;
    for (;;) {
        int x = fgetc(fa), y = fgetc(fb);
        if (x != y) differ++;
        if (x == EOF || y == EOF) break;
        total++;
    }
    fclose(fa), fclose(fb);
    assert_int_equal(differ, 0);
    return total;
}

/* The folders tmp/STEM-cpu and tmp/STEM-gpu, for what each side of a twin pair writes. */
static void side_dirs(const char *stem, char *dc, char *dg, size_t size) {
    snprintf(dc, size, "%s/%s-cpu", tmp, stem);
    snprintf(dg, size, "%s/%s-gpu", tmp, stem);
}
/* files_equal on FILE in the two folders. */
static size_t same_file(const char *dc, const char *dg, const char *file) {
    char pc[400], pg[400];
    snprintf(pc, sizeof pc, "%s/%s", dc, file);
    snprintf(pg, sizeof pg, "%s/%s", dg, file);
    return files_equal(pc, pg);
}

/* A CPU/GPU pair of one random 1-layer model whose word embeddings (12000 x 384 floats, 18 MB)
 * span more than one of the 16 MiB pieces the writers fetch from the device. */
static void piecewise_twins(int K, uint64_t seed, bert_config *cfg, bert_model **mc, bert_model **mg) {
    small_config(cfg, 12000, 384, 1, 6, 64, 40, 0.0f, 0.02f, K);
    twin_models(cfg, seed, mc, mg);
}

static void test_save_from_device(void **state) {
    (void)state;
    if (!have_gpu()) return;
    bert_config cfg;
    bertc_error err;
    bert_model *mc, *mg;
    piecewise_twins(2, 3, &cfg, &mc, &mg);
    assert_true(bert_params_finite(mg));
    char dc[160], dg[160];
    side_dirs("save", dc, dg, sizeof dc);
    assert_int_equal(bert_save(mc, dc, &err), 0);
    assert_int_equal(bert_save(mg, dg, &err), 0);
    size_t total = same_file(dc, dg, "model.safetensors");
    printf("  model.safetensors from the device: %zu bytes, the CPU's byte for byte\n", total);
    assert_true(total > ((size_t)17 << 20));
    /* a NaN anywhere in the weights is seen where they live */
    const float nan = NAN;
    gpu->to_device(bert_params(mg) + 12345, &nan, sizeof nan);
    assert_false(bert_params_finite(mg));
    bert_free(mc), bert_free(mg);
    bert_config_free(&cfg);
}

/* A checkpoint of a model on the device streams its weights and moments through the hash and
 * the writer piece by piece (no host copy of the state) and is the very file the CPU writes for
 * the same state: tensors beyond one 16 MiB piece, a tensor whose bytes end mid-word (3 labels),
 * the checksum. It loads back on the CPU; a NaN in the device's weights is refused. */
static void test_checkpoint_from_device(void **state) {
    (void)state;
    if (!have_gpu()) return;
    bert_config cfg;
    bertc_error err;
    bert_model *mc, *mg;
    piecewise_twins(3, 4, &cfg, &mc, &mg);
    size_t np = bert_num_params(mc);
    adamw oc, og;
    assert_int_equal(adamw_init_on(&oc, bertc_backend_cpu(), np, &(adamw_group){0, np, 0.01f, 1.0f}, 1, &err), 0);
    assert_int_equal(adamw_init_on(&og, gpu, np, &(adamw_group){0, np, 0.01f, 1.0f}, 1, &err), 0);
    float *mom = rand_floats(np, 0.1f), *best = rand_floats(np, 0.05f);
    memcpy(oc.m, mom, np * sizeof *mom);
    gpu->to_device(og.m, mom, np * sizeof *mom);
    for (size_t i = 0; i < np; i++) mom[i] = fabsf(mom[i]) * 0.01f;
    memcpy(oc.v, mom, np * sizeof *mom);
    gpu->to_device(og.v, mom, np * sizeof *mom);
    train_state st = {.epoch = 2, .step = 7, .opt_step = 7, .micro = 7, .examples_seen = 28, .best_acc = 0.5,
                      .best_epoch = 1, .epochs_run = 1, .train_seconds = 1.5};
    char dc[160], dg[160];
    side_dirs("ck", dc, dg, sizeof dc);
    assert_int_equal(checkpoint_save(dc, &st, mc, &oc, best, "{\"x\":1}", "metrics\n", &err), 0);
    float *d_best = dev(best, np * sizeof *best); /* the best weights live beside the weights */
    assert_int_equal(checkpoint_save(dg, &st, mg, &og, d_best, "{\"x\":1}", "metrics\n", &err), 0);
    size_t bytes = same_file(dc, dg, CHECKPOINT_FILE);
    printf("  checkpoint from the device: %zu bytes, the CPU's file byte for byte\n", bytes);
    assert_true(bytes > ((size_t)3 * 16 << 20));
    /* the background writer: the same file again, twice through one writer (the second save waits
     * for the first), with best changed after the save returned (the writer must have its own
     * copy) */
    char dw[160];
    snprintf(dw, sizeof dw, "%s/ck-writer", tmp);
    {
        checkpoint_writer w = {0};
        for (int rep = 0; rep < 2; rep++) {
            assert_int_equal(checkpoint_writer_save(&w, dw, &st, mg, &og, d_best, "{\"x\":1}", "metrics\n", &err), 0);
            const float other = 123.0f; /* the caller's buffer may change once save has returned */
            gpu->to_device(d_best + 5, &other, sizeof other);
            assert_int_equal(checkpoint_writer_wait(&w, &err), 0);
            gpu->to_device(d_best + 5, best + 5, sizeof *best);
        }
        checkpoint_writer_free(&w);
        printf("  checkpoint written in the background: %zu bytes, the CPU's file byte for byte\n",
               same_file(dc, dw, CHECKPOINT_FILE));
    }
    /* back on the CPU */
    bert_model *m2;
    assert_int_equal(bert_init_random(&m2, &cfg, 99, &err), 0);
    adamw o2;
    assert_int_equal(adamw_init_on(&o2, bertc_backend_cpu(), np, &(adamw_group){0, np, 0.01f, 1.0f}, 1, &err), 0);
    train_state st2;
    float *best2 = malloc(np * sizeof *best2);
    if (checkpoint_load(dg, &st2, m2, &o2, best2, &err)) fail_msg("%s", err.msg);
    assert_memory_equal(bert_params(m2), bert_params(mc), np * sizeof(float));
    assert_memory_equal(o2.v, oc.v, np * sizeof(float));
    assert_memory_equal(best2, best, np * sizeof(float));
    assert_int_equal(st2.step, 7);
    /* and onto the device: the best weights into device memory */
    float *d_best2 = dev(NULL, np * sizeof *best2);
    if (checkpoint_load(dw, &st2, mg, &og, d_best2, &err)) fail_msg("%s", err.msg);
    float *back_best = back(d_best2, np);
    assert_memory_equal(back_best, best, np * sizeof(float));
    free(back_best);
    gpu->free(d_best2);
    /* a NaN in the best weights: refused by both */
    const float nan_b = NAN;
    gpu->to_device(d_best + 7, &nan_b, sizeof nan_b);
    assert_int_equal(checkpoint_save(dg, &st, mg, &og, d_best, "{}", "", &err), BERTC_ENUMERIC);
    assert_non_null(strstr(err.msg, "best weights"));
    {
        checkpoint_writer w = {0};
        assert_int_equal(checkpoint_writer_save(&w, dw, &st, mg, &og, d_best, "{}", "", &err), BERTC_ENUMERIC);
        assert_non_null(strstr(err.msg, "best weights"));
        checkpoint_writer_free(&w);
    }
    gpu->to_device(d_best + 7, best + 7, sizeof *best);
    /* a NaN in the device's weights: no checkpoint, the old one stays */
    const float nan = NAN;
    gpu->to_device(bert_params(mg) + 4000000, &nan, sizeof nan);
    assert_int_equal(checkpoint_save(dg, &st, mg, &og, d_best, "{}", "", &err), BERTC_ENUMERIC);
    same_file(dc, dg, CHECKPOINT_FILE);
    { /* the writer refuses it too, at once, and leaves its folder's checkpoint alone */
        checkpoint_writer w = {0};
        assert_int_equal(checkpoint_writer_save(&w, dw, &st, mg, &og, d_best, "{}", "", &err), BERTC_ENUMERIC);
        assert_int_equal(checkpoint_writer_wait(&w, &err), 0);
        checkpoint_writer_free(&w);
        same_file(dc, dw, CHECKPOINT_FILE);
    }
    free(mom), free(best), free(best2);
    gpu->free(d_best);
    adamw_free(&oc), adamw_free(&og), adamw_free(&o2);
    bert_free(mc), bert_free(mg), bert_free(m2);
    bert_config_free(&cfg);
}

/* bertc bench --device: the three measurements run on the device (the sgemm trace, CPU-only, is
 * left out of "all" and refused when asked for), each row saying where it ran. */
static void test_bench_on_device(void **state) {
    (void)state;
    if (!have_gpu() || standing_in) return;
    char cfgpath[200];
    snprintf(cfgpath, sizeof cfgpath, "%s/config.json", model_dir);
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    o.config_path = cfgpath;
    o.device = "cuda";
    o.precision = "bf16";
    o.seq = 16, o.train_batch = 2, o.eval_batch = 2, o.reps = 2, o.warmup = 1;
    FILE *f = tmpfile();
    assert_non_null(f);
    bertc_error err = {0};
    assert_int_equal(bertc_bench(&o, f, NULL, &err), 0);
    rewind(f);
    char line[2048];
    int rows = 0, on_device = 0;
    while (fgets(line, sizeof line, f)) {
        rows++;
        on_device += strstr(line, "\"device\":\"cuda\"") != NULL && strstr(line, "\"precision\":\"bf16\"") != NULL;
        assert_null(strstr(line, "matmul_step"));
    }
    fclose(f);
    printf("  bench --device cuda: %d rows, %d on the device in bf16\n", rows, on_device);
    assert_int_equal(rows, 3);
    assert_int_equal(on_device, 3);
    o.what = "matmul";
    assert_int_equal(bertc_bench(&o, NULL, NULL, &err), BERTC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "not with --device cuda"));
}

/* bf16 mixed precision (--precision bf16): the rounding is the CPU's bit for bit (NaN, infinities,
 * subnormals and ties included), the fused bias + activation + rounding equals its composition bit
 * for bit, and the bf16 products match the CPU's (the same bf16 operands, fp32 accumulation: only
 * the summation order differs). */
static void bits16_equal(const char *name, const uint16_t *d_gpu, const uint16_t *h, size_t n) {
    uint16_t *g = malloc(n * sizeof *g + 2);
    assert_non_null(g);
    gpu->to_host(g, d_gpu, n * sizeof *g);
    size_t diff = 0;
    for (size_t i = 0; i < n; i++) diff += g[i] != h[i];
    printf("  %-28s %zu of %zu bf16 values differ in their bits\n", name, diff, n);
    free(g);
    if (diff) fail_msg("%s: %zu bf16 values differ", name, diff);
}

static void test_bf16_ops(void **state) {
    (void)state;
    if (!have_gpu()) return;
    assert_non_null(gpu->to_bf16);
    assert_non_null(gpu->matmul_forward_bf16);
    assert_non_null(gpu->matmul_backward_bf16);
    assert_non_null(gpu->bias_act_forward_bf16);
    /* rounding: random values plus the awkward ones */
    const size_t n = 10007;
    float *x = rand_floats(n, 3);
    const uint32_t special[] = {0x7FC00000u, 0xFFC00001u, 0x7F800001u, 0x7F800000u, 0xFF800000u, 0x00000001u,
                                0x80000001u, 0x007FFFFFu, 0x3F808000u, 0x3F818000u, 0x7F7FFFFFu, 0x00000000u};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++) memcpy(&x[i], &special[i], 4);
    uint16_t *h16 = malloc(n * 2);
    cpu->to_bf16(h16, x, n);
    float *d_x = dev(x, n * 4);
    uint16_t *d16 = gpu->alloc(n * 2);
    gpu->to_bf16(d16, d_x, n);
    bits16_equal("to_bf16", d16, h16, n);

    /* bias + activation + rounding: against the GPU's own composition (bits) and the CPU (values) */
    const int N = B * T, F = 37;
    for (int act = 0; act < 3; act++) {
        float *pre = rand_floats((size_t)N * F, 3), *bias = rand_floats((size_t)F, 1);
        float *d_pre = dev(pre, (size_t)N * F * 4), *d_pre2 = dev(pre, (size_t)N * F * 4), *d_bias = dev(bias, (size_t)F * 4);
        float *d_out = dev(NULL, (size_t)N * F * 4);
        uint16_t *d_o16 = gpu->alloc((size_t)N * F * 2), *d_ref16 = gpu->alloc((size_t)N * F * 2);
        gpu->bias_act_forward_bf16((ops_act)act, d_o16, d_pre, d_bias, N, F);
        gpu->bias_act_forward((ops_act)act, d_out, d_pre2, d_bias, N, F);
        gpu->to_bf16(d_ref16, d_out, (size_t)N * F);
        uint16_t *ref16 = malloc((size_t)N * F * 2);
        gpu->to_host(ref16, d_ref16, (size_t)N * F * 2);
        bits16_equal("bias_act_forward_bf16 out", d_o16, ref16, (size_t)N * F);
        uint16_t *c16 = malloc((size_t)N * F * 2);
        float *cpre = dup_floats(pre, (size_t)N * F), *c32 = malloc((size_t)N * F * 4), *g32 = malloc((size_t)N * F * 4);
        cpu->bias_act_forward_bf16((ops_act)act, c16, cpre, bias, N, F);
        expect_close("bias_act_forward_bf16 pre", d_pre, cpre, (size_t)N * F, TOL);
        for (size_t i = 0; i < (size_t)N * F; i++) { /* widened: within one bf16 step (2^-8 relative) */
            uint32_t a = (uint32_t)c16[i] << 16, b = (uint32_t)ref16[i] << 16;
            memcpy(&c32[i], &a, 4), memcpy(&g32[i], &b, 4);
        }
        assert_true(rel_err("bias_act_forward_bf16 vs cpu", g32, c32, (size_t)N * F) <= 1.0 / 128);
        void *all[] = {d_pre, d_pre2, d_bias, d_out, d_o16, d_ref16};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
        free(pre), free(bias), free(ref16), free(c16), free(cpre), free(c32), free(g32);
    }

    /* the bf16 products */
    const int IC = 70, OC = 45;
    for (int variant = 0; variant < 2; variant++) {
        int bias = variant == 0, acc = variant == 1;
        float *inp = rand_floats((size_t)N * IC, 1), *w = rand_floats((size_t)OC * IC, 1), *b = rand_floats((size_t)OC, 1);
        float *out = malloc((size_t)N * OC * 4), *dout = rand_floats((size_t)N * OC, 1);
        float *dinp = rand_floats((size_t)N * IC, 1), *dw = rand_floats((size_t)OC * IC, 1), *db = rand_floats((size_t)OC, 1);
        uint16_t *w16 = malloc((size_t)OC * IC * 2), *inp16 = malloc((size_t)N * IC * 2), *scr = malloc((size_t)N * OC * 2);
        cpu->to_bf16(w16, w, (size_t)OC * IC);
        float *d_inp = dev(inp, (size_t)N * IC * 4), *d_b = dev(b, (size_t)OC * 4);
        uint16_t *d_w16 = dev(w16, (size_t)OC * IC * 2), *d_inp16 = gpu->alloc((size_t)N * IC * 2);
        uint16_t *d_scr = gpu->alloc((size_t)N * OC * 2);
        float *d_out = dev(NULL, (size_t)N * OC * 4), *d_dout = dev(dout, (size_t)N * OC * 4);
        float *d_dinp = dev(dinp, (size_t)N * IC * 4), *d_dw = dev(dw, (size_t)OC * IC * 4), *d_db = dev(db, (size_t)OC * 4);
        cpu->matmul_forward_bf16(out, inp, inp16, 0, w16, bias ? b : NULL, N, IC, OC);
        gpu->matmul_forward_bf16(d_out, d_inp, d_inp16, 0, d_w16, bias ? d_b : NULL, N, IC, OC);
        bits16_equal("matmul_forward_bf16 inp16", d_inp16, inp16, (size_t)N * IC);
        expect_close(bias ? "matmul_forward_bf16 (bias)" : "matmul_forward_bf16", d_out, out, (size_t)N * OC, TOL);
        cpu->matmul_backward_bf16(dinp, dw, bias ? db : NULL, dout, inp16, w16, N, IC, OC, acc, scr, 0);
        /* the second variant takes dout's rounding from a scratch filled before (scratch_ready) */
        if (acc) gpu->to_bf16(d_scr, d_dout, (size_t)N * OC);
        gpu->matmul_backward_bf16(d_dinp, d_dw, bias ? d_db : NULL, d_dout, d_inp16, d_w16, N, IC, OC, acc, d_scr, acc);
        expect_close(acc ? "matmul_backward_bf16 dinp (+=)" : "matmul_backward_bf16 dinp", d_dinp, dinp, (size_t)N * IC, TOL);
        expect_close("matmul_backward_bf16 dweight", d_dw, dw, (size_t)OC * IC, TOL);
        expect_close("matmul_backward_bf16 dbias", d_db, db, (size_t)OC, TOL);
        void *all[] = {d_inp, d_b, d_w16, d_inp16, d_scr, d_out, d_dout, d_dinp, d_dw, d_db};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
        free(inp), free(w), free(b), free(out), free(dout), free(dinp), free(dw), free(db), free(w16), free(inp16), free(scr);
    }
    assert_string_equal(gpu->last_error(), "");
    gpu->free(d_x), gpu->free(d16);
    free(x), free(h16);
}

/* A tiny model's training step in bf16 precision on both backends: the same bf16 roundings feed
 * the same products, so the two stay close (an fp32 difference upstream can flip a rounding, hence
 * looser bounds than fp32's), and differ clearly from the fp32 model (the bf16 path is taken). */
static void test_bf16_model_step(void **state) {
    (void)state;
    if (!have_gpu()) return;
    bert_config cfg;
    small_config(&cfg, 50, 64, 2, 4, 128, 40, 0.1f, 0.2f, 2);
    bertc_error err;
    bert_model *mc, *mg, *m32 = NULL;
    twin_models(&cfg, 6, &mc, &mg);
    assert_int_equal(bert_init_random(&m32, &cfg, 6, &err), 0);
    assert_int_equal(bert_set_precision(mc, 1, &err), 0);
    assert_int_equal(bert_set_precision(mg, 1, &err), 0);
    const int Bn = 5, Tn = 31;
    int32_t *mask, *ids = make_batch(Bn, Tn, cfg.vocab_size, &mask), labels[5] = {0, 1, 1, 0, 1};
    assert_int_equal(bert_prepare(mc, Bn, Tn, &err), 0);
    assert_int_equal(bert_prepare(mg, Bn, Tn, &err), 0);
    assert_int_equal(bert_prepare(m32, Bn, Tn, &err), 0);
    float lc = bert_forward(mc, ids, mask, NULL, labels, Bn, Tn, 1, 77);
    float lg = bert_forward(mg, ids, mask, NULL, labels, Bn, Tn, 1, 77);
    float l32 = bert_forward(m32, ids, mask, NULL, labels, Bn, Tn, 1, 77);
    printf("  bf16 loss cpu %.7f gpu %.7f (fp32 model %.7f)\n", lc, lg, l32);
    assert_true(fabsf(lc - lg) <= 1e-3f * fmaxf(1.0f, fabsf(lc)));
    assert_true(fabsf(lc - l32) > 1e-6f); /* the products really ran in bf16 */
    assert_true(rel_err("bf16 logits", bert_logits(mg), bert_logits(mc), (size_t)Bn * 2) <= 1e-2);
    bert_backward(mc, 1.0f), bert_backward(mg, 1.0f);
    size_t np = bert_num_params(mc);
    float *gg = back(bert_grads(mg), np);
    assert_true(rel_err("bf16 gradients", gg, bert_grads(mc), np) <= 2e-2);
    free(gg);
    assert_string_equal(gpu->last_error(), "");
    bert_free(mc), bert_free(mg), bert_free(m32);
    bert_config_free(&cfg);
    free(ids), free(mask);
}

/* cuda:tf32 and cuda:bf16 round the products' inputs: the same model's loss and logits stay close
 * to the CPU's (a loose bound: bf16 keeps 8 bits of mantissa), and "cuda" is exact again after. */
static void test_tensor_core_modes(void **state) {
    (void)state;
    if (standing_in) {
        printf("  needs a GPU: skipped\n");
        skip();
    }
    bert_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.vocab_size = 50, cfg.hidden_size = 128, cfg.num_hidden_layers = 2, cfg.num_attention_heads = 4;
    cfg.intermediate_size = 256, cfg.max_position_embeddings = 64, cfg.type_vocab_size = 2;
    cfg.hidden_act = BERT_ACT_GELU, cfg.classifier_dropout = -1, cfg.layer_norm_eps = 1e-12f, cfg.initializer_range = 0.1f;
    char *names[2] = {"a", "b"};
    bertc_error err;
    assert_int_equal(bert_config_set_labels(&cfg, names, 2, &err), 0);
    const int Bn = 4, Tn = 64;
    int32_t *mask, *ids = make_batch(Bn, Tn, cfg.vocab_size, &mask), labels[4] = {0, 1, 1, 0};
    bert_model *mc = NULL;
    assert_int_equal(bert_init_random(&mc, &cfg, 9, &err), 0);
    assert_int_equal(bert_prepare(mc, Bn, Tn, &err), 0);
    float lc = bert_forward(mc, ids, mask, NULL, labels, Bn, Tn, 0, 0);
    static const char *const modes[] = {"cuda:tf32", "cuda:bf16", "cuda"};
    static const double tol[] = {5e-3, 3e-2, 1e-4};
    for (int i = 0; i < 3; i++) {
        char msg[256];
        const bertc_backend *be = bertc_backend_by_name(modes[i], msg, sizeof msg);
        assert_non_null(be);
        bert_model *mg = NULL;
        assert_int_equal(bert_init_random(&mg, &cfg, 9, &err), 0);
        assert_int_equal(bert_set_backend(mg, be, &err), 0);
        assert_int_equal(bert_prepare(mg, Bn, Tn, &err), 0);
        float lg = bert_forward(mg, ids, mask, NULL, labels, Bn, Tn, 0, 0);
        double worst = 0;
        for (int j = 0; j < Bn * 2; j++) worst = fmax(worst, fabs((double)bert_logits(mc)[j] - bert_logits(mg)[j]));
        printf("  %-10s loss %.6f (cpu %.6f), max |logit diff| %.3g\n", modes[i], lg, lc, worst);
        assert_true(worst <= tol[i]);
        bert_free(mg);
    }
    bert_free(mc);
    bert_config_free(&cfg);
    free(ids), free(mask);
}

static void test_minilm_logits(void **state) {
    (void)state;
    if (!have_gpu()) return;
    if (emulated()) {
        printf("  emulated kernels: too slow for MiniLM, left to a GPU\n");
        skip();
    }
    const char *dir = getenv("BERTC_MINILM") ? getenv("BERTC_MINILM") : "models/minilm";
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, R_OK) != 0) {
        printf("  %s not found: MiniLM check skipped (set BERTC_MINILM to its folder)\n", path);
        skip();
    }
    bert_load_options lo;
    bert_load_options_default(&lo);
    lo.num_labels = 2; /* a fresh classifier, the same on both (same seed) */
    bertc_error err;
    bert_model *mc = NULL, *mg = NULL;
    assert_int_equal(bert_load(&mc, dir, &lo, &err), 0);
    assert_int_equal(bert_load(&mg, dir, &lo, &err), 0);
    assert_int_equal(bert_set_backend(mg, gpu, &err), 0);
    const int Bn = 8, Tn = 128;
    int32_t *mask, *ids = make_batch(Bn, Tn, bert_get_config(mc)->vocab_size, &mask);
    int32_t labels[8] = {0, 1, 0, 1, 1, 0, 0, 1};
    assert_int_equal(bert_prepare(mc, Bn, Tn, &err), 0);
    assert_int_equal(bert_prepare(mg, Bn, Tn, &err), 0);
    float lc = bert_forward(mc, ids, mask, NULL, labels, Bn, Tn, 0, 0);
    float lg = bert_forward(mg, ids, mask, NULL, labels, Bn, Tn, 0, 0);
    double worst = 0;
    for (int i = 0; i < Bn * 2; i++) worst = fmax(worst, fabs((double)bert_logits(mc)[i] - bert_logits(mg)[i]));
    printf("  MiniLM: loss cpu %.7f gpu %.7f, max |logit diff| %.3g\n", lc, lg, worst);
    assert_true(worst <= 1e-4);
    assert_true(fabsf(lc - lg) <= 1e-4f);
    bert_free(mc), bert_free(mg);
    free(ids), free(mask);
}

/* bertc init (bertc_model_init_random), which the GPU check uses for bert-base's shape: a folder
 * that opens like any model, with the config's shape, random weights from the seed (the same
 * seed, the same weights), and errors for a folder without a config. */
static void test_init_random(void **state) {
    (void)state;
    char out1[160], out2[160], path[200];
    snprintf(out1, sizeof out1, "%s/init1", tmp);
    snprintf(out2, sizeof out2, "%s/init2", tmp);
    bertc_error err = {0};
    assert_int_equal(bertc_model_init_random(model_dir, out1, 5, &err), 0);
    assert_int_equal(bertc_model_init_random(model_dir, out2, 5, &err), 0);
    static const char *const files[] = {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", out1, files[i]);
        assert_int_equal(access(path, R_OK), 0);
    }
    bert_model *a = NULL, *b = NULL, *src = NULL;
    assert_int_equal(bert_load(&a, out1, NULL, &err), 0);
    assert_int_equal(bert_load(&b, out2, NULL, &err), 0);
    assert_int_equal(bert_load(&src, model_dir, NULL, &err), 0);
    assert_int_equal(bert_num_params(a), bert_num_params(src));
    assert_memory_equal(bert_params(a), bert_params(b), bert_num_params(a) * sizeof(float));
    assert_memory_not_equal(bert_params(a), bert_params(src), bert_num_params(a) * sizeof(float));
    bert_free(a), bert_free(b), bert_free(src);
    assert_int_not_equal(bertc_model_init_random("/nonexistent", out1, 5, &err), 0);
    printf("  no config: %s\n", err.msg);
}

/* bertc train on the synthetic task, on the CPU and on the GPU: the same loss curve (the same
 * batches and dropout masks; float rounding apart) and accuracy. */
static double read_losses(const char *dir, double *loss, int max) {
    char path[256], line[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n = 0;
    while (fgets(line, sizeof line, f) && n < max) {
        const char *l = strstr(line, "\"type\":\"step\"") ? strstr(line, "\"loss\":") : NULL;
        if (l) loss[n++] = strtod(l + 7, NULL);
    }
    fclose(f);
    return n;
}

/* The per-update losses of TMP/STEM_cpu and TMP/STEM_cuda (runs of the same options on each
 * side): as many on both; returns how many, and the largest difference in *worst. */
static int paired_losses(const char *stem, double *lc, double *lg, int max, double *worst) {
    char a[160], b[160];
    snprintf(a, sizeof a, "%s/%s_cpu", tmp, stem);
    snprintf(b, sizeof b, "%s/%s_cuda", tmp, stem);
    int na = (int)read_losses(a, lc, max), nb = (int)read_losses(b, lg, max);
    assert_int_equal(na, nb);
    *worst = 0;
    for (int i = 0; i < na; i++) *worst = fmax(*worst, fabs(lc[i] - lg[i]));
    return na;
}

static void test_train_end_to_end(void **state) {
    (void)state;
    if (standing_in || emulated()) {
        printf("  needs a GPU: skipped\n");
        skip();
    }
    double lc[64], lg[64];
    bertc_train_result rc_, rg_;
    for (int side = 0; side < 2; side++) {
        bertc_train_options o;
        bertc_train_options_default(&o);
        char out[160];
        snprintf(out, sizeof out, "%s/run_%s", tmp, side ? "cuda" : "cpu");
        o.model_dir = model_dir, o.train_spec = data_path, o.out_dir = out;
        o.batch_size = 8, o.epochs = 2, o.lr = 1e-3f, o.max_length = 16, o.max_grad_norm = 1.0f;
        o.device = side ? "cuda" : "cpu";
        bertc_error err = {0};
        if (bertc_train(&o, side ? &rg_ : &rc_, &err)) fail_msg("%s", err.msg);
    }
    double worst;
    int na = paired_losses("run", lc, lg, 64, &worst);
    assert_true(na > 10);
    printf("  %d updates: max |loss gpu - loss cpu| %.3g; train accuracy cpu %.4f gpu %.4f\n", na, worst,
           rc_.train.accuracy, rg_.train.accuracy);
    assert_true(worst <= 1e-3);
    assert_true(fabs(rc_.train.loss - rg_.train.loss) <= 1e-3);
}

/* The regularisation options (frozen embeddings and layer 1, layer-wise lr decay, R-Drop) run
 * through the backend too: a few updates on the device give the CPU's losses. Small enough for
 * the emulated kernels. */
static void test_train_regularised(void **state) {
    (void)state;
    if (!have_gpu() || standing_in) return; /* bertc_train finds a device by name only */
    double lc[16], lg[16];
    bertc_train_result rc_, rg_;
    for (int side = 0; side < 2; side++) {
        bertc_train_options o;
        bertc_train_options_default(&o);
        char out[160];
        snprintf(out, sizeof out, "%s/reg_%s", tmp, side ? "cuda" : "cpu");
        o.model_dir = model_dir, o.train_spec = data_path, o.out_dir = out;
        o.train_size = 12, o.batch_size = 4, o.epochs = 1, o.lr = 1e-3f, o.max_length = 12, o.max_grad_norm = 1.0f;
        o.eval_train = 0, o.checkpoint_every = -1;
        o.freeze_embeddings = 1, o.freeze_layers = 1, o.layer_lr_decay = 0.8f, o.rdrop = 1.0f;
        o.device = side ? "cuda" : "cpu";
        bertc_error err = {0};
        if (bertc_train(&o, side ? &rg_ : &rc_, &err)) fail_msg("%s", err.msg);
    }
    double worst;
    int na = paired_losses("reg", lc, lg, 16, &worst);
    assert_true(na >= 3);
    printf("  %d updates with freezing, lr decay and R-Drop: max |loss gpu - loss cpu| %.3g\n", na, worst);
    assert_true(worst <= 1e-4);
}

/* bertc pretrain --device: masked-language-model updates on the device give the CPU's losses
 * (the encoder, the MLM head and both optimisers in the device's memory). */
static void test_pretrain_on_device(void **state) {
    (void)state;
    if (!have_gpu() || standing_in) return;
    double lc[8], lg[8];
    for (int side = 0; side < 2; side++) {
        bertc_pretrain_options o;
        bertc_pretrain_options_default(&o);
        char out[160];
        snprintf(out, sizeof out, "%s/mlm_%s", tmp, side ? "cuda" : "cpu");
        o.model_dir = model_dir, o.data_spec = data_path, o.out_dir = out;
        o.max_examples = 16, o.batch_size = 4, o.steps = 4, o.max_length = 16, o.lr = 1e-3f, o.threads = 1;
        o.device = side ? "cuda" : "cpu";
        bertc_pretrain_result r;
        bertc_error err = {0};
        if (bertc_pretrain(&o, &r, &err)) fail_msg("%s: %s", o.device, err.msg);
    }
    double worst;
    assert_int_equal(paired_losses("mlm", lc, lg, 8, &worst), 4);
    printf("  bertc pretrain --device: 4 MLM updates, max |loss gpu - loss cpu| %.3g\n", worst);
    assert_true(worst <= 1e-4);
}

/* Checkpoints from the device go through the background writer (train/checkpoint.h): a run
 * paused after epoch 1 (its checkpoint written while the loop went on) and resumed gives the
 * uninterrupted run's losses exactly, with a checkpoint after every update in both, and leaves
 * no checkpoint behind. */
static void test_train_checkpoint_resume(void **state) {
    (void)state;
    if (!have_gpu() || standing_in) return;
    double la[16], lb[16];
    bertc_error err = {0};
    for (int run = 0; run < 3; run++) { /* 0: uninterrupted, 1: paused after epoch 1, 2: its resume */
        bertc_train_options o;
        bertc_train_options_default(&o);
        char out[160];
        snprintf(out, sizeof out, "%s/ckrun_%s", tmp, run ? "paused" : "whole");
        o.model_dir = model_dir, o.train_spec = data_path, o.val_spec = data_path, o.out_dir = out;
        o.train_size = 8, o.val_size = 4, o.batch_size = 4, o.epochs = 2, o.lr = 1e-3f, o.max_length = 12;
        o.eval_train = 0, o.checkpoint_every = 1, o.device = "cuda";
        o.stop_after_epoch = run == 1 ? 1 : 0;
        o.resume = run == 2;
        bertc_train_result r;
        if (bertc_train(&o, &r, &err)) fail_msg("run %d: %s", run, err.msg);
        assert_int_equal(r.paused, run == 1);
        char ck[220];
        snprintf(ck, sizeof ck, "%s/checkpoint/" CHECKPOINT_FILE, out);
        assert_int_equal(access(ck, F_OK) == 0, run == 1); /* kept only by the pause */
        if (run != 1) assert_int_equal((int)read_losses(out, run ? lb : la, 16), 4);
        if (run == 1) { /* the paused run's model (its best weights, written by a thread from a host
                         * copy) is the checkpoint's "best", written by the other writer */
            bert_model *saved;
            if (bert_load(&saved, out, NULL, &err)) fail_msg("%s", err.msg);
            safetensors_file f;
            if (safetensors_open(&f, ck, &err)) fail_msg("%s", err.msg);
            const st_tensor *best = safetensors_find(&f, "best");
            assert_non_null(best);
            assert_int_equal(best->numel, bert_num_params(saved));
            assert_memory_equal(best->data, bert_params(saved), best->nbytes);
            safetensors_close(&f);
            bert_free(saved);
        }
    }
    for (int i = 0; i < 4; i++) assert_true(la[i] == lb[i]);
    /* the model folders, written by a thread from a host copy of the weights while the device went
     * on, are the same file and load back on the CPU */
    char whole[160], paused[160];
    snprintf(whole, sizeof whole, "%s/ckrun_whole", tmp);
    snprintf(paused, sizeof paused, "%s/ckrun_paused", tmp);
    size_t bytes = same_file(whole, paused, "model.safetensors");
    bertc_model *back_m;
    if (bertc_model_open(&back_m, whole, NULL, &err)) fail_msg("%s", err.msg);
    bertc_model_free(back_m);
    printf("  paused and resumed on the device (a checkpoint per update, written in the background): "
           "the uninterrupted run's 4 losses exactly, the same model file (%zu bytes)\n", bytes);
}

/* The fused ops' bf16 variants (residual_layernorm_forward_bf16 / _backward_bf16,
 * act_bias_backward_bf16): their fp32 outputs as the CPU's plain ops give them, and the bf16
 * copy each writes is its own fp32 output rounded, bit for bit; at C = 384 (the forward's
 * register kernel) and C = 300 (its one-element kernel, then to_bf16). */
static void test_fused_bf16(void **state) {
    (void)state;
    if (!have_gpu() || !gpu->residual_layernorm_forward_bf16) return;
    const int N = B * T + 5;
    for (int variant = 0; variant < 2; variant++) {
        const int CC = variant ? 300 : 384;
        size_t n = (size_t)N * CC;
        float p = 0.25f;
        float *x = rand_floats(n, 2), *xb = rand_floats((size_t)CC, 1), *ir = rand_floats(n, 2);
        float *w = rand_floats((size_t)CC, 1), *b = rand_floats((size_t)CC, 1), *dout = rand_floats(n, 1);
        float *out = malloc(n * 4), *res = malloc(n * 4), *mean = malloc((size_t)N * 4), *rstd = malloc((size_t)N * 4);
        float *dx = malloc(n * 4), *dxb = calloc((size_t)CC, 4), *dw = calloc((size_t)CC, 4), *db = calloc((size_t)CC, 4);
        float *d_x = dev(x, n * 4), *d_xb = dev(xb, (size_t)CC * 4), *d_ir = dev(ir, n * 4), *d_w = dev(w, (size_t)CC * 4);
        float *d_b = dev(b, (size_t)CC * 4), *d_out = dev(NULL, n * 4), *d_res = dev(NULL, n * 4);
        float *d_mean = dev(NULL, (size_t)N * 4), *d_rstd = dev(NULL, (size_t)N * 4), *d_dout = dev(dout, n * 4);
        float *d_dx = dev(NULL, n * 4), *d_dxb = dev(dxb, (size_t)CC * 4), *d_dw = dev(dw, (size_t)CC * 4);
        float *d_db = dev(db, (size_t)CC * 4);
        uint16_t *d_16 = gpu->alloc(n * 2), *h16 = malloc(n * 2), *want16 = malloc(n * 2);
        float *back32 = malloc(n * 4);
        cpu->residual_layernorm_forward(out, res, mean, rstd, x, xb, ir, w, b, N, CC, 1e-12f, p, 7, 3, NULL);
        gpu->residual_layernorm_forward_bf16(d_out, d_16, d_res, d_mean, d_rstd, d_x, d_xb, d_ir, d_w, d_b, N, CC,
                                             1e-12f, p, 7, 3, NULL);
        expect_close("rln_forward_bf16 out", d_out, out, n, TOL);
        expect_close("rln_forward_bf16 res", d_res, res, n, TOL);
        gpu->to_host(back32, d_out, n * 4), gpu->to_host(h16, d_16, n * 2);
        cpu->to_bf16(want16, back32, n);
        assert_memory_equal(h16, want16, n * 2);
        cpu->residual_layernorm_backward(dout, dx, dxb, dw, db, dout, res, w, mean, rstd, N, CC, p, 7, 3, NULL);
        gpu->residual_layernorm_backward_bf16(d_dout, d_dx, d_16, d_dxb, d_dw, d_db, d_dout, d_res, d_w, d_mean, d_rstd,
                                              N, CC, p, 7, 3, NULL);
        expect_close("rln_backward_bf16 dx", d_dx, dx, n, TOL);
        expect_close("rln_backward_bf16 dxbias", d_dxb, dxb, (size_t)CC, TOL);
        gpu->to_host(back32, d_dx, n * 4), gpu->to_host(h16, d_16, n * 2);
        cpu->to_bf16(want16, back32, n);
        assert_memory_equal(h16, want16, n * 2);
        /* act_bias_backward_bf16 over the same rows (F = CC), from each side's dres above */
        cpu->act_bias_backward(OPS_ACT_GELU, dout, dxb, dout, x, N, CC);
        gpu->act_bias_backward_bf16(OPS_ACT_GELU, d_dout, d_16, d_dxb, d_dout, d_x, N, CC);
        expect_close("act_bias_backward_bf16 dinp", d_dout, dout, n, TOL);
        gpu->to_host(back32, d_dout, n * 4), gpu->to_host(h16, d_16, n * 2);
        cpu->to_bf16(want16, back32, n);
        assert_memory_equal(h16, want16, n * 2);
        printf("  fused bf16 ops at C = %d: fp32 outputs as the CPU's, bf16 copies their rounding bit for bit\n", CC);
        void *all[] = {d_x, d_xb, d_ir, d_w, d_b, d_out, d_res, d_mean, d_rstd, d_dout, d_dx, d_dxb, d_dw, d_db, d_16};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++) gpu->free(all[i]);
        free(x), free(xb), free(ir), free(w), free(b), free(dout), free(out), free(res), free(mean), free(rstd);
        free(dx), free(dxb), free(dw), free(db), free(h16), free(want16), free(back32);
    }
}

/* bert_set_backend copies the gradient arena only when someone may have written to it: a fresh
 * model's (or a zeroed one's) arrives as zeros without the copy, a written one as written. */
static void test_move_gradients(void **state) {
    (void)state;
    if (!have_gpu()) return;
    bert_config cfg;
    small_config(&cfg, 50, 32, 1, 2, 64, 16, 0.0f, 0.02f, 2);
    bertc_error err;
    for (int written = 0; written < 3; written++) { /* fresh; written; written then zeroed */
        bert_model *m;
        assert_int_equal(bert_init_random(&m, &cfg, 5, &err), 0);
        size_t np = bert_num_params(m);
        float *want = calloc(np, sizeof *want);
        if (written) {
            float *g = bert_grads(m); /* the CPU's arena: host memory */
            for (size_t i = 0; i < np; i++) g[i] = want[i] = (float)(i % 97) - 48.0f;
            if (written == 2) {
                bert_zero_grad(m);
                memset(want, 0, np * sizeof *want);
            }
        }
        assert_int_equal(bert_set_backend(m, gpu, &err), 0);
        float *got = back(bert_grads(m), np);
        assert_memory_equal(got, want, np * sizeof *got);
        free(got), free(want);
        bert_free(m);
    }
    bert_config_free(&cfg);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    rng_seed(&R, 2024);
    if (!mkdtemp(tmp)) return 1;
    snprintf(model_dir, sizeof model_dir, "%s/model", tmp);
    snprintf(data_path, sizeof data_path, "%s/train.jsonl", tmp);
    bert_config scfg;
    bertc_error serr;
    if (synthetic_make_model(&task, model_dir, &scfg, 32, 2, 4, 64, 32, 0.1f, 7, &serr) ||
        synthetic_write_jsonl(&task, data_path, 160, 3)) {
        fprintf(stderr, "cannot make the synthetic model and data in %s\n", tmp);
        return 1;
    }
    bert_config_free(&scfg);
    cpu = bertc_backend_cpu();
    gpu = bertc_backend_by_name("cuda", why, sizeof why);
    if (emulated())
        printf("the CUDA backend's kernels EMULATED on the CPU (%s): their results, not a GPU's\n",
               getenv("BERTC_CUDA_LIB") ? getenv("BERTC_CUDA_LIB") : "");
    if (!gpu) {
        printf("no GPU (%s):\nthe CUDA kernels are not run; the comparisons below pit the CPU backend against a copy of\n"
               "itself, which checks this test and the device plumbing only\n", why);
        stand_in = *cpu;
        stand_in.name = "cpu-as-device";
        stand_in.last_error = no_error;
        gpu = &stand_in;
        standing_in = 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refusal_is_one_clear_line),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_fused),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_elementwise),
        cmocka_unit_test(test_crossentropy),
        cmocka_unit_test(test_optimiser_ops),
        cmocka_unit_test(test_cpu_table_optimiser_matches_host),
        cmocka_unit_test(test_tiny_model_step),
        cmocka_unit_test(test_checkpoint_from_device),
        cmocka_unit_test(test_large_copies),
        cmocka_unit_test(test_save_from_device),
        cmocka_unit_test(test_bench_on_device),
        cmocka_unit_test(test_bf16_ops),
        cmocka_unit_test(test_bf16_model_step),
        cmocka_unit_test(test_tensor_core_modes),
        cmocka_unit_test(test_minilm_logits),
        cmocka_unit_test(test_train_end_to_end),
        cmocka_unit_test(test_train_regularised),
        cmocka_unit_test(test_train_checkpoint_resume),
        cmocka_unit_test(test_pretrain_on_device),
        cmocka_unit_test(test_init_random),
        cmocka_unit_test(test_embeddings_type_runs),
        cmocka_unit_test(test_attention_bf16),
        cmocka_unit_test(test_colsum_fused),
        cmocka_unit_test(test_fused_bf16),
        cmocka_unit_test(test_move_gradients),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) fprintf(stderr, "could not remove %s\n", tmp);
    return failed;
}
