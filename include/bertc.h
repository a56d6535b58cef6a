/* bertc: fine-tune BERT-family encoders for text classification, in C.
 *
 * The public API. The command-line program (src/cli) is a thin user of it.
 * Every function that can fail returns 0 on success and a non-zero error code
 * otherwise, and fills a bertc_error with one line that names the file and the
 * field at fault. The library never prints and never exits.
 */
#ifndef BERTC_H
#define BERTC_H

#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTC_VERSION "0.1.0"

enum bertc_status {
    BERTC_OK = 0,
    BERTC_EIO = 1,          /* a file could not be opened, read or written */
    BERTC_EFORMAT = 2,      /* a file or record is malformed */
    BERTC_EINVAL = 3,       /* an argument or option is out of range */
    BERTC_ENOMEM = 4,       /* an allocation failed */
    BERTC_EUNSUPPORTED = 5, /* valid input that bertc does not handle (yet) */
    BERTC_ENUMERIC = 6,     /* NaN or infinity in a loss or a gradient */
    BERTC_EINTERRUPTED = 7  /* stopped by a signal after saving state */
};

typedef struct bertc_error {
    int code;
    char msg[1024];
} bertc_error;

/* ---------------------------------------------------------------- models */

/* A fine-tunable model: the encoder and classifier weights, its config and its tokenizer,
 * opened from a Hugging Face folder (config.json, vocab.txt, model.safetensors). */
typedef struct bertc_model bertc_model;

typedef struct bertc_open_options {
    int num_labels;                 /* > 0: classifier with these labels (fresh head if the shape differs) */
    char *const *label_names;       /* num_labels names, or NULL */
    float hidden_dropout;           /* < 0 keeps config.json's value */
    float attention_dropout;
    float classifier_dropout;
    uint64_t seed;                  /* initialises heads that are not in the checkpoint */
    int quiet;                      /* 0: one-line notices (e.g. "classifier initialised") go to stderr */
    const char *device;             /* "cpu" (NULL means it) or "cuda": where the model computes */
    const char *precision;          /* "fp32" (default) or "bf16": the encoder's matrix products in bf16, fp32 accumulation */
} bertc_open_options;

void bertc_open_options_default(bertc_open_options *o);
int bertc_model_open(bertc_model **out, const char *dir, const bertc_open_options *o, bertc_error *err);
/* Writes config.json, model.safetensors, vocab.txt and tokenizer_config.json, each atomically. */
int bertc_model_save(const bertc_model *m, const char *dir, bertc_error *err);
void bertc_model_free(bertc_model *m);
/* Writes to out_dir a model of config_dir's config.json (and vocab.txt) with random weights,
 * initialised as transformers' _init_weights does from seed: for speed and memory checks on a
 * model's shape when its weights are not at hand (e.g. bert-base on a machine offline). */
int bertc_model_init_random(const char *config_dir, const char *out_dir, uint64_t seed, bertc_error *err);
int bertc_model_num_labels(const bertc_model *m);
const char *bertc_model_label(const bertc_model *m, int id);

/* Sets the number of threads of the CPU backend (OpenMP loops and BLAS). 0 = all cores. */
void bertc_set_threads(int n);

/* ------------------------------------------------------------- training */

typedef struct bertc_progress {
    const char *phase;      /* "train" or "eval" */
    int epoch, epochs;      /* 1-based epoch */
    long step, steps;       /* optimiser updates done / planned in total */
    long done, total;       /* examples done / in this phase's pass */
    float loss;             /* running mean training loss of this epoch */
    float lr;
    double examples_per_s;
    double eta_s;           /* of the whole run, estimated */
} bertc_progress;

typedef void (*bertc_progress_fn)(const bertc_progress *p, void *user);
/* One-line messages the library wants a person to see (epoch results, early stop, notices). */
typedef void (*bertc_log_fn)(const char *line, void *user);

typedef struct bertc_train_options {
    const char *model_dir;          /* Hugging Face folder to start from */
    const char *train_spec;         /* dataset (see docs/DATA.md) */
    const char *val_spec;           /* NULL: no validation (no early stopping) */
    const char *out_dir;            /* output model folder + metrics.jsonl + summary.json */
    const char *summary_path;       /* extra copy of the summary JSON, or NULL */
    const char *save_split;         /* write the chosen example ids here (JSON Lines), or NULL */
    const char *load_split;         /* train/evaluate on exactly the ids listed here, or NULL */
    const char *text_column, *text_pair_column, *label_column;
    int skip_bad;
    long train_size, val_size;      /* 0 = all */
    int max_length;
    int batch_size;
    int grad_accum;                 /* micro-batches per update */
    int eval_batch_size;
    int epochs;
    float lr;
    float weight_decay;
    float adam_beta1, adam_beta2, adam_eps;
    float max_grad_norm;            /* <= 0: no clipping */
    const char *scheduler;          /* "constant", "linear", "cosine" */
    long warmup_steps;              /* used when warmup_ratio < 0 */
    float warmup_ratio;             /* < 0: use warmup_steps */
    float hidden_dropout, attention_dropout, classifier_dropout; /* < 0: keep config.json's */
    float label_smoothing;
    /* More regularisation (docs/SWEEP.md): each off by default. */
    float layer_lr_decay;           /* layer-wise lr decay X in (0, 1]: head lr, top layer lr*X, ..., embeddings lr*X^L; 1 = off */
    int freeze_embeddings;          /* no update of the embeddings (and no gradient computed for them) */
    int freeze_layers;              /* no update of the lowest N encoder layers */
    float rdrop;                    /* R-Drop: loss = mean CE of two dropout passes + rdrop * symmetric KL; 0 = off */
    const char *truncation;         /* "head" (default, as Hugging Face), "tail", "head+tail" or "head+tail:H" */
    int stop_after_epoch;           /* > 0: pause after this epoch (checkpoint kept, r->paused set); --resume continues. Not fingerprinted */
    int patience;                   /* epochs without a better validation accuracy before stopping; 0 = never stop early */
    int pad_dynamic;                /* pad each batch to its longest row instead of max_length */
    int eval_train;                 /* evaluate the training set in eval mode at the end (the reference's "training accuracy") */
    uint64_t seed;
    int threads;
    /* Reliability (docs/RELIABILITY.md). */
    int checkpoint_every;           /* also checkpoint to OUT/checkpoint every N updates; 0: only after each epoch; < 0: never */
    /* the checkpoint after an epoch is skipped when less than this many seconds have passed since
     * the last checkpoint (or the start of training): redoing that much work after a crash costs
     * less than writing it (a GPU runs an epoch of 2,000 examples in about a second, a bert-base
     * checkpoint takes longer to write). Default 60; 0: after every epoch. Checkpoints every N
     * updates, at a pause and on a signal are always written. */
    double checkpoint_min_seconds;
    int resume;                     /* continue from OUT/checkpoint; the options must be the checkpoint's */
    int deterministic;              /* bit-identical results (resumed or not) for the same thread count, which a resume must keep */
    int skip_nonfinite;             /* skip an update whose loss or gradient is not finite; more than 10 in a row stop the run */
    const char *device;             /* "cpu" (NULL means it) or "cuda" */
    const char *precision;          /* "fp32" (default) or "bf16" (bertc_open_options); master weights and AdamW stay fp32 */
    volatile sig_atomic_t *stop;    /* non-zero (set by a signal handler): checkpoint after this update, return BERTC_EINTERRUPTED */
    bertc_progress_fn on_progress;
    bertc_log_fn on_log;
    void *user;
} bertc_train_options;

typedef struct bertc_eval_result {
    double accuracy, loss, macro_f1;
    long n;
} bertc_eval_result;

typedef struct bertc_train_result {
    int epochs_run, best_epoch;     /* 1-based; best_epoch 0 when there is no validation set */
    long steps;
    int stopped_early;
    bertc_eval_result train;        /* eval mode over the training set, best weights */
    bertc_eval_result val;          /* best weights */
    double train_seconds, examples_per_s;
    /* where this call's wall time went: evaluations, checkpoints and model writes, and the whole
     * bertc_train call (reading the data and the model included); resumed_seconds is the training
     * time of the earlier calls a --resume continues, counted in train_seconds too */
    double eval_seconds, save_seconds, wall_seconds, resumed_seconds;
    /* the loading part of wall_seconds: reading the data, waiting for the device to start (it
     * starts while the data and the weights are read), opening the model (weights read and moved
     * to the device, the wait not counted), tokenizing */
    double data_seconds, device_wait_seconds, model_seconds, tokenize_seconds;
    long skipped_updates;           /* updates skipped for a non-finite loss or gradient */
    int paused;                     /* stopped by stop_after_epoch: train/val are the best weights' so far; resume to continue */
} bertc_train_result;

void bertc_train_options_default(bertc_train_options *o);
int bertc_train(const bertc_train_options *o, bertc_train_result *r, bertc_error *err);
/* For a resume: fills o with the options stored in out_dir/checkpoint (resume set, out_dir =
 * out_dir, threads and callbacks left as they were). The strings o points to live in *keep:
 * release it with bertc_train_options_release after the training. */
int bertc_train_options_load(bertc_train_options *o, const char *out_dir, void **keep, bertc_error *err);
void bertc_train_options_release(void *keep);

/* ------------------------------------------- continued MLM pretraining */

/* Masked-language-model training of a model's encoder on unlabelled text (docs/EXPERIMENT.md,
 * "Continued pretraining"): BERT's masking (train/mlm_mask.h), BertForMaskedLM's head and loss,
 * AdamW under a schedule. Writes a Hugging Face folder that bertc train and transformers'
 * BertForMaskedLM / BertForSequenceClassification load, plus metrics.jsonl and summary.json. */
typedef struct bertc_pretrain_options {
    const char *model_dir;          /* Hugging Face folder to start from */
    const char *data_spec;          /* texts (docs/DATA.md; labels ignored, "unsup" folders read) */
    const char *out_dir;
    const char *text_column;        /* tables: the text field (default "text") */
    int skip_bad;
    long max_examples;              /* 0 = all, else a seeded subset */
    int max_length;                 /* tokens per text, [CLS] and [SEP] included (longer texts are truncated) */
    int batch_size;
    long steps;                     /* > 0: this many updates; else epochs over the data */
    int epochs;
    float lr;
    float weight_decay;
    float adam_beta1, adam_beta2, adam_eps;
    float max_grad_norm;            /* <= 0: no clipping */
    const char *scheduler;          /* "constant", "linear", "cosine" */
    float warmup_ratio;
    float mlm_probability;          /* share of tokens selected (0.15) */
    int whole_word_mask;
    long freeze_encoder_steps;      /* the first N updates train the head alone (a new head settles first) */
    uint64_t seed;                  /* subset, shuffling, masking, dropout, a new head */
    const char *precision;          /* "fp32" (default) or "bf16": the encoder's products as in bertc train */
    const char *device;             /* as bertc train's --device; NULL or "cpu": the CPU */
    int threads;
    volatile sig_atomic_t *stop;    /* non-zero: write the model after this update, return BERTC_EINTERRUPTED */
    bertc_progress_fn on_progress;
    bertc_log_fn on_log;
    void *user;
} bertc_pretrain_options;

typedef struct bertc_pretrain_result {
    long steps, examples;
    long masked_tokens, tokens;     /* predicted (masked) tokens and all real tokens seen */
    double first_loss;              /* mean MLM loss of the first min(10, steps / 2) updates (1 for 1 update) */
    double last_loss;               /* ... and of as many last updates */
    double seconds, tokens_per_s;
} bertc_pretrain_result;

void bertc_pretrain_options_default(bertc_pretrain_options *o);
int bertc_pretrain(const bertc_pretrain_options *o, bertc_pretrain_result *r, bertc_error *err);

/* ----------------------------------------------------- evaluate, predict */

typedef struct bertc_eval_options {
    const char *data_spec;
    const char *text_column, *text_pair_column, *label_column;
    int skip_bad;
    int max_length;
    int batch_size;
    int pad_dynamic;                /* 1 (default): each batch padded to its longest example, batched
                                       longest first; 0: every example padded to max_length */
    long size;                      /* 0 = all, else a seeded subset */
    uint64_t seed;
} bertc_eval_options;

void bertc_eval_options_default(bertc_eval_options *o);
/* Evaluates m on a labelled dataset; writes the full metrics as JSON to json (if not NULL)
 * and as a table to text (if not NULL). */
int bertc_evaluate(bertc_model *m, const bertc_eval_options *o, bertc_eval_result *r,
                   FILE *json, FILE *text, bertc_error *err);

/* Classifies n texts (pairs optional: NULL or entries NULL); probs and logits (either may be
 * NULL) receive n * num_labels floats. */
int bertc_predict(bertc_model *m, const char *const *texts, const char *const *pairs, size_t n,
                  int max_length, float *probs, float *logits, bertc_error *err);

/* ------------------------------------------------------------ benchmark */

/* bertc bench: times a training step, an evaluation forward and single-example latency of one
 * model shape (docs/PERFORMANCE.md, "Benchmark"), the step's matrix products alone, or the
 * machine's sgemm peak. The model is one of: model_dir (weights), config_path (random weights)
 * or shape ("bert-base", "minilm": built-in shapes, random weights). */
typedef struct bertc_bench_options {
    const char *model_dir, *config_path, *shape;
    const char *precision;          /* one of bertc_bench_precisions(); default "fp32" */
    const char *device;             /* as bertc train's --device; NULL or "cpu": the CPU */
    const char *what;               /* comma list of latency,eval,step,matmul; NULL: all */
    int threads;                    /* 0 = all cores */
    int warmup, reps;               /* untimed and timed runs of each measurement (1, 5) */
    int train_batch, eval_batch, seq; /* 16, 32, 128 */
    int peak;                       /* measure the sgemm peak instead (shape's products and square^3) */
    int square;                     /* the peak's square product size (2048) */
    uint64_t seed;
} bertc_bench_options;

void bertc_bench_options_default(bertc_bench_options *o);
/* The precisions bertc bench can time, NULL-terminated. */
const char *const *bertc_bench_precisions(void);
/* Runs the measurements; one JSON object per line to jsonl and/or a table to human (either may be NULL). */
int bertc_bench(const bertc_bench_options *o, FILE *jsonl, FILE *human, bertc_error *err);

#ifdef __cplusplus
}
#endif
#endif
