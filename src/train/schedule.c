/* Learning-rate schedules, the same lambdas as transformers/optimization.py (checked against
 * transformers 5.x): the update with index k (0-based) uses base_lr * factor(k), which is what
 * optimizer.param_groups[i]["lr"] holds before the k-th optimizer.step() when the scheduler is
 * stepped once after every update.
 *
 * LR_CONSTANT stands for two transformers schedules: with warmup_steps > 0 it is
 * "constant_with_warmup" (a linear ramp from 0, then base_lr); with warmup_steps == 0 it is
 * "constant" (base_lr from the first step; "constant_with_warmup" with 0 warm-up steps is the same).
 * Past total_steps, "linear" stays at 0 and "cosine" follows its cosine up again, exactly as
 * transformers does; a trainer never asks for those steps. */
#include "train/schedule.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The double nearest the shortest decimal that reads back as x (2e-5f -> 2e-5): the value the
 * user wrote and Python computes with, so that float storage adds no error of its own. */
static double decimal_value(float x) {
    char text[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)x);
        if (strtof(text, NULL) == x) return strtod(text, NULL);
    }
    return x;
}

static double max1(long x) { return x > 1 ? (double)x : 1.0; }

/* The multiplier of base_lr at update k, as the transformers lambdas compute it (in double). */
static double schedule_factor(const lr_schedule *s, long k) {
    if (k < s->warmup_steps) return (double)k / max1(s->warmup_steps);
    switch (s->kind) {
    case LR_CONSTANT:
        return 1.0;
    case LR_LINEAR: {
        double f = (double)(s->total_steps - k) / max1(s->total_steps - s->warmup_steps);
        return f > 0.0 ? f : 0.0;
    }
    case LR_COSINE: {
        const double num_cycles = 0.5; /* get_cosine_schedule_with_warmup's default: half a wave */
        double progress = (double)(k - s->warmup_steps) / max1(s->total_steps - s->warmup_steps);
        double f = 0.5 * (1.0 + cos(M_PI * num_cycles * 2.0 * progress));
        return f > 0.0 ? f : 0.0;
    }
    }
    return 1.0;
}

float lr_schedule_at(const lr_schedule *s, long k) {
    if (k < 0) k = 0;
    return (float)(decimal_value(s->base_lr) * schedule_factor(s, k));
}

int lr_schedule_parse(const char *name, lr_schedule_kind *out) {
    static const struct { const char *name; lr_schedule_kind kind; } known[] = {
        {"constant", LR_CONSTANT}, {"linear", LR_LINEAR}, {"cosine", LR_COSINE},
    };
    if (!name) return -1;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(name, known[i].name) == 0) {
            if (out) *out = known[i].kind;
            return 0;
        }
    }
    return -1;
}

const char *lr_schedule_name(lr_schedule_kind kind) {
    switch (kind) {
    case LR_CONSTANT: return "constant";
    case LR_LINEAR: return "linear";
    case LR_COSINE: return "cosine";
    }
    return "unknown";
}
