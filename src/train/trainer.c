#include "train/trainer.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "train/optim.h"
#include "train/schedule.h"
#include "util/error.h"
#include "util/rng.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void logf_line(const bertc_train_options *o, const char *fmt, ...) BERTC_PRINTF(2, 3);
static void logf_line(const bertc_train_options *o, const char *fmt, ...) {
    if (!o || !o->on_log) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->on_log(line, o->user);
}

/* Cross-entropy of one row of logits, computed stably; the eval loss (no label smoothing),
 * as the reference's model(labels=...) reports it. */
static double row_loss(const float *z, int K, int label, int *argmax) {
    int best = 0;
    float mx = z[0];
    for (int k = 1; k < K; k++)
        if (z[k] > mx) mx = z[k], best = k;
    double s = 0;
    for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
    *argmax = best;
    return label >= 0 ? log(s) + mx - z[label] : 0.0;
}

int trainer_evaluate(bert_model *m, const encoded_set *e, int batch_size, int dynamic_pad, metrics *mt, float *logits,
                     const bertc_train_options *progress_to, bertc_error *err) {
    int K = bert_get_config(m)->num_labels;
    batch b;
    int rc = batch_alloc(&b, batch_size, e->T, err);
    if (rc) return rc;
    uint32_t *rows = malloc((size_t)batch_size * sizeof *rows);
    if (!rows) {
        batch_free(&b);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    if (mt) metrics_reset(mt);
    double t0 = now_s();
    for (int start = 0; start < e->n; start += batch_size) {
        int B = e->n - start < batch_size ? e->n - start : batch_size;
        for (int i = 0; i < B; i++) rows[i] = (uint32_t)(start + i);
        batch_gather(&b, e, rows, B, dynamic_pad);
        bert_forward(m, b.ids, b.mask, b.types, NULL, B, b.T, 0, 0);
        const float *z = bert_logits(m);
        for (int i = 0; i < B; i++) {
            int pred;
            double loss = row_loss(z + (size_t)i * K, K, b.labels[i], &pred);
            if (!isfinite(loss)) {
                free(rows);
                batch_free(&b);
                return bertc_errorf(err, BERTC_ENUMERIC, "non-finite logits while evaluating example %d", start + i);
            }
            if (mt && b.labels[i] >= 0) metrics_add(mt, b.labels[i], pred, loss);
        }
        if (logits) memcpy(logits + (size_t)start * K, z, (size_t)B * K * sizeof(float));
        if (progress_to && progress_to->on_progress) {
            double dt = now_s() - t0;
            bertc_progress p = {.phase = "eval", .done = start + B, .total = e->n,
                                .examples_per_s = dt > 0 ? (start + B) / dt : 0};
            progress_to->on_progress(&p, progress_to->user);
        }
    }
    free(rows);
    batch_free(&b);
    return 0;
}

/* Per-tensor AdamW groups: decay on weights, none on biases and LayerNorm weights. */
static int make_groups(bert_model *m, float weight_decay, adamw_group **out, size_t *n_out, bertc_error *err) {
    const bert_param_info *info;
    size_t n = bert_param_table(m, &info);
    adamw_group *g = malloc(n * sizeof *g);
    if (!g) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        g[i].offset = info[i].offset;
        g[i].numel = info[i].numel;
        g[i].weight_decay = info[i].no_decay ? 0.0f : weight_decay;
        g[i].lr_scale = 1.0f;
    }
    *out = g;
    *n_out = n;
    return 0;
}

static long count_correct(const float *logits, int K, const int32_t *labels, int B) {
    long c = 0;
    for (int i = 0; i < B; i++) {
        const float *z = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (z[k] > z[best]) best = k;
        c += best == labels[i];
    }
    return c;
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

int trainer_run(bert_model *m, const encoded_set *train, const encoded_set *val, const bertc_train_options *o,
                const trainer_hooks *h, bertc_train_result *r, bertc_error *err) {
    memset(r, 0, sizeof *r);
    if (train->n == 0) return bertc_errorf(err, BERTC_EINVAL, "the training set is empty");
    const int B = o->batch_size, accum = o->grad_accum > 0 ? o->grad_accum : 1;
    const int K = bert_get_config(m)->num_labels;
    const long batches_per_epoch = (train->n + B - 1) / B;
    const long updates_per_epoch = (batches_per_epoch + accum - 1) / accum;
    const long total_updates = updates_per_epoch * o->epochs;

    lr_schedule sched = {.base_lr = o->lr, .total_steps = total_updates};
    if (lr_schedule_parse(o->scheduler, &sched.kind))
        return bertc_errorf(err, BERTC_EINVAL, "unknown scheduler '%s' (constant, linear, cosine)", o->scheduler);
    sched.warmup_steps = o->warmup_ratio >= 0 ? (long)ceil(o->warmup_ratio * (double)total_updates) : o->warmup_steps;

    int rc = bert_prepare(m, B > o->eval_batch_size ? B : o->eval_batch_size, train->T, err);
    if (rc) return rc;
    bert_set_label_smoothing(m, o->label_smoothing);

    size_t np = bert_num_params(m);
    float *params = bert_params(m), *grads = bert_grads(m);
    adamw_group *groups = NULL;
    size_t n_groups = 0;
    adamw opt = {0};
    batch b = {0};
    metrics mt = {0};
    uint32_t *order = NULL;
    float *best = NULL;
    if ((rc = make_groups(m, o->weight_decay, &groups, &n_groups, err))) goto done;
    if ((rc = adamw_init(&opt, np, groups, n_groups, err))) goto done;
    opt.beta1 = o->adam_beta1;
    opt.beta2 = o->adam_beta2;
    opt.eps = o->adam_eps;
    if ((rc = batch_alloc(&b, B, train->T, err))) goto done;
    if ((rc = metrics_init(&mt, K, err))) goto done;
    order = malloc((size_t)train->n * sizeof *order);
    best = val ? malloc(np * sizeof *best) : NULL;
    if (!order || (val && !best)) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory (%zu parameters)", np);
        goto done;
    }
    for (int i = 0; i < train->n; i++) order[i] = (uint32_t)i;

    rng shuffle_rng;
    rng_seed(&shuffle_rng, o->seed);
    double best_acc = -1.0, t_start = now_s(), train_time = 0;
    long step = 0, micro = 0, examples_seen = 0;
    int bad_epochs = 0;

    for (int epoch = 1; epoch <= o->epochs; epoch++) {
        rng_shuffle_u32(&shuffle_rng, order, (size_t)train->n);
        double t_epoch = now_s(), loss_sum = 0;
        long loss_n = 0, done_ex = 0, correct = 0;
        for (long bi = 0; bi < batches_per_epoch;) {
            /* One optimiser update over up to `accum` micro-batches. */
            long n_micro = batches_per_epoch - bi < accum ? batches_per_epoch - bi : accum;
            float lr = lr_schedule_at(&sched, step);
            bert_zero_grad(m);
            double update_loss = 0;
            for (long j = 0; j < n_micro; j++, bi++) {
                long start = bi * B;
                int nb = (int)(train->n - start < B ? train->n - start : B);
                batch_gather(&b, train, order + start, nb, o->pad_dynamic);
                uint64_t dseed = mix64(o->seed ^ mix64((uint64_t)micro + 1));
                float loss = bert_forward(m, b.ids, b.mask, b.types, b.labels, nb, b.T, 1, dseed);
                if (!isfinite(loss)) {
                    rc = bertc_errorf(err, BERTC_ENUMERIC, "loss is %s at step %ld (epoch %d); stopping before it reaches the weights",
                                      isnan(loss) ? "NaN" : "infinite", step + 1, epoch);
                    goto done;
                }
                bert_backward(m, 1.0f / (float)n_micro);
                update_loss += loss / n_micro;
                loss_sum += (double)loss * nb;
                correct += count_correct(bert_logits(m), K, b.labels, nb);
                loss_n += nb;
                done_ex += nb;
                examples_seen += nb;
                micro++;
            }
            if (h && h->sync && h->sync->world_size > 1 && (rc = h->sync->allreduce_mean(h->sync, grads, np))) {
                bertc_errorf(err, rc, "gradient all-reduce failed at step %ld", step + 1);
                goto done;
            }
            float gnorm = clip_grad_norm(grads, np, o->max_grad_norm);
            if (!isfinite(gnorm)) {
                rc = bertc_errorf(err, BERTC_ENUMERIC, "gradient norm is not finite at step %ld (epoch %d); stopping before it reaches the weights",
                                  step + 1, epoch);
                goto done;
            }
            adamw_step(&opt, params, grads, lr);
            step++;
            double elapsed = now_s() - t_start;
            double eps_rate = elapsed > 0 ? examples_seen / elapsed : 0;
            if (h && h->metrics_jsonl)
                fprintf(h->metrics_jsonl,
                        "{\"type\":\"step\",\"step\":%ld,\"epoch\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,\"examples_per_s\":%.2f}\n",
                        step, epoch, update_loss, lr, gnorm, eps_rate);
            if (o->on_progress) {
                double total_ex = (double)train->n * o->epochs;
                bertc_progress p = {.phase = "train", .epoch = epoch, .epochs = o->epochs, .step = step,
                                    .steps = total_updates, .done = done_ex, .total = train->n,
                                    .loss = (float)(loss_sum / loss_n), .lr = lr, .examples_per_s = eps_rate,
                                    .eta_s = eps_rate > 0 ? (total_ex - examples_seen) / eps_rate : 0};
                o->on_progress(&p, o->user);
            }
        }
        train_time += now_s() - t_epoch;
        r->epochs_run = epoch;
        double train_loss_running = loss_sum / (loss_n ? loss_n : 1);
        /* From the training-mode logits of the epoch's batches (dropout on, weights moving): a
         * cheap running figure for the learning curves, not the final eval-mode accuracy. */
        double train_acc_running = (double)correct / (loss_n ? loss_n : 1);
        if (!val) {
            logf_line(o, "epoch %d/%d: train loss %.4f", epoch, o->epochs, train_loss_running);
            if (h && h->metrics_jsonl)
                fprintf(h->metrics_jsonl, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%ld,\"train_loss\":%.6f,\"train_accuracy\":%.6f}\n",
                        epoch, step, train_loss_running, train_acc_running);
            continue;
        }
        if ((rc = trainer_evaluate(m, val, o->eval_batch_size, o->pad_dynamic, &mt, NULL, o, err))) goto done;
        double vacc = metrics_accuracy(&mt), vloss = metrics_loss(&mt);
        int improved = vacc > best_acc;
        if (h && h->metrics_jsonl)
            fprintf(h->metrics_jsonl,
                    "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%ld,\"train_loss\":%.6f,\"train_accuracy\":%.6f,\"val_loss\":%.6f,\"val_accuracy\":%.6f,\"best\":%s}\n",
                    epoch, step, train_loss_running, train_acc_running, vloss, vacc, improved ? "true" : "false");
        if (h && h->metrics_jsonl) fflush(h->metrics_jsonl);
        logf_line(o, "epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f%s", epoch, o->epochs,
                  train_loss_running, vloss, vacc, improved ? " (best)" : "");
        if (improved) {
            best_acc = vacc;
            r->best_epoch = epoch;
            bad_epochs = 0;
            memcpy(best, params, np * sizeof *best);
            if (h && h->save_best && (rc = h->save_best(h->ctx, err))) goto done;
        } else if (o->patience > 0 && ++bad_epochs >= o->patience) {
            r->stopped_early = 1;
            logf_line(o, "early stop: no better validation accuracy for %d epoch%s; best epoch %d", bad_epochs,
                      bad_epochs == 1 ? "" : "s", r->best_epoch);
            break;
        }
    }
    r->steps = step;
    r->train_seconds = train_time;
    r->examples_per_s = train_time > 0 ? (double)examples_seen / train_time : 0;

    if (val) {
        /* Reload the best epoch's weights: the reference reloads its best checkpoint. */
        memcpy(params, best, np * sizeof *best);
        if ((rc = trainer_evaluate(m, val, o->eval_batch_size, o->pad_dynamic, &mt, NULL, o, err))) goto done;
        r->val = (bertc_eval_result){metrics_accuracy(&mt), metrics_loss(&mt), metrics_macro_f1(&mt), (long)mt.n};
        if (h && h->metrics_jsonl) {
            /* The best weights' full validation metrics (per class, confusion matrix) for the report. */
            fputs("{\"type\":\"val_metrics\",\"metrics\":", h->metrics_jsonl);
            metrics_write_json(&mt, h->label_names, h->metrics_jsonl);
            fputs("}\n", h->metrics_jsonl);
        }
    } else if (h && h->save_best && (rc = h->save_best(h->ctx, err))) {
        goto done;
    }
    if (o->eval_train) {
        if ((rc = trainer_evaluate(m, train, o->eval_batch_size, o->pad_dynamic, &mt, NULL, o, err))) goto done;
        r->train = (bertc_eval_result){metrics_accuracy(&mt), metrics_loss(&mt), metrics_macro_f1(&mt), (long)mt.n};
    }
done:
    free(best);
    free(order);
    metrics_free(&mt);
    batch_free(&b);
    adamw_free(&opt);
    free(groups);
    return rc;
}
