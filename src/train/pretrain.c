/* bertc_pretrain: continued masked-language-model training of an encoder on unlabelled text.
 *
 * One update:  rows of the shuffled token-id table -> BERT masking (train/mlm_mask.h)
 *              -> bert_forward_hidden (every position, dropout on) -> mlm_head_forward (loss at the
 *              masked positions) -> mlm_head_backward -> bert_backward_hidden
 *              -> global gradient-norm clipping over encoder and head -> AdamW at the schedule's rate.
 *
 * What is trained: the embeddings, the encoder layers and the MLM head (the decoder is tied to the
 * word embeddings). The pooler (which BertForMaskedLM does not have) and the classifier are not
 * touched and are not optimised: the pooler is written back as it was read, so a classifier
 * fine-tuned from the output starts from the checkpoint's pooler, and the classifier is not written.
 *
 * Random streams, all from the one seed: the subset (dataset_select(seed)), the epoch shuffles
 * (rng_seed(seed), Fisher-Yates over the previous order each epoch, as the trainer), the masking
 * (rng_seed(seed ^ MASK_STREAM), consumed batch after batch as mlm_mask.h says), dropout
 * (ops_mix64(seed ^ ops_mix64(update + 1)) per update), a new head (mlm_head_create(seed)). */
#include "bertc.h"

#include <cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend/ops.h"
#include "data/dataset.h"
#include "model/bert.h"
#include "model/mlm_head.h"
#include "model/safetensors.h"
#include "tokenizer/wordpiece.h"
#include "train/checkpoint.h"
#include "train/encoded.h"
#include "train/mlm_mask.h"
#include "train/optim.h"
#include "train/schedule.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

#define MASK_STREAM 0x6d6c6d2d6d61736bULL /* "mlm-mask" */
#define LOSS_WINDOW 10

void bertc_pretrain_options_default(bertc_pretrain_options *o) {
    memset(o, 0, sizeof *o);
    o->text_column = "text";
    o->max_length = 128;
    o->batch_size = 32;
    o->epochs = 1;
    o->lr = 5e-5f;
    o->weight_decay = 0.01f;
    o->adam_beta1 = 0.9f;
    o->adam_beta2 = 0.999f;
    o->adam_eps = 1e-8f;
    o->max_grad_norm = 1.0f;
    o->scheduler = "linear";
    o->warmup_ratio = 0.06f;
    o->mlm_probability = 0.15f;
    o->seed = 42;
    o->precision = "fp32";
}

static void logf_line(const bertc_pretrain_options *o, const char *fmt, ...) BERTC_PRINTF(2, 3);
static void logf_line(const bertc_pretrain_options *o, const char *fmt, ...) {
    if (!o->on_log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->on_log(line, o->user);
}

static int check_options(const bertc_pretrain_options *o, bertc_error *err) {
    if (!o->model_dir || !o->data_spec || !o->out_dir)
        return bertc_errorf(err, BERTC_EINVAL, "a model folder, a dataset and an output folder are required");
    if (o->batch_size < 1 || (o->steps <= 0 && o->epochs < 1))
        return bertc_errorf(err, BERTC_EINVAL, "batch size and epochs (or steps) must be at least 1");
    if (o->max_length < 3) return bertc_errorf(err, BERTC_EINVAL, "max length must be at least 3");
    if (!(o->lr >= 0) || !isfinite(o->lr)) return bertc_errorf(err, BERTC_EINVAL, "learning rate must be >= 0");
    if (!(o->warmup_ratio >= 0 && o->warmup_ratio <= 1))
        return bertc_errorf(err, BERTC_EINVAL, "warm-up ratio must be in [0, 1]");
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return bertc_errorf(err, BERTC_EINVAL, "weight decay must be >= 0");
    if (!(o->mlm_probability > 0 && o->mlm_probability < 1))
        return bertc_errorf(err, BERTC_EINVAL, "masking probability must be in (0, 1)");
    if (o->max_examples < 0) return bertc_errorf(err, BERTC_EINVAL, "max examples must be >= 0");
    if (o->freeze_encoder_steps < 0) return bertc_errorf(err, BERTC_EINVAL, "freeze-encoder steps must be >= 0");
    int bf16;
    return bert_parse_precision(o->precision, &bf16, err);
}

/* AdamW groups for the tensors of a table (weight decay off for biases and LayerNorm weights),
 * skipping names that start with any of skip[]. */
static size_t make_groups(const bert_param_info *t, size_t n, float wd, const char *const *skip, adamw_group *g,
                          size_t *end) {
    size_t k = 0;
    *end = 0;
    for (size_t i = 0; i < n; i++) {
        int skipped = 0;
        for (const char *const *s = skip; s && *s; s++) skipped |= strncmp(t[i].name, *s, strlen(*s)) == 0;
        if (skipped) continue;
        g[k].offset = t[i].offset;
        g[k].numel = t[i].numel;
        g[k].weight_decay = t[i].no_decay ? 0.0f : wd;
        g[k].lr_scale = 1.0f;
        if (t[i].offset + t[i].numel > *end) *end = t[i].offset + t[i].numel;
        k++;
    }
    return k;
}

/* ---------------------------------------------------------------- writing the folder */

/* model.safetensors: the encoder's bert.* tensors (pooler included, classifier left out) and
 * the head's cls.predictions.*; the decoder weight is the word embeddings (tie_word_embeddings). */
static int save_weights(bert_model *net, mlm_head *head, const char *path, bertc_error *err) {
    const bertc_backend *be = bert_backend(net);
    const bert_param_info *et, *ht;
    size_t ne = bert_param_table(net, &et), nh = mlm_head_param_table(head, &ht);
    size_t np = bert_num_params(net), hp = mlm_head_num_params(head);
    float *enc = malloc(np * sizeof(float)), *hd = malloc(hp * sizeof(float));
    st_write_tensor *t = calloc(ne + nh, sizeof *t);
    int rc = 0;
    if (!enc || !hd || !t) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    if (!rc) {
        be->to_host(enc, bert_params(net), np * sizeof(float));
        be->to_host(hd, mlm_head_params(head), hp * sizeof(float));
        size_t k = 0;
        for (int part = 0; part < 2; part++) {
            const bert_param_info *tab = part ? ht : et;
            const float *base = part ? hd : enc;
            for (size_t i = 0; i < (part ? nh : ne); i++) {
                if (strncmp(tab[i].name, "classifier.", 11) == 0) continue;
                t[k].name = tab[i].name;
                t[k].data = base + tab[i].offset;
                t[k].ndim = tab[i].ndim;
                t[k].shape[0] = tab[i].shape[0];
                t[k].shape[1] = tab[i].shape[1];
                k++;
            }
        }
        static const char *const meta[] = {"format", "pt"};
        rc = safetensors_write(path, t, k, meta, 1, err);
    }
    free(enc);
    free(hd);
    free(t);
    return rc;
}

/* config.json as bert_config_save writes it, with architectures ["BertForMaskedLM"]. */
static int save_config(const bert_config *cfg, const char *path, bertc_error *err) {
    int rc = bert_config_save(cfg, path, err);
    if (rc) return rc;
    char *text = NULL;
    size_t n = 0;
    if ((rc = fs_read_all(path, &text, &n, (size_t)1 << 24, err))) return rc;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) return bertc_errorf(err, BERTC_EFORMAT, "%s: cannot read back the config just written", path);
    cJSON *arch = cJSON_CreateArray();
    cJSON_AddItemToArray(arch, cJSON_CreateString("BertForMaskedLM"));
    if (cJSON_GetObjectItemCaseSensitive(j, "architectures")) cJSON_ReplaceItemInObjectCaseSensitive(j, "architectures", arch);
    else cJSON_AddItemToObject(j, "architectures", arch);
    char *out = cJSON_Print(j);
    cJSON_Delete(j);
    if (!out) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    size_t len = strlen(out);
    char *nl = realloc(out, len + 2);
    if (!nl) {
        free(out);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    nl[len] = '\n';
    nl[len + 1] = '\0';
    rc = fs_write_atomic(path, nl, len + 1, err);
    free(nl);
    return rc;
}

static int save_folder(bert_model *net, mlm_head *head, const char *src, const char *dir, bertc_error *err) {
    char path[PATH_MAX], from[PATH_MAX];
    int rc = fs_mkdir_p(dir, err);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((rc = save_weights(net, head, path, err))) return rc;
    snprintf(path, sizeof path, "%s/config.json", dir);
    if ((rc = save_config(bert_get_config(net), path, err))) return rc;
    snprintf(from, sizeof from, "%s/vocab.txt", src);
    snprintf(path, sizeof path, "%s/vocab.txt", dir);
    if ((rc = fs_copy_file(from, path, err))) return rc;
    snprintf(from, sizeof from, "%s/tokenizer_config.json", src);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    if (access(from, R_OK) == 0) return fs_copy_file(from, path, err);
    static const char tc[] = "{\n  \"do_lower_case\": true,\n  \"model_max_length\": 512,\n  \"tokenizer_class\": \"BertTokenizer\"\n}\n";
    return fs_write_atomic(path, tc, sizeof tc - 1, err);
}

static int write_summary(const bertc_pretrain_options *o, const bertc_pretrain_result *r, const char *status,
                         bertc_error *err) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "bertc_version", BERTC_VERSION);
    cJSON_AddStringToObject(j, "task", "mlm");
    cJSON_AddStringToObject(j, "status", status);
    cJSON_AddStringToObject(j, "model", o->model_dir);
    cJSON_AddStringToObject(j, "data", o->data_spec);
    cJSON_AddNumberToObject(j, "steps", (double)r->steps);
    cJSON_AddNumberToObject(j, "examples", (double)r->examples);
    cJSON_AddNumberToObject(j, "tokens", (double)r->tokens);
    cJSON_AddNumberToObject(j, "masked_tokens", (double)r->masked_tokens);
    cJSON_AddNumberToObject(j, "first_loss", r->first_loss);
    cJSON_AddNumberToObject(j, "last_loss", r->last_loss);
    cJSON_AddNumberToObject(j, "train_seconds", r->seconds);
    cJSON_AddNumberToObject(j, "tokens_per_s", r->tokens_per_s);
    cJSON *hp = cJSON_AddObjectToObject(j, "hyperparameters");
    cJSON_AddNumberToObject(hp, "lr", o->lr);
    cJSON_AddNumberToObject(hp, "batch_size", o->batch_size);
    cJSON_AddNumberToObject(hp, "max_length", o->max_length);
    cJSON_AddNumberToObject(hp, "steps", (double)o->steps);
    cJSON_AddNumberToObject(hp, "epochs", o->epochs);
    cJSON_AddStringToObject(hp, "scheduler", o->scheduler);
    cJSON_AddNumberToObject(hp, "warmup_ratio", o->warmup_ratio);
    cJSON_AddNumberToObject(hp, "weight_decay", o->weight_decay);
    cJSON_AddNumberToObject(hp, "max_grad_norm", o->max_grad_norm);
    cJSON_AddNumberToObject(hp, "mlm_probability", o->mlm_probability);
    cJSON_AddBoolToObject(hp, "whole_word_mask", o->whole_word_mask);
    cJSON_AddNumberToObject(hp, "freeze_encoder_steps", (double)o->freeze_encoder_steps);
    cJSON_AddNumberToObject(hp, "max_examples", (double)o->max_examples);
    cJSON_AddStringToObject(hp, "precision", o->precision ? o->precision : "fp32");
    char seed[24];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)o->seed);
    cJSON_AddStringToObject(hp, "seed", seed);
    cJSON_AddNumberToObject(hp, "threads", omp_get_max_threads());
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (!text) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/summary.json", o->out_dir);
    size_t n = strlen(text);
    char *nl = realloc(text, n + 2);
    if (!nl) {
        free(text);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    nl[n] = '\n';
    nl[n + 1] = '\0';
    int rc = fs_write_atomic(path, nl, n + 1, err);
    free(nl);
    return rc;
}

/* ---------------------------------------------------------------- the loop */

int bertc_pretrain(const bertc_pretrain_options *o, bertc_pretrain_result *r, bertc_error *err) {
    memset(r, 0, sizeof *r);
    int rc = check_options(o, err);
    if (rc) return rc;
    if ((rc = fs_mkdir_p(o->out_dir, err))) return rc;
    bertc_set_threads(o->threads);

    wordpiece *wp = NULL;
    bert_model *net = NULL;
    mlm_head *head = NULL;
    dataset d = {0};
    encoded_set e = {0};
    mlm_masker mk = {0};
    batch b = {0};
    adamw opt_enc = {0}, opt_head = {0};
    adamw_group *groups = NULL;
    uint32_t *order = NULL;
    int32_t *positions = NULL, *labels = NULL;
    FILE *mj = NULL;
    char path[PATH_MAX];
    double first_sum = 0, first[LOSS_WINDOW] = {0}, last[LOSS_WINDOW] = {0};
    const char *status = "complete";

    /* the model: tokenizer, encoder, head (from the checkpoint when it has one) */
    if ((rc = wordpiece_load_dir(&wp, o->model_dir, err))) goto done;
    bert_load_options lo;
    bert_load_options_default(&lo);
    lo.init_seed = o->seed;
    if ((rc = bert_load(&net, o->model_dir, &lo, err))) goto done;
    if ((rc = bert_set_device(net, o->device, err))) goto done; /* loaded on the host, then moved */
    int bf16 = 0;
    bert_parse_precision(o->precision, &bf16, err); /* checked in check_options */
    if ((rc = bert_set_precision(net, bf16, err))) goto done;
    if (bert_bf16_notice(net, path, sizeof path)) logf_line(o, "%s", path);
    const bert_config *cfg = bert_get_config(net);
    if (wordpiece_vocab_size(wp) > cfg->vocab_size) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: vocab.txt has %d tokens but config.json's vocab_size is %d",
                          o->model_dir, wordpiece_vocab_size(wp), cfg->vocab_size);
        goto done;
    }
    if (o->max_length > cfg->max_position_embeddings) {
        rc = bertc_errorf(err, BERTC_EINVAL, "max length %d is longer than the model's max_position_embeddings %d",
                          o->max_length, cfg->max_position_embeddings);
        goto done;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", o->model_dir);
    if ((rc = mlm_head_create(&head, net, path, o->seed, NULL, err))) goto done;
    logf_line(o, "mlm head: %s", mlm_head_loaded(head) ? "read from the checkpoint"
                                                        : "cls.predictions not in the checkpoint: initialised");
    if ((rc = mlm_masker_init(&mk, wp, cfg->vocab_size, o->mlm_probability, o->whole_word_mask, err))) goto done;

    /* the data: unlabelled texts, a seeded subset, token ids */
    dataset_read_options ro;
    memset(&ro, 0, sizeof ro);
    ro.text_column = o->text_column;
    ro.skip_bad = o->skip_bad;
    ro.unlabelled = 1;
    if ((rc = dataset_read(&d, o->data_spec, &ro, err))) goto done;
    if ((rc = dataset_select(&d, (size_t)o->max_examples, o->seed, err))) goto done;
    if ((rc = encoded_set_build(&e, &d, wp, o->max_length, err))) goto done;
    logf_line(o, "data: %d texts%s", e.n, d.skipped ? " (bad records skipped)" : "");

    const int B = o->batch_size, T = o->max_length;
    const long per_epoch = (e.n + B - 1) / B;
    const long total = o->steps > 0 ? o->steps : per_epoch * o->epochs;
    const int epochs = (int)((total + per_epoch - 1) / per_epoch);
    lr_schedule sched = {.base_lr = o->lr, .total_steps = total};
    if (lr_schedule_parse(o->scheduler, &sched.kind)) {
        rc = bertc_errorf(err, BERTC_EINVAL, "unknown scheduler '%s' (constant, linear, cosine)", o->scheduler);
        goto done;
    }
    sched.warmup_steps = (long)ceil(o->warmup_ratio * (double)total);

    if ((rc = bert_prepare(net, B, T, err))) goto done;
    /* room for 1.5 times the expected number of masked tokens; a batch with more grows it */
    if ((rc = mlm_head_prepare(head, B * T, (int)(1.5 * o->mlm_probability * B * T) + 16, err))) goto done;
    if ((rc = batch_alloc(&b, B, T, err))) goto done;

    /* AdamW: the encoder without pooler and classifier (they are last in the arena, so the
     * optimised part is a prefix), and the head */
    const bert_param_info *et, *ht;
    size_t ne = bert_param_table(net, &et), nh = mlm_head_param_table(head, &ht);
    static const char *const not_trained[] = {"bert.pooler.", "classifier.", NULL};
    size_t n_enc = 0, n_head = 0;
    groups = malloc((ne + nh) * sizeof *groups);
    order = malloc((size_t)e.n * sizeof *order);
    positions = malloc((size_t)B * T * sizeof *positions);
    labels = malloc((size_t)B * T * sizeof *labels);
    if (!groups || !order || !positions || !labels) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        goto done;
    }
    size_t ng = make_groups(et, ne, o->weight_decay, not_trained, groups, &n_enc);
    /* parameters, gradients and moments in the backend's memory, stepped by its ops (optim.h) */
    const bertc_backend *be = bert_backend(net);
    if ((rc = adamw_init_on(&opt_enc, be, n_enc, groups, ng, err))) goto done;
    { /* bf16: the update also writes the weights' bf16 copy (else it is re-rounded after each) */
        size_t lo, hi;
        uint16_t *p16 = bert_params16(net, &lo, &hi);
        (void)adamw_set_mirror(&opt_enc, p16, lo, hi); /* -1: no mirror, re-rounded */
    }
    ng = make_groups(ht, nh, o->weight_decay, NULL, groups, &n_head);
    if ((rc = adamw_init_on(&opt_head, be, n_head, groups, ng, err))) goto done;
    opt_enc.beta1 = opt_head.beta1 = o->adam_beta1;
    opt_enc.beta2 = opt_head.beta2 = o->adam_beta2;
    opt_enc.eps = opt_head.eps = o->adam_eps;

    snprintf(path, sizeof path, "%s/metrics.jsonl", o->out_dir);
    if (!(mj = fopen(path, "w"))) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot write: %s", path, strerror(errno));
        goto done;
    }
    logf_line(o, "pretraining: %ld update%s of %d texts x %d tokens (%d epoch%s), lr %g, %s schedule, %ld warm-up",
              total, total == 1 ? "" : "s", B, T, epochs, epochs == 1 ? "" : "s", (double)o->lr, o->scheduler,
              sched.warmup_steps);

    for (int i = 0; i < e.n; i++) order[i] = (uint32_t)i;
    rng shuffle_rng, mask_rng;
    rng_seed(&shuffle_rng, o->seed);
    rng_seed(&mask_rng, o->seed ^ MASK_STREAM);
    float *params = bert_params(net), *grads = bert_grads(net);
    float *hparams = mlm_head_params(head), *hgrads = mlm_head_grads(head);
    double t0 = now_s(), smooth = 0;
    for (long step = 0; step < total; step++) {
        long bi = step % per_epoch;
        int epoch = (int)(step / per_epoch) + 1;
        if (bi == 0) rng_shuffle_u32(&shuffle_rng, order, (size_t)e.n);
        int nb = (int)(e.n - bi * B < B ? e.n - bi * B : B);
        batch_gather(&b, &e, order + bi * B, nb, 1);
        long tokens = 0;
        for (size_t i = 0; i < (size_t)nb * b.T; i++) tokens += b.mask[i];
        int N = mlm_mask_batch(&mk, &mask_rng, b.ids, b.mask, nb, b.T, positions, labels);

        bert_zero_grad(net);
        mlm_head_zero_grad(head);
        uint64_t dseed = ops_mix64(o->seed ^ ops_mix64((uint64_t)step + 1));
        const float *hidden = bert_forward_hidden(net, b.ids, b.mask, b.types, nb, b.T, 1, dseed);
        float loss = mlm_head_forward(head, hidden, nb * b.T, positions, labels, N);
        if (!isfinite(loss)) {
            rc = bertc_errorf(err, BERTC_ENUMERIC, "update %ld: the masked-LM loss is not finite", step + 1);
            goto done;
        }
        /* while the encoder is frozen, nothing goes back past the head (its word-embedding
         * gradient stays unused: the embeddings are the encoder's) */
        int frozen = step < o->freeze_encoder_steps;
        const float *dhidden = mlm_head_backward(head, 1.0f);
        if (!frozen) bert_backward_hidden(net, dhidden);

        /* one global norm over everything trained, as torch.nn.utils.clip_grad_norm_ */
        float ge = frozen ? 0.0f : clip_grad_norm_on(be, grads, n_enc, 0.0f);
        float gh = clip_grad_norm_on(be, hgrads, n_head, 0.0f);
        float gnorm = sqrtf(ge * ge + gh * gh);
        if (!isfinite(gnorm)) {
            rc = bertc_errorf(err, BERTC_ENUMERIC, "update %ld: the gradient is not finite", step + 1);
            goto done;
        }
        /* torch's clipping factor, folded into the updates, which read g * clip (one pass fewer) */
        float clip = grad_clip_coef(gnorm, o->max_grad_norm);
        float lr = lr_schedule_at(&sched, step);
        if (!frozen) {
            adamw_step_scaled(&opt_enc, params, grads, lr, clip);
            if (!opt_enc.mirror) bert_params_changed(net); /* bf16: the update wrote the weights' copy too */
        }
        adamw_step_scaled(&opt_head, hparams, hgrads, lr, clip);

        r->steps = step + 1;
        r->examples += nb;
        r->tokens += tokens;
        r->masked_tokens += N;
        if (step < LOSS_WINDOW) first[step] = loss;
        last[step % LOSS_WINDOW] = loss;
        smooth = step == 0 ? loss : 0.95 * smooth + 0.05 * loss;
        double elapsed = now_s() - t0, tps = elapsed > 0 ? r->tokens / elapsed : 0;
        fprintf(mj,
                "{\"type\":\"step\",\"step\":%ld,\"epoch\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,"
                "\"masked\":%d,\"tokens\":%ld,\"tokens_per_s\":%.1f}\n",
                step + 1, epoch, loss, lr, gnorm, N, tokens, tps);
        if (o->on_progress) {
            double eps = elapsed > 0 ? r->examples / elapsed : 0;
            bertc_progress p = {.phase = "train", .epoch = epoch, .epochs = epochs, .step = step + 1, .steps = total,
                                .done = step + 1, .total = total, .loss = (float)smooth, .lr = lr,
                                .examples_per_s = eps, .eta_s = eps > 0 ? (double)(total - step - 1) * B / eps : 0};
            o->on_progress(&p, o->user);
        }
        if (o->stop && *o->stop) {
            status = "interrupted";
            break;
        }
    }
    r->seconds = now_s() - t0;
    r->tokens_per_s = r->seconds > 0 ? r->tokens / r->seconds : 0;
    if (r->steps > 0) { /* windows of up to 10 updates that do not overlap (when there are 2 updates or more) */
        long nf = r->steps / 2 < LOSS_WINDOW ? (r->steps / 2 > 0 ? r->steps / 2 : 1) : LOSS_WINDOW;
        first_sum = 0;
        for (long i = 0; i < nf; i++) first_sum += first[i];
        r->first_loss = first_sum / nf;
        double s = 0;
        for (long i = 0; i < nf; i++) s += last[(r->steps - 1 - i) % LOSS_WINDOW];
        r->last_loss = s / nf;
    }
    if (fclose(mj)) {
        mj = NULL;
        rc = bertc_errorf(err, BERTC_EIO, "%s/metrics.jsonl: write failed", o->out_dir);
        goto done;
    }
    mj = NULL;
    if (!all_finite(params, bert_num_params(net)) || !all_finite(hparams, mlm_head_num_params(head))) {
        rc = bertc_errorf(err, BERTC_ENUMERIC, "%s: the weights hold NaN or infinity; not writing the model", o->out_dir);
        goto done;
    }
    if ((rc = save_folder(net, head, o->model_dir, o->out_dir, err))) goto done;
    if ((rc = write_summary(o, r, status, err))) goto done;
    if (!strcmp(status, "interrupted"))
        rc = bertc_errorf(err, BERTC_EINTERRUPTED, "interrupted after update %ld; the model so far is in %s", r->steps,
                          o->out_dir);
done:
    if (mj) fclose(mj);
    free(groups);
    free(order);
    free(positions);
    free(labels);
    adamw_free(&opt_enc);
    adamw_free(&opt_head);
    batch_free(&b);
    mlm_masker_free(&mk);
    encoded_set_free(&e);
    dataset_free(&d);
    mlm_head_free(head);
    bert_free(net);
    wordpiece_free(wp);
    return rc;
}
