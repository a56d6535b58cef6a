/* The facade behind include/bertc.h: composes the tokenizer, the data readers, the model and
 * the trainer into the jobs a user runs (train, evaluate, predict). */
#include "bertc.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ops.h"
#include "data/dataset.h"
#include "model/bert.h"
#include "report/html.h"
#include "report/metrics.h"
#include "tokenizer/wordpiece.h"
#include "train/checkpoint.h"
#include "train/encoded.h"
#include "train/trainer.h"
#include "util/background.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fs.h"

struct bertc_model {
    bert_model *net;
    wordpiece *tok;
    char *src_dir; /* where vocab.txt and tokenizer_config.json come from */
};

void bertc_set_threads(int n) {
    /* OpenMP does all the threading; the CPU backend runs OpenBLAS single-threaded inside it. */
    if (n <= 0) n = omp_get_num_procs();
    omp_set_num_threads(n);
}

/* ---------------------------------------------------------------- models */

void bertc_open_options_default(bertc_open_options *o) {
    memset(o, 0, sizeof *o);
    o->hidden_dropout = o->attention_dropout = o->classifier_dropout = -1.0f;
    o->seed = 42;
    o->precision = "fp32";
}

/* bertc_model_open, calling device_wait (if any) once the weights are read, before the model
 * moves to its device: bertc_train starts the device in a thread and lets it finish while the
 * file is read. */
static int model_open(bertc_model **out, const char *dir, const bertc_open_options *o, void (*device_wait)(void *),
                      void *wait_ctx, bertc_error *err) {
    bertc_open_options defaults;
    if (!o) {
        bertc_open_options_default(&defaults);
        o = &defaults;
    }
    *out = NULL;
    struct stat st;
    if (stat(dir, &st) != 0)
        return bertc_errorf(err, BERTC_EIO, "%s: cannot open the model folder: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return bertc_errorf(err, BERTC_EINVAL, "%s: not a folder (a model is a folder with config.json, vocab.txt "
                            "and model.safetensors)", dir);
    bertc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->src_dir = strdup(dir))) {
        free(m);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    int rc = wordpiece_load_dir(&m->tok, dir, err);
    if (rc) goto fail;
    bert_load_options lo;
    bert_load_options_default(&lo);
    lo.num_labels = o->num_labels;
    lo.label_names = o->label_names;
    lo.hidden_dropout = o->hidden_dropout;
    lo.attention_dropout = o->attention_dropout;
    lo.classifier_dropout = o->classifier_dropout;
    lo.init_seed = o->seed;
    lo.notices = o->quiet ? NULL : stderr;
    int bf16 = 0;
    if ((rc = bert_parse_precision(o->precision, &bf16, err))) goto fail;
    if ((rc = bert_load(&m->net, dir, &lo, err))) goto fail;
    if (device_wait) device_wait(wait_ctx);
    if ((rc = bert_set_device(m->net, o->device, err))) goto fail; /* loaded on the host, then moved */
    if ((rc = bert_set_precision(m->net, bf16, err))) goto fail;
    char line[256];
    if (lo.notices && bert_bf16_notice(m->net, line, sizeof line)) fprintf(lo.notices, "%s\n", line);
    if (wordpiece_vocab_size(m->tok) > bert_get_config(m->net)->vocab_size) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: vocab.txt has %d tokens but config.json's vocab_size is %d", dir,
                          wordpiece_vocab_size(m->tok), bert_get_config(m->net)->vocab_size);
        goto fail;
    }
    *out = m;
    return 0;
fail:
    bertc_model_free(m);
    return rc;
}

int bertc_model_open(bertc_model **out, const char *dir, const bertc_open_options *o, bertc_error *err) {
    return model_open(out, dir, o, NULL, NULL, err);
}

void bertc_model_free(bertc_model *m) {
    if (!m) return;
    bert_free(m->net);
    wordpiece_free(m->tok);
    free(m->src_dir);
    free(m);
}

int bertc_model_init_random(const char *config_dir, const char *out_dir, uint64_t seed, bertc_error *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", config_dir);
    bert_config cfg;
    int rc = bert_config_load(&cfg, path, err);
    if (rc) return rc;
    bertc_model m = {.src_dir = (char *)config_dir};
    rc = bert_init_random(&m.net, &cfg, seed, err);
    bert_config_free(&cfg);
    if (!rc) rc = bertc_model_save(&m, out_dir, err); /* config.json, weights, vocab.txt, tokenizer_config.json */
    bert_free(m.net);
    return rc;
}

int bertc_model_num_labels(const bertc_model *m) { return bert_get_config(m->net)->num_labels; }

const char *bertc_model_label(const bertc_model *m, int id) {
    const bert_config *c = bert_get_config(m->net);
    return id >= 0 && id < c->num_labels ? c->id2label[id] : NULL;
}

static int same_dir(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* bertc_model_save from a host copy of the weights (NULL: the model's own) */
static int model_save(const bertc_model *m, const float *host_params, const char *dir, bertc_error *err) {
    int rc = fs_mkdir_p(dir, err);
    if (rc) return rc;
    if ((rc = bert_save_from(m->net, host_params, dir, err))) return rc;
    if (same_dir(m->src_dir, dir)) return 0;
    char src[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof src, "%s/vocab.txt", m->src_dir);
    snprintf(dst, sizeof dst, "%s/vocab.txt", dir);
    if ((rc = fs_copy_file(src, dst, err))) return rc;
    snprintf(src, sizeof src, "%s/tokenizer_config.json", m->src_dir);
    snprintf(dst, sizeof dst, "%s/tokenizer_config.json", dir);
    if (access(src, R_OK) == 0) return fs_copy_file(src, dst, err);
    static const char tc[] = "{\n  \"do_lower_case\": true,\n  \"model_max_length\": 512,\n  \"tokenizer_class\": \"BertTokenizer\"\n}\n";
    return fs_write_atomic(dst, tc, sizeof tc - 1, err);
}

int bertc_model_save(const bertc_model *m, const char *dir, bertc_error *err) {
    return model_save(m, NULL, dir, err);
}

/* ------------------------------------------------------------------ data */

static void read_options(dataset_read_options *ro, const char *text_col, const char *pair_col, const char *label_col,
                         int skip_bad) {
    memset(ro, 0, sizeof *ro);
    ro->text_column = text_col;
    ro->text_pair_column = pair_col;
    ro->label_column = label_col;
    ro->skip_bad = skip_bad;
}

/* Reads one split: the whole dataset, then exactly the ids of a split file, or a seeded subset. */
static int load_split(dataset *d, const char *spec, const dataset_read_options *ro, const char *split_file,
                      const char *split_name, long size, uint64_t seed, bertc_error *err) {
    int rc = dataset_read(d, spec, ro, err);
    if (rc) return rc;
    if (split_file)
        rc = dataset_apply_split(d, split_file, split_name, err);
    else
        rc = dataset_select(d, (size_t)size, seed, err);
    if (rc) dataset_free(d);
    return rc;
}

static int labelled_only(const dataset *d, const char *spec, bertc_error *err) {
    for (size_t i = 0; i < d->n; i++)
        if (d->ex[i].label < 0)
            return bertc_errorf(err, BERTC_EINVAL, "%s: example '%s' has no label", spec, d->ex[i].id);
    return 0;
}

/* -------------------------------------------------------------- training */

void bertc_train_options_default(bertc_train_options *o) {
    memset(o, 0, sizeof *o);
    o->max_length = 128;
    o->batch_size = 16;
    o->grad_accum = 1;
    o->eval_batch_size = 32;
    o->epochs = 3;
    o->lr = 2e-5f;
    o->weight_decay = 0.0f;
    o->adam_beta1 = 0.9f;
    o->adam_beta2 = 0.999f;
    o->adam_eps = 1e-8f;
    o->max_grad_norm = 0.0f;
    o->scheduler = "linear";
    o->warmup_ratio = -1.0f;
    o->hidden_dropout = o->attention_dropout = o->classifier_dropout = -1.0f;
    o->patience = 0;
    o->layer_lr_decay = 1.0f;
    o->checkpoint_min_seconds = 60.0;
    o->truncation = "head";
    o->eval_train = 1;
    o->seed = 42;
    o->text_column = "text";
    o->label_column = "label";
    o->precision = "fp32";
}

static int check_train_options(const bertc_train_options *o, bertc_error *err) {
    if (!o->model_dir || !o->train_spec || !o->out_dir)
        return bertc_errorf(err, BERTC_EINVAL, "a model folder, a training set and an output folder are required");
    if (o->batch_size < 1 || o->eval_batch_size < 1 || o->grad_accum < 1 || o->epochs < 1)
        return bertc_errorf(err, BERTC_EINVAL, "batch size, gradient accumulation and epochs must be at least 1");
    if (o->max_length < 2) return bertc_errorf(err, BERTC_EINVAL, "max length must be at least 2");
    if (!(o->lr >= 0) || !isfinite(o->lr)) return bertc_errorf(err, BERTC_EINVAL, "learning rate must be >= 0");
    if (o->label_smoothing < 0 || o->label_smoothing >= 1)
        return bertc_errorf(err, BERTC_EINVAL, "label smoothing must be in [0, 1)");
    if (o->warmup_ratio > 1) return bertc_errorf(err, BERTC_EINVAL, "warm-up ratio must be in [0, 1]");
    if (o->warmup_steps < 0) return bertc_errorf(err, BERTC_EINVAL, "warm-up steps must be >= 0");
    if (!(o->layer_lr_decay > 0 && o->layer_lr_decay <= 1))
        return bertc_errorf(err, BERTC_EINVAL, "layer-wise lr decay must be in (0, 1]");
    if (o->freeze_layers < 0) return bertc_errorf(err, BERTC_EINVAL, "frozen layers must be >= 0");
    if (!(o->rdrop >= 0) || !isfinite(o->rdrop)) return bertc_errorf(err, BERTC_EINVAL, "R-Drop alpha must be >= 0");
    int head;
    encoded_truncation tr;
    if (encoded_truncation_parse(o->truncation, &tr, &head))
        return bertc_errorf(err, BERTC_EINVAL, "truncation must be head, tail, head+tail or head+tail:N, got '%s'",
                            o->truncation ? o->truncation : "(null)");
    if (o->stop_after_epoch < 0) return bertc_errorf(err, BERTC_EINVAL, "stop-after-epoch must be >= 0");
    if (!(o->checkpoint_min_seconds >= 0) || !isfinite(o->checkpoint_min_seconds))
        return bertc_errorf(err, BERTC_EINVAL, "checkpoint-min-seconds must be >= 0");
    if (o->stop_after_epoch > 0 && o->checkpoint_every < 0)
        return bertc_errorf(err, BERTC_EINVAL, "pausing after an epoch needs checkpoints (checkpoint-every >= 0)");
    int bf16;
    return bert_parse_precision(o->precision, &bf16, err) ? BERTC_EINVAL : 0;
}

struct save_ctx {
    const bertc_model *m;
    const char *dir;
    float *host;      /* the weights' host copy a thread writes from (a device's model) */
    background job;
};

static int save_model_run(void *arg, bertc_error *err) {
    struct save_ctx *s = arg;
    return model_save(s->m, s->host, s->dir, err);
}

/* The trainer's save_model hook. On a device, the weights come to a host copy and a thread
 * writes the folder while the trainer evaluates the training set (bertc_train waits for it);
 * on the CPU the folder is written at once. */
static int save_model(void *ctx, bertc_error *err) {
    struct save_ctx *s = ctx;
    /* Never write a NaN model: the previous model.safetensors stays as it was. */
    if (!bert_params_finite(s->m->net))
        return bertc_errorf(err, BERTC_ENUMERIC, "%s: the weights hold NaN or infinity; not writing the model", s->dir);
    /* a write before this one finishes first, and its host copy is reused (the trainer calls the
     * hook once per run today; a second call must not free or fill a copy a thread still reads) */
    int rc = background_wait(&s->job, err);
    if (rc) return rc;
    if (!strcmp(bert_backend(s->m->net)->name, "cpu") ||
        (!s->host && !(s->host = malloc(bert_num_params(s->m->net) * sizeof *s->host))))
        return bertc_model_save(s->m, s->dir, err);
    bert_params_to_host(s->m->net, s->host);
    return background_start(&s->job, save_model_run, s, err);
}

/* ------------------------------------------------------ checkpoints, resume */

/* The options a resume must keep, by their command-line names, plus what was read: the
 * fingerprint stored in every checkpoint (and the options --resume restores). */
/* Every training option a checkpoint records, as (key, field of bertc_train_options): written by
 * options_json and read back by bertc_train_options_load from this one list, so the two cannot
 * drift apart. The seed (a 64-bit integer, kept as a string) and the thread count are handled apart. */
#define TRAIN_STRING_OPTIONS(X)                                                                   \
    X("model", model_dir) X("train", train_spec) X("val", val_spec) X("summary", summary_path)    \
    X("save-split", save_split) X("load-split", load_split) X("text-column", text_column)         \
    X("text-pair-column", text_pair_column) X("label-column", label_column) X("scheduler", scheduler)    \
    X("precision", precision) X("device", device)
#define TRAIN_NUMBER_OPTIONS(X)                                                                    \
    X("skip-bad", skip_bad) X("train-size", train_size) X("val-size", val_size)                    \
    X("max-length", max_length) X("batch-size", batch_size) X("grad-accum", grad_accum)            \
    X("eval-batch-size", eval_batch_size) X("epochs", epochs) X("lr", lr)                          \
    X("weight-decay", weight_decay) X("adam-beta1", adam_beta1) X("adam-beta2", adam_beta2)        \
    X("adam-eps", adam_eps) X("max-grad-norm", max_grad_norm) X("warmup-steps", warmup_steps)      \
    X("warmup-ratio", warmup_ratio) X("hidden-dropout", hidden_dropout)                            \
    X("attention-dropout", attention_dropout) X("classifier-dropout", classifier_dropout)          \
    X("label-smoothing", label_smoothing) X("patience", patience) X("pad-dynamic", pad_dynamic)    \
    X("eval-train", eval_train) X("checkpoint-every", checkpoint_every)                            \
    X("deterministic", deterministic) X("skip-nonfinite", skip_nonfinite)

/* Options added later (regularisation): recorded only when they differ from their default
 * (key, field, default), so that checkpoints written before they existed still resume. */
#define TRAIN_EXTRA_NUMBER_OPTIONS(X)                                                             \
    X("layer-lr-decay", layer_lr_decay, 1.0) X("freeze-embeddings", freeze_embeddings, 0)         \
    X("freeze-layers", freeze_layers, 0) X("rdrop", rdrop, 0.0)                                   \
    X("checkpoint-min-seconds", checkpoint_min_seconds, 60.0)

static cJSON *options_json(const bertc_train_options *o) {
    cJSON *j = cJSON_CreateObject();
#define STR(k, f) if (o->f) cJSON_AddStringToObject(j, k, o->f);
#define NUM(k, f) cJSON_AddNumberToObject(j, k, (double)o->f);
#define NUM_EXTRA(k, f, d) if ((double)o->f != (d)) cJSON_AddNumberToObject(j, k, (double)o->f);
    TRAIN_STRING_OPTIONS(STR)
    TRAIN_NUMBER_OPTIONS(NUM)
    TRAIN_EXTRA_NUMBER_OPTIONS(NUM_EXTRA)
    if (o->truncation && strcmp(o->truncation, "head")) cJSON_AddStringToObject(j, "truncation", o->truncation);
#undef STR
#undef NUM
#undef NUM_EXTRA
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(j, "seed", seed);
    cJSON_AddNumberToObject(j, "threads", omp_get_max_threads());
    return j;
}

static uint64_t encoded_hash(const encoded_set *e) {
    uint64_t h = CHECKPOINT_HASH_INIT;
    size_t nt = (size_t)e->n * e->T * sizeof(int32_t);
    h = checkpoint_hash(h, e->ids, nt);
    h = checkpoint_hash(h, e->mask, nt);
    h = checkpoint_hash(h, e->types, nt);
    return checkpoint_hash(h, e->labels, (size_t)e->n * sizeof(int32_t));
}

/* Adds what was read (sizes, labels, a hash of the token ids) to the fingerprint. */
static void add_data_facts(cJSON *j, const dataset *train, const encoded_set *etrain, const encoded_set *eval,
                           size_t num_params) {
    char h[24];
    cJSON_AddNumberToObject(j, "train examples", (double)train->n);
    cJSON_AddNumberToObject(j, "validation examples", eval ? (double)eval->n : 0);
    cJSON *labels = cJSON_AddArrayToObject(j, "labels");
    for (int i = 0; i < train->num_labels; i++) cJSON_AddItemToArray(labels, cJSON_CreateString(train->labels[i]));
    snprintf(h, sizeof h, "%016llx", (unsigned long long)encoded_hash(etrain));
    cJSON_AddStringToObject(j, "training data (token ids)", h);
    snprintf(h, sizeof h, "%016llx", eval ? (unsigned long long)encoded_hash(eval) : 0ULL);
    cJSON_AddStringToObject(j, "validation data (token ids)", h);
    cJSON_AddNumberToObject(j, "model parameters", (double)num_params);
}

/* Names the first setting that differs between this run and the checkpoint. Threads matter only
 * under --deterministic (results depend on the thread count); output-only settings never. */
static int check_fingerprint(const cJSON *now, const cJSON *then, const char *ckpath, bertc_error *err) {
    static const char *const free_keys[] = {"summary", "save-split", "checkpoint-every", "checkpoint-min-seconds",
                                            "device"};
    const cJSON *det = cJSON_GetObjectItemCaseSensitive(then, "deterministic");
    int deterministic = cJSON_IsNumber(det) && det->valuedouble != 0;
    const cJSON *sets[2] = {now, then};
    for (int pass = 0; pass < 2; pass++) {
        const cJSON *e;
        cJSON_ArrayForEach(e, sets[pass]) {
            int skip = !deterministic && !strcmp(e->string, "threads");
            for (size_t i = 0; i < sizeof free_keys / sizeof *free_keys; i++) skip |= !strcmp(e->string, free_keys[i]);
            if (skip) continue;
            const cJSON *a = cJSON_GetObjectItemCaseSensitive(now, e->string);
            const cJSON *b = cJSON_GetObjectItemCaseSensitive(then, e->string);
            if (a && b && cJSON_Compare(a, b, 1)) continue;
            char *sa = a ? cJSON_PrintUnformatted(a) : NULL, *sb = b ? cJSON_PrintUnformatted(b) : NULL;
            int rc = bertc_errorf(err, BERTC_EINVAL, "%s: '%s' differs from the checkpoint's: %.200s here, %.200s in the checkpoint%s; "
                                  "resume with the original options", ckpath, e->string, sa ? sa : "(unset)", sb ? sb : "(unset)",
                                  !strcmp(e->string, "threads") ? " (a --deterministic run must keep its thread count)" : "");
            free(sa);
            free(sb);
            return rc;
        }
    }
    return 0;
}

struct resume_keep {
    cJSON *json;
};

int bertc_train_options_load(bertc_train_options *o, const char *out_dir, void **keep, bertc_error *err) {
    *keep = NULL;
    char dir[PATH_MAX], *opts = NULL, *metrics = NULL;
    snprintf(dir, sizeof dir, "%s/checkpoint", out_dir);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_FILE);
    if (access(path, F_OK) != 0)
        return bertc_errorf(err, BERTC_EIO, "%s: no checkpoint to resume from (%s; a run that finished removes its checkpoint)",
                            path, strerror(errno));
    int rc = checkpoint_read_meta(dir, &opts, &metrics, err);
    free(metrics);
    if (rc) return rc;
    cJSON *j = cJSON_Parse(opts);
    free(opts);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bertc_errorf(err, BERTC_EFORMAT, "%s/%s: its options are not a JSON object", dir, CHECKPOINT_FILE);
    }
    const char *missing = NULL;
#define STR(k, f) { const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k); o->f = cJSON_IsString(v) ? v->valuestring : NULL; }
#define NUM(k, f) { const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);                                \
        if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) < 1e15) o->f = (__typeof__(o->f))v->valuedouble; \
        else if (!missing) missing = k; }
    TRAIN_STRING_OPTIONS(STR)
    TRAIN_NUMBER_OPTIONS(NUM)
#undef STR
#undef NUM
#define NUM_EXTRA(k, f, d) { const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);                        \
        if (!v) o->f = (__typeof__(o->f))(d);                                                           \
        else if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && fabs(v->valuedouble) < 1e15) o->f = (__typeof__(o->f))v->valuedouble; \
        else if (!missing) missing = k; }
    TRAIN_EXTRA_NUMBER_OPTIONS(NUM_EXTRA)
#undef NUM_EXTRA
    const char *trunc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "truncation"));
    o->truncation = trunc ? trunc : "head";
    int threads = 0;
    const cJSON *tv = cJSON_GetObjectItemCaseSensitive(j, "threads");
    if (cJSON_IsNumber(tv) && tv->valuedouble >= 0 && tv->valuedouble <= 1024) threads = (int)tv->valuedouble;
    else if (!missing) missing = "threads";
    const char *seed = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "seed"));
    char *end = NULL;
    if (seed) o->seed = strtoull(seed, &end, 10);
    if (!missing && (!seed || *end)) missing = "seed";
    if (!missing && (!o->model_dir || !o->train_spec || !o->scheduler || !o->text_column)) missing = "model, train, scheduler or text-column";
    if (missing) {
        cJSON_Delete(j);
        return bertc_errorf(err, BERTC_EFORMAT, "%s/%s: its options lack '%s'", dir, CHECKPOINT_FILE, missing);
    }
    /* A deterministic run resumes on its own thread count unless the caller chose one. */
    if (o->deterministic && o->threads == 0) o->threads = threads;
    o->out_dir = out_dir;
    o->resume = 1;
    *keep = j;
    return 0;
}

void bertc_train_options_release(void *keep) { cJSON_Delete(keep); }

/* Fails early, before any data is read, when the output folder cannot be written. */
static int check_writable(const char *dir, bertc_error *err) {
    int rc = fs_mkdir_p(dir, err);
    if (rc) return rc;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/.bertc-write-test", dir);
    if ((rc = fs_write_atomic(path, "ok\n", 3, err))) return rc;
    unlink(path);
    return 0;
}

/* A float option as the decimal the user wrote (2e-5, not 1.99999995e-05). */
static double dec(float x) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)x);
    return strtod(buf, NULL);
}

static cJSON *eval_json(const bertc_eval_result *e) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "accuracy", e->accuracy);
    cJSON_AddNumberToObject(j, "loss", e->loss);
    cJSON_AddNumberToObject(j, "macro_f1", e->macro_f1);
    cJSON_AddNumberToObject(j, "n", (double)e->n);
    return j;
}

static int write_summary(const bertc_train_options *o, const bertc_train_result *r, const dataset *train,
                         const bert_config *cfg, bertc_error *err) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "bertc_version", BERTC_VERSION);
    cJSON_AddStringToObject(j, "model", o->model_dir);
    cJSON_AddStringToObject(j, "train_data", o->train_spec);
    if (o->val_spec) cJSON_AddStringToObject(j, "val_data", o->val_spec);
    cJSON_AddItemToObject(j, "train", eval_json(&r->train));
    if (o->val_spec) cJSON_AddItemToObject(j, "val", eval_json(&r->val));
    if (o->val_spec && o->eval_train) cJSON_AddNumberToObject(j, "gap", r->train.accuracy - r->val.accuracy);
    cJSON_AddNumberToObject(j, "best_epoch", r->best_epoch);
    cJSON_AddNumberToObject(j, "epochs_run", r->epochs_run);
    cJSON_AddBoolToObject(j, "stopped_early", r->stopped_early);
    cJSON_AddNumberToObject(j, "steps", (double)r->steps);
    if (r->skipped_updates) cJSON_AddNumberToObject(j, "skipped_updates", (double)r->skipped_updates);
    if (r->paused) cJSON_AddBoolToObject(j, "paused", 1);
    cJSON_AddNumberToObject(j, "train_seconds", r->train_seconds);
    cJSON_AddNumberToObject(j, "examples_per_s", r->examples_per_s);
    /* where this call's wall time went (a resumed run's earlier calls are in train_seconds only);
     * "other" is what none of the others counts (writing split.jsonl, metrics.jsonl, ...) */
    cJSON *secs = cJSON_AddObjectToObject(j, "seconds");
    double this_train = r->train_seconds - r->resumed_seconds;
    cJSON_AddNumberToObject(secs, "wall", r->wall_seconds);
    cJSON_AddNumberToObject(secs, "train", this_train);
    cJSON_AddNumberToObject(secs, "eval", r->eval_seconds);
    cJSON_AddNumberToObject(secs, "save", r->save_seconds);
    cJSON_AddNumberToObject(secs, "data", r->data_seconds);
    cJSON_AddNumberToObject(secs, "device_wait", r->device_wait_seconds);
    cJSON_AddNumberToObject(secs, "model", r->model_seconds);
    cJSON_AddNumberToObject(secs, "tokenize", r->tokenize_seconds);
    cJSON_AddNumberToObject(secs, "other", r->wall_seconds - this_train - r->eval_seconds - r->save_seconds -
                                               r->data_seconds - r->device_wait_seconds - r->model_seconds -
                                               r->tokenize_seconds);
    cJSON *labels = cJSON_AddArrayToObject(j, "labels");
    for (int i = 0; i < train->num_labels; i++) cJSON_AddItemToArray(labels, cJSON_CreateString(train->labels[i]));
    cJSON *hp = cJSON_AddObjectToObject(j, "hyperparameters");
    cJSON_AddNumberToObject(hp, "lr", dec(o->lr));
    cJSON_AddNumberToObject(hp, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(hp, "grad_accum", o->grad_accum);
    cJSON_AddNumberToObject(hp, "epochs", o->epochs);
    cJSON_AddNumberToObject(hp, "max_length", o->max_length);
    cJSON_AddStringToObject(hp, "scheduler", o->scheduler);
    cJSON_AddNumberToObject(hp, "warmup_steps", (double)o->warmup_steps);
    cJSON_AddNumberToObject(hp, "warmup_ratio", dec(o->warmup_ratio));
    cJSON_AddNumberToObject(hp, "weight_decay", dec(o->weight_decay));
    cJSON_AddNumberToObject(hp, "max_grad_norm", dec(o->max_grad_norm));
    cJSON_AddNumberToObject(hp, "hidden_dropout", dec(cfg->hidden_dropout_prob));
    cJSON_AddNumberToObject(hp, "attention_dropout", dec(cfg->attention_probs_dropout_prob));
    cJSON_AddNumberToObject(hp, "classifier_dropout",
                            dec(cfg->classifier_dropout >= 0 ? cfg->classifier_dropout : cfg->hidden_dropout_prob));
    cJSON_AddNumberToObject(hp, "label_smoothing", dec(o->label_smoothing));
    cJSON_AddNumberToObject(hp, "patience", o->patience);
    cJSON_AddNumberToObject(hp, "seed", (double)o->seed);
    cJSON_AddNumberToObject(hp, "train_size", (double)train->n);
    cJSON_AddBoolToObject(hp, "pad_dynamic", o->pad_dynamic);
    cJSON_AddNumberToObject(hp, "layer_lr_decay", dec(o->layer_lr_decay));
    cJSON_AddNumberToObject(hp, "freeze_embeddings", o->freeze_embeddings);
    cJSON_AddNumberToObject(hp, "freeze_layers", o->freeze_layers);
    cJSON_AddNumberToObject(hp, "rdrop", dec(o->rdrop));
    cJSON_AddStringToObject(hp, "truncation", o->truncation ? o->truncation : "head");
    cJSON_AddStringToObject(hp, "precision", o->precision ? o->precision : "fp32");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    size_t n = strlen(text);
    char *grown = realloc(text, n + 2);
    if (!grown) {
        free(text);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    text = grown;
    text[n] = '\n';
    text[n + 1] = '\0';
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/summary.json", o->out_dir);
    int rc = fs_write_atomic(path, text, n + 1, err);
    if (!rc && o->summary_path) rc = fs_write_atomic(o->summary_path, text, n + 1, err);
    free(text);
    return rc;
}

static int write_splits(const char *path, const dataset *train, const dataset *val, bertc_error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return bertc_errorf(err, BERTC_EIO, "%s: cannot write: %s", path, strerror(errno));
    int rc = dataset_write_split(train, f, "train", err);
    if (!rc && val) rc = dataset_write_split(val, f, "val", err);
    if (fclose(f) && !rc) rc = bertc_errorf(err, BERTC_EIO, "%s: write failed: %s", path, strerror(errno));
    return rc;
}

/* A device backend started in a thread of its own: starting CUDA (the driver, the device's
 * context, cuBLAS) takes about half a second, which can pass while the data and the weights are
 * read. */
typedef struct backend_start {
    const char *name;
    const bertc_backend *be;
    char why[256];
    pthread_t thread;
    int started; /* the thread runs (else be and why are final) */
} backend_start;

static void *backend_start_run(void *arg) {
    backend_start *s = arg;
    s->be = bertc_backend_by_name(s->name, s->why, sizeof s->why);
    return NULL;
}

static void backend_start_begin(backend_start *s, const char *name) {
    memset(s, 0, sizeof *s);
    s->name = name;
    int cuda = name && (!strcmp(name, "cuda") || !strncmp(name, "cuda:", 5));
    if (cuda && pthread_create(&s->thread, NULL, backend_start_run, s) == 0)
        s->started = 1;
    else
        backend_start_run(s); /* the CPU (nothing to start), an unknown name, or no thread to be had */
}

static void backend_start_join(backend_start *s) {
    if (s->started) pthread_join(s->thread, NULL);
    s->started = 0;
}

/* model_open's device_wait: the start joined, the time it took counted */
typedef struct device_wait {
    backend_start *start;
    double seconds;
} device_wait;

static void device_wait_run(void *arg) {
    device_wait *w = arg;
    double t = now_s();
    backend_start_join(w->start);
    w->seconds += now_s() - t;
}

int bertc_train(const bertc_train_options *o, bertc_train_result *r, bertc_error *err) {
    const double t_call = now_s();
    int rc = check_train_options(o, err);
    if (rc) return rc;
    if ((rc = check_writable(o->out_dir, err))) return rc;
    /* Temporary files of a run killed while writing its outputs. */
    static const char *const outputs[] = {"model.safetensors", "config.json", "vocab.txt", "tokenizer_config.json",
                                          "summary.json", "report.html", NULL};
    remove_stale_temps(o->out_dir, outputs);
    bertc_set_threads(o->threads);
    if (o->deterministic) omp_set_dynamic(0);
    char ckdir[PATH_MAX], ckpath[PATH_MAX + 32];
    snprintf(ckdir, sizeof ckdir, "%s/checkpoint", o->out_dir);
    snprintf(ckpath, sizeof ckpath, "%s/%s", ckdir, CHECKPOINT_FILE);
    char *ck_options = NULL, *ck_metrics = NULL, *fingerprint = NULL;
    cJSON *fp = NULL;
    /* Read the checkpoint first: a resume with nothing to resume fails before any work. */
    if (o->resume && (rc = checkpoint_read_meta(ckdir, &ck_options, &ck_metrics, err))) return rc;
    /* the device starts while the data and the weights are read; an unusable one is the error
     * reported, also when reading the data or the model fails */
    backend_start device;
    backend_start_begin(&device, o->device);
    if (!device.started && !device.be) return bertc_errorf(err, BERTC_EUNSUPPORTED, "%s", device.why);
    dataset train = {0}, val = {0};
    encoded_set etrain = {0}, eval = {0};
    bertc_model *m = NULL;
    FILE *mj = NULL;
    double t_data = now_s(), t_data_s = 0, t_wait_s = 0, t_model_s = 0, t_tok_s = 0;
    dataset_read_options ro;
    read_options(&ro, o->text_column, o->text_pair_column, o->label_column, o->skip_bad);
    if ((rc = load_split(&train, o->train_spec, &ro, o->load_split, "train", o->train_size, o->seed, err))) goto done;
    if ((rc = labelled_only(&train, o->train_spec, err))) goto done;
    if (train.num_labels < 2) {
        rc = bertc_errorf(err, BERTC_EINVAL, "%s: need at least 2 labels, found %d", o->train_spec, train.num_labels);
        goto done;
    }
    if (o->val_spec) {
        ro.label_names = train.labels;
        ro.num_label_names = train.num_labels;
        /* A different seed stream for validation, so that train and val subsets of one file differ. */
        if ((rc = load_split(&val, o->val_spec, &ro, o->load_split, "val", o->val_size, o->seed + 1, err))) goto done;
        if ((rc = labelled_only(&val, o->val_spec, err))) goto done;
    }
    if (o->on_log) {
        char line[256];
        int w = snprintf(line, sizeof line, "data: %zu training and %zu validation examples, %d labels", train.n,
                         val.n, train.num_labels);
        if ((train.skipped || val.skipped) && w > 0 && (size_t)w < sizeof line)
            snprintf(line + w, sizeof line - (size_t)w, "; %zu skipped as bad (--skip-bad)", train.skipped + val.skipped);
        o->on_log(line, o->user);
    }

    t_data_s = now_s() - t_data;
    double t_model = now_s();
    bertc_open_options oo;
    bertc_open_options_default(&oo);
    oo.num_labels = train.num_labels;
    oo.label_names = train.labels;
    oo.hidden_dropout = o->hidden_dropout;
    oo.attention_dropout = o->attention_dropout;
    oo.classifier_dropout = o->classifier_dropout;
    oo.seed = o->seed;
    oo.device = o->device;
    oo.precision = o->precision;
    /* the device keeps starting while the weights are read; its failure is reported as such */
    device_wait wait = {&device, 0};
    rc = model_open(&m, o->model_dir, &oo, device_wait_run, &wait, err);
    t_wait_s = wait.seconds;
    t_model_s = now_s() - t_model - wait.seconds;
    if (rc) {
        backend_start_join(&device); /* the model may have failed before waiting for it */
        if (!device.be) rc = bertc_errorf(err, BERTC_EUNSUPPORTED, "%s", device.why);
        goto done;
    }
    if (o->max_length > bert_get_config(m->net)->max_position_embeddings) {
        rc = bertc_errorf(err, BERTC_EINVAL, "max length %d is longer than the model's max_position_embeddings %d",
                          o->max_length, bert_get_config(m->net)->max_position_embeddings);
        goto done;
    }
    if (o->freeze_layers > bert_get_config(m->net)->num_hidden_layers) {
        rc = bertc_errorf(err, BERTC_EINVAL, "cannot freeze %d layers: the model has %d", o->freeze_layers,
                          bert_get_config(m->net)->num_hidden_layers);
        goto done;
    }
    double t_tok = now_s();
    if ((rc = encoded_set_build_truncated(&etrain, &train, m->tok, o->max_length, o->truncation, err))) goto done;
    if (o->val_spec && (rc = encoded_set_build_truncated(&eval, &val, m->tok, o->max_length, o->truncation, err))) goto done;
    t_tok_s = now_s() - t_tok;

    if ((rc = fs_mkdir_p(o->out_dir, err))) goto done;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/split.jsonl", o->out_dir);
    if ((rc = write_splits(path, &train, o->val_spec ? &val : NULL, err))) goto done;
    if (o->save_split && (rc = write_splits(o->save_split, &train, o->val_spec ? &val : NULL, err))) goto done;
    fp = options_json(o);
    add_data_facts(fp, &train, &etrain, o->val_spec ? &eval : NULL, bert_num_params(m->net));
    if (!(fingerprint = cJSON_PrintUnformatted(fp))) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        goto done;
    }
    if (o->resume) {
        cJSON *then = cJSON_Parse(ck_options);
        if (!then) rc = bertc_errorf(err, BERTC_EFORMAT, "%s: its options are not JSON", ckpath);
        else rc = check_fingerprint(fp, then, ckpath, err);
        cJSON_Delete(then);
        if (rc) goto done;
    }
    snprintf(path, sizeof path, "%s/metrics.jsonl", o->out_dir);
    if (!(mj = fopen(path, "w"))) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot write: %s", path, strerror(errno));
        goto done;
    }
    /* A resume starts from the metrics the checkpoint knew: lines written after it are dropped. */
    if (o->resume && fputs(ck_metrics, mj) == EOF) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: write failed: %s", path, strerror(errno));
        goto done;
    }
    struct save_ctx sc = {.m = m, .dir = o->out_dir};
    trainer_hooks hooks = {.save_model = save_model, .ctx = &sc, .metrics_jsonl = mj, .label_names = train.labels,
                           .checkpoint_dir = ckdir, .options_json = fingerprint, .metrics_path = path, .resume = o->resume};
    rc = trainer_run(m->net, &etrain, o->val_spec ? &eval : NULL, o, &hooks, r, err);
    rc = background_finish(&sc.job, rc, err, &r->save_seconds); /* the model folder's write, if still going on */
    free(sc.host);
    r->data_seconds = t_data_s; /* after trainer_run, which clears r */
    r->device_wait_seconds = t_wait_s;
    r->model_seconds = t_model_s;
    r->tokenize_seconds = t_tok_s;
    if (rc) {
        if (rc == BERTC_EINTERRUPTED)
            bertc_errorf(err, rc, "interrupted at step %ld; resume with: bertc train --resume %s", r->steps, o->out_dir);
        goto done;
    }
    if (!r->paused) fprintf(mj, "{\"type\":\"final\",\"train_accuracy\":%.6f,\"train_loss\":%.6f,\"val_accuracy\":%.6f,\"val_loss\":%.6f,\"best_epoch\":%d}\n",
            r->train.accuracy, r->train.loss, r->val.accuracy, r->val.loss, r->best_epoch);
    if (fclose(mj)) {
        mj = NULL;
        rc = bertc_errorf(err, BERTC_EIO, "%s/metrics.jsonl: write failed: %s", o->out_dir, strerror(errno));
        goto done;
    }
    mj = NULL;
    r->wall_seconds = now_s() - t_call;
    rc = write_summary(o, r, &train, bert_get_config(m->net), err);
    /* Paused (stop_after_epoch): the checkpoint stays for --resume; the report waits for the end. */
    if (!rc && r->paused) goto done;
    if (!rc) {
        bertc_error rerr = {0};
        if ((rc = report_write_html(o->out_dir, &rerr)))
            bertc_errorf(err, rc, "%s (the model, metrics.jsonl and summary.json are saved; retry with: bertc report %s)", rerr.msg,
                         o->out_dir);
    }
    /* Finished: the checkpoint (several times the model's size) has served its purpose. */
    if (!rc) checkpoint_remove(ckdir);
done:
    if (device.started) { /* a failure while reading the data: an unusable device is the error to report */
        backend_start_join(&device);
        if (rc && !device.be) rc = bertc_errorf(err, BERTC_EUNSUPPORTED, "%s", device.why);
    }
    free(ck_options);
    free(ck_metrics);
    free(fingerprint);
    cJSON_Delete(fp);
    if (mj) fclose(mj);
    encoded_set_free(&etrain);
    encoded_set_free(&eval);
    bertc_model_free(m);
    dataset_free(&train);
    dataset_free(&val);
    return rc;
}

/* ------------------------------------------------------ evaluate, predict */

void bertc_eval_options_default(bertc_eval_options *o) {
    memset(o, 0, sizeof *o);
    o->max_length = 128;
    o->batch_size = 32;
    o->pad_dynamic = 1;
    o->seed = 42;
    o->text_column = "text";
    o->label_column = "label";
}

/* A head that was never trained carries transformers' placeholder names; such a model
 * takes the dataset's own labels, in order. */
static int has_placeholder_labels(const bert_config *c) {
    for (int i = 0; i < c->num_labels; i++) {
        char want[32];
        snprintf(want, sizeof want, "LABEL_%d", i);
        if (strcmp(c->id2label[i], want)) return 0;
    }
    return 1;
}

int bertc_evaluate(bertc_model *m, const bertc_eval_options *o, bertc_eval_result *r, FILE *json, FILE *text,
                   bertc_error *err) {
    const bert_config *cfg = bert_get_config(m->net);
    dataset d = {0};
    encoded_set e = {0};
    metrics mt = {0};
    dataset_read_options ro;
    read_options(&ro, o->text_column, o->text_pair_column, o->label_column, o->skip_bad);
    if (!has_placeholder_labels(cfg)) {
        ro.label_names = cfg->id2label;
        ro.num_label_names = cfg->num_labels;
    }
    int rc = load_split(&d, o->data_spec, &ro, NULL, NULL, o->size, o->seed, err);
    if (rc) return rc;
    if ((rc = labelled_only(&d, o->data_spec, err))) goto done;
    if (d.num_labels != cfg->num_labels) {
        rc = bertc_errorf(err, BERTC_EINVAL, "%s has %d labels but the model has %d", o->data_spec, d.num_labels,
                          cfg->num_labels);
        goto done;
    }
    if (o->max_length < 2 || o->max_length > cfg->max_position_embeddings) {
        rc = bertc_errorf(err, BERTC_EINVAL, "max length %d is outside [2, %d] (the model's max_position_embeddings)",
                          o->max_length, cfg->max_position_embeddings);
        goto done;
    }
    if ((rc = encoded_set_build(&e, &d, m->tok, o->max_length, err))) goto done;
    if ((rc = bert_prepare_inference(m->net, o->batch_size, o->max_length, err))) goto done;
    if ((rc = metrics_init(&mt, cfg->num_labels, err))) goto done;
    if ((rc = trainer_evaluate(m->net, &e, o->batch_size, o->pad_dynamic, &mt, NULL, NULL, err))) goto done;
    r->accuracy = metrics_accuracy(&mt);
    r->loss = metrics_loss(&mt);
    r->macro_f1 = metrics_macro_f1(&mt);
    r->n = (long)mt.n;
    if (json) {
        metrics_write_json(&mt, d.labels, json);
        fputc('\n', json);
    }
    if (text) metrics_write_text(&mt, d.labels, text);
done:
    metrics_free(&mt);
    encoded_set_free(&e);
    dataset_free(&d);
    return rc;
}

int bertc_predict(bertc_model *m, const char *const *texts, const char *const *pairs, size_t n, int max_length,
                  float *probs, float *logits, bertc_error *err) {
    const bert_config *cfg = bert_get_config(m->net);
    const int K = cfg->num_labels, batch_size = 32;
    if (n == 0) return 0;
    if (n > INT_MAX) return bertc_errorf(err, BERTC_EINVAL, "too many texts at once");
    if (max_length < 2 || max_length > cfg->max_position_embeddings)
        return bertc_errorf(err, BERTC_EINVAL, "max length %d is outside [2, %d] (the model's max_position_embeddings)",
                            max_length, cfg->max_position_embeddings);
    encoded_set e;
    int rc = encoded_set_from_texts(&e, texts, pairs, (int)n, m->tok, max_length, err);
    if (rc) return rc;
    float *z = malloc(n * (size_t)K * sizeof *z);
    if (!z) {
        encoded_set_free(&e);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    if (!(rc = bert_prepare_inference(m->net, batch_size, max_length, err)))
        rc = trainer_evaluate(m->net, &e, batch_size, 1, NULL, z, NULL, err);
    if (!rc) {
        if (logits) memcpy(logits, z, n * (size_t)K * sizeof *z);
        for (size_t i = 0; probs && i < n; i++) {
            const float *row = z + i * K;
            float mx = row[0], s = 0;
            for (int k = 1; k < K; k++) mx = row[k] > mx ? row[k] : mx;
            for (int k = 0; k < K; k++) s += probs[i * K + k] = expf(row[k] - mx);
            for (int k = 0; k < K; k++) probs[i * K + k] /= s;
        }
    }
    free(z);
    encoded_set_free(&e);
    return rc;
}
