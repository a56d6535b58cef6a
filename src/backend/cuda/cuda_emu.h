/* Just enough of CUDA and cuBLAS, on the CPU, to run ops_cuda.cu's own kernels where there is
 * no GPU: the Makefile compiles ops_cuda.cu with g++ and -DBERTC_CUDA_EMU into
 * libbertc_cuda_emu.so, and `make test` runs test_cuda against it (BERTC_CUDA_LIB), so every
 * kernel's indexing, every row-major-to-cuBLAS mapping and the device plumbing are checked
 * against the CPU backend in CI. What it cannot tell: speed, races between real threads, and
 * anything about the GPU itself (memory, the tensor-core modes, which run in fp32 here).
 *
 * A launch runs the grid's blocks one after another; each block's threads are fibers
 * (ucontext) on one OS thread, switched only at barriers. __syncthreads and warp shuffles are
 * block-wide barriers here, which is exact for this file's kernels: every live thread of a block
 * reaches the same barriers (rows beyond the end retire whole warps before any shuffle).
 * __shared__ arrays are function statics: blocks do not overlap, so one copy serves them all.
 * Device memory is host memory. */
#ifndef BERTC_CUDA_EMU_H
#define BERTC_CUDA_EMU_H

#include <cblas.h>
#include <ucontext.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __shared__ static

using std::min;

struct alignas(16) float4 { /* CUDA's vector types, for 16- and 8-byte loads and stores */
    float x, y, z, w;
};
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
struct alignas(8) uint2 {
    unsigned x, y;
};

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

/* ---- fibers ---- */

struct emu_fiber {
    ucontext_t ctx;
    dim3 tid;
    int lin;   /* linear thread index in the block */
    int state; /* 0 runnable, 1 at a barrier, 2 finished */
};

inline emu_fiber *emu_cur;
inline ucontext_t emu_sched;
inline dim3 emu_block, emu_bdim, emu_grid;
inline const std::function<void()> *emu_body;
inline float emu_xchg[1024];

#define threadIdx (emu_cur->tid)
#define blockIdx emu_block
#define blockDim emu_bdim
#define gridDim emu_grid

inline void emu_barrier() {
    emu_cur->state = 1;
    swapcontext(&emu_cur->ctx, &emu_sched);
}
#define __syncthreads() emu_barrier()
/* One OS thread runs every block in turn, so memory is always coherent and an atomic is a plain
 * read-modify-write. */
inline void __threadfence() {}
inline float __ldcg(const float *p) { return *p; } /* a load that bypasses L1: plain here */
inline unsigned atomicAdd(unsigned *p, unsigned v) {
    unsigned old = *p;
    *p = old + v;
    return old;
}

inline float __shfl_xor_sync(unsigned, float v, int lane_mask) {
    int t = emu_cur->lin;
    emu_xchg[t] = v;
    emu_barrier();
    float r = emu_xchg[(t & ~31) | ((t & 31) ^ lane_mask)];
    emu_barrier(); /* nobody overwrites a slot before every lane has read */
    return r;
}

inline void emu_entry() {
    (*emu_body)();
    emu_cur->state = 2; /* uc_link returns to the scheduler */
}

/* the fibers' stacks, kept across launches and freed at exit */
struct emu_stacks {
    std::vector<char *> v;
    ~emu_stacks() {
        for (char *p : v) free(p);
    }
};

inline void emu_run(dim3 g, dim3 b, const std::function<void()> &body) {
    enum { STACK = 64 * 1024 };
    static emu_stacks owned;
    std::vector<char *> &stacks = owned.v;
    static std::vector<emu_fiber> fibers;
    int nt = (int)(b.x * b.y * b.z);
    while ((int)stacks.size() < nt) stacks.push_back((char *)malloc(STACK));
    fibers.resize((size_t)nt);
    emu_grid = g;
    emu_bdim = b;
    emu_body = &body;
    for (unsigned bz = 0; bz < g.z; bz++)
        for (unsigned by = 0; by < g.y; by++)
            for (unsigned bx = 0; bx < g.x; bx++) {
                emu_block = dim3(bx, by, bz);
                for (int t = 0; t < nt; t++) {
                    emu_fiber &f = fibers[(size_t)t];
                    f.lin = t;
                    f.tid = dim3((unsigned)t % b.x, ((unsigned)t / b.x) % b.y, (unsigned)t / (b.x * b.y));
                    f.state = 0;
                    getcontext(&f.ctx);
                    f.ctx.uc_stack.ss_sp = stacks[(size_t)t];
                    f.ctx.uc_stack.ss_size = STACK;
                    f.ctx.uc_link = &emu_sched;
                    makecontext(&f.ctx, emu_entry, 0);
                }
                for (;;) { /* run every runnable fiber to its next barrier, then release them all */
                    for (int t = 0; t < nt; t++) {
                        if (fibers[(size_t)t].state != 0) continue;
                        emu_cur = &fibers[(size_t)t];
                        swapcontext(&emu_sched, &emu_cur->ctx);
                    }
                    int waiting = 0;
                    for (int t = 0; t < nt; t++)
                        if (fibers[(size_t)t].state == 1) fibers[(size_t)t].state = 0, waiting++;
                    if (!waiting) break;
                }
            }
}

template <typename... P> struct emu_launch {
    void (*kernel)(P...);
    dim3 grid, block;
    template <typename... A> void operator()(A... args) const {
        std::function<void()> body = [&] { kernel(static_cast<P>(args)...); };
        emu_run(grid, block, body);
    }
};
template <typename... P> emu_launch<P...> emu_launcher(void (*kernel)(P...), dim3 grid, dim3 block) {
    return {kernel, grid, block};
}
#define LAUNCH(kernel, grid, block) emu_launcher(kernel, grid, block)

/* ---- device arithmetic: the IEEE operations the intrinsics name ---- */

inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fmul_rn(float a, float b) { return a * b; }

/* ---- runtime ---- */

typedef int cudaError_t;
#define cudaSuccess 0
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
inline cudaError_t cudaMalloc(void **p, size_t n) {
    *p = calloc(1, n ? n : 1);
    return *p ? 0 : 2;
}
inline cudaError_t cudaFree(void *p) {
    free(p);
    return 0;
}
inline cudaError_t cudaMemset(void *p, int v, size_t n) {
    memset(p, v, n);
    return 0;
}
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, void *) { return cudaMemset(p, v, n); }
inline cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind) {
    memmove(d, s, n);
    return 0;
}
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, void *) {
    return cudaMemcpy(d, s, n, k);
}
inline cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
inline cudaError_t cudaStreamSynchronize(void *) { return 0; }
inline cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return 0;
}
inline cudaError_t cudaSetDevice(int) { return 0; }
inline cudaError_t cudaGetLastError() { return 0; }
inline cudaError_t cudaDeviceSynchronize() { return 0; }
inline const char *cudaGetErrorString(cudaError_t) { return "emulated CUDA error"; }

/* ---- cuBLAS: column-major products by cblas_sgemm (every precision runs in fp32 here) ---- */

typedef int cublasStatus_t;
typedef void *cublasHandle_t;
typedef int cublasOperation_t;
typedef int cublasComputeType_t;
typedef int cudaDataType;
typedef int cublasGemmAlgo_t;
typedef int cublasMath_t;
#define CUBLAS_STATUS_SUCCESS 0
#define CUBLAS_OP_N 0
#define CUBLAS_OP_T 1
#define CUBLAS_COMPUTE_32F 0
#define CUBLAS_COMPUTE_32F_FAST_TF32 1
#define CUBLAS_COMPUTE_32F_FAST_16BF 2
#define CUDA_R_32F 0
#define CUDA_R_16BF 14
#define CUBLAS_GEMM_DEFAULT 0
#define CUBLAS_DEFAULT_MATH 0

inline cublasStatus_t cublasCreate(cublasHandle_t *h) {
    *h = nullptr;
    return 0;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return 0; }
inline const char *cublasGetStatusString(cublasStatus_t) { return "emulated cuBLAS error"; }

/* A column-major operand of `rows` x `cols` (leading dimension ld) as fp32: itself, or a bf16
 * one widened (exactly) into `keep`. */
inline const float *emu_operand(const void *p, cudaDataType t, int rows, int cols, int ld, std::vector<float> &keep) {
    if (t != CUDA_R_16BF) return (const float *)p;
    size_t n = cols > 0 ? (size_t)(cols - 1) * ld + rows : 0;
    keep.resize(n);
    const uint16_t *h = (const uint16_t *)p;
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)h[i] << 16;
        memcpy(&keep[i], &u, sizeof u);
    }
    return keep.data();
}

inline cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void *alpha, const void *A, cudaDataType at, int lda, const void *B,
                                   cudaDataType bt, int ldb, const void *beta, void *C, cudaDataType, int ldc,
                                   cublasComputeType_t, cublasGemmAlgo_t) {
    std::vector<float> a32, b32;
    const float *a = emu_operand(A, at, ta ? k : m, ta ? m : k, lda, a32);
    const float *b = emu_operand(B, bt, tb ? n : k, tb ? k : n, ldb, b32);
    cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k,
                *(const float *)alpha, a, lda, b, ldb, *(const float *)beta, (float *)C, ldc);
    return 0;
}

inline cublasStatus_t cublasGemmBatchedEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                          int k, const void *alpha, const void *const A[], cudaDataType at, int lda,
                                          const void *const B[], cudaDataType bt, int ldb, const void *beta,
                                          void *const C[], cudaDataType ct, int ldc, int batch, cublasComputeType_t c,
                                          cublasGemmAlgo_t g) {
    for (int i = 0; i < batch; i++) cublasGemmEx(h, ta, tb, m, n, k, alpha, A[i], at, lda, B[i], bt, ldb, beta, C[i], ct, ldc, c, g);
    return 0;
}

#endif
