/* Learning-rate schedules, step for step as transformers.get_scheduler:
 * the update with index k (0-based) uses base_lr * factor(k). */
#ifndef BERTC_TRAIN_SCHEDULE_H
#define BERTC_TRAIN_SCHEDULE_H

/* LR_CONSTANT is transformers' "constant_with_warmup" when warmup_steps > 0 and "constant" otherwise.
 * LR_LINEAR is get_linear_schedule_with_warmup, LR_COSINE get_cosine_schedule_with_warmup (half a
 * cosine wave, num_cycles 0.5); both ramp linearly from 0 over warmup_steps, then fall to 0 at total_steps. */
typedef enum lr_schedule_kind { LR_CONSTANT, LR_LINEAR, LR_COSINE } lr_schedule_kind;

typedef struct lr_schedule {
    lr_schedule_kind kind;
    float base_lr;
    long warmup_steps;
    long total_steps;
} lr_schedule;

/* "constant", "linear" or "cosine"; returns -1 for anything else. */
int lr_schedule_parse(const char *name, lr_schedule_kind *out);
const char *lr_schedule_name(lr_schedule_kind kind);
float lr_schedule_at(const lr_schedule *s, long k);

#endif
