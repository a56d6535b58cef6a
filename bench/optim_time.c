/* Gradient clipping and AdamW over a model's parameters, the two forms the library has,
 * alternating in one process so both see the same moment of a shared machine:
 *
 *   pass    clip_grad_norm_on(max_norm 1): the norm, then a pass that scales every gradient;
 *           then adamw_step
 *   folded  clip_grad_norm_on(0): the norm only; adamw_step_scaled reads g * coefficient
 *           (what trainer_run does since the sixteenth session; the same bits: test_optim)
 *
 * The gradients come from one real backward of a randomly initialised model with CONFIG_JSON's
 * shape, scaled up so that clipping applies every time. Prints the median of each form's
 * times and of the per-round differences.
 *
 * Usage: optim_time CONFIG_JSON ROUNDS      (threads: OMP_NUM_THREADS)
 * Build: scripts/bench-optim.sh CONFIG_JSON ROUNDS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "median.h"

#include "backend/ops.h"
#include "model/bert.h"
#include "train/optim.h"
#include "util/rng.h"

int main(int argc, char **argv) {
    int rounds = argc == 3 ? atoi(argv[2]) : 0;
    if (rounds <= 0 || rounds > 10000) {
        fprintf(stderr, "usage: optim_time CONFIG_JSON ROUNDS (1..10000)\n");
        return 2;
    }
    bertc_error err;
    bert_config cfg;
    bert_model *m = NULL;
    char *names[] = {"NEG", "POS"};
    const int B = 2, T = 32;
    if (bert_config_load(&cfg, argv[1], &err) || bert_config_set_labels(&cfg, names, 2, &err) ||
        bert_init_random(&m, &cfg, 1, &err) || bert_prepare(m, B, T, &err)) {
        fprintf(stderr, "optim_time: %s\n", err.msg);
        return 1;
    }
    bert_config_free(&cfg);
    int32_t ids[B * T], mask[B * T], types[B * T], labels[B];
    rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < B * T; i++) ids[i] = 1000 + (int32_t)rng_below(&r, 20000), mask[i] = 1, types[i] = 0;
    for (int b = 0; b < B; b++) labels[b] = b % 2;
    bert_zero_grad(m);
    bert_forward(m, ids, mask, types, labels, B, T, 1, 7);
    bert_backward(m, 1000.0f); /* a large loss scale: norms far above 1, so every round clips */

    const bertc_backend *be = bert_backend(m);
    size_t n = bert_num_params(m);
    float *params = bert_params(m), *grads = bert_grads(m);
    float *saved = malloc(n * sizeof(float));
    double *t_pass = malloc((size_t)rounds * sizeof(double)), *t_fold = malloc((size_t)rounds * sizeof(double));
    double *diff = malloc((size_t)rounds * sizeof(double));
    adamw_group group = {0, n, 0.01f, 1.0f};
    adamw a, b;
    if (!saved || !t_pass || !t_fold || !diff || adamw_init_on(&a, be, n, &group, 1, &err) ||
        adamw_init_on(&b, be, n, &group, 1, &err)) {
        fprintf(stderr, "optim_time: out of memory\n");
        return 1;
    }
    memcpy(saved, grads, n * sizeof(float));
    float coef = 1.0f;
    for (int k = 0; k <= rounds; k++) { /* round 0 warms up both */
        for (int f = 0; f < 2; f++) {
            int folded = (k + f) % 2; /* which goes first alternates */
            memcpy(grads, saved, n * sizeof(float)); /* the pass form scaled them in place */
            double t0 = clock_s(CLOCK_MONOTONIC);
            if (folded) {
                float norm = clip_grad_norm_on(be, grads, n, 0.0f);
                coef = grad_clip_coef(norm, 1.0f);
                adamw_step_scaled(&b, params, grads, 2e-5f, coef);
            } else {
                clip_grad_norm_on(be, grads, n, 1.0f);
                adamw_step(&a, params, grads, 2e-5f);
            }
            double t = clock_s(CLOCK_MONOTONIC) - t0;
            if (k > 0) (folded ? t_fold : t_pass)[k - 1] = t;
        }
        if (k > 0) diff[k - 1] = t_pass[k - 1] - t_fold[k - 1];
    }
    printf("%zu parameters, clip factor %.3g, %d rounds: pass + AdamW median %.2f ms, folded median %.2f ms, "
           "per-round difference median %.2f ms\n",
           n, (double)coef, rounds, 1e3 * median(t_pass, rounds), 1e3 * median(t_fold, rounds),
           1e3 * median(diff, rounds));
    adamw_free(&a), adamw_free(&b);
    bert_free(m);
    free(saved), free(t_pass), free(t_fold), free(diff);
    return 0;
}
