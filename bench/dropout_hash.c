/* What a dropout mask costs to recompute on this CPU: the counter hash of backend/ops.h
 * (dropout_keep, two splitmix64 mixes per element) applied to one attention head's 128 x 128
 * probabilities, against a plain scaled copy of the same slab (the floor: memory and the
 * multiply) and against reading a stored mask, one bit or one byte per element. Nanoseconds per element, one thread.
 *
 * Build and run (the library's flags, so the loops vectorise as ops_cpu.c's do):
 *   cc $(make -s cflags) -o build/tools/dropout_hash bench/dropout_hash.c && build/tools/dropout_hash
 *
 * Why it matters: a backward pass that recomputes a mask pays the hash again, and on AVX2, which
 * has no 64-bit vector multiply, the hash's four 64-bit products are emulated with 32-bit ones.
 * These figures are why attention's draw is kept as bytes from forward to backward
 * (docs/PERFORMANCE.md, "Attention's dropout draw kept from forward to backward"). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "backend/ops.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* as ops_cpu.c's attention_dropout */
__attribute__((noinline)) static void hash_dropout(float *dst, const float *src, size_t n, size_t first, float p,
                                                   float keep_scale, uint64_t seed, uint64_t stream) {
    #pragma omp simd
    for (size_t e = 0; e < n; e++) dst[e] = dropout_keep(seed, stream, first + e, p) ? src[e] * keep_scale : 0.0f;
}

__attribute__((noinline)) static void scaled_copy(float *dst, const float *src, size_t n, float keep_scale) {
    #pragma omp simd
    for (size_t e = 0; e < n; e++) dst[e] = src[e] * keep_scale;
}

__attribute__((noinline)) static void bits_dropout(float *dst, const float *src, const uint32_t *bits, size_t n,
                                                   float keep_scale) {
    #pragma omp simd
    for (size_t e = 0; e < n; e++) dst[e] = (bits[e >> 5] >> (e & 31)) & 1u ? src[e] * keep_scale : 0.0f;
}

__attribute__((noinline)) static void bytes_dropout(float *dst, const float *src, const uint8_t *keep, size_t n,
                                                    float keep_scale) {
    #pragma omp simd
    for (size_t e = 0; e < n; e++) dst[e] = keep[e] ? src[e] * keep_scale : 0.0f;
}

int main(void) {
    const size_t n = 128 * 128;
    const int reps = 2000;
    float *src = malloc(n * sizeof *src), *dst = malloc(n * sizeof *dst);
    uint32_t *bits = malloc(n / 32 * sizeof *bits);
    uint8_t *keep = malloc(n);
    if (!src || !dst || !bits || !keep) return 1;
    for (size_t i = 0; i < n; i++) keep[i] = (uint8_t)(i % 10 != 3);
    for (size_t i = 0; i < n; i++) src[i] = (float)i * 1e-6f;
    for (size_t i = 0; i < n / 32; i++) bits[i] = 0xF7FFFEFFu ^ (uint32_t)i;
    double t0 = now_s();
    for (int r = 0; r < reps; r++) hash_dropout(dst, src, n, (size_t)r * n, 0.1f, 1.0f / 0.9f, 42, 7);
    double t1 = now_s();
    for (int r = 0; r < reps; r++) scaled_copy(dst, src, n, 1.0f / 0.9f);
    double t2 = now_s();
    for (int r = 0; r < reps; r++) bits_dropout(dst, src, bits, n, 1.0f / 0.9f);
    double t3 = now_s();
    for (int r = 0; r < reps; r++) bytes_dropout(dst, src, keep, n, 1.0f / 0.9f);
    double t4 = now_s();
    double per = 1e9 / ((double)reps * n);
    printf("ns per element: hash %.2f, scaled copy %.2f, stored bit mask %.2f, stored byte mask %.2f (checksum %g)\n",
           (t1 - t0) * per, (t2 - t1) * per, (t3 - t2) * per, (t4 - t3) * per, (double)dst[n / 2]);
    free(src), free(dst), free(bits), free(keep);
    return 0;
}
