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

#include "util/error.h"

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

void adamw_free(adamw *o) {
    if (!o) return;
    free(o->m);
    free(o->v);
    free(o->groups);
    memset(o, 0, sizeof *o);
}

void adamw_step(adamw *o, float *params, const float *grads, float lr) {
    o->step++;
    const double beta1 = decimal_value(o->beta1), beta2 = decimal_value(o->beta2);
    const double t = (double)o->step;
    const double bias_correction1 = 1.0 - pow(beta1, t);
    const double bias_correction2_sqrt = sqrt(1.0 - pow(beta2, t));
    const float one_minus_beta1 = (float)(1.0 - beta1);
    const float beta2_f = (float)beta2, one_minus_beta2 = (float)(1.0 - beta2);
    const float eps = (float)decimal_value(o->eps);
    const float bc2_sqrt = (float)bias_correction2_sqrt;

    for (size_t gi = 0; gi < o->n_groups; gi++) {
        const adamw_group *g = &o->groups[gi];
        /* torch holds the group's lr as initial_lr*lambda; here it is (base*lambda)*scale. */
        const double group_lr = (double)lr * decimal_value(g->lr_scale);
        const double wd = decimal_value(g->weight_decay);
        const float decay = (float)(1.0 - group_lr * wd);
        const int decays = wd != 0.0; /* torch skips the multiply when weight_decay == 0 */
        const float neg_step_size = (float)-(group_lr / bias_correction1);
        float *p = params + g->offset, *m = o->m + g->offset, *v = o->v + g->offset;
        const float *grad = grads + g->offset;
        const size_t numel = g->numel;

        #pragma omp parallel for simd schedule(static) if (numel >= OPTIM_PARALLEL_MIN)
        for (size_t i = 0; i < numel; i++) {
            float pi = decays ? p[i] * decay : p[i];
            float gr = grad[i];
            float mi = fmaf(one_minus_beta1, gr - m[i], m[i]);
            float vi = fmaf(one_minus_beta2 * gr, gr, v[i] * beta2_f);
            float denom = sqrtf(vi) / bc2_sqrt + eps;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + neg_step_size * mi / denom;
        }
    }
}

float clip_grad_norm(float *grads, size_t n, float max_norm) {
    double sum = 0.0;
    #pragma omp parallel for simd reduction(+ : sum) schedule(static) if (n >= OPTIM_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) sum += (double)grads[i] * grads[i];
    const float norm = (float)sqrt(sum);
    if (!(max_norm > 0.0f)) return norm;
    /* torch: clip_coef = max_norm / (total_norm + 1e-6), in float32, clamped to 1. A NaN norm
     * gives a NaN coefficient that fails the test below, so NaN gradients are left for the
     * caller to see in the returned norm. */
    const float coef = max_norm / (norm + 1e-6f);
    if (coef < 1.0f) {
        #pragma omp parallel for simd schedule(static) if (n >= OPTIM_PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) grads[i] *= coef;
    }
    return norm;
}
