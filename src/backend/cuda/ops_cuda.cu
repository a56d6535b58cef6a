/* The CUDA backend: the op table of backend/ops.h on one NVIDIA GPU, in the spirit of llm.c's
 * train_gpt2.cu: cuBLAS for every matrix product, a few plain kernels for everything else,
 * everything on the default stream, no framework.
 *
 * Parity first. "cuda" is the fp32 engine that must reproduce the CPU backend: cuBLAS multiplies
 * in fp32 (no TF32; "cuda:tf32" and "cuda:bf16" use the tensor cores), transcendental functions are the
 * accurate ones (no --use_fast_math), and every reduction has a fixed order, so two runs give the
 * same bits. Several ops are bit-identical to the CPU's by construction: embeddings (backward
 * included: the same order of additions), dropout masks (the same hash, ops.h's dropout_keep
 * compiled for the device), AdamW (the same IEEE operations). The others differ from the CPU
 * by float rounding only (a sum taken in another order).
 *
 * Errors: a kernel or a cuBLAS call cannot return an error through the table, so the first one
 * is kept (last_error) and every later copy to the host is filled with NaN: the loss turns NaN,
 * the trainer stops, and the caller reads last_error for the reason.
 *
 * Shapes and conventions are those of backend/ops.h (row-major, parameter gradients accumulated). */
#include <cfloat>
#include <chrono>
#include <cmath>
#include <type_traits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifdef BERTC_CUDA_EMU
#include "backend/cuda/cuda_emu.h" /* the CPU stand-in for CUDA and cuBLAS that tests the kernels without a GPU */
#else
#include <cublas_v2.h>
#include <cuda_runtime.h>
#define LAUNCH(kernel, grid, block) kernel<<<grid, block>>>
#endif

#include "backend/ops.h"

/* ------------------------------------------------------------------------------------------
 * state: one cuBLAS handle, the first error, grow-only scratch buffers */

static cublasHandle_t g_blas;
static char g_error[512];
/* How cuBLAS multiplies the fp32 matrices: in fp32 (the parity mode), or on the tensor cores
 * after rounding the inputs to TF32 or bf16 inside the product (fp32 accumulation and fp32
 * storage either way; weights, activations and the optimiser stay fp32). */
static cublasComputeType_t g_compute = CUBLAS_COMPUTE_32F;
/* the attention's batched products: g_compute, and bf16 tensor cores for a bf16 model, unless
 * BERTC_CUDA_ATTN_MATH (fp32, tf32 or bf16) says otherwise for both (an experiment switch) */
static cublasComputeType_t g_attn_compute = CUBLAS_COMPUTE_32F, g_attn16_compute = CUBLAS_COMPUTE_32F_FAST_16BF;
static double g_gemm_flops; /* floating-point operations of all products so far (for the profile) */

static void record_error(const char *what, const char *detail) {
    if (!g_error[0]) snprintf(g_error, sizeof g_error, "CUDA: %s: %s", what, detail);
}

#define CU(call)                                                                 \
    do {                                                                         \
        cudaError_t e_ = (call);                                                 \
        if (e_ != cudaSuccess) record_error(#call, cudaGetErrorString(e_));      \
    } while (0)
#define CB(call)                                                                 \
    do {                                                                         \
        cublasStatus_t s_ = (call);                                              \
        if (s_ != CUBLAS_STATUS_SUCCESS) record_error(#call, cublasGetStatusString(s_)); \
    } while (0)
#define LAUNCHED(name) CU(cudaGetLastError())

/* A device buffer that only grows (freed at exit by the driver). */
typedef struct scratch {
    void *p;
    size_t bytes;
} scratch;

static void *scratch_get(scratch *s, size_t bytes) {
    if (bytes > s->bytes) {
        if (s->p) CU(cudaFree(s->p));
        s->p = NULL;
        s->bytes = 0;
        if (cudaMalloc(&s->p, bytes) != cudaSuccess) {
            record_error("cudaMalloc (scratch)", cudaGetErrorString(cudaGetLastError()));
            s->p = NULL;
            return NULL;
        }
        s->bytes = bytes;
    }
    return s->p;
}

static scratch g_ptrs;    /* pointer arrays of the batched attention products */
static scratch g_partial; /* partial column sums and sums of squares */
static scratch g_embed;   /* the embedding gradient's first and last row of each key */

static inline unsigned blocks_for(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : (b > 2147483647u ? 2147483647u : b));
}

/* ------------------------------------------------------------------------------------------
 * memory */

static void *cu_alloc(size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is reported by the caller, not kept */
        return NULL;
    }
    if (cudaMemset(p, 0, bytes ? bytes : 1) != cudaSuccess) {
        (void)cudaGetLastError();
        cudaFree(p);
        return NULL;
    }
    return p;
}
static void cu_free(void *p) {
    if (p) CU(cudaFree(p));
}
static void cu_zero(void *p, size_t bytes) { CU(cudaMemsetAsync(p, 0, bytes, 0)); }
/* Large copies (weights, AdamW state: checkpoints and model files) go through two pinned
 * buffers: a copy from pageable memory ran at about 1 GB/s on an H100 machine, so writing
 * bert-base's checkpoint took longer than an epoch of training. While the GPU fills (or drains)
 * one buffer, the CPU moves the other's chunk. Small copies (a batch, the logits) go direct. */
static const size_t PINNED_CHUNK = (size_t)16 << 20, PINNED_MIN = (size_t)4 << 20;
static char *g_pinned[2];
static int g_pinned_state; /* 0 not tried yet, 1 ready, -1 unavailable (direct copies) */

static int pinned_ready(void) {
    if (g_pinned_state == 0) {
        g_pinned_state = -1;
        if (cudaMallocHost((void **)&g_pinned[0], PINNED_CHUNK) == cudaSuccess) {
            if (cudaMallocHost((void **)&g_pinned[1], PINNED_CHUNK) == cudaSuccess) g_pinned_state = 1;
            else cudaFreeHost(g_pinned[0]);
        }
        (void)cudaGetLastError();
    }
    return g_pinned_state == 1;
}

static void cu_to_device(void *dst, const void *src, size_t bytes) {
    if (bytes < PINNED_MIN || !pinned_ready()) {
        CU(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
        return;
    }
    for (size_t off = 0, i = 0; off < bytes; off += PINNED_CHUNK, i++) {
        size_t n = bytes - off < PINNED_CHUNK ? bytes - off : PINNED_CHUNK;
        char *buf = g_pinned[i & 1];
        /* the copy issued two chunks ago from this buffer must be done before it is refilled */
        if (i >= 2) CU(cudaStreamSynchronize(0));
        memcpy(buf, (const char *)src + off, n);
        CU(cudaMemcpyAsync((char *)dst + off, buf, n, cudaMemcpyHostToDevice, 0));
    }
    CU(cudaStreamSynchronize(0));
}

static void cu_to_host(void *dst, const void *src, size_t bytes) {
    if (bytes < PINNED_MIN || !pinned_ready()) {
        CU(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
    } else {
        size_t nchunks = (bytes + PINNED_CHUNK - 1) / PINNED_CHUNK;
        CU(cudaMemcpyAsync(g_pinned[0], src, bytes < PINNED_CHUNK ? bytes : PINNED_CHUNK, cudaMemcpyDeviceToHost, 0));
        for (size_t i = 0; i < nchunks; i++) {
            size_t off = i * PINNED_CHUNK, n = bytes - off < PINNED_CHUNK ? bytes - off : PINNED_CHUNK;
            CU(cudaStreamSynchronize(0)); /* chunk i has landed in its buffer */
            if (i + 1 < nchunks) { /* the next chunk into the other buffer while this one is moved */
                size_t off1 = off + PINNED_CHUNK, n1 = bytes - off1 < PINNED_CHUNK ? bytes - off1 : PINNED_CHUNK;
                CU(cudaMemcpyAsync(g_pinned[(i + 1) & 1], (const char *)src + off1, n1, cudaMemcpyDeviceToHost, 0));
            }
            memcpy((char *)dst + off, g_pinned[i & 1], n);
        }
    }
    /* all bits set: a NaN as a float, so a failed step cannot pass for a good one */
    if (g_error[0]) memset(dst, 0xff, bytes);
}
static void cu_copy(void *dst, const void *src, size_t bytes) {
    if (dst != src) CU(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}
static const char *cu_last_error(void) { return g_error; }

/* ------------------------------------------------------------------------------------------
 * reductions inside a warp */

__device__ inline float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* ------------------------------------------------------------------------------------------
 * matrix products: row-major semantics (as cblas_sgemm(CblasRowMajor, ...)) over column-major
 * cuBLAS. A row-major (M,N) matrix is a column-major (N,M) one, so C = op(A) op(B) is computed
 * as C^T = op(B)^T op(A)^T: the operands swap places, the transposition flags stay. */

static void gemm_rm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc) {
    g_gemm_flops += 2.0 * M * N * K;
    CB(cublasGemmEx(g_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                    CUDA_R_32F, ldb, A, CUDA_R_32F, lda, &beta, C, CUDA_R_32F, ldc, g_compute, CUBLAS_GEMM_DEFAULT));
}

/* gemm_rm with bf16 operands (A, B) and an fp32 result accumulated in fp32 (--precision bf16):
 * the tensor cores' native input, so no conversion happens inside the product. */
static void gemm_rm16(int ta, int tb, int M, int N, int K, float alpha, const uint16_t *A, int lda, const uint16_t *B,
                      int ldb, float beta, float *C, int ldc) {
    g_gemm_flops += 2.0 * M * N * K;
    CB(cublasGemmEx(g_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                    CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                    CUBLAS_GEMM_DEFAULT));
}

/* The same over `batch` (b, h) pairs whose operands are given by device pointer arrays. */
static void gemm_rm_batched(cublasComputeType_t ct, int ta, int tb, int M, int N, int K, float alpha,
                            const float *const *A, int lda, const float *const *B, int ldb, float beta,
                            float *const *C, int ldc, int batch) {
    g_gemm_flops += 2.0 * M * N * K * batch;
    CB(cublasGemmBatchedEx(g_blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha,
                           (const void *const *)B, CUDA_R_32F, ldb, (const void *const *)A, CUDA_R_32F, lda, &beta,
                           (void *const *)C, CUDA_R_32F, ldc, batch, ct, CUBLAS_GEMM_DEFAULT));
}

/* Where head h of sequence b starts in a tensor: base + b*bstride + h*hstride. */
typedef struct head_ptrs {
    const float *base;
    size_t bstride, hstride;
} head_ptrs;

__global__ void k_fill_ptrs(const float **out, head_ptrs a, head_ptrs b, head_ptrs c, int n, int NH) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    size_t bi = (size_t)(i / NH), h = (size_t)(i % NH);
    out[i] = a.base + bi * a.bstride + h * a.hstride;
    out[n + i] = b.base + bi * b.bstride + h * b.hstride;
    out[2 * n + i] = c.base + bi * c.bstride + h * c.hstride;
}

/* The pointer arrays of the batched products are a pure function of (A, B, C, n, NH), and a
 * planned model asks for the same few dozen every step (six per layer), so each is built once
 * and kept: a step then launches no k_fill_ptrs at all (72 launches fewer for bert-base; the
 * bf16 training step of bert-base on an H100 went from 12.1 to 11.8 ms, and 13.6 to 13.3). Past
 * PTR_CACHE_MAX distinct arrays (a process that plans many shapes) they are rebuilt in scratch
 * before each product, as before; the default stream orders the fill and the product. */
enum { PTR_CACHE_MAX = 512 };
typedef struct ptr_entry {
    head_ptrs a, b, c;
    int n, NH;
    const float **dev;
} ptr_entry;
static ptr_entry g_ptr_cache[PTR_CACHE_MAX];
static int g_ptr_cached;

static int same_head_ptrs(head_ptrs x, head_ptrs y) {
    return x.base == y.base && x.bstride == y.bstride && x.hstride == y.hstride;
}

static const float **head_ptr_arrays(head_ptrs A, head_ptrs B, head_ptrs C, int n, int NH) {
    for (int i = 0; i < g_ptr_cached; i++) {
        const ptr_entry *e = &g_ptr_cache[i];
        if (e->n == n && e->NH == NH && same_head_ptrs(e->a, A) && same_head_ptrs(e->b, B) && same_head_ptrs(e->c, C))
            return e->dev;
    }
    size_t bytes = 3 * (size_t)n * sizeof(float *);
    const float **ptrs = NULL;
    if (g_ptr_cached < PTR_CACHE_MAX && cudaMalloc((void **)&ptrs, bytes) == cudaSuccess) {
        g_ptr_cache[g_ptr_cached++] = (ptr_entry){A, B, C, n, NH, ptrs};
    } else {
        (void)cudaGetLastError(); /* a failed cudaMalloc here only means no caching */
        ptrs = (const float **)scratch_get(&g_ptrs, bytes);
        if (!ptrs) return NULL;
    }
    LAUNCH(k_fill_ptrs, blocks_for((size_t)n, 256), 256)(ptrs, A, B, C, n, NH);
    LAUNCHED(k_fill_ptrs);
    return ptrs;
}

/* One batched product over all (b, h): C_bh = alpha op(A_bh) op(B_bh) + beta C_bh, in compute type ct. */
static void head_gemm(cublasComputeType_t ct, int ta, int tb, int M, int N, int K, float alpha, head_ptrs A, int lda,
                      head_ptrs B, int ldb, float beta, head_ptrs C, int ldc, int B_, int NH) {
    int n = B_ * NH;
    const float **ptrs = head_ptr_arrays(A, B, C, n, NH);
    if (!ptrs) return;
    gemm_rm_batched(ct, ta, tb, M, N, K, alpha, ptrs, lda, ptrs + n, ldb, beta, (float *const *)(ptrs + 2 * n), ldc,
                    n);
}

/* ------------------------------------------------------------------------------------------
 * column sums in a fixed order: out[c] += sum_n f(n, c), with f = dout (bias gradients) and, for
 * LayerNorm, also f = (inp - mean) * rstd * dout (weight gradient). Rows are cut into chunks;
 * each block sums a strip of 32 (or 128, four per thread) columns of one chunk (8 row lanes,
 * then the lanes in order), and the chunks are added in order, by the strip's last block or by a
 * second kernel. (One kernel with a block per strip over all rows ran at 32 us per call on an
 * H100 against ~10 for these two: too few blocks to hide the loads.)
 * With dout16, the first pass also writes dout rounded to bf16 (the products' operand in a bf16
 * model's backward), which would otherwise be a pass of its own. */

static int aligned16(const void *p) { return (uintptr_t)p % 16 == 0; }

#define COLSUM_ROWS 64

/* W consecutive floats at p into v (W = 4: one 16-byte load; p 16-byte aligned) */
template <int W> __device__ inline void load_w(float *v, const float *p) {
    if constexpr (W == 4) {
        float4 q = *(const float4 *)p;
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
        v[0] = *p;
    }
}

/* v rounded to bf16 at p (W = 4: one 8-byte store, as k_to_bf16_x4; p 8-byte aligned) */
template <int W> __device__ inline void store_bf16_w(uint16_t *p, const float *v) {
    if constexpr (W == 4) {
        uint2 h;
        h.x = (uint32_t)ops_bf16_round(v[0]) | (uint32_t)ops_bf16_round(v[1]) << 16;
        h.y = (uint32_t)ops_bf16_round(v[2]) | (uint32_t)ops_bf16_round(v[3]) << 16;
        *(uint2 *)p = h;
    } else {
        *p = ops_bf16_round(v[0]);
    }
}

/* One block's share of a column sum: the strip of 32 * W columns blockIdx.x over the chunk of rows
 * blockIdx.y into part_d (and part_dn) row blockIdx.y. Thread (x, y) owns W consecutive columns
 * and the rows r0 + y, r0 + y + 8, ...; its sums are added over y in order. Every column is
 * summed in the same order whatever W is, so W = 4 (16-byte loads along the row, for C a multiple
 * of 4: a warp reads 512 contiguous bytes of a row instead of 128) gives the same sums bit for
 * bit as W = 1. The loads of a thread's rows are issued together (a fixed, unrolled trip count),
 * then added in row order. Shared by the two-launch path (k_colsum_partial) and the one-launch
 * one (k_colsum_fused). */
template <int W>
__device__ inline void colsum_chunk(float *part_d, float *part_dn, uint16_t *dout16, const float *dout,
                                    const float *inp, const float *mean, const float *rstd, int N, int C) {
    __shared__ float sd[8][32 * W + 1], sdn[8][32 * W + 1];
    int c = (blockIdx.x * 32 + threadIdx.x) * W; /* W divides C: c < C covers all W columns */
    int r0 = blockIdx.y * COLSUM_ROWS;
    int r1 = min(N, r0 + COLSUM_ROWS);
    float acc[W], accn[W];
#pragma unroll
    for (int w = 0; w < W; w++) acc[w] = accn[w] = 0.0f;
    if (c < C) {
        float d[COLSUM_ROWS / 8][W];
#pragma unroll
        for (int i = 0; i < COLSUM_ROWS / 8; i++) {
            int r = r0 + threadIdx.y + 8 * i;
            if (r < r1) load_w<W>(d[i], dout + (size_t)r * C + c);
        }
#pragma unroll
        for (int i = 0; i < COLSUM_ROWS / 8; i++) {
            int r = r0 + threadIdx.y + 8 * i;
            if (r < r1) {
                size_t e = (size_t)r * C + c;
#pragma unroll
                for (int w = 0; w < W; w++) acc[w] += d[i][w];
                if (inp) {
                    float v[W], m = mean[r], sr = rstd[r];
                    load_w<W>(v, inp + e);
#pragma unroll
                    for (int w = 0; w < W; w++) accn[w] += (v[w] - m) * sr * d[i][w];
                }
                if (dout16) store_bf16_w<W>(dout16 + e, d[i]);
            }
        }
    }
#pragma unroll
    for (int w = 0; w < W; w++) {
        sd[threadIdx.y][threadIdx.x * W + w] = acc[w];
        sdn[threadIdx.y][threadIdx.x * W + w] = accn[w];
    }
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
#pragma unroll
        for (int w = 0; w < W; w++) {
            float s = 0.0f, sn = 0.0f;
            for (int y = 0; y < 8; y++) {
                s += sd[y][threadIdx.x * W + w];
                sn += sdn[y][threadIdx.x * W + w];
            }
            part_d[(size_t)blockIdx.y * C + c + w] = s;
            if (inp) part_dn[(size_t)blockIdx.y * C + c + w] = sn;
        }
    }
}

template <int W>
__global__ void k_colsum_partial(float *part_d, float *part_dn, uint16_t *dout16, const float *dout,
                                 const float *inp, const float *mean, const float *rstd, int N, int C) {
    colsum_chunk<W>(part_d, part_dn, dout16, dout, inp, mean, rstd, N, C);
}

__global__ void k_colsum_final(float *out_d, float *out_dn, const float *part_d, const float *part_dn, int chunks,
                               int C) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float s = 0.0f, sn = 0.0f;
    /* the loads do not depend on the sums: unrolled, they are in flight together */
#pragma unroll 8
    for (int k = 0; k < chunks; k++) s += part_d[(size_t)k * C + c];
    if (out_dn) {
#pragma unroll 8
        for (int k = 0; k < chunks; k++) sn += part_dn[(size_t)k * C + c];
    }
    out_d[c] += s;
    if (out_dn) out_dn[c] += sn;
}

/* k_colsum_partial and k_colsum_final in one launch (the default; BERTC_CUDA_COLSUM=split for
 * the two). Each block writes its chunk's partial sums, and the last block of a column strip to
 * finish (a counter per strip, after a __threadfence) adds the strip's chunks in chunk order, as
 * k_colsum_final does: the same sums bit for bit, one launch instead of two. */
template <int W>
__global__ void k_colsum_fused(float *out_d, float *out_dn, uint16_t *dout16, float *part_d, float *part_dn,
                               unsigned *strip_done, const float *dout, const float *inp, const float *mean,
                               const float *rstd, int N, int C) {
    __shared__ int last;
    colsum_chunk<W>(part_d, part_dn, dout16, dout, inp, mean, rstd, N, C);
    __threadfence(); /* this block's partials are visible to every block before it is counted */
    __syncthreads();
    if (threadIdx.x == 0 && threadIdx.y == 0) last = atomicAdd(&strip_done[blockIdx.x], 1u) == gridDim.y - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    int t = threadIdx.y * 32 + threadIdx.x, c = blockIdx.x * 32 * W + t; /* one column per thread */
    if (t < 32 * W && c < C) {
        /* __ldcg: the other blocks' partials from L2, not a stale L1 line; unrolled so that the
         * loads are in flight together, added in chunk order as k_colsum_final */
        float s = 0.0f, sn = 0.0f;
#pragma unroll 8
        for (int k = 0; k < (int)gridDim.y; k++) s += __ldcg(part_d + (size_t)k * C + c);
        if (inp) {
#pragma unroll 8
            for (int k = 0; k < (int)gridDim.y; k++) sn += __ldcg(part_dn + (size_t)k * C + c);
        }
        out_d[c] += s;
        if (inp) out_dn[c] += sn;
    }
    if (threadIdx.x == 0 && threadIdx.y == 0) strip_done[blockIdx.x] = 0; /* for the next call */
}

static int g_colsum_fused;        /* unless BERTC_CUDA_COLSUM=split */
static unsigned *g_strip_done;    /* k_colsum_fused's counters, zero between calls */
static int g_strip_done_n;

/* dsum (C) += column sums of dout (N,C); with inp, also dnorm (C) += sums of the normalised input
 * times dout; with dout16, dout16 (N,C) = dout rounded to bf16. */
static void colsum(float *dsum, float *dnorm, const float *dout, const float *inp, const float *mean,
                   const float *rstd, int N, int C, uint16_t *dout16 = NULL) {
    /* four columns per thread where the rows allow 16-byte loads (the same sums: colsum_chunk) */
    const int W = C % 4 == 0 && aligned16(dout) && (!inp || aligned16(inp)) && (uintptr_t)dout16 % 8 == 0
                      ? 4
                      : 1;
    int chunks = (N + COLSUM_ROWS - 1) / COLSUM_ROWS, strips = (C + 32 * W - 1) / (32 * W);
    float *part = (float *)scratch_get(&g_partial, 2 * (size_t)chunks * C * sizeof(float));
    if (!part) return;
    float *part_dn = part + (size_t)chunks * C;
    dim3 grid((unsigned)strips, (unsigned)chunks), block(32, 8);
    if (g_colsum_fused && strips > g_strip_done_n) { /* grown once, zeroed; the kernel re-zeroes */
        if (g_strip_done) CU(cudaFree(g_strip_done));
        g_strip_done = NULL;
        g_strip_done_n = 0;
        if (cudaMalloc((void **)&g_strip_done, (size_t)strips * sizeof(unsigned)) == cudaSuccess) {
            CU(cudaMemsetAsync(g_strip_done, 0, (size_t)strips * sizeof(unsigned), 0));
            g_strip_done_n = strips;
        } else {
            record_error("cudaMalloc (column-sum counters)", cudaGetErrorString(cudaGetLastError()));
            return;
        }
    }
    if (g_colsum_fused) {
        if (W == 4)
            LAUNCH(k_colsum_fused<4>, grid, block)(dsum, inp ? dnorm : NULL, dout16, part, part_dn, g_strip_done, dout,
                                                   inp, mean, rstd, N, C);
        else
            LAUNCH(k_colsum_fused<1>, grid, block)(dsum, inp ? dnorm : NULL, dout16, part, part_dn, g_strip_done, dout,
                                                   inp, mean, rstd, N, C);
        LAUNCHED(k_colsum_fused);
        return;
    }
    if (W == 4) LAUNCH(k_colsum_partial<4>, grid, block)(part, part_dn, dout16, dout, inp, mean, rstd, N, C);
    else LAUNCH(k_colsum_partial<1>, grid, block)(part, part_dn, dout16, dout, inp, mean, rstd, N, C);
    LAUNCHED(k_colsum_partial);
    LAUNCH(k_colsum_final, blocks_for((size_t)C, 128), 128)(dsum, inp ? dnorm : NULL, part, part_dn, chunks, C);
    LAUNCHED(k_colsum_final);
}

/* ------------------------------------------------------------------------------------------
 * embeddings */

__global__ void k_embeddings_forward(float *out, const int32_t *ids, const int32_t *types, const float *wte,
                                     const float *wpe, const float *wtt, int BT, int T, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)BT * C) return;
    size_t row = i / C, c = i % C, t = row % T;
    /* the CPU's (and HF's) order: (word + token_type) + position */
    out[i] = (wte[(size_t)ids[row] * C + c] + wtt[(size_t)types[row] * C + c]) + wpe[t * C + c];
}

static void cu_embeddings_forward(float *out, const int32_t *ids, const int32_t *types, const float *wte,
                                  const float *wpe, const float *wtt, int B, int T, int C) {
    size_t n = (size_t)B * T * C;
    LAUNCH(k_embeddings_forward, blocks_for(n, 256), 256)(out, ids, types, wte, wpe, wtt, B * T, T, C);
    LAUNCHED(k_embeddings_forward);
}

/* Token (and token-type) rows: the block of the FIRST row holding a given id adds, for its
 * channels, every row with that id in row order, so each table row is written by one block and
 * the additions come in the CPU's order. `key` is ids (skipping pad_id) or types (pad -1).
 * k_embed_span first finds each row's first and last row with the same key; a block whose row is
 * not the first returns at once, and the first scans only up to the last (tiles of match flags
 * in shared memory). Without the span, every first-occurrence block scanned the rest of the
 * batch, most of them for a word that occurs once: 0.36 ms per call for bert-base's 2,048 rows on
 * an H100 (and before the tiles, one thread walking all B*T keys per block: 10% of a step). */
#define EMBED_TILE 1024
#define EMBED_DEPTH 32

/* first[r], last[r]: the first and last row with key[r] (-1 for padding rows) */
__global__ void k_embed_span(int *first, int *last, const int32_t *key, int BT, int pad) {
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= BT) return;
    int id = key[r];
    if (id == pad) {
        first[r] = last[r] = -1;
        return;
    }
    int f = 0, l = BT - 1;
    while (key[f] != id) f++; /* stops at r at the latest */
    while (key[l] != id) l--;
    first[r] = f;
    last[r] = l;
}

__global__ void k_embed_scatter(float *dtable, const float *dout, const int32_t *key, const int *first,
                                const int *last, int C) {
    __shared__ unsigned char hit[EMBED_TILE];
    int r = blockIdx.x;
    if (first[r] != r) return; /* padding, or an earlier row owns this id: the whole block */
    int id = key[r], end = last[r] + 1;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    float acc = c < C ? dtable[(size_t)id * C + c] : 0.0f;
    for (int base = r; base < end; base += EMBED_TILE) {
        int n = min(EMBED_TILE, end - base);
        __syncthreads(); /* every thread is done with the previous tile's flags */
        for (int i = threadIdx.x; i < n; i += blockDim.x) hit[i] = key[base + i] == id;
        __syncthreads();
        if (c >= C) continue;
        const float *d0 = dout + (size_t)base * C + c;
        int i = 0;
        /* EMBED_DEPTH rows' loads in flight at a time, then the additions in row order: the type
         * table's one owner block takes nearly every row of the batch in sequence, so its time
         * is the number of load round trips (this call took ~0.3 ms per step of bert-base on an
         * H100 with conditional loads, 8 at a time) */
        for (; i + EMBED_DEPTH <= n; i += EMBED_DEPTH) {
            float d[EMBED_DEPTH];
            int all = 1; /* the same for every thread: the flags are shared */
#pragma unroll
            for (int u = 0; u < EMBED_DEPTH; u++) all &= hit[i + u];
            if (all) { /* plain loads: the conditional ones below were issued one at a time */
#pragma unroll
                for (int u = 0; u < EMBED_DEPTH; u++) d[u] = d0[(size_t)(i + u) * C];
#pragma unroll
                for (int u = 0; u < EMBED_DEPTH; u++) acc += d[u];
                continue;
            }
#pragma unroll
            for (int u = 0; u < EMBED_DEPTH; u++) d[u] = hit[i + u] ? d0[(size_t)(i + u) * C] : 0.0f;
#pragma unroll
            for (int u = 0; u < EMBED_DEPTH; u++)
                if (hit[i + u]) acc += d[u];
        }
        for (; i < n; i++)
            if (hit[i]) acc += d0[(size_t)i * C];
    }
    if (c < C) dtable[(size_t)id * C + c] = acc;
}

/* Positions: dwpe[t, c] += dout[b, t, c] for b in order. */
__global__ void k_embed_positions(float *dwpe, const float *dout, int B, int T, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)T * C) return;
    float acc = dwpe[i];
    for (int b = 0; b < B; b++) acc += dout[(size_t)b * T * C + i];
    dwpe[i] = acc;
}

static void cu_embeddings_backward(float *dwte, float *dwpe, float *dwtt, const float *dout, const int32_t *ids,
                                   const int32_t *types, int B, int T, int C, int pad_id) {
    int BT = B * T;
    int *span = (int *)scratch_get(&g_embed, 2 * (size_t)BT * sizeof(int));
    if (!span) return;
    dim3 grid((unsigned)BT, (unsigned)((C + 127) / 128));
    LAUNCH(k_embed_span, blocks_for((size_t)BT, 256), 256)(span, span + BT, ids, BT, pad_id < 0 ? -1 : pad_id);
    LAUNCHED(k_embed_span);
    LAUNCH(k_embed_scatter, grid, 128)(dwte, dout, ids, span, span + BT, C);
    LAUNCHED(k_embed_scatter);
    LAUNCH(k_embed_span, blocks_for((size_t)BT, 256), 256)(span, span + BT, types, BT, -1);
    LAUNCHED(k_embed_span);
    LAUNCH(k_embed_scatter, grid, 128)(dwtt, dout, types, span, span + BT, C);
    LAUNCHED(k_embed_scatter);
    LAUNCH(k_embed_positions, blocks_for((size_t)T * C, 256), 256)(dwpe, dout, B, T, C);
    LAUNCHED(k_embed_positions);
}

/* ------------------------------------------------------------------------------------------
 * layernorm: one warp per row, two passes as on the CPU */

/* The rest of a row's LayerNorm once each lane has summed its own elements of x into `lane_sum`:
 * shared by the plain and the fused (residual) forward, which differ only in how x is made.
 * Each lane reads back only the elements it wrote, so no synchronisation is needed. */
__device__ inline void layernorm_row_warp(float *o, float *mean, float *rstd, int row, const float *x, float lane_sum,
                                          const float *weight, const float *bias, int C, float eps, int lane) {
    float m = warp_sum(lane_sum) / (float)C;
    float v = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = x[c] - m;
        v += d * d;
    }
    v = warp_sum(v) / (float)C;
    float r = 1.0f / sqrtf(v + eps);
    for (int c = lane; c < C; c += 32) o[c] = (x[c] - m) * r * weight[c] + bias[c];
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}

__global__ void k_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                    const float *bias, int N, int C, float eps) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const float *x = inp + (size_t)row * C;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) s += x[c];
    layernorm_row_warp(out + (size_t)row * C, mean, rstd, row, x, s, weight, bias, C, eps, lane);
}

static void cu_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                                 const float *bias, int N, int C, float eps) {
    LAUNCH(k_layernorm_forward, blocks_for((size_t)N * 32, 256), 256)(out, mean, rstd, inp, weight, bias, N, C, eps);
    LAUNCHED(k_layernorm_forward);
}

/* cu_layernorm_backward: with the fused residual kernels below (it is their kernel without
 * dropout). */

/* ------------------------------------------------------------------------------------------
 * Linear */

/* out (N,OC) = the bias in every row: a block column per 256 outputs, rows strided over grid.y
 * (a 64-bit i % OC per element cost more than the store) */
__global__ void k_bias_rows(float *out, const float *bias, int N, int OC) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= OC) return;
    float b = bias[c];
    for (int r = blockIdx.y; r < N; r += gridDim.y) out[(size_t)r * OC + c] = b;
}

static void bias_rows(float *out, const float *bias, int N, int OC) {
    dim3 grid((unsigned)((OC + 255) / 256), (unsigned)(N < 65535 ? (N > 0 ? N : 1) : 65535));
    LAUNCH(k_bias_rows, grid, 256)(out, bias, N, OC);
    LAUNCHED(k_bias_rows);
}

static void cu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                              int OC) {
    float beta = 0.0f;
    if (bias) { /* start from the bias and let the product add to it, as the CPU does */
        bias_rows(out, bias, N, OC);
        beta = 1.0f;
    }
    /* out (N,OC) = inp (N,IC) @ weight^T, weight (OC,IC) */
    gemm_rm(0, 1, N, OC, IC, 1.0f, inp, IC, weight, IC, beta, out, OC);
}

static void cu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                               const float *weight, int N, int IC, int OC, int accumulate) {
    if (dinp) /* dinp (N,IC) (+)= dout (N,OC) @ weight (OC,IC) */
        gemm_rm(0, 0, N, IC, OC, 1.0f, dout, OC, weight, IC, accumulate ? 1.0f : 0.0f, dinp, IC);
    /* dweight (OC,IC) += dout^T @ inp */
    gemm_rm(1, 0, OC, IC, N, 1.0f, dout, OC, inp, IC, 1.0f, dweight, IC);
    if (dbias) colsum(dbias, NULL, dout, NULL, NULL, NULL, N, OC);
}

/* ------------------------------------------------------------------------------------------
 * bf16 mixed precision (--precision bf16): the model keeps a bf16 mirror of the encoder's
 * Linear weights and rounds each Linear input once per step; the products take bf16 operands
 * and write fp32 (backend/ops.h). The rounding is the CPU's bit for bit (to nearest even, NaN
 * to the quiet 0x7FC0), so both backends feed their products the same bf16 numbers. */


__global__ void k_to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dst[i] = ops_bf16_round(src[i]);
}

/* Four at a time: a 16-byte load and an 8-byte store per thread (one element per thread ran at
 * about half the memory bandwidth on an H100). src 16-byte and dst 8-byte aligned. */
__global__ void k_to_bf16_x4(uint2 *dst, const float4 *src, size_t n4) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n4; i += (size_t)gridDim.x * blockDim.x) {
        float4 v = src[i];
        uint2 o;
        o.x = (uint32_t)ops_bf16_round(v.x) | (uint32_t)ops_bf16_round(v.y) << 16; /* little-endian: x first */
        o.y = (uint32_t)ops_bf16_round(v.z) | (uint32_t)ops_bf16_round(v.w) << 16;
        dst[i] = o;
    }
}

static void cu_to_bf16(uint16_t *dst, const float *src, size_t n) {
    if (n == 0) return;
    /* grid-stride: a capped grid covers the 110M-element weight mirror as well as a bias row */
    size_t n4 = ((uintptr_t)src % 16 == 0 && (uintptr_t)dst % 8 == 0) ? n / 4 : 0;
    if (n4) {
        unsigned blocks = blocks_for(n4, 256);
        LAUNCH(k_to_bf16_x4, blocks < 65536u ? blocks : 65536u, 256)((uint2 *)dst, (const float4 *)src, n4);
        LAUNCHED(k_to_bf16_x4);
    }
    if (n > 4 * n4) {
        unsigned blocks = blocks_for(n - 4 * n4, 256);
        LAUNCH(k_to_bf16, blocks < 65536u ? blocks : 65536u, 256)(dst + 4 * n4, src + 4 * n4, n - 4 * n4);
        LAUNCHED(k_to_bf16);
    }
}

static void cu_matmul_forward_bf16(float *out, const float *inp, uint16_t *inp16, int inp16_ready,
                                   const uint16_t *weight16, const float *bias, int N, int IC, int OC) {
    if (!inp16_ready) cu_to_bf16(inp16, inp, (size_t)N * IC);
    float beta = 0.0f;
    if (bias) {
        bias_rows(out, bias, N, OC);
        beta = 1.0f;
    }
    /* out (N,OC) = inp16 (N,IC) @ weight16^T */
    gemm_rm16(0, 1, N, OC, IC, 1.0f, inp16, IC, weight16, IC, beta, out, OC);
}

static void cu_matmul_backward_bf16(float *dinp, float *dweight, float *dbias, const float *dout, const uint16_t *inp16,
                                    const uint16_t *weight16, int N, int IC, int OC, int accumulate,
                                    uint16_t *scratch, int scratch_ready) {
    /* dout rounded into scratch, the products' other operand (unless an op before did it): in the
     * bias gradient's pass over dout where there is one (the bias gradient from the fp32 dout, as
     * the CPU) */
    if (dbias) colsum(dbias, NULL, dout, NULL, NULL, NULL, N, OC, scratch_ready ? NULL : scratch);
    else if (!scratch_ready) cu_to_bf16(scratch, dout, (size_t)N * OC);
    if (dinp) /* dinp (N,IC) (+)= dout (N,OC) @ weight (OC,IC) */
        gemm_rm16(0, 0, N, IC, OC, 1.0f, scratch, OC, weight16, IC, accumulate ? 1.0f : 0.0f, dinp, IC);
    /* dweight (OC,IC) += dout^T @ inp */
    gemm_rm16(1, 0, OC, IC, N, 1.0f, scratch, OC, inp16, IC, 1.0f, dweight, IC);
}

/* ------------------------------------------------------------------------------------------
 * attention: two batched products around a fused mask + softmax (+ dropout) kernel, one warp
 * per row of scores; heads are read in place (row stride C for ctx, ldq for q, ldkv for k and v:
 * column blocks of the fused query/key/value product), never transposed. */

__global__ void k_softmax_forward(float *att, float *dropped, const int32_t *mask, int rows, int rows_per_seq, int T,
                                  float p, float keep_scale, uint64_t seed, uint64_t stream) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const int32_t *mk = mask + (size_t)(row / rows_per_seq) * T;
    float *S = att + (size_t)row * T;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += 32) {
        /* (1 - mask) * finfo(float32).min, added as Hugging Face does */
        float s = S[j] + (1.0f - (float)mk[j]) * -FLT_MAX;
        S[j] = s;
        mx = fmaxf(mx, s);
    }
    mx = warp_max(mx);
    float sum = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float e = expf(S[j] - mx);
        S[j] = e;
        sum += e;
    }
    float inv = 1.0f / warp_sum(sum);
    for (int j = lane; j < T; j += 32) {
        float P = S[j] * inv;
        S[j] = P;
        if (p > 0.0f) {
            size_t e = (size_t)row * T + j; /* index into the whole (B,NH,Tq,T) tensor */
            dropped[e] = dropout_keep(seed, stream, e, p) ? P * keep_scale : 0.0f;
        }
    }
}

/* dS = P * (dP' - sum_j P dP') * scale, with dP' = dP through the dropout; in place on dP. */
__global__ void k_softmax_backward(float *dP, const float *att, int rows, int T, float scale, float p,
                                   float keep_scale, uint64_t seed, uint64_t stream) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    const float *P = att + (size_t)row * T;
    float *d = dP + (size_t)row * T;
    float s = 0.0f;
    for (int j = lane; j < T; j += 32) {
        float g = d[j];
        if (p > 0.0f) g = dropout_keep(seed, stream, (size_t)row * T + j, p) ? g * keep_scale : 0.0f;
        d[j] = g;
        s += P[j] * g;
    }
    s = warp_sum(s);
    for (int j = lane; j < T; j += 32) d[j] = P[j] * (d[j] - s) * scale;
}

__global__ void k_dropout_copy(float *dst, const float *src, size_t n, float p, float keep_scale, uint64_t seed,
                               uint64_t stream) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dst[i] = dropout_keep(seed, stream, i, p) ? src[i] * keep_scale : 0.0f;
}

static void attention_forward_in(cublasComputeType_t ct, float *ctx, float *att, const float *q, const float *k,
                                 const float *v, const int32_t *mask, float *scratch, int B, int Tq, int T, int C,
                                 int NH, int ldq, int ldkv, float p_drop, uint64_t seed, uint64_t stream) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    float keep_scale = p_drop > 0.0f ? 1.0f / (1.0f - p_drop) : 1.0f;
    head_ptrs Q = {q, (size_t)Tq * ldq, (size_t)HS}, Kp = {k, (size_t)T * ldkv, (size_t)HS};
    head_ptrs V = {v, (size_t)T * ldkv, (size_t)HS}, CTX = {ctx, (size_t)Tq * C, (size_t)HS};
    head_ptrs S = {att, (size_t)NH * Tq * T, (size_t)Tq * T};
    head_ptrs PD = {p_drop > 0.0f ? scratch : att, (size_t)NH * Tq * T, (size_t)Tq * T};
    /* S (Tq,T) = q_h (Tq,HS) @ k_h^T * scale */
    head_gemm(ct, 0, 1, Tq, T, HS, scale, Q, ldq, Kp, ldkv, 0.0f, S, T, B, NH);
    int rows = B * NH * Tq;
    LAUNCH(k_softmax_forward, blocks_for((size_t)rows * 32, 256), 256)(att, scratch, mask, rows, NH * Tq, T, p_drop,
                                                                    keep_scale, seed, stream);
    LAUNCHED(k_softmax_forward);
    /* ctx_h (Tq,HS) = dropout(P) (Tq,T) @ v_h (T,HS) */
    head_gemm(ct, 0, 0, Tq, HS, T, 1.0f, PD, T, V, ldkv, 0.0f, CTX, C, B, NH);
}

static void attention_backward_in(cublasComputeType_t ct, float *dq, float *dk, float *dv, const float *dctx,
                                  const float *q, const float *k, const float *v, const float *att, float *scratch,
                                  int B, int Tq, int T, int C, int NH, int ldq, int ldkv, float p_drop, uint64_t seed,
                                  uint64_t stream) {
    int HS = C / NH;
    float scale = 1.0f / sqrtf((float)HS);
    float keep_scale = p_drop > 0.0f ? 1.0f / (1.0f - p_drop) : 1.0f;
    size_t total = (size_t)B * NH * Tq * T;
    const float *Pd = att;
    if (p_drop > 0.0f) { /* redraw the forward's dropped probabilities */
        LAUNCH(k_dropout_copy, blocks_for(total, 256), 256)(scratch, att, total, p_drop, keep_scale, seed, stream);
        LAUNCHED(k_dropout_copy);
        Pd = scratch;
    }
    float *dP = scratch + total;
    head_ptrs Q = {q, (size_t)Tq * ldq, (size_t)HS}, Kp = {k, (size_t)T * ldkv, (size_t)HS};
    head_ptrs V = {v, (size_t)T * ldkv, (size_t)HS}, DCTX = {dctx, (size_t)Tq * C, (size_t)HS};
    head_ptrs DQ = {dq, (size_t)Tq * ldq, (size_t)HS}, DK = {dk, (size_t)T * ldkv, (size_t)HS};
    head_ptrs DV = {dv, (size_t)T * ldkv, (size_t)HS};
    head_ptrs PD = {Pd, (size_t)NH * Tq * T, (size_t)Tq * T}, DP = {dP, (size_t)NH * Tq * T, (size_t)Tq * T};
    /* dv (T,HS) = Pd^T (T,Tq) @ dctx (Tq,HS);  dPd (Tq,T) = dctx @ v^T */
    head_gemm(ct, 1, 0, T, HS, Tq, 1.0f, PD, T, DCTX, C, 0.0f, DV, ldkv, B, NH);
    head_gemm(ct, 0, 1, Tq, T, HS, 1.0f, DCTX, C, V, ldkv, 0.0f, DP, T, B, NH);
    int rows = B * NH * Tq;
    LAUNCH(k_softmax_backward, blocks_for((size_t)rows * 32, 256), 256)(dP, att, rows, T, scale, p_drop, keep_scale, seed,
                                                                     stream);
    LAUNCHED(k_softmax_backward);
    /* dq (Tq,HS) = dS (Tq,T) @ k (T,HS);  dk (T,HS) = dS^T (T,Tq) @ q (Tq,HS) */
    head_gemm(ct, 0, 0, Tq, HS, T, 1.0f, DP, T, Kp, ldkv, 0.0f, DQ, ldq, B, NH);
    head_gemm(ct, 1, 0, T, HS, Tq, 1.0f, DP, T, Q, ldq, 0.0f, DK, ldkv, B, NH);
}

static void cu_attention_forward(float *ctx, float *att, const float *q, const float *k, const float *v,
                                 const int32_t *mask, float *scratch, int B, int Tq, int T, int C, int NH, int ldq,
                                 int ldkv, float p_drop, uint64_t seed, uint64_t stream, uint8_t *keep) {
    (void)keep; /* keeps_dropout_draw is 0: the device redraws the mask in backward */
    attention_forward_in(g_attn_compute, ctx, att, q, k, v, mask, scratch, B, Tq, T, C, NH, ldq, ldkv, p_drop, seed,
                         stream);
}
static void cu_attention_backward(float *dq, float *dk, float *dv, const float *dctx, const float *q, const float *k,
                                  const float *v, const float *att, float *scratch, int B, int Tq, int T, int C,
                                  int NH, int ldq, int ldkv, float p_drop, uint64_t seed, uint64_t stream,
                                  const uint8_t *keep) {
    (void)keep;
    attention_backward_in(g_attn_compute, dq, dk, dv, dctx, q, k, v, att, scratch, B, Tq, T, C, NH, ldq, ldkv, p_drop,
                          seed, stream);
}
/* --precision bf16: the products on the tensor cores, fp32 operands rounded to bf16 inside cuBLAS
 * (CUBLAS_COMPUTE_32F_FAST_16BF). On an H100 that took the bf16 training step of bert-base from
 * 11.84 to 11.53 ms (docs/GPU.md): the fp32 products ran on the CUDA cores. */
static void cu_attention_forward_bf16(float *ctx, float *att, const float *q, const float *k, const float *v,
                                      const int32_t *mask, float *scratch, int B, int Tq, int T, int C, int NH,
                                      int ldq, int ldkv, float p_drop, uint64_t seed, uint64_t stream,
                                      uint8_t *keep) {
    (void)keep;
    attention_forward_in(g_attn16_compute, ctx, att, q, k, v, mask, scratch, B, Tq, T, C, NH, ldq, ldkv, p_drop, seed,
                         stream);
}
static void cu_attention_backward_bf16(float *dq, float *dk, float *dv, const float *dctx, const float *q,
                                       const float *k, const float *v, const float *att, float *scratch, int B,
                                       int Tq, int T, int C, int NH, int ldq, int ldkv, float p_drop, uint64_t seed,
                                       uint64_t stream, const uint8_t *keep) {
    (void)keep;
    attention_backward_in(g_attn16_compute, dq, dk, dv, dctx, q, k, v, att, scratch, B, Tq, T, C, NH, ldq, ldkv, p_drop,
                          seed, stream);
}

/* ------------------------------------------------------------------------------------------
 * activations, tanh */

#define GELU_TANH_SCALE 0.7978845608028654f /* sqrt(2/pi) */
#define INV_SQRT_2PI 0.3989422804014327f
#define SQRT1_2 0.70710678118654752440f

__global__ void k_act_forward(int act, float *out, const float *inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = inp[i];
    if (act == OPS_ACT_GELU) out[i] = 0.5f * x * (1.0f + erff(x * SQRT1_2));
    else if (act == OPS_ACT_GELU_NEW) out[i] = 0.5f * x * (1.0f + tanhf(GELU_TANH_SCALE * (x + 0.044715f * x * x * x)));
    else out[i] = x > 0.0f ? x : 0.0f;
}

__global__ void k_act_backward(int act, float *dinp, const float *dout, const float *inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float x = inp[i], g;
    if (act == OPS_ACT_GELU) {
        float cdf = 0.5f * (1.0f + erff(x * SQRT1_2));
        float pdf = INV_SQRT_2PI * expf(-0.5f * x * x);
        g = cdf + x * pdf;
    } else if (act == OPS_ACT_GELU_NEW) {
        float th = tanhf(GELU_TANH_SCALE * (x + 0.044715f * x * x * x));
        float du = GELU_TANH_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
        g = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
    } else {
        g = x > 0.0f ? 1.0f : 0.0f; /* torch: zero gradient at x == 0 */
    }
    dinp[i] = act == OPS_ACT_RELU ? (x > 0.0f ? dout[i] : 0.0f) : dout[i] * g;
}

static void cu_act_forward(ops_act act, float *out, const float *inp, size_t N) {
    LAUNCH(k_act_forward, blocks_for(N, 256), 256)((int)act, out, inp, N);
    LAUNCHED(k_act_forward);
}
static void cu_act_backward(ops_act act, float *dinp, const float *dout, const float *inp, size_t N) {
    LAUNCH(k_act_backward, blocks_for(N, 256), 256)((int)act, dinp, dout, inp, N);
    LAUNCHED(k_act_backward);
}

__global__ void k_tanh_forward(float *out, const float *inp, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = tanhf(inp[i]);
}
__global__ void k_tanh_backward(float *dinp, const float *dout, const float *out, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) dinp[i] = dout[i] * (1.0f - out[i] * out[i]);
}
static void cu_tanh_forward(float *out, const float *inp, size_t N) {
    LAUNCH(k_tanh_forward, blocks_for(N, 256), 256)(out, inp, N);
    LAUNCHED(k_tanh_forward);
}
static void cu_tanh_backward(float *dinp, const float *dout, const float *out, size_t N) {
    LAUNCH(k_tanh_backward, blocks_for(N, 256), 256)(dinp, dout, out, N);
    LAUNCHED(k_tanh_backward);
}

/* ------------------------------------------------------------------------------------------
 * dropout and residual: masks from ops.h's dropout_keep, the same bits as the CPU's */

__global__ void k_dropout_residual(float *out, float *x, const float *res, size_t n, float p, float keep_scale,
                                   uint64_t seed, uint64_t stream) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float xd = x[i];
    if (p > 0.0f) {
        xd = dropout_keep(seed, stream, i, p) ? xd * keep_scale : 0.0f;
        x[i] = xd;
    }
    out[i] = res[i] + xd;
}

/* keep: ignored (keeps_dropout_draw is 0): the device redraws the mask in backward, where its
 * hash is cheap and a byte per element is not */
static void cu_dropout_forward(float *x, size_t N, float p, uint64_t seed, uint64_t stream, uint8_t *keep) {
    (void)keep;
    if (p <= 0.0f) return;
    LAUNCH(k_dropout_copy, blocks_for(N, 256), 256)(x, x, N, p, 1.0f / (1.0f - p), seed, stream);
    LAUNCHED(k_dropout_copy);
}
static void cu_dropout_backward(float *dinp, const float *dout, size_t N, float p, uint64_t seed, uint64_t stream,
                                const uint8_t *keep) {
    (void)keep;
    if (p <= 0.0f) {
        cu_copy(dinp, dout, N * sizeof(float));
        return;
    }
    LAUNCH(k_dropout_copy, blocks_for(N, 256), 256)(dinp, dout, N, p, 1.0f / (1.0f - p), seed, stream);
    LAUNCHED(k_dropout_copy);
}
static void cu_dropout_residual_forward(float *out, float *x, const float *res, size_t N, float p, uint64_t seed,
                                        uint64_t stream) {
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    LAUNCH(k_dropout_residual, blocks_for(N, 256), 256)(out, x, res, N, p, keep_scale, seed, stream);
    LAUNCHED(k_dropout_residual);
}

/* ------------------------------------------------------------------------------------------
 * fused ops (backend/ops.h): the end of a sub-block (bias, dropout, residual, LayerNorm) and the
 * FFN's bias + activation, each one kernel where the composition takes several, plus the column
 * sums in colsum's fixed order. */

/* res = inp_res + dropout(x + xbias), out = LayerNorm(res): one warp per row, res written in the
 * first pass and read back by the same lanes (so no synchronisation is needed). */
__global__ void k_residual_layernorm_forward(float *out, float *res, float *mean, float *rstd, const float *x,
                                             const float *xbias, const float *inp_res, const float *weight,
                                             const float *bias, int N, int C, float eps, float p, float keep_scale,
                                             uint64_t seed, uint64_t stream) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t base = (size_t)row * C;
    float *r = res + base, *o = out + base;
    float s = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float v = xbias ? x[base + c] + xbias[c] : x[base + c];
        if (p > 0.0f) v = dropout_keep(seed, stream, base + (size_t)c, p) ? v * keep_scale : 0.0f;
        v += inp_res[base + c];
        r[c] = v;
        s += v;
    }
    layernorm_row_warp(o, mean, rstd, row, r, s, weight, bias, C, eps, lane);
}

/* The same for C = 128 * V (768 in bert-base, 384 in MiniLM): each lane keeps its 4V elements of
 * the row in registers and moves them with 16-byte loads and stores, all issued before the
 * first is used (the one-element loop above waits on each load in turn: 25 us per call for
 * bert-base's 2048 x 768 on an H100, several times the memory traffic's time). Each element
 * goes through the same operations in the same order as above, so res is the same bit for
 * bit; mean and rstd are summed in another order. */
__device__ inline float4 f4_add(float4 a, float4 b) { return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w); }

template <int V>
__global__ void k_residual_layernorm_forward_v(float *out, float *res, float *mean, float *rstd, const float *x,
                                               const float *xbias, const float *inp_res, const float *weight,
                                               const float *bias, uint2 *out16, int N, float eps, float p,
                                               float keep_scale, uint64_t seed, uint64_t stream) {
    const int C = 128 * V;
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t base = (size_t)row * C;
    float4 v[V];
#pragma unroll
    for (int k = 0; k < V; k++) v[k] = *(const float4 *)(x + base + (size_t)(k * 32 + lane) * 4);
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < V; k++) {
        int c = (k * 32 + lane) * 4;
        float4 a = v[k];
        if (xbias) a = f4_add(a, *(const float4 *)(xbias + c));
        if (p > 0.0f) {
            size_t i = base + (size_t)c;
            a.x = dropout_keep(seed, stream, i, p) ? a.x * keep_scale : 0.0f;
            a.y = dropout_keep(seed, stream, i + 1, p) ? a.y * keep_scale : 0.0f;
            a.z = dropout_keep(seed, stream, i + 2, p) ? a.z * keep_scale : 0.0f;
            a.w = dropout_keep(seed, stream, i + 3, p) ? a.w * keep_scale : 0.0f;
        }
        a = f4_add(a, *(const float4 *)(inp_res + base + c));
        *(float4 *)(res + base + c) = a;
        v[k] = a;
        s += (a.x + a.y) + (a.z + a.w);
    }
    float m = warp_sum(s) / (float)C, q = 0.0f;
#pragma unroll
    for (int k = 0; k < V; k++) {
        float dx = v[k].x - m, dy = v[k].y - m, dz = v[k].z - m, dw = v[k].w - m;
        q += (dx * dx + dy * dy) + (dz * dz + dw * dw);
    }
    float r = 1.0f / sqrtf(warp_sum(q) / (float)C + eps);
#pragma unroll
    for (int k = 0; k < V; k++) {
        int c = (k * 32 + lane) * 4;
        float4 w = *(const float4 *)(weight + c), b = *(const float4 *)(bias + c), a = v[k];
        float4 o = make_float4((a.x - m) * r * w.x + b.x, (a.y - m) * r * w.y + b.y, (a.z - m) * r * w.z + b.z,
                               (a.w - m) * r * w.w + b.w);
        *(float4 *)(out + base + c) = o;
        if (out16) { /* as k_to_bf16_x4: little-endian, x first */
            uint2 h;
            h.x = (uint32_t)ops_bf16_round(o.x) | (uint32_t)ops_bf16_round(o.y) << 16;
            h.y = (uint32_t)ops_bf16_round(o.z) | (uint32_t)ops_bf16_round(o.w) << 16;
            out16[(base + c) / 4] = h;
        }
    }
    if (lane == 0) {
        mean[row] = m;
        rstd[row] = r;
    }
}


/* with out16 (NULL: the fp32 op), also out rounded to bf16: in the kernel's pass where it can,
 * else by cu_to_bf16 after it */
static void cu_residual_layernorm_forward_bf16(float *out, uint16_t *out16, float *res, float *mean, float *rstd,
                                               const float *x, const float *xbias, const float *inp_res,
                                               const float *weight, const float *bias, int N, int C, float eps,
                                               float p, uint64_t seed, uint64_t stream, uint8_t *keep) {
    (void)keep; /* redrawn in backward, as cu_dropout_forward's */
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    if (C % 128 == 0 && C <= 1024 && aligned16(out) && aligned16(res) && aligned16(x) && aligned16(inp_res) &&
        aligned16(weight) && aligned16(bias) && (!xbias || aligned16(xbias)) && (uintptr_t)out16 % 8 == 0) {
        dim3 grid = blocks_for((size_t)N * 32, 256);
#define RLN_V(V)                                                                                                 \
    case V:                                                                                                      \
        LAUNCH(k_residual_layernorm_forward_v<V>, grid, 256)(out, res, mean, rstd, x, xbias, inp_res, weight, bias, \
                                                             (uint2 *)out16, N, eps, p, keep_scale, seed, stream); \
        LAUNCHED(k_residual_layernorm_forward_v);                                                                \
        return;
        switch (C / 128) {
            RLN_V(1) RLN_V(2) RLN_V(3) RLN_V(4) RLN_V(5) RLN_V(6) RLN_V(7) RLN_V(8)
        }
#undef RLN_V
    }
    LAUNCH(k_residual_layernorm_forward, blocks_for((size_t)N * 32, 256), 256)(out, res, mean, rstd, x, xbias, inp_res,
                                                                             weight, bias, N, C, eps, p, keep_scale,
                                                                             seed, stream);
    LAUNCHED(k_residual_layernorm_forward);
    if (out16) cu_to_bf16(out16, out, (size_t)N * C);
}

static void cu_residual_layernorm_forward(float *out, float *res, float *mean, float *rstd, const float *x,
                                          const float *xbias, const float *inp_res, const float *weight,
                                          const float *bias, int N, int C, float eps, float p, uint64_t seed,
                                          uint64_t stream, uint8_t *keep) {
    cu_residual_layernorm_forward_bf16(out, NULL, res, mean, rstd, x, xbias, inp_res, weight, bias, N, C, eps, p, seed,
                                       stream, keep);
}

/* LayerNorm backward, one warp per row: dres = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm *
 * norm)), dnorm = dout * weight (dres may alias dout: each lane reads its elements before writing
 * them); with dx, also the dropout's input gradient dx = dropout_backward(dres). Without dx it is
 * the plain LayerNorm backward (cu_layernorm_backward). */
__global__ void k_residual_layernorm_backward(float *dres, float *dx, const float *dout, const float *res,
                                              const float *weight, const float *mean, const float *rstd, int N, int C,
                                              float p, float keep_scale, uint64_t seed, uint64_t stream) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t base = (size_t)row * C;
    const float *x = res + base, *d = dout + base;
    float m = mean[row], s = rstd[row];
    float a = 0.0f, b = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float norm = (x[c] - m) * s, dn = d[c] * weight[c];
        a += dn;
        b += dn * norm;
    }
    a = warp_sum(a) / (float)C;
    b = warp_sum(b) / (float)C;
    for (int c = lane; c < C; c += 32) {
        float norm = (x[c] - m) * s, dn = d[c] * weight[c];
        float g = s * (dn - a - norm * b);
        dres[base + c] = g;
        if (dx) dx[base + c] = dropout_keep(seed, stream, base + (size_t)c, p) ? g * keep_scale : 0.0f;
    }
}

static void cu_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                  const float *weight, const float *mean, const float *rstd, int N, int C) {
    colsum(dbias, dweight, dout, inp, mean, rstd, N, C); /* before dinp may overwrite dout */
    LAUNCH(k_residual_layernorm_backward, blocks_for((size_t)N * 32, 256), 256)(dinp, nullptr, dout, inp, weight, mean,
                                                                              rstd, N, C, 0.0f, 1.0f, (uint64_t)0, (uint64_t)0);
    LAUNCHED(k_residual_layernorm_backward);
}

/* with dx16 (NULL: the fp32 op): the bf16 rounding of the result (dx, or dres without dropout),
 * written in dxbias's column-sum pass */
static void cu_residual_layernorm_backward_bf16(float *dres, float *dx, uint16_t *dx16, float *dxbias,
                                                float *dweight, float *dbias, const float *dout, const float *res,
                                                const float *weight, const float *mean, const float *rstd, int N,
                                                int C, float p, uint64_t seed, uint64_t stream,
                                                const uint8_t *keep) {
    (void)keep; /* redrawn */
    if (p <= 0.0f) dx = NULL; /* no dropout: dres is dx */
    float keep_scale = p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
    colsum(dbias, dweight, dout, res, mean, rstd, N, C); /* before dres may overwrite dout */
    LAUNCH(k_residual_layernorm_backward, blocks_for((size_t)N * 32, 256), 256)(dres, dx, dout, res, weight, mean, rstd,
                                                                              N, C, p, keep_scale, seed, stream);
    LAUNCHED(k_residual_layernorm_backward);
    if (dxbias) colsum(dxbias, NULL, dx ? dx : dres, NULL, NULL, NULL, N, C, dx16);
    else if (dx16) cu_to_bf16(dx16, dx ? dx : dres, (size_t)N * C);
}

static void cu_residual_layernorm_backward(float *dres, float *dx, float *dxbias, float *dweight, float *dbias,
                                           const float *dout, const float *res, const float *weight,
                                           const float *mean, const float *rstd, int N, int C, float p,
                                           uint64_t seed, uint64_t stream, const uint8_t *keep) {
    cu_residual_layernorm_backward_bf16(dres, dx, NULL, dxbias, dweight, dbias, dout, res, weight, mean, rstd, N, C, p,
                                        seed, stream, keep);
}

__device__ inline float act_value(int act, float x) {
    if (act == OPS_ACT_GELU) return 0.5f * x * (1.0f + erff(x * SQRT1_2));
    if (act == OPS_ACT_GELU_NEW) return 0.5f * x * (1.0f + tanhf(GELU_TANH_SCALE * (x + 0.044715f * x * x * x)));
    return x > 0.0f ? x : 0.0f;
}

/* pre (N,F) += bias in place, out = act(pre) */
__global__ void k_bias_act_forward(int act, float *out, float *pre, const float *bias, size_t n, int F) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = pre[i] + bias[i % F];
    pre[i] = v;
    out[i] = act_value(act, v);
}

static void cu_bias_act_forward(ops_act act, float *out, float *pre, const float *bias, int N, int F) {
    size_t n = (size_t)N * F;
    LAUNCH(k_bias_act_forward, blocks_for(n, 256), 256)((int)act, out, pre, bias, n, F);
    LAUNCHED(k_bias_act_forward);
}

/* pre (N,F) += bias in place, out16 = act(pre) rounded to bf16 (the next product's input) */
__global__ void k_bias_act_forward_bf16(int act, uint16_t *out16, float *pre, const float *bias, size_t n, int F) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = pre[i] + bias[i % F];
    pre[i] = v;
    out16[i] = ops_bf16_round(act_value(act, v));
}

static void cu_bias_act_forward_bf16(ops_act act, uint16_t *out16, float *pre, const float *bias, int N, int F) {
    size_t n = (size_t)N * F;
    LAUNCH(k_bias_act_forward_bf16, blocks_for(n, 256), 256)((int)act, out16, pre, bias, n, F);
    LAUNCHED(k_bias_act_forward_bf16);
}

/* dinp = dout * act'(pre) (k_act_backward, may alias dout), then dbias += its column sums, with
 * dinp's bf16 rounding (dinp16; NULL: the fp32 op) written in the column sums' pass */
static void cu_act_bias_backward_bf16(ops_act act, float *dinp, uint16_t *dinp16, float *dbias, const float *dout,
                                      const float *pre, int N, int F) {
    size_t n = (size_t)N * F;
    LAUNCH(k_act_backward, blocks_for(n, 256), 256)((int)act, dinp, dout, pre, n);
    LAUNCHED(k_act_backward);
    if (dbias) colsum(dbias, NULL, dinp, NULL, NULL, NULL, N, F, dinp16);
    else if (dinp16) cu_to_bf16(dinp16, dinp, n);
}

static void cu_act_bias_backward(ops_act act, float *dinp, float *dbias, const float *dout, const float *pre, int N,
                                 int F) {
    cu_act_bias_backward_bf16(act, dinp, NULL, dbias, dout, pre, N, F);
}

/* ------------------------------------------------------------------------------------------
 * first token */

__global__ void k_first_token_forward(float *out, const float *inp, int B, int T, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)B * C) out[i] = inp[(i / C) * (size_t)T * C + i % C];
}
__global__ void k_first_token_backward(float *dinp, const float *dout, int B, int T, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * T * C) return;
    size_t b = i / ((size_t)T * C), t = (i / C) % T;
    dinp[i] = t == 0 ? dout[b * C + i % C] : 0.0f;
}
static void cu_first_token_forward(float *out, const float *inp, int B, int T, int C) {
    LAUNCH(k_first_token_forward, blocks_for((size_t)B * C, 256), 256)(out, inp, B, T, C);
    LAUNCHED(k_first_token_forward);
}
static void cu_first_token_backward(float *dinp, const float *dout, int B, int T, int C) {
    LAUNCH(k_first_token_backward, blocks_for((size_t)B * T * C, 256), 256)(dinp, dout, B, T, C);
    LAUNCHED(k_first_token_backward);
}

/* ------------------------------------------------------------------------------------------
 * rows by index (the masked-LM head's gather and scatter) */

__global__ void k_rows_gather(float *out, const float *inp, const int32_t *rows, int n, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)n * C) out[i] = inp[(size_t)rows[i / C] * C + i % C];
}
__global__ void k_rows_scatter(float *out, const float *inp, const int32_t *rows, int n, int C) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < (size_t)n * C) out[(size_t)rows[i / C] * C + i % C] = inp[i];
}
static void cu_rows_gather(float *out, const float *inp, const int32_t *rows, int n, int C) {
    if (n <= 0) return;
    LAUNCH(k_rows_gather, blocks_for((size_t)n * C, 256), 256)(out, inp, rows, n, C);
    LAUNCHED(k_rows_gather);
}
static void cu_rows_scatter(float *out, const float *inp, const int32_t *rows, int n, int C) {
    if (n <= 0) return;
    LAUNCH(k_rows_scatter, blocks_for((size_t)n * C, 256), 256)(out, inp, rows, n, C);
    LAUNCHED(k_rows_scatter);
}

/* ------------------------------------------------------------------------------------------
 * cross-entropy: one thread per row, in double as on the CPU (K is a handful of labels) */

__global__ void k_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *labels, int B,
                                       int K, float eps) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    losses[b] = crossentropy_row(probs + (size_t)b * K, logits + (size_t)b * K, K, labels[b], eps);
}

__global__ void k_crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels, int B, int K,
                                        float eps, float dloss) {
    int b = blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= B) return;
    float *d = dlogits + (size_t)b * K;
    const float *p = probs + (size_t)b * K;
    int y = labels[b];
    for (int j = 0; j < K; j++) {
        if (y < 0 || y >= K) {
            d[j] = 0.0f;
            continue;
        }
        float target = eps / (float)K + (j == y ? 1.0f - eps : 0.0f);
        d[j] = (p[j] - target) * dloss;
    }
}

static void cu_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *labels, int B,
                                    int K, float eps) {
    LAUNCH(k_crossentropy_forward, blocks_for((size_t)B, 128), 128)(losses, probs, logits, labels, B, K, eps);
    LAUNCHED(k_crossentropy_forward);
}
static void cu_crossentropy_backward(float *dlogits, const float *probs, const int32_t *labels, int B, int K,
                                     float eps, float dloss) {
    LAUNCH(k_crossentropy_backward, blocks_for((size_t)B, 128), 128)(dlogits, probs, labels, B, K, eps, dloss);
    LAUNCHED(k_crossentropy_backward);
}

/* ------------------------------------------------------------------------------------------
 * optimiser: AdamW in the CPU's exact IEEE operations (fmaf, correctly rounded sqrt and
 * division: nvcc's defaults without --use_fast_math), so the update is bit-identical */

/* element i, with its range's decay and step (s's own are not read) */
__device__ inline void adamw_element(float *p, float *m, float *v, const float *g, uint16_t *p16, size_t i,
                                     float decay, float neg_step_size, const ops_adamw_scalars &s) {
    float gi = __fmul_rn(g[i], s.grad_scale); /* never contracted into the fma below */
    float pi = p[i] * decay;
    float mi = fmaf(s.one_minus_beta1, gi - m[i], m[i]);
    float vi = fmaf(s.one_minus_beta2 * gi, gi, v[i] * s.beta2);
    float denom = __fdiv_rn(__fsqrt_rn(vi), s.bc2_sqrt) + s.eps;
    m[i] = mi;
    v[i] = vi;
    float pn = __fadd_rn(pi, __fdiv_rn(__fmul_rn(neg_step_size, mi), denom));
    p[i] = pn;
    if (p16) p16[i] = ops_bf16_round(pn); /* the mirror in the same pass, not a to_bf16 kernel after */
}

__global__ void k_adamw(float *p, float *m, float *v, const float *g, uint16_t *p16, size_t n, ops_adamw_scalars s) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) adamw_element(p, m, v, g, p16, i, s.decay, s.neg_step_size, s);
}

static void cu_adamw_update(float *p, float *m, float *v, const float *g, size_t n, ops_adamw_scalars s,
                            uint16_t *p16) {
    LAUNCH(k_adamw, blocks_for(n, 256), 256)(p, m, v, g, p16, n, s);
    LAUNCHED(k_adamw);
}

/* The ranges of cu_adamw_update_segments, passed by value (3 KB of kernel parameters): element
 * j of the concatenated ranges is in range k where start[k] <= j < start[k + 1]. */
typedef struct adamw_ranges {
    long long start[OPS_ADAMW_MAX_SEGMENTS + 1], offset[OPS_ADAMW_MAX_SEGMENTS];
    float decay[OPS_ADAMW_MAX_SEGMENTS], step[OPS_ADAMW_MAX_SEGMENTS];
    int n;
} adamw_ranges;

__global__ void k_adamw_ranges(float *p, float *m, float *v, const float *g, uint16_t *p16, adamw_ranges r,
                               ops_adamw_scalars s) {
    long long j = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= r.start[r.n]) return;
    int lo = 0, hi = r.n - 1; /* the last range whose start is <= j */
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (r.start[mid] <= j) lo = mid;
        else hi = mid - 1;
    }
    adamw_element(p, m, v, g, p16, (size_t)(r.offset[lo] + (j - r.start[lo])), r.decay[lo], r.step[lo], s);
}

static void cu_adamw_update_segments(float *p, float *m, float *v, const float *g, const ops_adamw_segment *seg,
                                     int nseg, ops_adamw_scalars s, uint16_t *p16) {
    if (nseg <= 0) return;
    if (nseg > OPS_ADAMW_MAX_SEGMENTS) {
        record_error("adamw_update_segments", "more ranges than OPS_ADAMW_MAX_SEGMENTS");
        return;
    }
    adamw_ranges r;
    memset(&r, 0, sizeof r);
    r.n = nseg;
    for (int k = 0; k < nseg; k++) {
        r.start[k + 1] = r.start[k] + (long long)seg[k].numel;
        r.offset[k] = (long long)seg[k].offset;
        r.decay[k] = seg[k].decay;
        r.step[k] = seg[k].neg_step_size;
    }
    LAUNCH(k_adamw_ranges, blocks_for((size_t)r.start[nseg], 256), 256)(p, m, v, g, p16, r, s);
    LAUNCHED(k_adamw_ranges);
}

#define SUMSQ_BLOCKS 512

__device__ inline double sumsq4(float4 a) {
    return (((double)a.x * a.x + (double)a.y * a.y) + (double)a.z * a.z) + (double)a.w * a.w;
}

/* Fixed grid and fixed tree: the same sum, bit for bit, on every run. 16-byte loads, four in
 * flight per thread: one float at a time, bert-base's 110M gradients took 0.35 ms on an H100,
 * over twice the time to read them. */
__global__ void k_sumsq_partial(double *part, const float *x, size_t n) {
    __shared__ double sh[256];
    double acc = 0.0;
    size_t stride = (size_t)gridDim.x * blockDim.x, t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t n4 = ((uintptr_t)x % 16 == 0) ? n / 4 : 0; /* the arenas are aligned; a view may not be */
    const float4 *x4 = (const float4 *)x;
    size_t i = t;
    for (; i + 3 * stride < n4; i += 4 * stride) {
        float4 a = x4[i], b = x4[i + stride], c = x4[i + 2 * stride], d = x4[i + 3 * stride];
        acc += sumsq4(a);
        acc += sumsq4(b);
        acc += sumsq4(c);
        acc += sumsq4(d);
    }
    for (; i < n4; i += stride) acc += sumsq4(x4[i]);
    for (size_t j = 4 * n4 + t; j < n; j += stride) acc += (double)x[j] * x[j];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) part[blockIdx.x] = sh[0];
}

__global__ void k_sumsq_final(double *part, int nblocks) {
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    double s = 0.0;
    for (int i = 0; i < nblocks; i++) s += part[i];
    part[nblocks] = s;
}

static double cu_sum_squares(const float *x, size_t n) {
    double *part = (double *)scratch_get(&g_partial, (SUMSQ_BLOCKS + 1) * sizeof(double));
    if (!part) return NAN;
    LAUNCH(k_sumsq_partial, SUMSQ_BLOCKS, 256)(part, x, n);
    LAUNCHED(k_sumsq_partial);
    LAUNCH(k_sumsq_final, 1, 32)(part, SUMSQ_BLOCKS);
    LAUNCHED(k_sumsq_final);
    double s = NAN;
    CU(cudaMemcpy(&s, part + SUMSQ_BLOCKS, sizeof s, cudaMemcpyDeviceToHost));
    return g_error[0] ? NAN : s;
}

__global__ void k_scale(float *x, size_t n, float s) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= s;
}
static void cu_scale(float *x, size_t n, float s) {
    LAUNCH(k_scale, blocks_for(n, 256), 256)(x, n, s);
    LAUNCHED(k_scale);
}

/* ------------------------------------------------------------------------------------------ */

/* designated (C++20), so a field added to ops.h cannot shift the others */
static const bertc_backend cuda_backend = {
#ifdef BERTC_CUDA_EMU
    .name = "cuda-emulated",
#else
    .name = "cuda",
#endif
    .alloc = cu_alloc,
    .free = cu_free,
    .zero = cu_zero,
    .to_device = cu_to_device,
    .to_host = cu_to_host,
    .copy = cu_copy,
    .embeddings_forward = cu_embeddings_forward,
    .embeddings_backward = cu_embeddings_backward,
    .layernorm_forward = cu_layernorm_forward,
    .layernorm_backward = cu_layernorm_backward,
    .matmul_forward = cu_matmul_forward,
    .matmul_backward = cu_matmul_backward,
    .attention_forward = cu_attention_forward,
    .attention_backward = cu_attention_backward,
    .act_forward = cu_act_forward,
    .act_backward = cu_act_backward,
    .tanh_forward = cu_tanh_forward,
    .tanh_backward = cu_tanh_backward,
    .dropout_forward = cu_dropout_forward,
    .dropout_backward = cu_dropout_backward,
    .dropout_residual_forward = cu_dropout_residual_forward,
    .first_token_forward = cu_first_token_forward,
    .first_token_backward = cu_first_token_backward,
    .rows_gather = cu_rows_gather,
    .rows_scatter = cu_rows_scatter,
    .crossentropy_forward = cu_crossentropy_forward,
    .crossentropy_backward = cu_crossentropy_backward,
    .adamw_update = cu_adamw_update,
    .adamw_update_segments = cu_adamw_update_segments,
    .sum_squares = cu_sum_squares,
    .scale = cu_scale,
    .last_error = cu_last_error,
    .to_bf16 = cu_to_bf16,
    .matmul_forward_bf16 = cu_matmul_forward_bf16,
    .matmul_backward_bf16 = cu_matmul_backward_bf16,
    .bias_act_forward_bf16 = cu_bias_act_forward_bf16,
    .attention_forward_bf16 = cu_attention_forward_bf16,
    .attention_backward_bf16 = cu_attention_backward_bf16,
    .residual_layernorm_forward = cu_residual_layernorm_forward,
    .residual_layernorm_backward = cu_residual_layernorm_backward,
    .residual_layernorm_forward_bf16 = cu_residual_layernorm_forward_bf16,
    .residual_layernorm_backward_bf16 = cu_residual_layernorm_backward_bf16,
    .bias_act_forward = cu_bias_act_forward,
    .act_bias_backward = cu_act_bias_backward,
    .act_bias_backward_bf16 = cu_act_bias_backward_bf16,
    .bf16_emulated = nullptr, /* bf16 products run on the tensor cores */
    .keeps_dropout_draw = 0, /* the ops take keep and redraw: the hash is cheap on a GPU, a byte per element is not */
};

/* ------------------------------------------------------------------------------------------
 * BERTC_CUDA_PROFILE=1: the same table with every op timed (the device synchronised before and
 * after it, so the figures are each op's own, launches included), reported on stderr at exit as
 * a table of time per op and the products' TFLOP/s. For finding where a step's time goes with
 * no profiler at hand; it slows the run. */

enum { PROF_MAX = 42 };
static const char *g_prof_name[PROF_MAX];
static double g_prof_ms[PROF_MAX], g_prof_flops[PROF_MAX];
static long g_prof_calls[PROF_MAX];

static double now_ms(void) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <int ID, auto F> struct timed;
template <int ID, typename R, typename... Args, R (*F)(Args...)> struct timed<ID, F> {
    static R call(Args... args) {
        cudaDeviceSynchronize();
        double t0 = now_ms(), f0 = g_gemm_flops;
        if constexpr (std::is_void_v<R>) {
            F(args...);
            cudaDeviceSynchronize();
            add(t0, f0);
        } else {
            R r = F(args...);
            cudaDeviceSynchronize();
            add(t0, f0);
            return r;
        }
    }
    static void add(double t0, double f0) {
        g_prof_ms[ID] += now_ms() - t0;
        g_prof_flops[ID] += g_gemm_flops - f0;
        g_prof_calls[ID]++;
    }
};

static void prof_report(void) {
    double total = 0;
    for (int i = 0; i < PROF_MAX; i++) total += g_prof_ms[i];
    fprintf(stderr, "bertc CUDA profile (BERTC_CUDA_PROFILE): %.1f ms in ops\n%-26s %9s %10s %6s %10s %9s\n", total, "op",
            "calls", "total ms", "%", "mean us", "TFLOP/s");
    int done[PROF_MAX] = {0};
    for (;;) { /* largest first */
        int best = -1;
        for (int i = 0; i < PROF_MAX; i++)
            if (!done[i] && g_prof_calls[i] && (best < 0 || g_prof_ms[i] > g_prof_ms[best])) best = i;
        if (best < 0) break;
        done[best] = 1;
        fprintf(stderr, "%-26s %9ld %10.1f %6.1f %10.1f", g_prof_name[best], g_prof_calls[best], g_prof_ms[best],
                100.0 * g_prof_ms[best] / (total > 0 ? total : 1), 1e3 * g_prof_ms[best] / g_prof_calls[best]);
        if (g_prof_flops[best] > 0) fprintf(stderr, " %9.1f", g_prof_flops[best] / (g_prof_ms[best] * 1e9));
        fputc('\n', stderr);
    }
}

#define TIMED(id, f) (g_prof_name[id] = #f + 3, timed<id, f>::call)

static bertc_backend profiled_table(void) {
    bertc_backend t = cuda_backend;
    t.zero = TIMED(0, cu_zero);
    t.to_device = TIMED(1, cu_to_device);
    t.to_host = TIMED(2, cu_to_host);
    t.copy = TIMED(3, cu_copy);
    t.embeddings_forward = TIMED(4, cu_embeddings_forward);
    t.embeddings_backward = TIMED(5, cu_embeddings_backward);
    t.layernorm_forward = TIMED(6, cu_layernorm_forward);
    t.layernorm_backward = TIMED(7, cu_layernorm_backward);
    t.matmul_forward = TIMED(8, cu_matmul_forward);
    t.matmul_backward = TIMED(9, cu_matmul_backward);
    t.attention_forward = TIMED(10, cu_attention_forward);
    t.attention_backward = TIMED(11, cu_attention_backward);
    t.attention_forward_bf16 = TIMED(34, cu_attention_forward_bf16);
    t.attention_backward_bf16 = TIMED(35, cu_attention_backward_bf16);
    t.act_forward = TIMED(12, cu_act_forward);
    t.act_backward = TIMED(13, cu_act_backward);
    t.tanh_forward = TIMED(14, cu_tanh_forward);
    t.tanh_backward = TIMED(15, cu_tanh_backward);
    t.dropout_forward = TIMED(16, cu_dropout_forward);
    t.dropout_backward = TIMED(17, cu_dropout_backward);
    t.dropout_residual_forward = TIMED(18, cu_dropout_residual_forward);
    t.first_token_forward = TIMED(19, cu_first_token_forward);
    t.first_token_backward = TIMED(20, cu_first_token_backward);
    t.crossentropy_forward = TIMED(21, cu_crossentropy_forward);
    t.crossentropy_backward = TIMED(22, cu_crossentropy_backward);
    t.adamw_update = TIMED(23, cu_adamw_update);
    t.sum_squares = TIMED(24, cu_sum_squares);
    t.scale = TIMED(25, cu_scale);
    t.residual_layernorm_forward = TIMED(26, cu_residual_layernorm_forward);
    t.residual_layernorm_backward = TIMED(27, cu_residual_layernorm_backward);
    t.bias_act_forward = TIMED(28, cu_bias_act_forward);
    t.act_bias_backward = TIMED(29, cu_act_bias_backward);
    t.to_bf16 = TIMED(30, cu_to_bf16);
    t.matmul_forward_bf16 = TIMED(31, cu_matmul_forward_bf16);
    t.matmul_backward_bf16 = TIMED(32, cu_matmul_backward_bf16);
    t.bias_act_forward_bf16 = TIMED(33, cu_bias_act_forward_bf16);
    t.residual_layernorm_forward_bf16 = TIMED(36, cu_residual_layernorm_forward_bf16);
    t.residual_layernorm_backward_bf16 = TIMED(37, cu_residual_layernorm_backward_bf16);
    t.act_bias_backward_bf16 = TIMED(38, cu_act_bias_backward_bf16);
    t.adamw_update_segments = TIMED(39, cu_adamw_update_segments);
    t.rows_gather = TIMED(40, cu_rows_gather);
    t.rows_scatter = TIMED(41, cu_rows_scatter);
    return t;
}

static bertc_backend cuda_profiled;

extern "C" const bertc_backend *bertc_backend_cuda(const char *math, char *why, size_t why_size) {
    static int ready = 0;
    cublasComputeType_t compute;
    if (!math || !*math || !strcmp(math, "fp32")) compute = CUBLAS_COMPUTE_32F;
    else if (!strcmp(math, "tf32")) compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    else if (!strcmp(math, "bf16")) compute = CUBLAS_COMPUTE_32F_FAST_16BF;
    else {
        snprintf(why, why_size, "--device cuda:%.32s: unknown precision (cuda, cuda:tf32 or cuda:bf16)", math);
        return NULL;
    }
    /* BERTC_CUDA_TF32=1 turns TF32 on for plain "cuda" too (as NVIDIA_TF32_OVERRIDE does the other way) */
    const char *tf32 = getenv("BERTC_CUDA_TF32");
    if (compute == CUBLAS_COMPUTE_32F && tf32 && tf32[0] == '1') compute = CUBLAS_COMPUTE_32F_FAST_TF32;
    const char *prof = getenv("BERTC_CUDA_PROFILE");
    const bertc_backend *table = prof && prof[0] == '1' ? &cuda_profiled : &cuda_backend;
    cublasComputeType_t attn = compute, attn16 = CUBLAS_COMPUTE_32F_FAST_16BF;
    /* the experiment switches: a value they do not know is refused, not ignored */
    const char *cs = getenv("BERTC_CUDA_COLSUM");
    if (cs && *cs && strcmp(cs, "fused") && strcmp(cs, "split")) {
        snprintf(why, why_size, "BERTC_CUDA_COLSUM=%.32s: expected fused or split", cs);
        return NULL;
    }
    /* fused, the default since an H100 timed it (10.01 against 10.10-10.26 ms per bf16 step) */
    g_colsum_fused = !(cs && !strcmp(cs, "split"));
    const char *am = getenv("BERTC_CUDA_ATTN_MATH");
    if (am && !strcmp(am, "fp32")) attn = attn16 = CUBLAS_COMPUTE_32F;
    else if (am && !strcmp(am, "tf32")) attn = attn16 = CUBLAS_COMPUTE_32F_FAST_TF32;
    else if (am && !strcmp(am, "bf16")) attn = attn16 = CUBLAS_COMPUTE_32F_FAST_16BF;
    else if (am && *am) {
        snprintf(why, why_size, "BERTC_CUDA_ATTN_MATH=%.32s: expected fp32, tf32 or bf16", am);
        return NULL;
    }
    if (ready) {
        g_compute = compute;
        g_attn_compute = attn;
        g_attn16_compute = attn16;
        return table;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(why, why_size, "--device cuda: no CUDA device found (cudaGetDeviceCount: %s)",
                 e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
        (void)cudaGetLastError();
        return NULL;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess) {
        snprintf(why, why_size, "--device cuda: cannot use device 0 (cudaSetDevice: %s)", cudaGetErrorString(e));
        return NULL;
    }
    cublasStatus_t s = cublasCreate(&g_blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(why, why_size, "--device cuda: cuBLAS did not start (cublasCreate: %s)", cublasGetStatusString(s));
        return NULL;
    }
    /* the math mode stays the default (no TF32 behind our back); g_compute chooses per product */
    cublasSetMathMode(g_blas, CUBLAS_DEFAULT_MATH);
    g_compute = compute;
    g_attn_compute = attn;
    g_attn16_compute = attn16;
    if (table == &cuda_profiled) {
        cuda_profiled = profiled_table();
        atexit(prof_report);
    }
    ready = 1;
    return table;
}
