/* The one random number generator of bertc: xoshiro256** seeded by splitmix64.
 *
 * Documented so that other programs can reproduce bertc's choices exactly:
 *   state[i] = splitmix64(seed) for i = 0..3 (splitmix64 advancing its own counter),
 *   next()   = xoshiro256** (Blackman & Vigna 2018).
 *   rng_below(n): unbiased integer in [0, n) by rejection on the top bits of next().
 *   Shuffles are Fisher-Yates from the end: for i = n-1 down to 1, swap(i, rng_below(i+1)).
 * reference/bertc_rng.py is the same generator in Python.
 */
#ifndef BERTC_UTIL_RNG_H
#define BERTC_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_next(rng *r);
/* Uniform integer in [0, n); n must be > 0. */
uint64_t rng_below(rng *r, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float rng_uniform(rng *r);
/* Standard normal (Box-Muller). */
float rng_normal(rng *r);
/* Fisher-Yates shuffle of an index array. */
void rng_shuffle_u32(rng *r, uint32_t *a, size_t n);

#endif
