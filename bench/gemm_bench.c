/* The matrix products of one BERT training step, timed with each candidate library, to choose
 * by measurement (docs/PERFORMANCE.md, "bf16"). Built by `make gemm-bench`; run:
 *
 *   OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive build/bench/gemm_bench [REPS [all|some [TOKENS]]]
 *
 * Shapes: batch 16 x 128 = 2048 tokens (TOKENS: another multiple of 128, e.g. 128 for the
 * single-example latency, 4096 for an evaluation batch of 32); bert-base (C 768, F 3072, 12 heads of 64) and MiniLM
 * (C 384, F 1536, 12 heads of 32). Per layer: forward out = inp @ W^T, backward dinp = dout @ W
 * and dW += dout^T @ inp for Q, K, V, O (C->C), FFN1 (C->F), FFN2 (F->C); attention per
 * (sequence, head): S = q k^T, ctx = P v, and backward dv = P^T dctx, dP = dctx v^T, dq = dS k,
 * dk = dS^T q, read in place with row stride C.
 *
 * Variants (fp32 unless noted), all on the OpenMP threads:
 *   openblas  chunks of the product over the threads, single-threaded cblas_sgemm in each
 *             (what ops_cpu.c does without oneDNN, or with BERTC_LINEAR_GEMM=chunked)
 *   blis      the same chunks, single-threaded bli_sgemm
 *   blis-mt   one bli_sgemm threaded by BLIS itself
 *   dnnl      the same chunks, dnnl_sgemm (single-threaded inside a parallel region)
 *   dnnl-mt   one dnnl_sgemm threaded by oneDNN itself (what ops_cpu.c does for a batch's
 *             Linear products where built with oneDNN, since the thirteenth session)
 *   bf16      gemm_bf16 (oneDNN matmul, bf16 inputs, fp32 accumulation), inputs already bf16
 *   bf16-fb   gemm_bf16's fallback (bf16 widened to fp32, then chunked OpenBLAS)
 * Attention runs one task per (sequence, head) with single-threaded products inside, for the
 * chunked variants; the -mt and bf16 variants are not timed on it. */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <blis.h>
#include <oneapi/dnnl/dnnl.h>

#include "backend/cpu/gemm.h"

void openblas_set_num_threads(int n); /* <cblas.h> here may be BLIS's, which lacks it */

/* blis-mt and bf16-fb are the slowest and run only when asked for (the last argument "all"). */
enum { V_OPENBLAS, V_BLIS, V_DNNL, V_DNNL_MT, V_BF16, V_BLIS_MT, V_BF16_FB, NV };
static const char *vname[NV] = {"openblas", "blis", "dnnl", "dnnl-mt", "bf16", "blis-mt", "bf16-fb"};
static int nv = V_BF16 + 1;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One single-threaded fp32 product, row-major, C = op(A) op(B) + beta C, with library v. */
static void sgemm1(int v, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                   float beta, float *C, int ldc, int threads) {
    float one = 1.0f;
    if (v == V_OPENBLAS) {
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                    lda, B, ldb, beta, C, ldc);
    } else if (v == V_BLIS || v == V_BLIS_MT) {
        rntm_t r = BLIS_RNTM_INITIALIZER;
        bli_rntm_set_num_threads(threads, &r);
        /* transposes as strides: op(A)[i][k] at A[i*rs + k*cs] */
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, M, N, K, &one, (float *)A, ta ? 1 : lda, ta ? lda : 1,
                     (float *)B, tb ? 1 : ldb, tb ? ldb : 1, &beta, C, ldc, 1, NULL, &r);
    } else {
        dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    }
}

/* The product over the threads: chunks of C's rows (or columns when M < N), two per thread,
 * handed out dynamically, as ops_cpu.c; or one call threaded by the library (-mt). */
static void sgemm_threads(int v, int ta, int tb, int M, int N, int K, const float *A, int lda, const float *B,
                          int ldb, float beta, float *C, int ldc) {
    int threads = omp_get_max_threads();
    if (v == V_BLIS_MT || v == V_DNNL_MT) {
        sgemm1(v, ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc, threads);
        return;
    }
    int by_rows = M >= N, extent = by_rows ? M : N, chunks = 2 * threads;
    if (chunks > extent / 128) chunks = extent / 128 > 0 ? extent / 128 : 1;
    #pragma omp parallel for schedule(dynamic, 1)
    for (int ch = 0; ch < chunks; ch++) {
        int step = (extent + chunks - 1) / chunks, i0 = ch * step, i1 = i0 + step < extent ? i0 + step : extent;
        if (i1 <= i0) continue;
        if (by_rows)
            sgemm1(v, ta, tb, i1 - i0, N, K, ta ? A + i0 : A + (size_t)i0 * lda, lda, B, ldb, beta,
                   C + (size_t)i0 * ldc, ldc, 1);
        else
            sgemm1(v, ta, tb, M, i1 - i0, K, A, lda, tb ? B + (size_t)i0 * ldb : B + i0, ldb, beta, C + i0, ldc, 1);
    }
}

typedef struct shape {
    const char *what;
    int ta, tb, M, N, K, count; /* count: how many per layer */
    int heads;                  /* > 0: attention, this many (sequence, head) products of row stride C */
} shape;

static float *fa, *fb, *fc;
static uint16_t *ha, *hb;

/* Seconds for one product of shape s with variant v (best of reps, after one warm-up). */
static double time_shape(int v, const shape *s, int C, int HS, int reps) {
    double best = 1e30;
    int lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N, ldc = s->N;
    if (s->heads) lda = ldb = ldc = C; /* each head reads its slice of (B,T,C) in place */
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        if (s->heads) {
            #pragma omp parallel for schedule(dynamic, 4)
            for (int h = 0; h < s->heads; h++) {
                int NH = C / HS; /* task h is head h % NH of sequence h / NH: row 0 of it in (B,T,C) */
                size_t off = (size_t)(h / NH) * 128 * C + (size_t)(h % NH) * HS;
                sgemm1(v, s->ta, s->tb, s->M, s->N, s->K, fa + off, lda, fb + off, ldb, 0.0f, fc + off, ldc, 1);
            }
        } else if (v == V_BF16 || v == V_BF16_FB) {
            gemm_bf16_set_path(v == V_BF16 ? GEMM_BF16_AUTO : GEMM_BF16_FALLBACK);
            gemm_bf16(s->ta, s->tb, s->M, s->N, s->K, ha, lda, hb, ldb, NULL, 0, fc, ldc);
        } else {
            sgemm_threads(v, s->ta, s->tb, s->M, s->N, s->K, fa, lda, fb, ldb, 0.0f, fc, ldc);
        }
        double t = now_s() - t0;
        if (r > 0 && t < best) best = t;
    }
    return best;
}

static void run_model(const char *name, int C, int F, int HS, int reps, int N) {
    const int T = 128, BNH = N / T * (C / HS);
    shape s[] = {
        {"fwd   C->C (x4)", 0, 1, N, C, C, 4, 0},
        {"fwd   C->F", 0, 1, N, F, C, 1, 0},
        {"fwd   F->C", 0, 1, N, C, F, 1, 0},
        {"dinp  C->C (x4)", 0, 0, N, C, C, 4, 0},
        {"dinp  C->F", 0, 0, N, C, F, 1, 0},
        {"dinp  F->C", 0, 0, N, F, C, 1, 0},
        {"dW    C->C (x4)", 1, 0, C, C, N, 4, 0},
        {"dW    C->F", 1, 0, F, C, N, 1, 0},
        {"dW    F->C", 1, 0, C, F, N, 1, 0},
        {"att   q k^T", 0, 1, T, T, HS, 1, BNH},
        {"att   P v", 0, 0, T, HS, T, 1, BNH},
        {"att   P^T dctx", 1, 0, T, HS, T, 1, BNH},
        {"att   dctx v^T", 0, 1, T, T, HS, 1, BNH},
        {"att   dS k", 0, 0, T, HS, T, 1, BNH},
        {"att   dS^T q", 1, 0, T, HS, T, 1, BNH},
    };
    int ns = (int)(sizeof s / sizeof *s);
    double total[NV] = {0}, linear[NV] = {0}, flops_total = 0, flops_linear = 0;
    printf("\n%s (C %d, F %d, head size %d), %d tokens, %d threads: GFLOP/s per product\n", name, C, F, HS, N,
           omp_get_max_threads());
    printf("%-18s %8s", "product", "GFLOP");
    for (int v = 0; v < nv; v++) printf(" %9s", vname[v]);
    printf("\n");
    for (int i = 0; i < ns; i++) {
        double flops = 2.0 * s[i].M * s[i].N * s[i].K * (s[i].heads ? s[i].heads : 1);
        printf("%-18s %8.2f", s[i].what, flops * 1e-9);
        for (int v = 0; v < nv; v++) {
            int mt_or_bf16 = v == V_BLIS_MT || v == V_DNNL_MT || v == V_BF16 || v == V_BF16_FB;
            if (s[i].heads && mt_or_bf16) {
                printf(" %9s", "-");
                continue;
            }
            double t = time_shape(v, &s[i], C, HS, reps);
            printf(" %9.1f", flops / t * 1e-9);
            fflush(stdout);
            total[v] += t * s[i].count;
            if (!s[i].heads) linear[v] += t * s[i].count;
        }
        printf("\n");
        flops_total += flops * s[i].count;
        if (!s[i].heads) flops_linear += flops * s[i].count;
    }
    printf("%-18s %8.2f", "Linear, one layer", flops_linear * 1e-9);
    for (int v = 0; v < nv; v++) printf(" %7.0fms", linear[v] * 1e3);
    printf("\n%-18s %8s", "  GFLOP/s", "");
    for (int v = 0; v < nv; v++) printf(" %9.1f", flops_linear / linear[v] * 1e-9);
    printf("\n");
    (void)total;
    (void)flops_total;
    /* the cost of rounding the activations to bf16 on the way in, as bert.c does: each distinct
     * Linear input once in forward (x for Q, K, V; ctx; a1; the GELU output), kept for backward;
     * each output gradient once in backward (Q, K, V, O and FFN2: C wide; FFN1: F wide) */
    size_t conv = (size_t)N * (3 * C + F) + (size_t)N * (5 * C + F);
    double best = 1e30;
    for (int r = 0; r <= reps; r++) {
        double t0 = now_s();
        for (size_t done = 0; done < conv; done += (size_t)N * F) {
            size_t n = conv - done < (size_t)N * F ? conv - done : (size_t)N * F;
            bf16_convert(ha, fa, n);
        }
        double t = now_s() - t0;
        if (r > 0 && t < best) best = t;
    }
    printf("bf16 conversion of one layer's Linear inputs (%zu M values): %.1f ms\n", conv >> 20, best * 1e3);
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 1;
    if (reps < 1) reps = 1;
    if (argc > 2 && !strcmp(argv[2], "all")) nv = NV;
    int tokens = argc > 3 ? atoi(argv[3]) : 2048;
    if (tokens < 128 || tokens % 128) {
        fprintf(stderr, "gemm_bench: TOKENS must be a positive multiple of 128\n");
        return 2;
    }
    openblas_set_num_threads(1);
    size_t n = (size_t)(tokens > 2048 ? tokens : 2048) * 3072; /* activations, and the largest weight */
    fa = malloc(n * sizeof *fa);
    fb = malloc(n * sizeof *fb);
    fc = malloc(n * sizeof *fc);
    ha = malloc(n * sizeof *ha);
    hb = malloc(n * sizeof *hb);
    if (!fa || !fb || !fc || !ha || !hb) return 1;
    srand(1);
    for (size_t i = 0; i < n; i++) {
        fa[i] = (float)rand() / RAND_MAX - 0.5f;
        fb[i] = (float)rand() / RAND_MAX - 0.5f;
        fc[i] = 0.0f;
    }
    bf16_convert(ha, fa, n);
    bf16_convert(hb, fb, n);
    printf("bf16 path: %s (AVX512-BF16: %s)\n", gemm_bf16_impl(), __builtin_cpu_supports("avx512bf16") ? "yes" : "no");
    run_model("MiniLM", 384, 1536, 32, reps, tokens);
    run_model("bert-base", 768, 3072, 64, reps, tokens);
    free(fa);
    free(fb);
    free(fc);
    free(ha);
    free(hb);
    return 0;
}
