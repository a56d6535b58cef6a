/* AdamW over one flat parameter array, operation for operation as PyTorch's single-tensor
 * torch.optim.AdamW (torch/optim/adam.py, _single_tensor_adam with decoupled_weight_decay),
 * so a float32 run here and there agree to the last bit or two:
 *
 *   p  = p * (1 - lr*wd)                          decoupled decay, before the moments
 *   m  = lerp(m, g, 1-b1)     = fma(1-b1, g-m, m)  torch's lerp_ kernel fuses this
 *   v  = v*b2 + (1-b2)*g*g    = fma((1-b2)*g, g, v*b2)   addcmul_, also fused
 *   denom = sqrt(v) / sqrt(1-b2^t) + eps
 *   p  = p + (-lr/(1-b1^t)) * m / denom           addcdiv_
 *
 * Scalars (1-lr*wd, 1-b1, step size, ...) are computed in double as Python does and rounded
 * to float once, as a float tensor op rounds its scalar argument. */
#include "train/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "util/error.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

/* Below this many elements a group is updated by one thread: waking the team costs more. */
#define OPTIM_PARALLEL_MIN 32768

/* The double nearest the shortest decimal that reads back as x (0.999f -> 0.999): the value the
 * user wrote and PyTorch computes with. Without it 1 - 0.999f is 1.00002e-3, not 1e-3. */
static double decimal_value(float x) {
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)x);
        if (strtof(text, NULL) == x) return strtod(text, NULL);
    }
    return x;
}

int adamw_init(adamw *o, size_t n, const adamw_group *groups, size_t n_groups, bertc_error *err) {
    memset(o, 0, sizeof *o);
    if (n_groups > 0 && !groups) return bertc_errorf(err, BERTC_EINVAL, "adamw: %zu groups given as NULL", n_groups);
    for (size_t i = 0; i < n_groups; i++) {
        const adamw_group *g = &groups[i];
        if (g->offset > n || g->numel > n - g->offset)
            return bertc_errorf(err, BERTC_EINVAL, "adamw: group %zu [%zu, +%zu) lies outside the %zu parameters",
                                i, g->offset, g->numel, n);
        if (!isfinite(g->weight_decay) || g->weight_decay < 0 || !isfinite(g->lr_scale) || g->lr_scale < 0)
            return bertc_errorf(err, BERTC_EINVAL, "adamw: group %zu: weight_decay %g and lr_scale %g must be finite and >= 0",
                                i, g->weight_decay, g->lr_scale);
    }
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->n = n;
    size_t bytes = (n ? n : 1) * sizeof(float);
    o->m = calloc(1, bytes);
    o->v = calloc(1, bytes);
    o->groups = malloc((n_groups ? n_groups : 1) * sizeof *o->groups);
    if (!o->m || !o->v || !o->groups) {
        adamw_free(o);
        return bertc_errorf(err, BERTC_ENOMEM, "adamw: cannot allocate moments for %zu parameters", n);
    }
    if (n_groups) memcpy(o->groups, groups, n_groups * sizeof *groups);
    o->n_groups = n_groups;
    return BERTC_OK;
}

int adamw_init_on(adamw *o, const bertc_backend *be, size_t n, const adamw_group *groups, size_t n_groups,
                  bertc_error *err) {
    int rc = adamw_init(o, n, groups, n_groups, err);
    if (rc || !be) return rc;
    /* swap the host moments for device ones */
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
    o->be = be;
    size_t bytes = (n ? n : 1) * sizeof(float);
    o->m = be->alloc(bytes);
    o->v = be->alloc(bytes);
    if (!o->m || !o->v) {
        adamw_free(o);
        return bertc_errorf(err, BERTC_ENOMEM, "adamw: cannot allocate moments for %zu parameters on %s", n, be->name);
    }
    return BERTC_OK;
}

void adamw_free(adamw *o) {
    if (!o) return;
    if (o->be) {
        if (o->m) o->be->free(o->m);
        if (o->v) o->be->free(o->v);
        o->m = o->v = NULL;
    }
    free(o->m);
    free(o->v);
    free(o->groups);
    memset(o, 0, sizeof *o);
}

typedef struct adamw_scalars {
    float decay, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size, grad_scale;
} adamw_scalars;

/* The update of one element, in torch's operation order; the vector loop below mirrors it. */
static inline void adamw_update_one(float *p, float *m, float *v, float g_raw, const adamw_scalars *s) {
    float g = g_raw * s->grad_scale; /* clipping's pass, folded in: the same rounded product */
    float pi = *p * s->decay;
    float mi = fmaf(s->one_minus_beta1, g - *m, *m);
    float vi = fmaf(s->one_minus_beta2 * g, g, *v * s->beta2);
    float denom = sqrtf(vi) / s->bc2_sqrt + s->eps;
    *m = mi;
    *v = vi;
    *p = pi + s->neg_step_size * mi / denom;
}

/* p, m, v, g are (n,). Threads split the range; each thread runs 8 floats at a time with AVX
 * where the compiler targets it. The vector code is written out because sqrtf may set errno,
 * which keeps compilers (without -fno-math-errno) from vectorising the plain loop. */
static void adamw_update(float *p, float *m, float *v, const float *g, size_t n, adamw_scalars s, uint16_t *p16) {
    const size_t chunk = 8192; /* a multiple of 8 */
    const size_t chunks = (n + chunk - 1) / chunk;
    #pragma omp parallel for schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (size_t c = 0; c < chunks; c++) {
        size_t i = c * chunk, end = i + chunk < n ? i + chunk : n;
#if defined(__AVX2__) && defined(__FMA__)
        const __m256 decay = _mm256_set1_ps(s.decay), w1 = _mm256_set1_ps(s.one_minus_beta1);
        const __m256 beta2 = _mm256_set1_ps(s.beta2), w2 = _mm256_set1_ps(s.one_minus_beta2);
        const __m256 bc2 = _mm256_set1_ps(s.bc2_sqrt), eps = _mm256_set1_ps(s.eps);
        const __m256 step = _mm256_set1_ps(s.neg_step_size), gscale = _mm256_set1_ps(s.grad_scale);
        for (; i + 8 <= end; i += 8) {
            __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
            __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), gscale), mi = _mm256_loadu_ps(m + i), vi = _mm256_loadu_ps(v + i);
            mi = _mm256_fmadd_ps(w1, _mm256_sub_ps(gi, mi), mi);
            vi = _mm256_fmadd_ps(_mm256_mul_ps(w2, gi), gi, _mm256_mul_ps(vi, beta2));
            __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
            _mm256_storeu_ps(m + i, mi);
            _mm256_storeu_ps(v + i, vi);
            _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(step, mi), denom)));
        }
#endif
        for (; i < end; i++) adamw_update_one(p + i, m + i, v + i, g[i], &s);
        if (p16) /* the chunk just written, still in cache */
            for (size_t j = c * chunk; j < end; j++) p16[j] = ops_bf16_round(p[j]);
    }
}

int adamw_set_mirror(adamw *o, uint16_t *mirror, size_t lo, size_t hi) {
    o->mirror = NULL;
    o->mirror_lo = o->mirror_hi = 0;
    if (!mirror) return 0;
    for (size_t i = 0; i < o->n_groups; i++) { /* a group is mirrored whole or not at all */
        size_t a = o->groups[i].offset, b = a + o->groups[i].numel;
        if ((a < lo && b > lo) || (a < hi && b > hi)) return -1;
    }
    o->mirror = mirror;
    o->mirror_lo = lo;
    o->mirror_hi = hi;
    return 0;
}

/* Whether group g's update writes the mirror (adamw_set_mirror: a group is inside or outside). */
static int mirrored(const adamw *o, const adamw_group *g) {
    return o->mirror && g->offset >= o->mirror_lo && g->offset + g->numel <= o->mirror_hi;
}

/* One segmented call (or the plain update for a single range) of the ranges gathered so far. */
static void flush_segments(const adamw *o, float *params, const float *grads, const ops_adamw_segment *seg, int nseg,
                           ops_adamw_scalars common, uint16_t *p16) {
    if (nseg == 1)
        o->be->adamw_update(params + seg[0].offset, o->m + seg[0].offset, o->v + seg[0].offset, grads + seg[0].offset,
                            seg[0].numel, common, p16 ? p16 + seg[0].offset : NULL);
    else if (nseg > 1)
        o->be->adamw_update_segments(params, o->m, o->v, grads, seg, nseg, common, p16);
}

void adamw_step(adamw *o, float *params, const float *grads, float lr) { adamw_step_scaled(o, params, grads, lr, 1.0f); }

void adamw_step_scaled(adamw *o, float *params, const float *grads, float lr, float grad_scale) {
    o->step++;
    const double beta1 = decimal_value(o->beta1), beta2 = decimal_value(o->beta2);
    const double t = (double)o->step;
    const double bias_correction1 = 1.0 - pow(beta1, t);
    const double bias_correction2_sqrt = sqrt(1.0 - pow(beta2, t));
    const float one_minus_beta1 = (float)(1.0 - beta1);
    const float beta2_f = (float)beta2, one_minus_beta2 = (float)(1.0 - beta2);
    const float eps = (float)decimal_value(o->eps);
    const float bc2_sqrt = (float)bias_correction2_sqrt;
    /* a device that takes many ranges in one call gets them so (weight decay alternates decayed
     * weights with undecayed biases and LayerNorm weights: ~170 ranges for bert-base) */
    /* [0]: ranges outside the mirror, [1]: inside (written with it); one call for each */
    ops_adamw_segment seg[2][OPS_ADAMW_MAX_SEGMENTS];
    ops_adamw_scalars common = {0};
    int nseg[2] = {0, 0};

    for (size_t gi = 0; gi < o->n_groups; gi++) {
        const adamw_group *g = &o->groups[gi];
        /* torch holds the group's lr as initial_lr*lambda; here it is (base*lambda)*scale. */
        const double group_lr = (double)lr * decimal_value(g->lr_scale);
        const double wd = decimal_value(g->weight_decay);
        const float decay = (float)(1.0 - group_lr * wd);
        /* torch skips the multiply when weight_decay == 0; multiplying by exactly 1 is the same. */
        const float neg_step_size = (float)-(group_lr / bias_correction1);
        if (o->be) {
            /* Neighbouring groups with the same scalars (all of them when weight decay is 0 and
             * no layer has its own rate) go to the device as one range: one launch, not 200. */
            size_t numel = g->numel;
            const int in = mirrored(o, g);
            while (gi + 1 < o->n_groups) {
                const adamw_group *h = &o->groups[gi + 1];
                if (h->offset != g->offset + numel || h->weight_decay != g->weight_decay || h->lr_scale != g->lr_scale ||
                    mirrored(o, h) != in)
                    break;
                numel += h->numel;
                gi++;
            }
            const ops_adamw_scalars sc = {decay,    one_minus_beta1, beta2_f,      one_minus_beta2,
                                          bc2_sqrt, eps,             neg_step_size, grad_scale};
            if (o->be->adamw_update_segments) { /* the ranges are sent together, below */
                seg[in][nseg[in]++] = (ops_adamw_segment){g->offset, numel, decay, neg_step_size};
                common = sc;
                if (nseg[in] == OPS_ADAMW_MAX_SEGMENTS) {
                    flush_segments(o, params, grads, seg[in], nseg[in], common, in ? o->mirror : NULL);
                    nseg[in] = 0;
                }
                continue;
            }
            o->be->adamw_update(params + g->offset, o->m + g->offset, o->v + g->offset, grads + g->offset, numel, sc,
                                in ? o->mirror + g->offset : NULL);
            continue;
        }
        adamw_update(params + g->offset, o->m + g->offset, o->v + g->offset, grads + g->offset, g->numel,
                     (adamw_scalars){decay, one_minus_beta1, beta2_f, one_minus_beta2, bc2_sqrt, eps, neg_step_size,
                                     grad_scale},
                     mirrored(o, g) ? o->mirror + g->offset : NULL);
    }
    for (int in = 0; in < 2; in++) flush_segments(o, params, grads, seg[in], nseg[in], common, in ? o->mirror : NULL);
}

/* torch takes a float32 norm per tensor and then the norm of those; here one double sum runs over
 * the flat array (no tensor boundaries), which differs from torch by ~1e-7 relative. */
float clip_grad_norm(float *grads, size_t n, float max_norm) {
    double sum = 0.0;
    #pragma omp parallel for simd reduction(+ : sum) schedule(static) if (parallel: n >= OPTIM_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    const float norm = (float)sqrt(sum);
    const float coef = grad_clip_coef(norm, max_norm);
    if (coef != 1.0f) {
        #pragma omp parallel for simd schedule(static) if (parallel: n >= OPTIM_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) grads[i] *= coef;
    }
    return norm;
}

/* torch: clip_coef = max_norm / (total_norm + 1e-6), in float32, clamped to 1. A NaN norm gives
 * a NaN coefficient that fails the test, so the gradients are left as they are (torch would make
 * them all NaN) and the caller sees the NaN in the norm. */
float grad_clip_coef(float norm, float max_norm) {
    if (!(max_norm > 0.0f)) return 1.0f;
    const float coef = max_norm / (norm + 1e-6f);
    return coef < 1.0f ? coef : 1.0f;
}

float clip_grad_norm_on(const bertc_backend *be, float *grads, size_t n, float max_norm) {
    if (!be) return clip_grad_norm(grads, n, max_norm);
    /* the host version's arithmetic: a double sum, a float norm, torch's coefficient */
    const float norm = (float)sqrt(be->sum_squares(grads, n));
    const float coef = grad_clip_coef(norm, max_norm);
    if (coef != 1.0f) be->scale(grads, n, coef);
    return norm;
}
