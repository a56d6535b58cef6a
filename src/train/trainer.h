/* The training loop: epochs of shuffled batches, AdamW under a schedule, evaluation after
 * each epoch, early stopping on validation accuracy, the best weights kept and restored.
 * It sees the model only through model/bert.h, so it never knows which backend runs it. */
#ifndef BERTC_TRAIN_TRAINER_H
#define BERTC_TRAIN_TRAINER_H

#include <stdio.h>

#include "bertc.h"
#include "model/bert.h"
#include "report/metrics.h"
#include "train/encoded.h"
#include "train/grad_sync.h"

typedef struct trainer_hooks {
    /* Called once at the end (and on a pause), with the best epoch's weights in the model (the
     * last epoch's without a validation set): write the model folder. */
    int (*save_model)(void *ctx, bertc_error *err);
    void *ctx;
    FILE *metrics_jsonl; /* one JSON object per step and per epoch, or NULL */
    char *const *label_names; /* for the metrics written to metrics_jsonl */
    grad_sync *sync;     /* averages gradients across data-parallel processes; NULL for one process */
    /* Checkpoints (train/checkpoint.h): written to checkpoint_dir every o->checkpoint_every updates
     * (> 0), after every epoch (>= 0) and when *o->stop is set; NULL: none. options_json is the
     * fingerprint stored with them; metrics_path the metrics file whose text they keep. */
    const char *checkpoint_dir;
    const char *options_json;
    const char *metrics_path;
    int resume;          /* continue from checkpoint_dir's checkpoint */
} trainer_hooks;

/* Runs the loop described by o over the encoded sets (val may be NULL). */
int trainer_run(bert_model *m, const encoded_set *train, const encoded_set *val, const bertc_train_options *o,
                const trainer_hooks *h, bertc_train_result *r, bertc_error *err);

/* Eval-mode pass over e: fills mt (if not NULL; reset first), and logits (n*K, if not NULL, in
 * e's row order). With dynamic_pad the rows are batched longest first, so each batch pads to
 * similar lengths. Progress, if given, is reported with phase "eval". */
int trainer_evaluate(bert_model *m, const encoded_set *e, int batch_size, int dynamic_pad, metrics *mt, float *logits,
                     const bertc_train_options *progress_to, bertc_error *err);

#endif
