/* The masked-language-model head of transformers' BertForMaskedLM (cls.predictions), over the
 * backend op set, with the loss computed only at the masked positions:
 *
 *   h      = hidden[positions]                      (N,C)   the N masked positions of a batch
 *   t      = LayerNorm(act(h @ Wt^T + bt))          (N,C)   cls.predictions.transform
 *   logits = t @ wte^T + bias                        (N,V)   decoder tied to the word embeddings
 *   loss   = mean over the N rows of CrossEntropy(logits, labels)
 *
 * which is BertForMaskedLM's loss (CrossEntropyLoss with ignore_index -100 averages over the
 * masked positions only), computed on N rows instead of B*T: the decoder is the largest
 * product of the head, and the unmasked rows would only be thrown away.
 *
 * The head's own parameters live in their own arena (with a gradient mirror), in this order:
 *   cls.predictions.transform.dense.weight (C,C), cls.predictions.transform.dense.bias (C),
 *   cls.predictions.transform.LayerNorm.weight (C), cls.predictions.transform.LayerNorm.bias (C),
 *   cls.predictions.bias (V).
 * The decoder weight is the encoder's word-embedding table; its gradient goes to the encoder's
 * gradient arena. Letters as in backend/ops.h; N the number of masked positions. */
#ifndef BERTC_MODEL_MLM_HEAD_H
#define BERTC_MODEL_MLM_HEAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bertc.h"
#include "model/bert.h"

typedef struct mlm_head mlm_head;

#define MLM_HEAD_TENSORS 5

/* Creates the head for the encoder m (its config, backend and word embeddings) and fills it
 * from the safetensors file st_path when that file holds cls.predictions.* (NULL or a file
 * without them: initialised as transformers does, normal(0, initializer_range) dense weight,
 * zero biases, LayerNorm 1/0, from init_seed; one notice line to notices, which may be NULL).
 * A checkpoint with only part of the transform, or a tensor of the wrong shape, is an error. */
int mlm_head_create(mlm_head **out, bert_model *m, const char *st_path, uint64_t init_seed, FILE *notices,
                    bertc_error *err);
void mlm_head_free(mlm_head *h);
/* 1 when the weights came from the checkpoint, 0 when they were initialised. */
int mlm_head_loaded(const mlm_head *h);

/* Plans the activations for batches of at most BT positions with at most N masked ones (called
 * again by forward when a batch has more: the only allocation a step may make). */
int mlm_head_prepare(mlm_head *h, int BT, int N, bertc_error *err);

/* The loss of one batch. hidden (B*T, C) is bert_forward_hidden's output; positions (N) index its
 * rows (b*T + t) in increasing order, labels (N) are the true token ids, both host memory.
 * Returns the mean loss over the N positions, 0 when N == 0, NaN for positions out of range or
 * out of order, a label out of range, or a failed plan. */
float mlm_head_forward(mlm_head *h, const float *hidden, int BT, const int32_t *positions, const int32_t *labels,
                       int N);
/* The gradient of loss_scale * (the last forward's loss): the head's parameter gradients and the
 * word embeddings' (in the encoder's gradient arena) accumulate; returns dhidden (B*T, C), in
 * backend memory, zero at unmasked positions: the argument of bert_backward_hidden. */
const float *mlm_head_backward(mlm_head *h, float loss_scale);

float *mlm_head_params(mlm_head *h);
float *mlm_head_grads(mlm_head *h);
size_t mlm_head_num_params(const mlm_head *h);
void mlm_head_zero_grad(mlm_head *h);
/* The head's tensors in arena order (bert_param_info: name, offset, numel, shape, no_decay). */
size_t mlm_head_param_table(const mlm_head *h, const bert_param_info **out);

#endif
