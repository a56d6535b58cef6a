/* BertForSequenceClassification: parameters in one arena, activations planned once for a
 * maximum (B, T), forward/backward orchestrated layer by layer over the backend op set
 * (backend/ops.h). The trainer only sees this header.
 *
 * Letters: B batch, T sequence length, C hidden size, NH heads, HS = C/NH head size,
 * F intermediate (feed-forward) size, L layers, V vocabulary, K number of labels. */
#ifndef BERTC_MODEL_BERT_H
#define BERTC_MODEL_BERT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "bertc.h"
#include "model/config.h"

typedef struct bert_model bert_model;

typedef struct bert_load_options {
    /* When num_labels > 0 the classifier has these labels; a checkpoint whose classifier
     * has another shape (or none) gets a fresh one, initialised as Hugging Face does. */
    int num_labels;
    char *const *label_names;
    /* Dropout overrides; a negative value keeps config.json's. */
    float hidden_dropout, attention_dropout, classifier_dropout;
    uint64_t init_seed;   /* for heads that are initialised rather than loaded */
    FILE *notices;        /* one-line notices (e.g. "classifier initialised"); NULL for silence */
} bert_load_options;

/* Fills o with the defaults (keep config, no override, seed 42, notices to NULL). */
void bert_load_options_default(bert_load_options *o);

/* Loads DIR/config.json and DIR/model.safetensors (F32/F16/BF16; names with or without the
 * "bert." prefix, LayerNorm gamma/beta or weight/bias; "cls.*" heads ignored). Every tensor's
 * shape is checked against the config. */
int bert_load(bert_model **out, const char *model_dir, const bert_load_options *o, bertc_error *err);
/* A model with random weights (normal(0, initializer_range), zero biases, LayerNorm 1/0). */
int bert_init_random(bert_model **out, const bert_config *cfg, uint64_t seed, bertc_error *err);
/* Writes DIR/config.json and DIR/model.safetensors (transformers names, "bert." prefix), atomically. */
int bert_save(const bert_model *m, const char *model_dir, bertc_error *err);
/* The same from a host copy of the parameter arena (bert_num_params floats, as bert_params()
 * lays them out) instead of the model's own arena: a thread may write it while the model runs. */
int bert_save_from(const bert_model *m, const float *host_params, const char *model_dir, bertc_error *err);
/* Copies the parameter arena to host memory (n = bert_num_params floats). */
void bert_params_to_host(const bert_model *m, float *host);
void bert_free(bert_model *m);

const bert_config *bert_get_config(const bert_model *m);
bert_config *bert_config_mut(bert_model *m);
/* Runs m's ops through be from now on (bertc bench wraps the CPU backend's table to mark
 * where each op starts); be must outlive m and use the same memory as m's backend (unlike
 * bert_set_backend below, nothing is moved). */
struct bertc_backend;
void bert_swap_ops(bert_model *m, const struct bertc_backend *be);

/* Plans the activation arena for batches of at most B sequences of at most T tokens. */
int bert_prepare(bert_model *m, int B, int T, bertc_error *err);
/* The same for evaluation and prediction only: two layers' activations, used in turn by all
 * layers, and no gradient buffers (bert-base at 32 x 128: about 0.6 GB instead of 3.4 GB).
 * A forward with train != 0 then returns NaN and backward does nothing; bert_prepare plans for
 * training again. A training plan serves inference as it is. */
int bert_prepare_inference(bert_model *m, int B, int T, bertc_error *err);
/* Training at batches of at most B_train, evaluation (train == 0, no backward) at up to B_eval, in
 * one arena: when B_eval > B_train, evaluation batches larger than B_train run on an inference
 * plan laid over the training plan's memory (they are never live at once), so the arena is the
 * larger of the two instead of a training plan for B_eval (bert-base, training at 16 x 128 and
 * evaluating at 32 x 128: 1.7 GB instead of 3.4 GB). A forward on the inference plan overwrites
 * the training activations; backward after it does nothing. */
int bert_prepare_train_eval(bert_model *m, int B_train, int B_eval, int T, bertc_error *err);
/* The activation arena's size in bytes (0 before a prepare). */
size_t bert_activation_bytes(const bert_model *m);

/* One batch. ids, mask, token_types are (B, T) int32 (row-major); labels is (B) or NULL.
 * train != 0 turns dropout on, drawn from dropout_seed. Returns the mean cross-entropy over
 * the batch (with label_smoothing applied when set), or 0 when labels is NULL.
 * mask NULL means all ones, token_types NULL all zeros; a label outside [0, K) is ignored
 * (torch's ignore_index). Returns NaN, and computes nothing, when B or T exceed bert_prepare's
 * or an id / token type is out of range, or a mask value is not 0 or 1. */
float bert_forward(bert_model *m, const int32_t *ids, const int32_t *mask, const int32_t *token_types,
                   const int32_t *labels, int B, int T, int train, uint64_t dropout_seed);
/* Logits of the last forward, (B, K) row-major. */
const float *bert_logits(const bert_model *m);
void bert_set_label_smoothing(bert_model *m, float eps);

/* Gradients accumulate (+=) across backward calls until zeroed, so gradient accumulation
 * is zero_grad once, then forward/backward per micro-batch with loss_scale = 1/n_micro. */
void bert_zero_grad(bert_model *m);
void bert_backward(bert_model *m, float loss_scale);
/* bert_backward with an extra gradient w.r.t. the logits, dlogits_add (B,K) on the host (or NULL),
 * added (times loss_scale) to the cross-entropy's: for losses on the logits beyond the
 * cross-entropy, such as R-Drop's consistency term (train/rdrop.h). */
void bert_backward_with(bert_model *m, float loss_scale, const float *dlogits_add);
/* Freezing: backward computes no gradient at all for the lowest `depth` layer units of the
 * parameter table's numbering (bert_param_info.layer): 0 = everything gets gradients (default),
 * 1 = not the embeddings, 1 + n = not the embeddings nor encoder layers 0..n-1. Backward then stops
 * early, saving their work; their gradients stay as zeroed. */
void bert_set_no_grad_below(bert_model *m, int depth);

/* The encoder alone, for heads other than the classifier (model/mlm_head.h): the same forward
 * with every position carried through the last layer and no pooler or classifier. Returns the
 * final hidden states (B, T, C) in backend memory (valid until the next forward), or NULL for
 * the inputs bert_forward rejects. bert_backward_hidden takes their gradient dhidden (B, T, C),
 * backend memory, and accumulates the encoder's parameter gradients as bert_backward does. */
const float *bert_forward_hidden(bert_model *m, const int32_t *ids, const int32_t *mask, const int32_t *token_types,
                                 int B, int T, int train, uint64_t dropout_seed);
void bert_backward_hidden(bert_model *m, const float *dhidden);

/* Mixed precision: bf16 != 0 runs the encoder's Linear layers as bf16 products accumulated
 * in fp32, from a bf16 copy of their weights (converted when the weights change); everything
 * else (embeddings, attention, LayerNorm, GELU, pooler, classifier, loss, gradients, the
 * optimiser) stays fp32. Call before bert_prepare (it re-plans the activations). Fails with
 * BERTC_EUNSUPPORTED when the backend has no bf16 products. */
int bert_set_precision(bert_model *m, int bf16, bertc_error *err);
/* A --precision value: "fp32" (or NULL) -> 0, "bf16" -> 1, anything else an error. */
int bert_parse_precision(const char *name, int *bf16, bertc_error *err);
int bert_precision_bf16(const bert_model *m);
/* For a bf16 model whose backend emulates bf16 products (the CPU without AVX512-BF16 or
 * oneDNN): writes the one-line notice users get (why, and that fp32 would be faster; no
 * newline) into buf and returns 1; returns 0 when there is nothing to say. */
int bert_bf16_notice(const bert_model *m, char *buf, size_t n);
/* Tells the model its parameters changed (the optimiser wrote them through a pointer it kept):
 * the bf16 copy is refreshed before the next forward. bert_params() implies it. */
void bert_params_changed(bert_model *m);
/* The bf16 copy of the weights (indexed as bert_params; NULL for an fp32 model) and the span
 * [*lo, *hi) of it the model reads (the encoder's Linear weights, whole tensors), for an
 * optimiser that writes it with every update (adamw_set_mirror): after such an update the caller
 * does not call bert_params_changed, and the copy is not rounded again. Valid until the next
 * bert_set_precision. */
uint16_t *bert_params16(bert_model *m, size_t *lo, size_t *hi);

/* The parameter arena and its gradient mirror. */
float *bert_params(bert_model *m);
float *bert_grads(bert_model *m);
size_t bert_num_params(const bert_model *m);

typedef struct bert_param_info {
    const char *name; /* transformers name, e.g. "bert.encoder.layer.0.attention.self.query.weight" */
    size_t offset;    /* into bert_params() */
    size_t numel;
    int ndim;
    int64_t shape[2];
    int no_decay;     /* biases and LayerNorm weights: no weight decay by default */
    int layer;        /* 0 = embeddings, 1..L encoder layers, L+1 = pooler and classifier */
} bert_param_info;

/* The table of parameter tensors in arena order. */
size_t bert_param_table(const bert_model *m, const bert_param_info **out);

/* The backend that holds the model's memory and runs its ops (the CPU unless bert_set_backend
 * moved it), also for other heads (mlm_head.c). bert_params()
 * and bert_grads() point to its memory: on a GPU they are device pointers, so code outside the
 * model reaches them only through the backend's to_host / to_device and ops. */
struct bertc_backend;
const struct bertc_backend *bert_backend(const bert_model *m);
/* Moves the parameters and gradients to be's memory (activations are planned again by the next
 * bert_prepare). */
int bert_set_backend(bert_model *m, const struct bertc_backend *be, bertc_error *err);
/* bert_set_backend by the device's name (bertc_backend_by_name: "cuda", ...); NULL, "" or "cpu"
 * leave the model where it is. An unusable device: BERTC_EUNSUPPORTED with its reason. */
int bert_set_device(bert_model *m, const char *device, bertc_error *err);
/* 1 when every parameter is finite (reads them back from the device when they live there). */
int bert_params_finite(const bert_model *m);

#endif
