/* The CPU backend: OpenBLAS cblas_sgemm for the Linear products, or oneDNN's sgemm where built in
 * and measured faster (gemm.h: a Linear product of a whole batch, one example's Linear forward,
 * attention's per-head products), OpenMP for all threading.
 *
 * Threading: OpenBLAS is set to one thread and its products are split over the OpenMP threads
 * (rows of the output, or (batch, head) pairs in attention); a batch's Linear products on
 * oneDNN are one call each, which oneDNN threads over the same OpenMP threads. One thread pool
 * for everything: a pthreads OpenBLAS pool next to OpenMP's makes the two spin against each
 * other and, on a 2-core machine, cost more than half the step time.
 *
 * Shapes and conventions are in backend/ops.h. Loops that reduce over rows (bias and
 * LayerNorm weight gradients, embedding scatter-add) give each thread a slice of channels and
 * walk the rows in order, so their results do not depend on the number of threads. */
/* GCC's -march=native on AVX-512 machines still prefers 256-bit vectors; the elementwise loops
 * here (exp, erf, the dropout hash's 64-bit multiplies) ran 30-40% faster with 512-bit ones
 * (bench/fused_ops.c and a GELU micro-benchmark, one thread). Only the loop width changes: the
 * instruction set stays what the build chose. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__AVX512F__)
#pragma GCC target("prefer-vector-width=512")
#endif
#include <cblas.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <omp.h>

#include "backend/ops.h"
#include "backend/cpu/gemm.h"

/* ------------------------------------------------------------------------------------------
 * memory */

/* 64-byte alignment suits AVX-512 loads; calloc semantics (zeroed) for every backend. Through
 * calloc itself rather than aligned_alloc + memset: glibc maps a large block fresh from the
 * kernel, already zero, and writes nothing, so the arenas' pages are touched only when used
 * (bert-base's 440 MB parameter and gradient arenas were zeroed by hand and then overwritten,
 * two thirds of the time of loading the model). The block's own pointer is kept just below the
 * aligned address for cpu_free.
 *
 * A large block (the arenas: weights, gradients, AdamW moments, activations) is also offered to
 * the kernel for transparent huge pages, which Debian's kernels give only where asked
 * (/sys/kernel/mm/transparent_hugepage/enabled: madvise): 2 MB pages fault in 512 times less
 * often as the model is read into the arena (bert-base's `bertc predict` of one text took 0.35 s
 * instead of 0.57; training and evaluation steps unchanged within the noise; docs/PERFORMANCE.md,
 * "Huge pages"). BERTC_THP=0 leaves them out (read once; another value than 0 or 1 is named in
 * one line on stderr and keeps them). A kernel without them refuses the advice, which changes
 * nothing. */
#define HUGE_PAGE_MIN_BYTES ((size_t)4 << 20)

static pthread_once_t huge_pages_once = PTHREAD_ONCE_INIT;
static int huge_pages_env = 1;    /* BERTC_THP, read once */
static int huge_pages_forced = -1; /* cpu_huge_pages_set, for a benchmark comparing the two */

static void huge_pages_read_env(void) {
    const char *e = getenv("BERTC_THP");
    if (!e || !*e || !strcmp(e, "1")) return;
    if (!strcmp(e, "0")) huge_pages_env = 0;
    else /* a typo should not pass for a choice */
        fprintf(stderr, "bertc: BERTC_THP=%.32s not understood (0 or 1): using huge pages\n", e);
}

int cpu_huge_pages_wanted(void) {
    if (huge_pages_forced >= 0) return huge_pages_forced;
    pthread_once(&huge_pages_once, huge_pages_read_env);
    return huge_pages_env;
}

void cpu_huge_pages_set(int on) { huge_pages_forced = on ? 1 : 0; }

static void advise_huge_pages(char *block, size_t bytes) {
#ifdef MADV_HUGEPAGE
    if (bytes < HUGE_PAGE_MIN_BYTES || !cpu_huge_pages_wanted()) return;
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t b0 = ((uintptr_t)block + page - 1) / page * page, b1 = ((uintptr_t)block + bytes) / page * page;
    if (b1 > b0) (void)madvise((void *)b0, b1 - b0, MADV_HUGEPAGE); /* advice: a refusal is harmless */
#else
    (void)block;
    (void)bytes;
#endif
}

static void *cpu_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 128 - sizeof(void *)) return NULL; /* no size that wraps below */
    size_t rounded = (bytes + 63) / 64 * 64;
    if (rounded == 0) rounded = 64;
    char *block = calloc(1, rounded + 64 + sizeof(void *));
    if (!block) return NULL;
    advise_huge_pages(block, rounded + 64 + sizeof(void *));
    uintptr_t aligned = ((uintptr_t)block + sizeof(void *) + 63) / 64 * 64;
    ((void **)aligned)[-1] = block;
    return (void *)aligned;
}
static void cpu_free(void *p) {
    if (p) free(((void **)p)[-1]);
}
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (dst != src) memmove(dst, src, bytes);
}

/* The [begin, end) slice of n items that thread `tid` of `nth` owns. */
static void thread_slice(size_t n, int tid, int nth, size_t *begin, size_t *end) {
    size_t chunk = (n + (size_t)nth - 1) / (size_t)nth;
    *begin = chunk * (size_t)tid;
    *end = *begin + chunk;
    if (*begin > n) *begin = n;
    if (*end > n) *end = n;
}

/* ------------------------------------------------------------------------------------------
 * exp and erf that the compiler can vectorise (glibc's expf/erff are scalar calls, and were a
 * tenth of the step). Both are within a few float ulps of the exact value over the range used. */

/* e^x: x = n ln2 + r with |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (relative error
 * < 2e-9 before rounding), 2^n through the exponent bits. Below -87.3 (where float e^x is
 * subnormal or 0) it returns 0, so masked attention scores give exactly 0. */
static inline float exp_vec(float x) {
    float xc = x > 88.3f ? 88.3f : x;
    xc = xc < -87.3f ? -87.3f : xc;
    /* round to nearest by the 1.5 * 2^23 trick (floorf/rintf are library calls without -ffast-math) */
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - n * 0.693145751953125f - n * 1.42860682030941723212e-6f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    union { int32_t i; float f; } two_n = {.i = ((int32_t)n + 127) << 23};
    float e = p * two_n.f;
    return x < -87.3f ? 0.0f : e;
}

/* erf(x) by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7), the same formula PyTorch's
 * vectorised CPU GELU uses. */
static inline float erf_vec(float x) {
    float ax = fabsf(x);
    float t = 1.0f / (1.0f + 0.3275911f * ax);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float y = 1.0f - poly * exp_vec(-ax * ax);
    return x < 0.0f ? -y : y;
}

/* tanh(u) = 1 - 2 / (e^(2u) + 1), saturating cleanly at both ends */
static inline float tanh_vec(float u) {
    float uc = u > 20.0f ? 20.0f : (u < -20.0f ? -20.0f : u);
    return 1.0f - 2.0f / (exp_vec(2.0f * uc) + 1.0f);
}

/* ------------------------------------------------------------------------------------------
 * embeddings */

static void cpu_embeddings_forward(float *out, const int32_t *ids, const int32_t *types,
                                   const float *wte, const float *wpe, const float *wtt,
                                   int B, int T, int C) {
    #pragma omp parallel for collapse(2)
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *w = wte + (size_t)ids[b * T + t] * C;
            const float *p = wpe + (size_t)t * C;
            const float *y = wtt + (size_t)types[b * T + t] * C;
            /* Same summation order as HF: (word + token_type) + position. */
            #pragma omp simd
            for (int c = 0; c < C; c++) o[c] = (w[c] + y[c]) + p[c];
        }
    }
}

static void cpu_embeddings_backward(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                    const int32_t *ids, const int32_t *types, int B, int T, int C,
                                    int pad_id) {
    /* Each thread owns a slice of channels and scatters every token into it: no two threads
     * ever touch the same float, and the order of additions is fixed. */
    #pragma omp parallel
    {
        size_t c0, c1;
        thread_slice((size_t)C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                const float *d = dout + ((size_t)b * T + t) * C;
                int id = ids[b * T + t];
                float *gw = dwte + (size_t)id * C;
                float *gp = dwpe + (size_t)t * C;
                float *gy = dwtt + (size_t)types[b * T + t] * C;
                if (id != pad_id)
                    for (size_t c = c0; c < c1; c++) gw[c] += d[c];
                for (size_t c = c0; c < c1; c++) gp[c] += d[c];
                for (size_t c = c0; c < c1; c++) gy[c] += d[c];
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * layernorm */

/* One row: o = (x - mean) * rstd * weight + bias, C wide, for the plain LayerNorm and the fused
 * dropout+residual+LayerNorm. Always inlined, so each caller keeps its own vectorised loops. */
static inline __attribute__((always_inline)) void layernorm_row(float *o, float *mean, float *rstd, const float *x,
                                                                 const float *weight, const float *bias, int C,
                                                                 float eps) {
    float m = 0.0f;
    #pragma omp simd reduction(+ : m)
    for (int c = 0; c < C; c++) m += x[c];
    m /= (float)C;
    float v = 0.0f; /* two passes: exact enough without Welford for C <= a few thousand */
    #pragma omp simd reduction(+ : v)
    for (int c = 0; c < C; c++) {
        float d = x[c] - m;
        v += d * d;
    }
    v /= (float)C;
    float s = 1.0f / sqrtf(v + eps);
    #pragma omp simd
    for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * weight[c] + bias[c];
    *mean = m;
    *rstd = s;
}

static void cpu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                                  const float *weight, const float *bias, int N, int C, float eps) {
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        layernorm_row(out + (size_t)n * C, &mean[n], &rstd[n], x, weight, bias, C, eps);
    }
}

static void cpu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                   const float *inp, const float *weight, const float *mean,
                                   const float *rstd, int N, int C) {
    /* 1. parameter gradients, channel slices per thread (reads dout before dinp may overwrite it) */
    #pragma omp parallel
    {
        size_t c0, c1;
        thread_slice((size_t)C, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            const float *d = dout + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            #pragma omp simd
            for (size_t c = c0; c < c1; c++) {
                dbias[c] += d[c];
                dweight[c] += (x[c] - m) * s * d[c];
            }
        }
    }
    /* 2. input gradient, row by row:
     * dx = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout * weight */
    #pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        const float *d = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        #pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            float dn = d[c] * weight[c];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        #pragma omp simd
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s;
            float dn = d[c] * weight[c];
            dx[c] = s * (dn - dnorm_mean - norm * dnorm_norm_mean);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * matmul (Linear) */

/* Products are split into chunks, two per thread, handed out dynamically: when another
 * process takes part of a core, the other thread picks up the slack instead of waiting at the
 * end of every product. Each chunk re-packs the operand it shares with the others, so chunks
 * stay large (at least min_size rows or columns) and the weight gradient is split along the
 * dimension whose shared operand is the smaller one. One thread: one call, no re-packing.
 * Where the size allows fewer than two chunks per thread, the count is rounded down to a
 * multiple of the threads: MiniLM's 384 features made 3 chunks of 128 on 2 threads, so one
 * thread ran two while the other waited, in 5 of the 6 products of a single example's forward. */
static int matmul_chunks(size_t n, size_t min_size) {
    size_t threads = (size_t)omp_get_max_threads();
    if (threads <= 1) return 1;
    size_t want = 2 * threads, most = n / min_size > 0 ? n / min_size : 1;
    size_t chunks = want < most ? want : most;
    if (chunks > threads) chunks -= chunks % threads;
    return (int)chunks;
}

/* Chunk size for the loops over (sequence, head) pairs: 4 pairs per grab keeps the scheduling
 * cost small at training batches, but a single example's 12 heads made 3 grabs for 2 threads. */
static int head_chunk(int pairs) {
    int per = pairs / (4 * omp_get_max_threads());
    return per < 1 ? 1 : per > 4 ? 4 : per;
}

/* out rows = bias, for a product to add to with beta = 1: one pass over out, not two. */
static void fill_bias_rows(float *out, const float *bias, size_t n0, size_t n1, size_t o0, size_t o1, size_t OC) {
    for (size_t n = n0; n < n1; n++) memcpy(out + n * OC + o0, bias + o0, (o1 - o0) * sizeof(float));
}

/* dbias (OC) += column sums of dout (N,OC), a slice of columns per thread (called inside a
 * parallel region): each sum walks the rows in order, whatever the thread count. */
static void bias_grad_slice(float *dbias, const float *dout, int N, int OC) {
    size_t o0, o1;
    thread_slice((size_t)OC, omp_get_thread_num(), omp_get_num_threads(), &o0, &o1);
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        #pragma omp simd
        for (size_t o = o0; o < o1; o++) dbias[o] += d[o];
    }
}

static void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
                               int N, int IC, int OC) {
    if (gemm_linear_threaded(N)) { /* one product threaded by oneDNN (gemm.h) */
        if (bias) {
            #pragma omp parallel
            {
                size_t n0, n1;
                thread_slice((size_t)N, omp_get_thread_num(), omp_get_num_threads(), &n0, &n1);
                fill_bias_rows(out, bias, n0, n1, 0, (size_t)OC, (size_t)OC);
            }
        }
        /* out (N,OC) = inp (N,IC) @ weight^T, weight (OC,IC) read transposed */
        gemm_f32_threaded(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, bias ? 1.0f : 0.0f, out, OC);
        return;
    }
    /* Few rows (one example: 128) leave too little to split by rows, and one chunk would run
     * on one thread: split the output features (the weight's rows) instead; each chunk then
     * re-packs the small input rather than the weight. */
    int by_rows = (size_t)N >= 256 * (size_t)omp_get_max_threads() || N >= OC;
    int chunks = by_rows ? matmul_chunks((size_t)N, 256) : matmul_chunks((size_t)OC, 128);
    #pragma omp parallel for schedule(dynamic, 1)
    for (int ch = 0; ch < chunks; ch++) {
        size_t n0 = 0, n1 = (size_t)N, o0 = 0, o1 = (size_t)OC;
        if (by_rows) thread_slice((size_t)N, ch, chunks, &n0, &n1);
        else thread_slice((size_t)OC, ch, chunks, &o0, &o1);
        if (n1 <= n0 || o1 <= o0) continue;
        if (bias) fill_bias_rows(out, bias, n0, n1, o0, o1, (size_t)OC);
        float beta = bias ? 1.0f : 0.0f;
        /* out[n0:n1, o0:o1] = inp[n0:n1] (rows,IC) @ weight[o0:o1]^T; weight (OC,IC) read transposed. */
        if (by_rows)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(n1 - n0), OC, IC, 1.0f, inp + n0 * IC, IC,
                        weight, IC, beta, out + n0 * OC, OC);
        else
            gemm_f32_1thread(0, 1, (int)(n1 - n0), (int)(o1 - o0), IC, 1.0f, inp + n0 * IC, IC, weight + o0 * IC, IC,
                             beta, out + n0 * OC + o0, OC);
    }
}

static void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                                const float *inp, const float *weight, int N, int IC, int OC,
                                int accumulate) {
    if (gemm_linear_threaded(N)) { /* two products threaded by oneDNN (gemm.h) */
        if (dinp) /* dinp (N,IC) (+)= dout (N,OC) @ weight (OC,IC) */
            gemm_f32_threaded(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, accumulate ? 1.0f : 0.0f, dinp, IC);
        /* dweight (OC,IC) += dout^T @ inp (N,IC) */
        gemm_f32_threaded(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
        if (dbias) {
            #pragma omp parallel
            bias_grad_slice(dbias, dout, N, OC);
        }
        return;
    }
    int row_chunks = dinp ? matmul_chunks((size_t)N, 256) : 0;
    /* dweight (OC,IC) += dout^T @ inp: split OC (each chunk re-packs inp, N x IC) or IC (each
     * re-packs dout, N x OC), whichever shares less */
    int split_oc = OC >= IC;
    int w_chunks = matmul_chunks((size_t)(split_oc ? OC : IC), 128);
    #pragma omp parallel
    {
        #pragma omp for schedule(dynamic, 1) nowait
        for (int ch = 0; ch < row_chunks + w_chunks; ch++) {
            if (ch < row_chunks) {
                size_t n0, n1;
                thread_slice((size_t)N, ch, row_chunks, &n0, &n1);
                if (n1 > n0) /* dinp[n0:n1] (rows,IC) (+)= dout[n0:n1] (rows,OC) @ weight (OC,IC) */
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(n1 - n0), IC, OC, 1.0f,
                                dout + n0 * OC, OC, weight, IC, accumulate ? 1.0f : 0.0f, dinp + n0 * IC, IC);
                continue;
            }
            size_t c0, c1;
            thread_slice((size_t)(split_oc ? OC : IC), ch - row_chunks, w_chunks, &c0, &c1);
            if (c1 <= c0) continue;
            if (split_oc) /* dweight[c0:c1, :] += dout[:, c0:c1]^T @ inp */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)(c1 - c0), IC, N, 1.0f, dout + c0, OC, inp,
                            IC, 1.0f, dweight + c0 * IC, IC);
            else /* dweight[:, c0:c1] += dout^T @ inp[:, c0:c1] */
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, (int)(c1 - c0), N, 1.0f, dout, OC, inp + c0,
                            IC, 1.0f, dweight + c0, IC);
        }
        if (dbias) bias_grad_slice(dbias, dout, N, OC);
    }
}

/* ------------------------------------------------------------------------------------------
 * attention
 *
 * One (b, h) pair per task, each a few single-threaded sgemms over that head's (T,HS) slices,
 * read in place with their row strides (C for ctx, ldq for q, ldkv for k and v): no (B,T,C) ->
 * (B,NH,T,HS) transpose is ever materialised, and q, k, v can be column blocks of one product. */

/* ---- dropout draws kept as bytes (backend/ops.h's keep), for every op that drops ----
 * keep[e] = the draw of element first + e: a loop of its own, since GCC vectorises neither half
 * of one loop that both stores the byte and selects. */
static inline void dropout_draw(uint8_t *keep, size_t n, uint64_t first, float p, uint64_t seed, uint64_t stream) {
    const int64_t threshold = dropout_threshold(p); /* hoisted by hand: where the compiler did not, the loop stayed scalar */
    #pragma omp simd
    for (size_t e = 0; e < n; e++) keep[e] = (uint8_t)(dropout_bits(seed, stream, first + e) >= threshold);
}
/* dst = src dropped by a kept draw, kept elements scaled (dst may be src): a byte read where the
 * hash costs ten times as much on AVX2 (bench/dropout_hash.c). */
static inline void dropout_apply(float *dst, const uint8_t *keep, const float *src, size_t n, float scale) {
    #pragma omp simd
    for (size_t e = 0; e < n; e++) dst[e] = keep[e] ? src[e] * scale : 0.0f;
}
/* The whole-tensor ops below run both in chunks of this many elements, each drawn and applied
 * while it is in L1. */
#define DROPOUT_CHUNK 4096

/* softmax of one row of scores with HF's additive mask, in place */
static void masked_softmax_row(float *row, const int32_t *mask, int T) {
    float maxv = -INFINITY;
    #pragma omp simd reduction(max : maxv)
    for (int j = 0; j < T; j++) {
        /* (1 - mask) * finfo(float32).min, added as Hugging Face does */
        row[j] += (1.0f - (float)mask[j]) * -FLT_MAX;
        maxv = row[j] > maxv ? row[j] : maxv;
    }
    float sum = 0.0f;
    #pragma omp simd reduction(+ : sum)
    for (int j = 0; j < T; j++) {
        float e = exp_vec(row[j] - maxv);
        row[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j < T; j++) row[j] *= inv;
}

/* dst[e] = src[e] dropped or scaled, element e of the (b,h) slab starting at `first` in the
 * whole (B,NH,Tq,T) tensor: forward draws the probabilities' dropout, and stores the draw in
 * keep[e] unless keep is NULL; backward redraws it. */
static void attention_dropout(float *dst, uint8_t *keep, const float *src, size_t n, size_t first, float p_drop,
                              float keep_scale, uint64_t seed, uint64_t stream) {
    if (keep) {
        dropout_draw(keep, n, first, p_drop, seed, stream);
        dropout_apply(dst, keep, src, n, keep_scale);
        return;
    }
    #pragma omp simd
    for (size_t e = 0; e < n; e++) dst[e] = dropout_keep(seed, stream, first + e, p_drop) ? src[e] * keep_scale : 0.0f;
}

static void cpu_attention_forward(float *ctx, float *att, const float *q, const float *k,
                                  const float *v, const int32_t *mask, float *scratch,
                                  int B, int Tq, int T, int C, int NH, int ldq, int ldkv, float p_drop,
                                  uint64_t seed, uint64_t stream, uint8_t *keep) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    float keep_scale = p_drop > 0.0f ? 1.0f / (1.0f - p_drop) : 1.0f;
    int chunk = head_chunk(B * NH);
    #pragma omp parallel for collapse(2) schedule(dynamic, chunk)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t slab = ((size_t)b * NH + h) * Tq * T;          /* this head's (Tq,T) in att */
            size_t chead = (size_t)b * Tq * C + (size_t)h * HS;     /* row 0 of this head in ctx */
            size_t qhead = (size_t)b * Tq * ldq + (size_t)h * HS;   /* ... in q */
            size_t khead = (size_t)b * T * ldkv + (size_t)h * HS;   /* ... in k, v */
            float *S = att + slab;
            /* S (Tq,T) = q_h (Tq,HS) @ k_h^T * scaling, then masked softmax row by row */
            gemm_f32_1thread(0, 1, Tq, T, HS, scale, q + qhead, ldq, k + khead, ldkv, 0.0f, S, T);
            for (int i = 0; i < Tq; i++) masked_softmax_row(S + (size_t)i * T, mask + (size_t)b * T, T);
            const float *P = S;
            if (p_drop > 0.0f) {
                float *Pd = scratch + slab;
                attention_dropout(Pd, keep ? keep + slab : NULL, S, (size_t)Tq * T, slab, p_drop, keep_scale, seed,
                                  stream);
                P = Pd;
            }
            /* ctx_h (Tq,HS) = dropout(P) (Tq,T) @ v_h (T,HS) */
            gemm_f32_1thread(0, 0, Tq, HS, T, 1.0f, P, T, v + khead, ldkv, 0.0f, ctx + chead, C);
        }
    }
}

static void cpu_attention_backward(float *dq, float *dk, float *dv, const float *dctx,
                                   const float *q, const float *k, const float *v, const float *att,
                                   float *scratch, int B, int Tq, int T, int C, int NH, int ldq, int ldkv,
                                   float p_drop, uint64_t seed, uint64_t stream, const uint8_t *keep) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    float keep_scale = p_drop > 0.0f ? 1.0f / (1.0f - p_drop) : 1.0f;
    size_t total = (size_t)B * NH * Tq * T;
    int chunk = head_chunk(B * NH);
    #pragma omp parallel for collapse(2) schedule(dynamic, chunk)
    for (int b = 0; b < B; b++) {
        for (int h = 0; h < NH; h++) {
            size_t slab = ((size_t)b * NH + h) * Tq * T;
            size_t chead = (size_t)b * Tq * C + (size_t)h * HS;   /* dctx */
            size_t qhead = (size_t)b * Tq * ldq + (size_t)h * HS; /* q, dq */
            size_t khead = (size_t)b * T * ldkv + (size_t)h * HS; /* k, v, dk, dv */
            const float *P = att + slab;          /* (Tq,T) softmax output */
            const float *Pd = P;                  /* (Tq,T) after dropout */
            float *dP = scratch + total + slab;   /* (Tq,T) gradient w.r.t. P, then w.r.t. scores */
            if (p_drop > 0.0f) {
                float *drop = scratch + slab;
                if (keep) dropout_apply(drop, keep + slab, P, (size_t)Tq * T, keep_scale);
                else attention_dropout(drop, NULL, P, (size_t)Tq * T, slab, p_drop, keep_scale, seed, stream);
                Pd = drop;
            }
            /* ctx = Pd v  =>  dv (T,HS) = Pd^T (T,Tq) @ dctx (Tq,HS);  dPd (Tq,T) = dctx @ v^T */
            gemm_f32_1thread(1, 0, T, HS, Tq, 1.0f, Pd, T, dctx + chead, C, 0.0f, dv + khead, ldkv);
            gemm_f32_1thread(0, 1, Tq, T, HS, 1.0f, dctx + chead, C, v + khead, ldkv, 0.0f, dP, T);
            for (int i = 0; i < Tq; i++) {
                const float *pi = P + (size_t)i * T;
                float *dpi = dP + (size_t)i * T;
                /* softmax backward: dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik), times the scaling;
                 * with dropout, dP = dPd * keep / (1 - p) is formed in the same pass as the sum */
                float s = 0.0f;
                if (p_drop > 0.0f) {
                    const float *pdi = Pd + (size_t)i * T;
                    #pragma omp simd reduction(+ : s)
                    for (int j = 0; j < T; j++) {
                        float g = pdi[j] != 0.0f ? dpi[j] * keep_scale : 0.0f;
                        dpi[j] = g;
                        s += pi[j] * g;
                    }
                } else {
                    #pragma omp simd reduction(+ : s)
                    for (int j = 0; j < T; j++) s += pi[j] * dpi[j];
                }
                #pragma omp simd
                for (int j = 0; j < T; j++) dpi[j] = pi[j] * (dpi[j] - s) * scale;
            }
            /* S = q k^T  =>  dq (Tq,HS) = dS (Tq,T) @ k (T,HS);  dk (T,HS) = dS^T (T,Tq) @ q (Tq,HS) */
            gemm_f32_1thread(0, 0, Tq, HS, T, 1.0f, dP, T, k + khead, ldkv, 0.0f, dq + qhead, ldq);
            gemm_f32_1thread(1, 0, T, HS, Tq, 1.0f, dP, T, q + qhead, ldq, 0.0f, dk + khead, ldkv);
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * activations */

#define GELU_TANH_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define INV_SQRT_2PI 0.3989422804014327f

/* Each activation and its derivative once, inlined into the plain and the fused loops. */
static inline float gelu_f(float x) { /* exact: x * Phi(x), as torch.nn.functional.gelu */
    return 0.5f * x * (1.0f + erf_vec(x * (float)M_SQRT1_2));
}
static inline float gelu_d(float x) {
    /* Phi(x) + x phi(x): erf_vec's e^(-z^2), z = x/sqrt(2), is phi's e^(-x^2/2), so one exp
     * serves both (erf_vec inlined by hand) */
    float z = x * (float)M_SQRT1_2, az = fabsf(z);
    float e = exp_vec(-az * az);
    float t = 1.0f / (1.0f + 0.3275911f * az);
    float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
    float erf_az = 1.0f - poly * e;
    float cdf = 0.5f * (1.0f + (z < 0.0f ? -erf_az : erf_az));
    return cdf + x * (INV_SQRT_2PI * e);
}
static inline float gelu_new_f(float x) { /* tanh approximation (HF NewGELUActivation) */
    return 0.5f * x * (1.0f + tanh_vec(GELU_TANH_SCALE * (x + 0.044715f * x * x * x)));
}
static inline float gelu_new_d(float x) {
    float th = tanh_vec(GELU_TANH_SCALE * (x + 0.044715f * x * x * x));
    float du = GELU_TANH_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
}
/* torch: zero gradient at x == 0 */
static inline float relu_f(float x) { return x > 0.0f ? x : 0.0f; }
static inline float relu_d(float x) { return x > 0.0f ? 1.0f : 0.0f; }

/* Elementwise loops below this many elements run on the calling thread: waking the other
 * threads costs more than the loop (the pooler's (B,C) tensors), most of all on a loaded machine. */
#define PAR_MIN 32768

static void cpu_act_forward(ops_act act, float *out, const float *inp, size_t N) {
    switch (act) {
    case OPS_ACT_GELU:
        #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
        for (size_t i = 0; i < N; i++) out[i] = gelu_f(inp[i]);
        break;
    case OPS_ACT_GELU_NEW:
        #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
        for (size_t i = 0; i < N; i++) out[i] = gelu_new_f(inp[i]);
        break;
    case OPS_ACT_RELU:
        #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
        for (size_t i = 0; i < N; i++) out[i] = relu_f(inp[i]);
        break;
    }
}

static void cpu_act_backward(ops_act act, float *dinp, const float *dout, const float *inp, size_t N) {
    switch (act) {
    case OPS_ACT_GELU:
        #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
        for (size_t i = 0; i < N; i++) dinp[i] = dout[i] * gelu_d(inp[i]);
        break;
    case OPS_ACT_GELU_NEW:
        #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
        for (size_t i = 0; i < N; i++) dinp[i] = dout[i] * gelu_new_d(inp[i]);
        break;
    case OPS_ACT_RELU:
        #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
        for (size_t i = 0; i < N; i++) dinp[i] = inp[i] > 0.0f ? dout[i] : 0.0f;
        break;
    }
}

static void cpu_tanh_forward(float *out, const float *inp, size_t N) {
    #pragma omp parallel for if (N >= PAR_MIN)
    for (size_t i = 0; i < N; i++) out[i] = tanhf(inp[i]);
}

static void cpu_tanh_backward(float *dinp, const float *dout, const float *out, size_t N) {
    #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
    for (size_t i = 0; i < N; i++) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}

/* ------------------------------------------------------------------------------------------
 * dropout and residual */

static void cpu_dropout_forward(float *x, size_t N, float p, uint64_t seed, uint64_t stream, uint8_t *keep) {
    if (p <= 0.0f) return;
    float scale = 1.0f / (1.0f - p);
    if (keep) {
        size_t chunks = (N + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN)
        for (size_t c = 0; c < chunks; c++) {
            size_t i = c * DROPOUT_CHUNK, n = N - i < DROPOUT_CHUNK ? N - i : DROPOUT_CHUNK;
            dropout_draw(keep + i, n, i, p, seed, stream);
            dropout_apply(x + i, keep + i, x + i, n, scale);
        }
        return;
    }
    #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
    for (size_t i = 0; i < N; i++) x[i] = dropout_keep(seed, stream, i, p) ? x[i] * scale : 0.0f;
}

static void cpu_dropout_backward(float *dinp, const float *dout, size_t N, float p, uint64_t seed,
                                 uint64_t stream, const uint8_t *keep) {
    if (p <= 0.0f) {
        cpu_copy(dinp, dout, N * sizeof(float));
        return;
    }
    float scale = 1.0f / (1.0f - p);
    if (keep) {
        size_t chunks = (N + DROPOUT_CHUNK - 1) / DROPOUT_CHUNK;
        #pragma omp parallel for schedule(static) if (N >= PAR_MIN)
        for (size_t c = 0; c < chunks; c++) {
            size_t i = c * DROPOUT_CHUNK, n = N - i < DROPOUT_CHUNK ? N - i : DROPOUT_CHUNK;
            dropout_apply(dinp + i, keep + i, dout + i, n, scale);
        }
        return;
    }
    #pragma omp parallel for simd if (parallel: N >= PAR_MIN)
    for (size_t i = 0; i < N; i++) dinp[i] = dropout_keep(seed, stream, i, p) ? dout[i] * scale : 0.0f;
}

static void cpu_dropout_residual_forward(float *out, float *x, const float *res, size_t N, float p,
                                         uint64_t seed, uint64_t stream) {
    if (p <= 0.0f) {
        #pragma omp parallel for simd
        for (size_t i = 0; i < N; i++) out[i] = res[i] + x[i];
        return;
    }
    float scale = 1.0f / (1.0f - p);
    #pragma omp parallel for simd
    for (size_t i = 0; i < N; i++) {
        float xd = dropout_keep(seed, stream, i, p) ? x[i] * scale : 0.0f;
        x[i] = xd;
        out[i] = res[i] + xd;
    }
}

/* ------------------------------------------------------------------------------------------
 * fused ops (see backend/ops.h): each reads and writes its tensors once, where the unfused
 * composition makes a pass per op (and a thread fork/join per pass). */

/* res = inp_res + dropout(x + xbias), out = LayerNorm(res), and out16 = out rounded to bf16
 * unless out16 is NULL: one parallel loop over rows, each row built, reduced, normalised and
 * rounded while it sits in L1. The draw goes to keep too unless keep is NULL. */
static void cpu_residual_layernorm_forward_bf16(float *out, uint16_t *out16, float *res, float *mean, float *rstd,
                                                const float *x, const float *xbias, const float *inp_res,
                                                const float *weight, const float *bias, int N, int C, float eps,
                                                float p, uint64_t seed, uint64_t stream, uint8_t *keep) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    #pragma omp parallel for if ((size_t)N * C >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        size_t row = (size_t)n * C;
        const float *xr = x + row, *ir = inp_res + row;
        float *r = res + row, *o = out + row;
        if (p > 0.0f && keep) {
            uint8_t *kr = keep + row;
            dropout_draw(kr, (size_t)C, row, p, seed, stream);
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float xv = xbias ? xr[c] + xbias[c] : xr[c];
                r[c] = ir[c] + (kr[c] ? xv * scale : 0.0f);
            }
        } else if (p > 0.0f) {
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float xv = xbias ? xr[c] + xbias[c] : xr[c];
                float xd = dropout_keep(seed, stream, row + (size_t)c, p) ? xv * scale : 0.0f;
                r[c] = ir[c] + xd;
            }
        } else {
            #pragma omp simd
            for (int c = 0; c < C; c++) r[c] = ir[c] + (xbias ? xr[c] + xbias[c] : xr[c]);
        }
        /* the row is in L1 now: layernorm_row's separate reduction loops vectorise, fused ones did not */
        layernorm_row(o, &mean[n], &rstd[n], r, weight, bias, C, eps);
        if (out16) {
            uint16_t *o16 = out16 + row;
            #pragma omp simd
            for (int c = 0; c < C; c++) o16[c] = bf16_from_f32(o[c]);
        }
    }
}

static void cpu_residual_layernorm_forward(float *out, float *res, float *mean, float *rstd, const float *x,
                                           const float *xbias, const float *inp_res, const float *weight,
                                           const float *bias, int N, int C, float eps, float p, uint64_t seed,
                                           uint64_t stream, uint8_t *keep) {
    cpu_residual_layernorm_forward_bf16(out, NULL, res, mean, rstd, x, xbias, inp_res, weight, bias, N, C, eps, p, seed,
                                        stream, keep);
}

/* Rows [n0, n1) of cpu_residual_layernorm_backward_bf16, their column sums added into gw, gb and gxb
 * (gxb may be NULL); dx16, unless NULL, gets dx (dres when dx is NULL) rounded to bf16. The dropout
 * mask is read from keep, or redrawn where keep is NULL. */
static void residual_layernorm_backward_rows(float *dres, float *dx, uint16_t *dx16, float *gxb, float *gw, float *gb,
                                             const float *dout, const float *res, const float *weight,
                                             const float *mean, const float *rstd, size_t n0, size_t n1, int C,
                                             float p, float scale, uint64_t seed, uint64_t stream,
                                             const uint8_t *keep) {
    for (size_t n = n0; n < n1; n++) {
        size_t row = n * (size_t)C;
        const float *r = res + row, *d = dout + row;
        float m = mean[n], s = rstd[n];
        /* dres = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = dout * weight;
         * the parameter gradients come from the same reads */
        float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;
        #pragma omp simd reduction(+ : dnorm_mean, dnorm_norm_mean)
        for (int c = 0; c < C; c++) {
            float norm = (r[c] - m) * s;
            float dn = d[c] * weight[c];
            gb[c] += d[c];
            gw[c] += norm * d[c];
            dnorm_mean += dn;
            dnorm_norm_mean += dn * norm;
        }
        dnorm_mean /= (float)C;
        dnorm_norm_mean /= (float)C;
        float *dr = dres + row; /* may alias d: each element is read before it is written */
        if (dx && keep) {
            float *dxr = dx + row;
            const uint8_t *kr = keep + row;
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float norm = (r[c] - m) * s;
                float g = s * (d[c] * weight[c] - dnorm_mean - norm * dnorm_norm_mean);
                float gd = kr[c] ? g * scale : 0.0f;
                dr[c] = g;
                dxr[c] = gd;
                if (gxb) gxb[c] += gd;
            }
        } else if (dx) {
            float *dxr = dx + row;
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float norm = (r[c] - m) * s;
                float g = s * (d[c] * weight[c] - dnorm_mean - norm * dnorm_norm_mean);
                float gd = dropout_keep(seed, stream, row + (size_t)c, p) ? g * scale : 0.0f;
                dr[c] = g;
                dxr[c] = gd;
                if (gxb) gxb[c] += gd;
            }
        } else {
            #pragma omp simd
            for (int c = 0; c < C; c++) {
                float norm = (r[c] - m) * s;
                float g = s * (d[c] * weight[c] - dnorm_mean - norm * dnorm_norm_mean);
                dr[c] = g;
                if (gxb) gxb[c] += g;
            }
        }
        if (dx16) { /* the row just written, still in L1 */
            const float *g = dx ? dx + row : dr;
            uint16_t *g16 = dx16 + row;
            #pragma omp simd
            for (int c = 0; c < C; c++) g16[c] = bf16_from_f32(g[c]);
        }
    }
}

/* Per-thread column sums live on the threads' stacks up to this many channels (3 floats each). */
#define LN_STACK_C 4096

/* One parallel region: each thread takes a fixed slice of rows and sums its rows' dweight,
 * dbias, dxbias contributions in its own (3,C) partials; after a barrier the partials are added
 * in thread order, a slice of channels per thread. So a given thread count always gives the
 * same sums (the row split, hence the summation order, depends on the thread count). */
static void cpu_residual_layernorm_backward_bf16(float *dres, float *dx, uint16_t *dx16, float *dxbias,
                                                 float *dweight, float *dbias, const float *dout, const float *res,
                                                 const float *weight, const float *mean, const float *rstd, int N,
                                                 int C, float p, uint64_t seed, uint64_t stream, const uint8_t *keep) {
    float scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    if (p <= 0.0f) dx = NULL; /* no dropout: dx would be a copy of dres */
    if (C > LN_STACK_C) { /* wide rows: one thread (no stack partials to share), still one pass */
        residual_layernorm_backward_rows(dres, dx, dx16, dxbias, dweight, dbias, dout, res, weight, mean, rstd, 0,
                                         (size_t)N, C, p, scale, seed, stream, keep);
        return;
    }
    int max_threads = (size_t)N * C >= PAR_MIN ? omp_get_max_threads() : 1;
    float *parts[max_threads > 0 ? max_threads : 1];
    #pragma omp parallel num_threads(max_threads)
    {
        int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        float local[3 * (size_t)C]; /* gw, gb, gxb */
        memset(local, 0, sizeof local);
        parts[tid] = local;
        size_t n0, n1;
        thread_slice((size_t)N, tid, nth, &n0, &n1);
        residual_layernorm_backward_rows(dres, dx, dx16, local + 2 * (size_t)C, local, local + C, dout, res, weight, mean,
                                         rstd, n0, n1, C, p, scale, seed, stream, keep);
        #pragma omp barrier
        size_t c0, c1;
        thread_slice((size_t)C, tid, nth, &c0, &c1);
        for (size_t c = c0; c < c1; c++) {
            float sw = 0.0f, sb = 0.0f, sx = 0.0f;
            for (int t = 0; t < nth; t++) {
                sw += parts[t][c];
                sb += parts[t][C + c];
                sx += parts[t][2 * (size_t)C + c];
            }
            dweight[c] += sw;
            dbias[c] += sb;
            if (dxbias) dxbias[c] += sx;
        }
        #pragma omp barrier /* keep every thread's partials alive until all are read */
    }
}

static void cpu_residual_layernorm_backward(float *dres, float *dx, float *dxbias, float *dweight, float *dbias,
                                            const float *dout, const float *res, const float *weight,
                                            const float *mean, const float *rstd, int N, int C, float p,
                                            uint64_t seed, uint64_t stream, const uint8_t *keep) {
    cpu_residual_layernorm_backward_bf16(dres, dx, NULL, dxbias, dweight, dbias, dout, res, weight, mean, rstd, N, C, p,
                                         seed, stream, keep);
}

/* One row of cpu_bias_act_forward: x += bias, o = f(x), or (to16) o16 = f(x) rounded to bf16
 * (bf16_from_f32, as to_bf16). Always inlined with f and to16 constant, so each call site below
 * compiles to its own vectorised loop with the activation inlined, as if written out (an indirect
 * call per element, or a test of o16 the compiler cannot settle, would stop the vectorisation). */
static inline __attribute__((always_inline)) void bias_act_row(float *o, uint16_t *o16, int to16, float *x,
                                                                const float *bias, int F, float (*f)(float)) {
    #pragma omp simd
    for (int c = 0; c < F; c++) {
        float v = x[c] + bias[c];
        x[c] = v;
        if (to16) o16[c] = bf16_from_f32(f(v));
        else o[c] = f(v);
    }
}

/* pre += bias, out = act(pre): rows in parallel. The bf16 version below is the same loop: one
 * function for both would outline one parallel body for the two, with the o16 test left inside
 * every row's loop. */
static void cpu_bias_act_forward(ops_act act, float *out, float *pre, const float *bias, int N, int F) {
    #pragma omp parallel for if ((size_t)N * F >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *x = pre + (size_t)n * F, *o = out + (size_t)n * F;
        switch (act) {
        case OPS_ACT_GELU: bias_act_row(o, NULL, 0, x, bias, F, gelu_f); break;
        case OPS_ACT_GELU_NEW: bias_act_row(o, NULL, 0, x, bias, F, gelu_new_f); break;
        case OPS_ACT_RELU: bias_act_row(o, NULL, 0, x, bias, F, relu_f); break;
        }
    }
}

static void cpu_bias_act_forward_bf16(ops_act act, uint16_t *out16, float *pre, const float *bias, int N, int F) {
    #pragma omp parallel for if ((size_t)N * F >= PAR_MIN)
    for (int n = 0; n < N; n++) {
        float *x = pre + (size_t)n * F;
        uint16_t *o16 = out16 + (size_t)n * F;
        switch (act) {
        case OPS_ACT_GELU: bias_act_row(NULL, o16, 1, x, bias, F, gelu_f); break;
        case OPS_ACT_GELU_NEW: bias_act_row(NULL, o16, 1, x, bias, F, gelu_new_f); break;
        case OPS_ACT_RELU: bias_act_row(NULL, o16, 1, x, bias, F, relu_f); break;
        }
    }
}

/* Columns [c0, c1) of one row of cpu_act_bias_backward_bf16: g = d * df(x), dbias += g, and (to16)
 * g16 = g rounded to bf16. Always inlined with df and to16 constant, as bias_act_row. */
static inline __attribute__((always_inline)) void act_bias_row(float *g, uint16_t *g16, int to16, float *dbias,
                                                                const float *d, const float *x, size_t c0,
                                                                size_t c1, float (*df)(float)) {
    #pragma omp simd
    for (size_t c = c0; c < c1; c++) {
        float v = d[c] * df(x[c]);
        g[c] = v;
        if (to16) g16[c] = bf16_from_f32(v);
        dbias[c] += v;
    }
}

/* dinp = dout * act'(pre), dbias += column sums of dinp, dinp16 = dinp rounded to bf16 unless
 * NULL. Each thread owns a slice of columns and walks every row in order, so the sums do not
 * depend on the thread count. */
static void cpu_act_bias_backward_bf16(ops_act act, float *dinp, uint16_t *dinp16, float *dbias, const float *dout,
                                       const float *pre, int N, int F) {
    #pragma omp parallel if ((size_t)N * F >= PAR_MIN)
    {
        size_t c0, c1;
        thread_slice((size_t)F, omp_get_thread_num(), omp_get_num_threads(), &c0, &c1);
        for (int n = 0; n < N; n++) {
            size_t row = (size_t)n * F;
            const float *x = pre + row, *d = dout + row;
            float *g = dinp + row;
            uint16_t *g16 = dinp16 ? dinp16 + row : NULL;
            switch (act) {
            case OPS_ACT_GELU:
                if (g16) act_bias_row(g, g16, 1, dbias, d, x, c0, c1, gelu_d);
                else act_bias_row(g, NULL, 0, dbias, d, x, c0, c1, gelu_d);
                break;
            case OPS_ACT_GELU_NEW:
                if (g16) act_bias_row(g, g16, 1, dbias, d, x, c0, c1, gelu_new_d);
                else act_bias_row(g, NULL, 0, dbias, d, x, c0, c1, gelu_new_d);
                break;
            case OPS_ACT_RELU: /* a select, not d * relu_d(x): a non-finite d stays out where x <= 0 */
                #pragma omp simd
                for (size_t c = c0; c < c1; c++) {
                    float v = x[c] > 0.0f ? d[c] : 0.0f;
                    g[c] = v;
                    dbias[c] += v;
                }
                if (g16) {
                    #pragma omp simd
                    for (size_t c = c0; c < c1; c++) g16[c] = bf16_from_f32(g[c]);
                }
                break;
            }
        }
    }
}

static void cpu_act_bias_backward(ops_act act, float *dinp, float *dbias, const float *dout, const float *pre,
                                  int N, int F) {
    cpu_act_bias_backward_bf16(act, dinp, NULL, dbias, dout, pre, N, F);
}

/* ------------------------------------------------------------------------------------------
 * first token (pooler input) */

static void cpu_first_token_forward(float *out, const float *inp, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * C, inp + (size_t)b * T * C, (size_t)C * sizeof(float));
}

static void cpu_first_token_backward(float *dinp, const float *dout, int B, int T, int C) {
    #pragma omp parallel for
    for (int b = 0; b < B; b++) {
        float *d = dinp + (size_t)b * T * C;
        memset(d, 0, (size_t)T * C * sizeof(float));
        memcpy(d, dout + (size_t)b * C, (size_t)C * sizeof(float));
    }
}

static void cpu_rows_gather(float *out, const float *inp, const int32_t *rows, int n, int C) {
    for (int i = 0; i < n; i++) memcpy(out + (size_t)i * C, inp + (size_t)rows[i] * C, (size_t)C * sizeof(float));
}
static void cpu_rows_scatter(float *out, const float *inp, const int32_t *rows, int n, int C) {
    for (int i = 0; i < n; i++) memcpy(out + (size_t)rows[i] * C, inp + (size_t)i * C, (size_t)C * sizeof(float));
}

/* ------------------------------------------------------------------------------------------
 * softmax cross-entropy */

static void cpu_crossentropy_forward(float *losses, float *probs, const float *logits,
                                     const int32_t *labels, int B, int K, float eps) {
    /* rows are independent; threads pay off for the masked-LM head's (N, V) logits */
    #pragma omp parallel for schedule(static) if ((size_t)B * K >= 65536)
    for (int b = 0; b < B; b++)
        losses[b] = crossentropy_row(probs + (size_t)b * K, logits + (size_t)b * K, K, labels[b], eps);
}

static void cpu_crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels,
                                      int B, int K, float eps, float dloss) {
    for (int b = 0; b < B; b++) {
        float *d = dlogits + (size_t)b * K;
        const float *p = probs + (size_t)b * K;
        int y = labels[b];
        if (y < 0 || y >= K) {
            memset(d, 0, (size_t)K * sizeof(float));
            continue;
        }
        for (int j = 0; j < K; j++) {
            float target = eps / (float)K + (j == y ? 1.0f - eps : 0.0f);
            d[j] = (p[j] - target) * dloss;
        }
    }
}

/* ------------------------------------------------------------------------------------------
 * optimiser: the same element operations and threading as train/optim.c's host loops, so a run
 * through the table and one through optim.c's own code agree bit for bit (test_optim checks it) */

#define CPU_PARALLEL_MIN 32768 /* optim.c's OPTIM_PARALLEL_MIN: below it one thread */

/* One element; always inlined with to16 constant, so each loop below vectorises on its own. */
static inline __attribute__((always_inline)) void adamw_one(float *p, float *m, float *v, const float *g, uint16_t *p16,
                                                             int to16, size_t i, const ops_adamw_scalars *s) {
    float gi = g[i] * s->grad_scale; /* its own statement: -std=c11 fuses nothing across it */
    float pi = p[i] * s->decay;
    float mi = fmaf(s->one_minus_beta1, gi - m[i], m[i]);
    float vi = fmaf(s->one_minus_beta2 * gi, gi, v[i] * s->beta2);
    float denom = sqrtf(vi) / s->bc2_sqrt + s->eps;
    m[i] = mi;
    v[i] = vi;
    float pn = pi + s->neg_step_size * mi / denom;
    p[i] = pn;
    if (to16) p16[i] = bf16_from_f32(pn);
}

static void cpu_adamw_update(float *p, float *m, float *v, const float *g, size_t n, ops_adamw_scalars s,
                             uint16_t *p16) {
    if (p16) {
        #pragma omp parallel for simd schedule(static) if (parallel: n >= CPU_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) adamw_one(p, m, v, g, p16, 1, i, &s);
        return;
    }
    #pragma omp parallel for simd schedule(static) if (parallel: n >= CPU_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) adamw_one(p, m, v, g, NULL, 0, i, &s);
}

static double cpu_sum_squares(const float *x, size_t n) {
    double sum = 0.0;
    #pragma omp parallel for simd reduction(+ : sum) schedule(static) if (parallel: n >= CPU_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) sum += (double)x[i] * x[i];
    return sum;
}

static void cpu_scale(float *x, size_t n, float s) {
    #pragma omp parallel for simd schedule(static) if (parallel: n >= CPU_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

/* ------------------------------------------------------------------------------------------ */

static const bertc_backend cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .zero = cpu_zero,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .copy = cpu_copy,
    .embeddings_forward = cpu_embeddings_forward,
    .embeddings_backward = cpu_embeddings_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .layernorm_backward = cpu_layernorm_backward,
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .tanh_forward = cpu_tanh_forward,
    .tanh_backward = cpu_tanh_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .dropout_residual_forward = cpu_dropout_residual_forward,
    .first_token_forward = cpu_first_token_forward,
    .first_token_backward = cpu_first_token_backward,
    .rows_gather = cpu_rows_gather,
    .rows_scatter = cpu_rows_scatter,
    .crossentropy_forward = cpu_crossentropy_forward,
    .crossentropy_backward = cpu_crossentropy_backward,
    .adamw_update = cpu_adamw_update,
    .sum_squares = cpu_sum_squares,
    .scale = cpu_scale,
    /* bf16 products: backend/cpu/gemm.c (oneDNN where the CPU has AVX512-BF16, else a fallback) */
    .to_bf16 = bf16_convert,
    .matmul_forward_bf16 = gemm_linear_forward_bf16,
    .matmul_backward_bf16 = gemm_linear_backward_bf16,
    .residual_layernorm_forward = cpu_residual_layernorm_forward,
    .residual_layernorm_backward = cpu_residual_layernorm_backward,
    .bias_act_forward = cpu_bias_act_forward,
    .bias_act_forward_bf16 = cpu_bias_act_forward_bf16,
    .act_bias_backward = cpu_act_bias_backward,
    .residual_layernorm_forward_bf16 = cpu_residual_layernorm_forward_bf16,
    .residual_layernorm_backward_bf16 = cpu_residual_layernorm_backward_bf16,
    .act_bias_backward_bf16 = cpu_act_bias_backward_bf16,
    .bf16_emulated = gemm_bf16_fallback_reason,
    .keeps_dropout_draw = 1, /* the hash costs ten times a byte read on AVX2 (bench/dropout_hash.c) */
};

const bertc_backend *bertc_backend_cpu(void) {
    /* All threading is OpenMP's (see the top of this file): each sgemm runs on its caller. */
    openblas_set_num_threads(1);
    return &cpu_backend;
}
