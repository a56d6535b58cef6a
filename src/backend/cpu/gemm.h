/* bf16 mixed-precision matrix products for the CPU backend.
 *
 * bf16 ("brain float") is the upper half of an IEEE fp32: 1 sign bit, the same 8 exponent bits
 * (so the same range), 7 mantissa bits instead of 23 (about 3 significant decimal digits). A
 * product of bf16 inputs accumulated in fp32 loses only the inputs' rounding (relative 2^-9 each),
 * and CPUs with AVX512-BF16 (vdpbf16ps) or AMX run it at twice (AMX: many times) the fp32 rate.
 *
 * gemm_bf16 runs on oneDNN's matmul (AVX512-BF16 / AMX kernels) when bertc was built with oneDNN
 * and the CPU reports avx512bf16; otherwise, or when forced, on the fallback: the bf16 operands
 * widened to fp32 (exactly) and OpenBLAS sgemm. Both compute the same sums of the same products,
 * so they differ only in the order of fp32 additions. */
#ifndef BERTC_BACKEND_CPU_GEMM_H
#define BERTC_BACKEND_CPU_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/ops.h"

/* fp32 -> bf16 as backend/ops.h's ops_bf16_round (to nearest even, NaN to 0x7FC0) */
static inline uint16_t bf16_from_f32(float f) { return ops_bf16_round(f); }

/* bf16 -> fp32 is exact: the bf16 bits become the top half of the float. */
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* dst[i] = bf16_from_f32(src[i]) for n elements (vectorised, threaded when large). */
void bf16_convert(uint16_t *dst, const float *src, size_t n);
/* dst[i] = bf16_to_f32(src[i]). */
void bf16_widen(float *dst, const uint16_t *src, size_t n);

/* C (M,N) = op(A) (M,K) @ op(B) (K,N) [+ bias (N) on every row] [+ C when accumulate], row-major;
 * op(A) = A (M,K) with row stride lda, or A^T when trans_a (A is (K,M), stride lda); likewise B.
 * bf16 inputs, fp32 accumulation and output. Threads itself over the OpenMP threads: call it
 * from outside a parallel region. */
void gemm_bf16(int trans_a, int trans_b, int M, int N, int K, const uint16_t *A, int lda, const uint16_t *B,
               int ldb, const float *bias, int accumulate, float *C, int ldc);

/* Which implementation gemm_bf16 uses. AUTO: oneDNN where built in and the CPU has AVX512-BF16,
 * else the fallback; FALLBACK forces the fallback (tests compare the two; the environment variable
 * BERTC_BF16_FALLBACK=1 does the same for a whole run). */
typedef enum gemm_bf16_path { GEMM_BF16_AUTO, GEMM_BF16_FALLBACK } gemm_bf16_path;
void gemm_bf16_set_path(gemm_bf16_path p);
/* What the next gemm_bf16 call will run: "onednn" or "fallback". */
const char *gemm_bf16_impl(void);
/* Why the next gemm_bf16 call will run on the fallback, in a few words, or NULL when it runs on
 * oneDNN. */
const char *gemm_bf16_fallback_reason(void);

/* C (M,N) = alpha op(A) @ op(B) + beta C, row-major, fp32, op as in gemm_bf16, on the calling
 * thread (called from inside a parallel region: one chunk of a product, or one attention head).
 * oneDNN's sgemm where built in, else OpenBLAS. Used where oneDNN's was measured faster: a
 * Linear forward on few rows (one example's 128 tokens: about 1.3x OpenBLAS, which re-packs the
 * transposed weight) and attention's six products per (sequence, head) (the attention ops
 * 9-21% faster on a Zen 3; docs/PERFORMANCE.md, "A thread waiting on the other, and
 * attention's products"). */
void gemm_f32_1thread(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                      const float *B, int ldb, float beta, float *C, int ldc);

/* C (M,N) = alpha op(A) @ op(B) + beta C, row-major, fp32, as gemm_f32_1thread but one call
 * threaded over all the OpenMP threads by oneDNN itself: call it from outside a parallel region.
 * Where bertc was built without oneDNN it is never chosen (gemm_linear_threaded says no) and
 * falls back to one OpenBLAS call. */
void gemm_f32_threaded(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc);

/* How the fp32 Linear products of many rows (training and evaluation batches) run:
 *   THREADED  (the default) one oneDNN sgemm threaded by oneDNN (gemm_f32_threaded), where
 *             bertc was built with oneDNN and runs on more than one thread; else as CHUNKED
 *   CHUNKED   split into chunks over the OpenMP threads, single-threaded OpenBLAS in each
 * On a 2-core Zen 3 oneDNN's threaded products made a MiniLM step 5-7% faster and left
 * bert-base's unchanged (docs/PERFORMANCE.md, "Linear products threaded by oneDNN"). The
 * environment variable BERTC_LINEAR_GEMM=chunked|threaded chooses for a whole run (to compare
 * the two). */
typedef enum gemm_linear_path { GEMM_LINEAR_THREADED, GEMM_LINEAR_CHUNKED } gemm_linear_path;
void gemm_linear_set_path(gemm_linear_path p);
/* Whether a Linear product over `rows` rows, called from outside a parallel region, runs as one
 * threaded oneDNN call. */
int gemm_linear_threaded(int rows);

/* The Linear layer with bf16 products (backend/ops.h matmul_forward_bf16 / matmul_backward_bf16):
 * weight16 is the bf16 copy of the (OC,IC) weight; inp16 (N,IC) the bf16 copy of inp, filled
 * by forward unless inp16_ready and read by backward; dout is rounded into scratch (N*OC bf16);
 * out, dinp, dweight and dbias stay fp32 (dweight accumulated in fp32). */
void gemm_linear_forward_bf16(float *out, const float *inp, uint16_t *inp16, int inp16_ready,
                              const uint16_t *weight16, const float *bias, int N, int IC, int OC);
void gemm_linear_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const uint16_t *inp16,
                               const uint16_t *weight16, int N, int IC, int OC, int accumulate, uint16_t *scratch,
                               int scratch_ready);

#endif
