/* bf16 mixed-precision matrix products: oneDNN's matmul where the CPU has AVX512-BF16, and a
 * fallback (operands widened to fp32, OpenBLAS sgemm) everywhere else. See gemm.h.
 *
 * Threading: oneDNN runs on the same OpenMP threads as the rest of the backend (Debian's
 * libdnnl is built with the OpenMP runtime), so gemm_bf16 is called from outside any parallel
 * region and threads itself. The fallback splits the product into chunks over the OpenMP threads
 * with single-threaded sgemm inside, as the fp32 path in ops_cpu.c does. */
#include "backend/cpu/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef BERTC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

/* ------------------------------------------------------------------------------------------
 * conversions */

void bf16_convert(uint16_t *dst, const float *src, size_t n) {
    /* Integer rounding (bf16_from_f32), not vcvtneps2bf16: that instruction flushes subnormal
     * inputs to zero, torch's conversion does not. The loop vectorises all the same. The if
     * clause names `parallel` (here and on every `parallel for simd`): unmodified, it also
     * turns the simd part off, so small inputs, and any called inside a parallel region, ran
     * one element at a time. */
    #pragma omp parallel for simd schedule(static) if (parallel: n >= (1u << 16) && !omp_in_parallel())
    for (size_t i = 0; i < n; i++) dst[i] = bf16_from_f32(src[i]);
}

void bf16_widen(float *dst, const uint16_t *src, size_t n) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= (1u << 16) && !omp_in_parallel())
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void gemm_f32_1thread(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc) {
#ifdef BERTC_HAVE_DNNL
    dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

void gemm_f32_threaded(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    /* The same call as gemm_f32_1thread: outside a parallel region oneDNN opens its own over
     * the OpenMP threads (libdnnl is built with the OpenMP runtime). Without oneDNN, OpenBLAS
     * runs it on its one thread; gemm_linear_threaded never chooses this path there. */
    gemm_f32_1thread(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

static int linear_path = -1; /* -1: not decided yet (reads BERTC_LINEAR_GEMM once) */

void gemm_linear_set_path(gemm_linear_path p) { linear_path = (int)p; }

int gemm_linear_threaded(int rows) {
    if (linear_path < 0) {
        const char *e = getenv("BERTC_LINEAR_GEMM");
        linear_path = e && !strcmp(e, "chunked") ? GEMM_LINEAR_CHUNKED : GEMM_LINEAR_THREADED;
        if (e && *e && strcmp(e, "chunked") && strcmp(e, "threaded")) /* a typo should not pass for a choice */
            fprintf(stderr, "bertc: BERTC_LINEAR_GEMM=%s not understood (chunked or threaded): using threaded\n", e);
    }
#ifdef BERTC_HAVE_DNNL
    int threads = omp_get_max_threads();
    /* Few rows (one example's 128 tokens) are split by output features instead (ops_cpu.c):
     * those stay as they are. */
    return linear_path == GEMM_LINEAR_THREADED && threads > 1 && !omp_in_parallel() &&
           (size_t)rows >= 256 * (size_t)threads;
#else
    (void)rows;
    return 0;
#endif
}

/* ------------------------------------------------------------------------------------------
 * which path */

static int forced_fallback = -1; /* -1: not decided yet (reads BERTC_BF16_FALLBACK once) */

void gemm_bf16_set_path(gemm_bf16_path p) { forced_fallback = p == GEMM_BF16_FALLBACK; }

const char *gemm_bf16_fallback_reason(void) {
    if (forced_fallback < 0) {
        const char *e = getenv("BERTC_BF16_FALLBACK");
        forced_fallback = e && *e && strcmp(e, "0") != 0;
    }
    if (forced_fallback) return "the fallback is forced (BERTC_BF16_FALLBACK)";
#ifdef BERTC_HAVE_DNNL
    /* Without AVX512-BF16 oneDNN would emulate bf16 (or run its reference kernels): the
     * fallback's fp32 sgemm is the faster and simpler choice there. */
    return __builtin_cpu_supports("avx512bf16") ? NULL : "this CPU has no AVX512-BF16";
#else
    return "bertc was built without oneDNN (libdnnl-dev)";
#endif
}

static int use_fallback(void) { return gemm_bf16_fallback_reason() != NULL; }

const char *gemm_bf16_impl(void) { return use_fallback() ? "fallback" : "onednn"; }

/* ------------------------------------------------------------------------------------------
 * fallback: widen to fp32, then chunked single-threaded sgemm */

/* The [begin, end) slice of n items that part `i` of `parts` owns. */
static void slice(int n, int i, int parts, int *begin, int *end) {
    int chunk = (n + parts - 1) / parts;
    *begin = chunk * i < n ? chunk * i : n;
    *end = *begin + chunk < n ? *begin + chunk : n;
}

/* Widens a (rows, cols) bf16 matrix with row stride ld into a compact fp32 one. */
static void widen_matrix(float *dst, const uint16_t *src, int rows, int cols, int ld) {
    #pragma omp parallel for schedule(static) if ((size_t)rows * cols >= (1u << 16))
    for (int r = 0; r < rows; r++) {
        const uint16_t *s = src + (size_t)r * ld;
        float *d = dst + (size_t)r * cols;
        #pragma omp simd
        for (int c = 0; c < cols; c++) d[c] = bf16_to_f32(s[c]);
    }
}

static void gemm_bf16_fallback(int trans_a, int trans_b, int M, int N, int K, const uint16_t *A, int lda,
                               const uint16_t *B, int ldb, const float *bias, int accumulate, float *C, int ldc) {
    /* op(A) is stored as (M,K) or, transposed, (K,M); likewise op(B) as (K,N) or (N,K). */
    int ar = trans_a ? K : M, ac = trans_a ? M : K, br = trans_b ? N : K, bc = trans_b ? K : N;
    float *a = malloc(((size_t)ar * ac + (size_t)br * bc) * sizeof(float));
    if (!a) { /* no memory for the widened copies: one element at a time (slow, but right) */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                float s = 0.0f;
                for (int k = 0; k < K; k++)
                    s += bf16_to_f32(trans_a ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                         bf16_to_f32(trans_b ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
                float *c = &C[(size_t)i * ldc + j];
                *c = (accumulate ? *c : 0.0f) + (bias ? bias[j] : 0.0f) + s;
            }
        return;
    }
    float *b = a + (size_t)ar * ac;
    widen_matrix(a, A, ar, ac, lda);
    widen_matrix(b, B, br, bc, ldb);
    /* Chunks of C's rows (or columns, when there are few rows), two per thread, handed out
     * dynamically as in ops_cpu.c. */
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    int by_rows = M >= N || M >= 256;
    int extent = by_rows ? M : N;
    int chunks = threads <= 1 ? 1 : 2 * threads;
    if (chunks > extent / 64) chunks = extent / 64 > 0 ? extent / 64 : 1;
    #pragma omp parallel for schedule(dynamic, 1) if (chunks > 1)
    for (int ch = 0; ch < chunks; ch++) {
        int i0, i1;
        slice(extent, ch, chunks, &i0, &i1);
        if (i1 <= i0) continue;
        int m0 = by_rows ? i0 : 0, m1 = by_rows ? i1 : M, n0 = by_rows ? 0 : i0, n1 = by_rows ? N : i1;
        float beta = accumulate ? 1.0f : 0.0f;
        if (bias) { /* start from the bias (added to C when accumulating), then C += product */
            for (int i = m0; i < m1; i++) {
                float *c = C + (size_t)i * ldc;
                if (accumulate)
                    for (int j = n0; j < n1; j++) c[j] += bias[j];
                else
                    memcpy(c + n0, bias + n0, (size_t)(n1 - n0) * sizeof(float));
            }
            beta = 1.0f;
        }
        const float *ap = trans_a ? a + m0 : a + (size_t)m0 * ac;
        const float *bp = trans_b ? b + (size_t)n0 * bc : b + n0;
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m1 - m0,
                    n1 - n0, K, 1.0f, ap, ac, bp, bc, beta, C + (size_t)m0 * ldc + n0, ldc);
    }
    free(a);
}

/* ------------------------------------------------------------------------------------------
 * oneDNN: one matmul primitive per distinct shape, cached (creating one costs far more than a
 * small product); memory objects re-pointed at each call's buffers. */

#ifdef BERTC_HAVE_DNNL
typedef struct mm_key {
    int trans_a, trans_b, M, N, K, lda, ldb, ldc, has_bias, accumulate;
} mm_key;

typedef struct mm_entry {
    mm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, bias, c;
} mm_entry;

#define MM_CACHE 64
static mm_entry mm_cache[MM_CACHE];
static int mm_used, mm_next;
static dnnl_engine_t mm_engine;
static dnnl_stream_t mm_stream;
static int mm_broken; /* oneDNN could not start: every call takes the fallback */
static pthread_mutex_t mm_lock = PTHREAD_MUTEX_INITIALIZER;

static void mm_entry_free(mm_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->a) dnnl_memory_destroy(e->a);
    if (e->b) dnnl_memory_destroy(e->b);
    if (e->bias) dnnl_memory_destroy(e->bias);
    if (e->c) dnnl_memory_destroy(e->c);
    memset(e, 0, sizeof *e);
}

/* Builds the primitive for k into e; non-zero when oneDNN refuses the shape. */
static int mm_entry_make(mm_entry *e, const mm_key *k) {
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    dnnl_dims_t a_dims = {k->M, k->K}, b_dims = {k->K, k->N}, c_dims = {k->M, k->N}, bias_dims = {1, k->N};
    /* Transposes are strides: op(A)[i][k] sits at A[k*lda + i] when trans_a. */
    dnnl_dims_t a_str = {k->trans_a ? 1 : k->lda, k->trans_a ? k->lda : 1};
    dnnl_dims_t b_str = {k->trans_b ? 1 : k->ldb, k->trans_b ? k->ldb : 1};
    dnnl_dims_t c_str = {k->ldc, 1}, bias_str = {k->N, 1};
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    memset(e, 0, sizeof *e);
    e->key = *k;
    int bad = dnnl_memory_desc_init_by_strides(&a_md, 2, a_dims, dnnl_bf16, a_str) != dnnl_success ||
              dnnl_memory_desc_init_by_strides(&b_md, 2, b_dims, dnnl_bf16, b_str) != dnnl_success ||
              dnnl_memory_desc_init_by_strides(&c_md, 2, c_dims, dnnl_f32, c_str) != dnnl_success ||
              dnnl_memory_desc_init_by_strides(&bias_md, 2, bias_dims, dnnl_f32, bias_str) != dnnl_success ||
              dnnl_matmul_desc_init(&desc, &a_md, &b_md, k->has_bias ? &bias_md : NULL, &c_md) != dnnl_success ||
              dnnl_primitive_attr_create(&attr) != dnnl_success;
    if (!bad && k->accumulate) /* C += product: the "sum" post-op */
        bad = dnnl_post_ops_create(&po) != dnnl_success || dnnl_post_ops_append_sum(po, 1.0f) != dnnl_success ||
              dnnl_primitive_attr_set_post_ops(attr, po) != dnnl_success;
    if (!bad) bad = dnnl_primitive_desc_create(&pd, &desc, attr, mm_engine, NULL) != dnnl_success;
    if (!bad) bad = dnnl_primitive_create(&e->prim, pd) != dnnl_success;
    if (!bad)
        bad = dnnl_memory_create(&e->a, &a_md, mm_engine, DNNL_MEMORY_NONE) != dnnl_success ||
              dnnl_memory_create(&e->b, &b_md, mm_engine, DNNL_MEMORY_NONE) != dnnl_success ||
              dnnl_memory_create(&e->c, &c_md, mm_engine, DNNL_MEMORY_NONE) != dnnl_success ||
              (k->has_bias && dnnl_memory_create(&e->bias, &bias_md, mm_engine, DNNL_MEMORY_NONE) != dnnl_success);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (bad) mm_entry_free(e);
    return bad;
}

/* Runs the product on oneDNN; non-zero (and nothing written) when oneDNN cannot. */
static int gemm_bf16_dnnl(const mm_key *k, const uint16_t *A, const uint16_t *B, const float *bias, float *C) {
    pthread_mutex_lock(&mm_lock);
    if (!mm_engine && !mm_broken)
        mm_broken = dnnl_engine_create(&mm_engine, dnnl_cpu, 0) != dnnl_success ||
                    dnnl_stream_create(&mm_stream, mm_engine, dnnl_stream_default_flags) != dnnl_success;
    mm_entry *e = NULL;
    for (int i = 0; !mm_broken && i < mm_used && !e; i++)
        if (!memcmp(&mm_cache[i].key, k, sizeof *k)) e = &mm_cache[i];
    if (!e && !mm_broken) { /* a new shape: take a free slot, or the oldest one round-robin */
        int slot = mm_used < MM_CACHE ? mm_used++ : (mm_next++ % MM_CACHE);
        mm_entry_free(&mm_cache[slot]);
        if (mm_entry_make(&mm_cache[slot], k) == 0) e = &mm_cache[slot];
        else if (slot == mm_used - 1) mm_used--;
    }
    int rc = 1;
    if (e) {
        dnnl_memory_set_data_handle(e->a, (void *)A);
        dnnl_memory_set_data_handle(e->b, (void *)B);
        dnnl_memory_set_data_handle(e->c, C);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->a}, {DNNL_ARG_WEIGHTS, e->b}, {DNNL_ARG_DST, e->c}};
        int nargs = 3;
        if (k->has_bias) {
            dnnl_memory_set_data_handle(e->bias, (void *)bias);
            args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
        }
        rc = dnnl_primitive_execute(e->prim, mm_stream, nargs, args) != dnnl_success ||
             dnnl_stream_wait(mm_stream) != dnnl_success;
    }
    pthread_mutex_unlock(&mm_lock);
    return rc;
}
#endif

void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, const uint16_t *A, int lda, const uint16_t *B,
               int ldb, const float *bias, int accumulate, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* an empty sum: C = bias (+ C) */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++)
                C[(size_t)i * ldc + j] = (accumulate ? C[(size_t)i * ldc + j] : 0.0f) + (bias ? bias[j] : 0.0f);
        return;
    }
#ifdef BERTC_HAVE_DNNL
    if (!use_fallback()) {
        mm_key k = {trans_a != 0, trans_b != 0, M, N, K, lda, ldb, ldc, bias != NULL, accumulate != 0};
        if (gemm_bf16_dnnl(&k, A, B, bias, C) == 0) return;
    }
#endif
    gemm_bf16_fallback(trans_a, trans_b, M, N, K, A, lda, B, ldb, bias, accumulate, C, ldc);
}

/* ------------------------------------------------------------------------------------------
 * the Linear layer */

void gemm_linear_forward_bf16(float *out, const float *inp, uint16_t *inp16, int inp16_ready,
                              const uint16_t *weight16, const float *bias, int N, int IC, int OC) {
    if (!inp16_ready) bf16_convert(inp16, inp, (size_t)N * IC);
    /* out (N,OC) = inp (N,IC) @ weight^T (IC,OC) + bias */
    gemm_bf16(0, 1, N, OC, IC, inp16, IC, weight16, IC, bias, 0, out, OC);
}

void gemm_linear_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const uint16_t *inp16,
                               const uint16_t *weight16, int N, int IC, int OC, int accumulate, uint16_t *scratch,
                               int scratch_ready) {
    uint16_t *d16 = scratch, *x16 = (uint16_t *)inp16; /* (N,OC), (N,IC) */
    if (!scratch_ready) bf16_convert(d16, dout, (size_t)N * OC);
    /* dinp (N,IC) (+)= dout (N,OC) @ weight (OC,IC) */
    if (dinp) gemm_bf16(0, 0, N, IC, OC, d16, OC, weight16, IC, NULL, accumulate, dinp, IC);
    /* dweight (OC,IC) += dout^T (OC,N) @ inp (N,IC) */
    gemm_bf16(1, 0, OC, IC, N, d16, OC, x16, IC, NULL, 1, dweight, IC);
    if (dbias) { /* column sums of dout in fp32, a slice of columns per thread (thread-count independent) */
        #pragma omp parallel
        {
            int nth = omp_get_num_threads(), tid = omp_get_thread_num(), o0, o1;
            slice(OC, tid, nth, &o0, &o1);
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                #pragma omp simd
                for (int o = o0; o < o1; o++) dbias[o] += d[o];
            }
        }
    }
}
