/* Recording, replaying and peak-timing sgemm calls; see gemm_trace.h. */
#include "bench/gemm_trace.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BERTC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#include "util/clock.h"
#include "util/error.h"

/* The real OpenBLAS function (the linker's --wrap names it so) and our stand-in. */
void __real_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                        const blasint M, const blasint N, const blasint K, const float alpha, const float *A,
                        const blasint lda, const float *B, const blasint ldb, const float beta, float *C,
                        const blasint ldc);
void __wrap_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                        const blasint M, const blasint N, const blasint K, const float alpha, const float *A,
                        const blasint lda, const float *B, const blasint ldb, const float beta, float *C,
                        const blasint ldc);

static int g_on;            /* recording? read by every call, written only outside parallel regions */
static gemm_call *g_calls;
static size_t g_cap, g_n;   /* g_n: calls seen (may pass g_cap: those are dropped) */
static long g_region;

/* One recorded call, row-major. */
static void record(char lib, char a, char b, int M, int N, int K, int lda, int ldb, int ldc, float alpha, float beta,
                   double dt) {
    size_t i = __atomic_fetch_add(&g_n, 1, __ATOMIC_RELAXED);
    if (i >= g_cap) return;
    g_calls[i] = (gemm_call){a, b, lib, M, N, K, lda, ldb, ldc, alpha, beta, omp_get_thread_num(),
                             __atomic_load_n(&g_region, __ATOMIC_RELAXED), dt};
}

void __wrap_cblas_sgemm(const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                        const blasint M, const blasint N, const blasint K, const float alpha, const float *A,
                        const blasint lda, const float *B, const blasint ldb, const float beta, float *C,
                        const blasint ldc) {
    if (__builtin_expect(!__atomic_load_n(&g_on, __ATOMIC_RELAXED), 1)) {
        __real_cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    double t0 = now_s();
    __real_cblas_sgemm(order, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double dt = now_s() - t0;
    char a = ta == CblasNoTrans ? 'N' : 'T', b = tb == CblasNoTrans ? 'N' : 'T';
    if (order == CblasRowMajor) record('b', a, b, M, N, K, lda, ldb, ldc, alpha, beta, dt);
    else /* column-major C = op(A) op(B) is row-major C^T = op(B)^T op(A)^T: the same work */
        record('b', b, a, N, M, K, ldb, lda, ldc, alpha, beta, dt);
}

#ifdef BERTC_HAVE_DNNL
/* Some fp32 products run in oneDNN's sgemm (backend/cpu/gemm.h); row-major. One called from
 * outside a parallel region is threaded by oneDNN over all the threads ('D'): its wall time
 * counts once per thread, as the threads' time inside products. */
dnnl_status_t __real_dnnl_sgemm(char ta, char tb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                                const float *A, dnnl_dim_t lda, const float *B, dnnl_dim_t ldb, float beta, float *C,
                                dnnl_dim_t ldc);
dnnl_status_t __wrap_dnnl_sgemm(char ta, char tb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                                const float *A, dnnl_dim_t lda, const float *B, dnnl_dim_t ldb, float beta, float *C,
                                dnnl_dim_t ldc);
dnnl_status_t __wrap_dnnl_sgemm(char ta, char tb, dnnl_dim_t M, dnnl_dim_t N, dnnl_dim_t K, float alpha,
                                const float *A, dnnl_dim_t lda, const float *B, dnnl_dim_t ldb, float beta, float *C,
                                dnnl_dim_t ldc) {
    if (__builtin_expect(!__atomic_load_n(&g_on, __ATOMIC_RELAXED), 1))
        return __real_dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    double t0 = now_s();
    dnnl_status_t st = __real_dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    int threaded = !omp_in_parallel();
    double dt = (now_s() - t0) * (threaded ? omp_get_max_threads() : 1);
    record(threaded ? 'D' : 'd', ta == 'N' || ta == 'n' ? 'N' : 'T', tb == 'N' || tb == 'n' ? 'N' : 'T', (int)M,
           (int)N, (int)K, (int)lda, (int)ldb, (int)ldc, alpha, beta, dt);
    return st;
}
#endif

int gemm_trace_start(size_t capacity, bertc_error *err) {
    free(g_calls);
    g_calls = malloc(capacity * sizeof *g_calls);
    if (!g_calls) return bertc_errorf(err, BERTC_ENOMEM, "out of memory (gemm trace of %zu calls)", capacity);
    g_cap = capacity;
    g_n = 0;
    g_region = 0;
    __atomic_store_n(&g_on, 1, __ATOMIC_SEQ_CST);
    return 0;
}

void gemm_trace_next_region(void) {
    if (g_on) __atomic_fetch_add(&g_region, 1, __ATOMIC_SEQ_CST);
}

void gemm_trace_stop(gemm_trace *t) {
    __atomic_store_n(&g_on, 0, __ATOMIC_SEQ_CST);
    memset(t, 0, sizeof *t);
    t->calls = g_calls;
    t->n = g_n < g_cap ? g_n : g_cap;
    t->dropped = g_n - t->n;
    /* Regions only move forward between ops, so the calls are already in region order. */
    for (size_t i = 0; i < t->n; i++) {
        const gemm_call *c = &t->calls[i];
        t->flop += 2.0 * c->M * c->N * c->K;
        t->thread_seconds += c->seconds;
    }
    g_calls = NULL;
    g_cap = g_n = 0;
}

void gemm_trace_free(gemm_trace *t) {
    free(t->calls);
    memset(t, 0, sizeof *t);
}

/* ------------------------------------------------------------------------------------------
 * replay */

/* Elements a row-major operand of rows x cols with leading dimension ld spans. */
static size_t extent(int rows, int cols, int ld) { return rows > 0 && cols > 0 ? (size_t)(rows - 1) * ld + cols : 0; }

static void fill(float *x, size_t n, unsigned salt) {
    /* Small values of both signs, no denormals: the products' speed does not depend on them. */
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u + salt) % 2001) * 1e-4f - 0.1f;
}

int gemm_replay_prepare(gemm_replay_scratch *s, const gemm_trace *t, bertc_error *err) {
    memset(s, 0, sizeof *s);
    size_t na = 1, nb = 1, nc = 1;
    for (size_t i = 0; i < t->n; i++) {
        const gemm_call *c = &t->calls[i];
        size_t a = c->ta == 'N' ? extent(c->M, c->K, c->lda) : extent(c->K, c->M, c->lda);
        size_t b = c->tb == 'N' ? extent(c->K, c->N, c->ldb) : extent(c->N, c->K, c->ldb);
        size_t cc = extent(c->M, c->N, c->ldc);
        if (a > na) na = a;
        if (b > nb) nb = b;
        if (cc > nc) nc = cc;
    }
    s->threads = omp_get_max_threads();
    s->c_stride = (nc + 15) & ~(size_t)15; /* 64-byte apart */
    s->a = aligned_alloc(64, ((na + 15) & ~(size_t)15) * sizeof(float));
    s->b = aligned_alloc(64, ((nb + 15) & ~(size_t)15) * sizeof(float));
    s->c = aligned_alloc(64, s->c_stride * (size_t)s->threads * sizeof(float));
    if (!s->a || !s->b || !s->c) {
        gemm_replay_free(s);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory (replay buffers)");
    }
    fill(s->a, na, 1);
    fill(s->b, nb, 2);
    memset(s->c, 0, s->c_stride * (size_t)s->threads * sizeof(float));
    return 0;
}

double gemm_replay(const gemm_trace *t, gemm_replay_scratch *s) {
    double t0 = now_s();
    for (size_t r0 = 0; r0 < t->n;) {
        size_t r1 = r0 + 1;
        while (r1 < t->n && t->calls[r1].region == t->calls[r0].region) r1++;
#ifdef BERTC_HAVE_DNNL
        /* Calls oneDNN threaded itself run one after another, outside any parallel region. */
        for (size_t i = r0; i < r1; i++) {
            const gemm_call *c = &t->calls[i];
            if (c->lib == 'D')
                __real_dnnl_sgemm(c->ta, c->tb, c->M, c->N, c->K, c->alpha, s->a, c->lda, s->b, c->ldb, c->beta, s->c,
                                  c->ldc);
        }
#endif
        /* The rest: one parallel region per recorded region, as the engine's op had. */
        #pragma omp parallel for schedule(dynamic, 1)
        for (size_t i = r0; i < r1; i++) {
            const gemm_call *c = &t->calls[i];
            if (c->lib == 'D') continue;
            float *C = s->c + (size_t)omp_get_thread_num() % (size_t)s->threads * s->c_stride;
#ifdef BERTC_HAVE_DNNL
            if (c->lib == 'd') {
                __real_dnnl_sgemm(c->ta, c->tb, c->M, c->N, c->K, c->alpha, s->a, c->lda, s->b, c->ldb, c->beta, C,
                                  c->ldc);
                continue;
            }
#endif
            __real_cblas_sgemm(CblasRowMajor, c->ta == 'N' ? CblasNoTrans : CblasTrans,
                               c->tb == 'N' ? CblasNoTrans : CblasTrans, c->M, c->N, c->K, c->alpha, s->a, c->lda,
                               s->b, c->ldb, c->beta, C, c->ldc);
        }
        r0 = r1;
    }
    return now_s() - t0;
}

void gemm_replay_free(gemm_replay_scratch *s) {
    free(s->a);
    free(s->b);
    free(s->c);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------------------------
 * peak */

double gemm_peak_one(int M, int N, int K, char ta, char tb, const char *mode, int reps) {
    int lda = ta == 'N' ? K : M, ldb = tb == 'N' ? N : K, ldc = N;
    float *A = aligned_alloc(64, ((size_t)M * K + 15) / 16 * 16 * sizeof(float));
    float *B = aligned_alloc(64, ((size_t)K * N + 15) / 16 * 16 * sizeof(float));
    float *C = aligned_alloc(64, ((size_t)M * N + 15) / 16 * 16 * sizeof(float));
    if (!A || !B || !C) {
        free(A), free(B), free(C);
        return -1.0;
    }
    fill(A, (size_t)M * K, 3);
    fill(B, (size_t)K * N, 4);
    memset(C, 0, (size_t)M * N * sizeof(float));
    enum CBLAS_TRANSPOSE TA = ta == 'N' ? CblasNoTrans : CblasTrans, TB = tb == 'N' ? CblasNoTrans : CblasTrans;
    int threads = omp_get_max_threads(), blas = strcmp(mode, "blas") == 0, onednn = strcmp(mode, "onednn") == 0;
    int chunks = threads > 1 ? 2 * threads : 1;
    double best = -1.0;
    /* The engine's way wants OpenBLAS single-threaded inside each OpenMP thread. */
    openblas_set_num_threads(blas ? threads : 1);
    for (int rep = 0; rep <= reps; rep++) {
        double t0 = now_s();
        if (blas) {
            __real_cblas_sgemm(CblasRowMajor, TA, TB, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
        } else if (onednn) {
#ifdef BERTC_HAVE_DNNL
            __real_dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
#endif
        } else {
            #pragma omp parallel for schedule(dynamic, 1)
            for (int ch = 0; ch < chunks; ch++) {
                int m0 = (int)((long)M * ch / chunks), m1 = (int)((long)M * (ch + 1) / chunks);
                if (m1 <= m0) continue;
                /* Rows m0..m1 of C: rows of A (not transposed) or columns of A (transposed). */
                const float *a = ta == 'N' ? A + (size_t)m0 * lda : A + m0;
                __real_cblas_sgemm(CblasRowMajor, TA, TB, m1 - m0, N, K, 1.0f, a, lda, B, ldb, 0.0f,
                                   C + (size_t)m0 * ldc, ldc);
            }
        }
        double dt = now_s() - t0;
        if (rep > 0 && (best < 0 || dt < best)) best = dt; /* rep 0 is the warm-up */
    }
    openblas_set_num_threads(1);
    free(A), free(B), free(C);
    return best;
}

const char *gemm_library(void) {
#ifdef BERTC_HAVE_DNNL
    static char desc[256];
    const dnnl_version_t *v = dnnl_version();
    snprintf(desc, sizeof desc, "%s; oneDNN %d.%d.%d", openblas_get_config(), v->major, v->minor, v->patch);
    return desc;
#else
    return openblas_get_config();
#endif
}

const char *const *gemm_peak_modes(int *n) {
    static const char *const modes[] = {"omp", "blas", "onednn"};
#ifdef BERTC_HAVE_DNNL
    *n = 3;
#else
    *n = 2;
#endif
    return modes;
}
