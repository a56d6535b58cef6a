/* The regularisation options that act inside the training step (docs/SWEEP.md): layer-wise
 * learning-rate decay and freezing (as AdamW groups), and R-Drop's consistency loss.
 *
 * Letters: B batch, K labels, L encoder layers. */
#ifndef BERTC_TRAIN_REGULARISE_H
#define BERTC_TRAIN_REGULARISE_H

#include <stddef.h>

#include "bertc.h"
#include "model/bert.h"
#include "train/optim.h"

/* Whether tensor p is frozen under o (freeze_embeddings: unit 0; freeze_layers N: units 1..N). */
int param_frozen(const bert_param_info *p, const bertc_train_options *o);

/* The AdamW groups, one per trainable tensor, in arena order: weight decay o->weight_decay except
 * on biases and LayerNorm weights; learning-rate scale X^depth with X = o->layer_lr_decay and depth
 * counted from the top: the pooler and classifier (unit L + 1) depth 0 (lr), encoder layer L - 1
 * (unit L) depth 1 (lr * X), ..., encoder layer 0 depth L, the embeddings (unit 0) depth L + 1
 * (lr * X^(L+1)), as Sun et al. 2019 and ELECTRA's code (layer-wise decay with the embeddings
 * one below layer 0). Frozen tensors get no group: AdamW never touches them. *out is malloc'ed. */
int param_groups(bert_model *m, const bertc_train_options *o, adamw_group **out, size_t *n_out, bertc_error *err);

/* Zeroes the gradients of the frozen tensors (so that the clipping norm ignores them, as torch's
 * clip_grad_norm_ does for parameters without gradients). */
void zero_frozen_grads(bert_model *m, const bertc_train_options *o);

/* R-Drop (Liang et al. 2021): z1, z2 (B,K) are the logits of the same B examples under two dropout
 * masks; returns the batch mean of the symmetric KL divergence
 *     s_b = 1/2 (KL(p1 || p2) + KL(p2 || p1)) = 1/2 sum_k (p1_k - p2_k)(log p1_k - log p2_k),
 * p = softmax(z), and writes its gradient w.r.t. z1 and z2 to dz1, dz2 (B,K), both including the
 * 1/B of the mean:  ds/dz1 = 1/2 (p1 * (d - E_p1[d]) + p1 - p2), d = log p1 - log p2, and the same
 * with 1 and 2 exchanged. The caller multiplies by its alpha. */
double rdrop_kl(const float *z1, const float *z2, int B, int K, float *dz1, float *dz2);

#endif
