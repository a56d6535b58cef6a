/* The matrix products of one training step, recorded and replayed alone (bertc bench's
 * "matmul" measurement), and the machine's sgemm peak (bertc bench --peak).
 *
 * Recording: every binary is linked with -Wl,--wrap=cblas_sgemm (and dnnl_sgemm; Makefile), so each
 * sgemm call of the engine goes through __wrap_cblas_sgemm (__wrap_dnnl_sgemm). Outside a recording that
 * costs one predictable branch; during one it appends the call's shape (transposes, M, N, K,
 * leading dimensions, alpha, beta), its thread, its duration and the current region.
 * A region is one call of a backend op that runs products (bench.c wraps matmul_forward/
 * backward and attention_forward/backward and calls gemm_trace_next_region() around them),
 * i.e. one OpenMP parallel region of the engine.
 *
 * Replay: region by region, the same calls through the real library, spread over the
 * OpenMP threads as the engine does (dynamic, one call at a time; a call oneDNN threaded
 * itself runs alone, threaded again), with a barrier between regions; operands are scratch
 * buffers of the right extents (A and B shared, C per thread).
 *
 * A product that does not go through cblas_sgemm (another library, bertc's own kernels, a
 * bf16 product) is not seen: gemm_trace_stop reports 0 calls and the bench says so. Such a
 * kernel can be added as another kind of call here (record in its wrapper, replay by kind). */
#ifndef BERTC_BENCH_GEMM_TRACE_H
#define BERTC_BENCH_GEMM_TRACE_H

#include <stddef.h>
#include <stdio.h>

#include "bertc.h"

typedef struct gemm_call {
    char ta, tb;            /* 'N' or 'T' (row-major, as the engine calls cblas) */
    char lib;               /* 'b': OpenBLAS's cblas_sgemm, 'd': oneDNN's dnnl_sgemm on one thread, 'D': the same
                               threaded by oneDNN (outside a parallel region); replayed the same way */
    int M, N, K, lda, ldb, ldc;
    float alpha, beta;
    int thread;
    long region;
    double seconds;         /* time inside the call while recording */
} gemm_call;

typedef struct gemm_trace {
    gemm_call *calls;
    size_t n;
    size_t dropped;         /* calls past the capacity (reported as an error) */
    double flop;            /* sum of 2*M*N*K */
    double thread_seconds;  /* sum of the calls' durations over all threads */
} gemm_trace;

/* Starts recording up to capacity calls (allocates them). */
int gemm_trace_start(size_t capacity, bertc_error *err);
/* Marks the start of a new region (called between backend ops, outside parallel regions). */
void gemm_trace_next_region(void);
/* Stops recording and hands the calls over (sorted by region). */
void gemm_trace_stop(gemm_trace *t);
void gemm_trace_free(gemm_trace *t);

/* Replays t once; returns its wall time in seconds, or < 0 when out of memory. The scratch
 * buffers are allocated on the first call and kept in *scratch (free with gemm_replay_free). */
typedef struct gemm_replay_scratch {
    float *a, *b, *c;       /* c: one block per thread */
    size_t c_stride;
    int threads;
} gemm_replay_scratch;
int gemm_replay_prepare(gemm_replay_scratch *s, const gemm_trace *t, bertc_error *err);
double gemm_replay(const gemm_trace *t, gemm_replay_scratch *s);
void gemm_replay_free(gemm_replay_scratch *s);

/* One peak measurement: C (M,N) = op(A) op(B), op(A) (M,K), op(B) (K,N), row-major, best of
 * reps after one warm-up. mode "omp": the rows of C split into 2 chunks per OpenMP thread,
 * each a single-threaded sgemm (the engine's way with OpenBLAS); mode "blas": one call with
 * OpenBLAS's own threads set to the OpenMP thread count (restored to 1 afterwards); mode
 * "onednn" (built with oneDNN only): one dnnl_sgemm threaded by oneDNN over the OpenMP threads
 * (the engine's way for a batch's Linear products there). Returns the best time in seconds
 * (< 0 when out of memory). */
/* The products' libraries: OpenBLAS's build configuration, and oneDNN's version where built with it. */
const char *gemm_library(void);

double gemm_peak_one(int M, int N, int K, char ta, char tb, const char *mode, int reps);
/* The modes gemm_peak_one can time in this build (*n of them). */
const char *const *gemm_peak_modes(int *n);

#endif
