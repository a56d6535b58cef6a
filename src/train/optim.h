/* AdamW (decoupled weight decay, bias correction; torch.optim.AdamW semantics) over one
 * flat parameter array, with per-tensor groups for weight decay and learning-rate scale. */
#ifndef BERTC_TRAIN_OPTIM_H
#define BERTC_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "bertc.h"

struct bertc_backend;

typedef struct adamw_group {
    size_t offset, numel;
    float weight_decay; /* this range's decay (0 for biases and LayerNorm weights by default) */
    float lr_scale;     /* multiplies the learning rate (layer-wise decay); 1 by default */
} adamw_group;

typedef struct adamw {
    float beta1, beta2, eps;
    size_t n;
    float *m, *v;  /* moments, n floats each, zeroed at init */
    long step;     /* updates done so far */
    adamw_group *groups;
    size_t n_groups;
    /* NULL: params, grads and the moments are host memory, updated by this file's own loops.
     * Else (adamw_init_on) the moments live in be's memory and be->adamw_update runs the step,
     * so that a GPU model's weights never leave the device. */
    const struct bertc_backend *be;
    /* NULL, or a bf16 mirror of the parameters (indexed as they are, in the same memory) whose
     * entries in [mirror_lo, mirror_hi) every update also writes, each new value rounded as the
     * backend's to_bf16 (adamw_set_mirror) */
    uint16_t *mirror;
    size_t mirror_lo, mirror_hi;
} adamw;

/* Defaults as torch.optim.AdamW: betas (0.9, 0.999), eps 1e-8. groups are copied. */
int adamw_init(adamw *o, size_t n, const adamw_group *groups, size_t n_groups, bertc_error *err);
void adamw_free(adamw *o);
/* The same with the moments in be's memory, updated by be's ops (be NULL: adamw_init). */
int adamw_init_on(adamw *o, const struct bertc_backend *be, size_t n, const adamw_group *groups, size_t n_groups,
                  bertc_error *err);
/* From the next update on, also write each updated parameter i in [lo, hi) rounded to bf16 into
 * mirror[i] (mirror NULL: stop). For a bf16 model (bert_params16): its weight copy then stays
 * current without a rounding pass of its own. Parameters outside every group are not written:
 * they do not change. Returns 0, or -1 with no mirror set when a group straddles lo or hi. */
int adamw_set_mirror(adamw *o, uint16_t *mirror, size_t lo, size_t hi);
/* One update at learning rate lr: for each group, p -= lr*scale*wd*p, then the Adam step. */
void adamw_step(adamw *o, float *params, const float *grads, float lr);
/* The same update with every gradient read as grads[i] * grad_scale, bit for bit what
 * clip_grad_norm's scaling pass followed by adamw_step gives, in one pass over the gradients
 * fewer; grads are left unscaled. grad_scale is grad_clip_coef's (1: adamw_step). */
void adamw_step_scaled(adamw *o, float *params, const float *grads, float lr, float grad_scale);

/* Scales grads so their global L2 norm is at most max_norm (torch.nn.utils.clip_grad_norm_);
 * returns the norm before clipping. max_norm <= 0 only measures. */
float clip_grad_norm(float *grads, size_t n, float max_norm);
/* The same on grads in be's memory, through be->sum_squares and be->scale (max_norm <= 0:
 * measures only, the norm for grad_clip_coef and adamw_step_scaled). */
float clip_grad_norm_on(const struct bertc_backend *be, float *grads, size_t n, float max_norm);
/* The factor clipping scales the gradients by for this norm: torch's max_norm / (norm + 1e-6)
 * in float where that is below 1, else 1 (also for max_norm <= 0 and a NaN norm). */
float grad_clip_coef(float norm, float max_norm);

#endif
