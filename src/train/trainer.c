#include "train/trainer.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/ops.h"
#include "train/checkpoint.h"
#include "train/optim.h"
#include "train/regularise.h"
#include "train/schedule.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

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

/* The rows of e by length, longest first, ties in row order (a counting sort: lengths are at
 * most e->T). Batches of similar lengths pad to little more than their own rows. NULL when out
 * of memory. */
static uint32_t *length_order(const encoded_set *e) {
    uint32_t *order = malloc((size_t)(e->n > 0 ? e->n : 1) * sizeof *order);
    size_t *first = calloc((size_t)e->T + 2, sizeof *first);
    if (!order || !first) {
        free(order);
        free(first);
        return NULL;
    }
    for (int i = 0; i < e->n; i++) first[e->T - e->lengths[i] + 1]++; /* bucket T - length: longest first */
    for (int k = 1; k <= e->T + 1; k++) first[k] += first[k - 1];
    for (int i = 0; i < e->n; i++) order[first[e->T - e->lengths[i]]++] = (uint32_t)i;
    free(first);
    return order;
}

int trainer_evaluate(bert_model *m, const encoded_set *e, int batch_size, int dynamic_pad, metrics *mt, float *logits,
                     const bertc_train_options *progress_to, bertc_error *err) {
    int K = bert_get_config(m)->num_labels;
    batch b;
    int rc = batch_alloc(&b, batch_size, e->T, err);
    if (rc) return rc;
    uint32_t *rows = malloc((size_t)batch_size * sizeof *rows);
    uint32_t *order = dynamic_pad ? length_order(e) : NULL;
    if (!rows || (dynamic_pad && !order)) {
        free(rows);
        batch_free(&b);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    if (mt) metrics_reset(mt);
    double t0 = now_s();
    for (int start = 0; start < e->n; start += batch_size) {
        int B = e->n - start < batch_size ? e->n - start : batch_size;
        for (int i = 0; i < B; i++) rows[i] = order ? order[start + i] : (uint32_t)(start + i);
        batch_gather(&b, e, rows, B, dynamic_pad);
        bert_forward(m, b.ids, b.mask, b.types, NULL, B, b.T, 0, 0);
        const float *z = bert_logits(m);
        for (int i = 0; i < B; i++) {
            int pred;
            double loss = row_loss(z + (size_t)i * K, K, b.labels[i], &pred);
            if (!isfinite(loss)) {
                const bertc_backend *be = bert_backend(m);
                unsigned row = rows[i];
                free(rows);
                free(order);
                batch_free(&b);
                if (be->last_error && be->last_error()[0]) return bertc_errorf(err, BERTC_EIO, "%s", be->last_error());
                return bertc_errorf(err, BERTC_ENUMERIC, "non-finite logits while evaluating example %u", row);
            }
            if (mt && b.labels[i] >= 0) metrics_add(mt, b.labels[i], pred, loss);
        }
        for (int i = 0; logits && i < B; i++)
            memcpy(logits + (size_t)rows[i] * K, z + (size_t)i * K, (size_t)K * sizeof(float));
        if (progress_to && progress_to->on_progress) {
            double dt = now_s() - t0;
            bertc_progress p = {.phase = "eval", .done = start + B, .total = e->n,
                                .examples_per_s = dt > 0 ? (start + B) / dt : 0};
            progress_to->on_progress(&p, progress_to->user);
        }
    }
    free(rows);
    free(order);
    batch_free(&b);
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

/* Test-only fault injection (documented in docs/RELIABILITY.md): BERTC_FAULT_NAN_STEPS="3,5-7"
 * puts a NaN into the gradient of those updates (1-based), as an overflow would;
 * BERTC_FAULT_NAN_LOSS_STEPS makes the loss of those updates' first micro-batch NaN. */
static int fault_nan_at(const char *spec, long step) {
    if (!spec) return 0;
    const char *p = spec;
    while (*p) {
        char *end;
        long a = strtol(p, &end, 10), b = a;
        if (end == p) return 0;
        if (*end == '-') {
            p = end + 1;
            b = strtol(p, &end, 10);
            if (end == p) return 0;
        }
        if (step >= a && step <= b) return 1;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return 0;
    }
    return 0;
}

#define MAX_CONSECUTIVE_SKIPS 10

/* Saves the loop's state (see train/checkpoint.h), with metrics.jsonl's text as it is now,
 * through the writer w (on a GPU the file is written while training goes on); the time the loop
 * spends on it is counted in r->save_seconds. */
static int save_checkpoint(checkpoint_writer *w, bert_model *m, const trainer_hooks *h, const train_state *st,
                           const adamw *opt, const float *best, bertc_train_result *r, bertc_error *err) {
    double t0 = now_s();
    char *metrics_text = NULL;
    size_t n = 0;
    int rc = 0;
    if (h->metrics_jsonl && fflush(h->metrics_jsonl))
        rc = bertc_errorf(err, BERTC_EIO, "%s: write failed", h->metrics_path ? h->metrics_path : "metrics.jsonl");
    if (!rc && h->metrics_jsonl && h->metrics_path)
        rc = fs_read_all(h->metrics_path, &metrics_text, &n, (size_t)90 << 20, err);
    if (!rc)
        rc = checkpoint_writer_save(w, h->checkpoint_dir, st, m, opt, st->best_epoch > 0 ? best : NULL,
                                    h->options_json, metrics_text, err);
    free(metrics_text);
    r->save_seconds += now_s() - t0;
    return rc;
}

/* trainer_evaluate over a whole set, its time counted in r->eval_seconds. */
static int evaluate_timed(bert_model *m, const encoded_set *e, const bertc_train_options *o, metrics *mt,
                          bertc_train_result *r, bertc_error *err) {
    double t0 = now_s();
    int rc = trainer_evaluate(m, e, o->eval_batch_size, o->pad_dynamic, mt, NULL, o, err);
    r->eval_seconds += now_s() - t0;
    return rc;
}

static void epoch_sums_reset(train_state *st) {
    st->loss_sum = 0;
    st->loss_n = st->done_ex = st->correct = 0;
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
    const char *ckdir = h ? h->checkpoint_dir : NULL;
    const char *fault_spec = getenv("BERTC_FAULT_NAN_STEPS"), *fault_loss_spec = getenv("BERTC_FAULT_NAN_LOSS_STEPS");

    lr_schedule sched = {.base_lr = o->lr, .total_steps = total_updates};
    if (lr_schedule_parse(o->scheduler, &sched.kind))
        return bertc_errorf(err, BERTC_EINVAL, "unknown scheduler '%s' (constant, linear, cosine)", o->scheduler);
    sched.warmup_steps = o->warmup_ratio >= 0 ? (long)ceil(o->warmup_ratio * (double)total_updates) : o->warmup_steps;

    /* R-Drop runs each batch twice (its rows repeated: other dropout masks), as one batch of 2B. */
    const int rdrop = o->rdrop > 0, BR = rdrop ? 2 * B : B;
    if (o->freeze_layers > bert_get_config(m)->num_hidden_layers)
        return bertc_errorf(err, BERTC_EINVAL, "cannot freeze %d layers: the model has %d", o->freeze_layers,
                            bert_get_config(m)->num_hidden_layers);
    /* evaluation batches beyond the training batch run on an inference plan over the same memory */
    int rc = bert_prepare_train_eval(m, BR, o->eval_batch_size, train->T, err);
    if (rc) return rc;
    bert_set_label_smoothing(m, o->label_smoothing);
    /* Frozen embeddings (and layers above them): backward stops below the lowest trainable layer.
     * Frozen layers under trainable embeddings still pass gradients down; theirs are zeroed. */
    bert_set_no_grad_below(m, o->freeze_embeddings ? 1 + o->freeze_layers : 0);

    size_t np = bert_num_params(m);
    float *params = bert_params(m), *grads = bert_grads(m); /* the backend's memory (a GPU's, maybe) */
    const bertc_backend *be = bert_backend(m);
    adamw_group *groups = NULL;
    size_t n_groups = 0;
    adamw opt = {0};
    checkpoint_writer ckw = {0};
    batch b = {0};
    metrics mt = {0};
    /* The best epoch's validation metrics, when that epoch ran in this process: the reloaded
     * weights score exactly these again, so the final validation pass is not repeated. */
    metrics best_mt = {0};
    int have_best_mt = 0;
    uint32_t *order = NULL, *rows2 = NULL;
    float *best = NULL, *dz = NULL;
    if ((rc = param_groups(m, o, &groups, &n_groups, err))) goto done;
    if ((rc = adamw_init_on(&opt, be, np, groups, n_groups, err))) goto done;
    { /* bf16: the update also writes the weights' bf16 copy (else it is re-rounded after each) */
        size_t lo, hi;
        uint16_t *p16 = bert_params16(m, &lo, &hi);
        (void)adamw_set_mirror(&opt, p16, lo, hi); /* -1 (a group across the span): no mirror, re-rounded */
    }
    opt.beta1 = o->adam_beta1;
    opt.beta2 = o->adam_beta2;
    opt.eps = o->adam_eps;
    if ((rc = batch_alloc(&b, BR, train->T, err))) goto done;
    if (rdrop && (!(rows2 = malloc((size_t)BR * sizeof *rows2)) || !(dz = malloc((size_t)BR * K * sizeof *dz)))) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = metrics_init(&mt, K, err))) goto done;
    if (val && (rc = metrics_init(&best_mt, K, err))) goto done;
    order = malloc((size_t)train->n * sizeof *order);
    /* the best epoch's weights, beside the weights in the backend's memory (on a GPU a copy there
     * takes a fraction of a millisecond; to the host and back, a noticeable part of a short run) */
    best = val ? be->alloc(np * sizeof *best) : NULL;
    if (!order || (val && !best)) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory (%zu parameters)", np);
        goto done;
    }
    for (int i = 0; i < train->n; i++) order[i] = (uint32_t)i;

    /* Everything that moves is in st, so that a checkpoint of st (plus weights and moments) is
     * the whole run so far. */
    train_state st = {.epoch = 1, .best_acc = -1.0};
    if (h && h->resume) {
        if (!ckdir) {
            rc = bertc_errorf(err, BERTC_EINVAL, "resume asked for without a checkpoint folder");
            goto done;
        }
        if ((rc = checkpoint_load(ckdir, &st, m, &opt, best, err))) goto done;
        if (st.batch > batches_per_epoch || st.epoch > o->epochs + 1 || st.step > total_updates ||
            (val == NULL && st.best_epoch > 0)) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s/%s: its position (epoch %d, batch %ld, step %ld) does not fit this run",
                              ckdir, CHECKPOINT_FILE, st.epoch, st.batch, st.step);
            goto done;
        }
    }
    rng shuffle_rng;
    rng_seed(&shuffle_rng, o->seed);
    /* Replay the shuffles of the epochs already done: each epoch shuffles the previous order. */
    for (int e = 1; e < st.epoch && e <= o->epochs; e++) rng_shuffle_u32(&shuffle_rng, order, (size_t)train->n);
    double t_start = now_s(), train_time0 = st.train_seconds;
    double t_last_checkpoint = t_start; /* for checkpoint_min_seconds */
    r->resumed_seconds = st.train_seconds;
    long examples_at_start = st.examples_seen;

    while (!st.finished && st.epoch <= o->epochs) {
        const int epoch = st.epoch;
        rng_shuffle_u32(&shuffle_rng, order, (size_t)train->n);
        if (st.batch > 0 && memcmp(st.rng, shuffle_rng.s, sizeof st.rng)) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s/%s: the shuffle state does not match this run's seed", ckdir, CHECKPOINT_FILE);
            goto done;
        }
        memcpy(st.rng, shuffle_rng.s, sizeof st.rng);
        double t_epoch = now_s();
        for (long bi = st.batch; bi < batches_per_epoch;) {
            /* One optimiser update over up to `accum` micro-batches. */
            long n_micro = batches_per_epoch - bi < accum ? batches_per_epoch - bi : accum;
            float lr = lr_schedule_at(&sched, st.step);
            bert_zero_grad(m);
            double update_loss = 0;
            const char *bad = NULL;
            for (long j = 0; j < n_micro; j++, bi++) {
                long start = bi * B;
                int nb = (int)(train->n - start < B ? train->n - start : B);
                const uint32_t *rows = order + start;
                if (rdrop) { /* rows 0..nb-1 and nb..2nb-1: the same examples, other dropout masks */
                    memcpy(rows2, rows, (size_t)nb * sizeof *rows2);
                    memcpy(rows2 + nb, rows, (size_t)nb * sizeof *rows2);
                    rows = rows2;
                }
                batch_gather(&b, train, rows, rdrop ? 2 * nb : nb, o->pad_dynamic);
                uint64_t dseed = mix64(o->seed ^ mix64((uint64_t)st.micro + 1));
                /* With R-Drop: the mean cross-entropy over both passes, plus alpha times their mean symmetric KL. */
                float loss = bert_forward(m, b.ids, b.mask, b.types, b.labels, b.B, b.T, 1, dseed);
                if (rdrop && isfinite(loss)) {
                    double kl = rdrop_kl(bert_logits(m), bert_logits(m) + (size_t)nb * K, nb, K, dz, dz + (size_t)nb * K);
                    for (size_t i = 0; i < (size_t)2 * nb * K; i++) dz[i] *= o->rdrop;
                    loss += (float)(o->rdrop * kl);
                }
                if (j == 0 && fault_nan_at(fault_loss_spec, st.step + 1)) loss = NAN;
                st.micro++;
                if (!isfinite(loss)) {
                    bad = isnan(loss) ? "loss is NaN" : "loss is infinite";
                    /* The rest of the update's micro-batches are passed over, so positions stay as planned. */
                    st.micro += n_micro - j - 1;
                    bi += n_micro - j;
                    break;
                }
                bert_backward_with(m, 1.0f / (float)n_micro, rdrop ? dz : NULL);
                update_loss += loss / n_micro;
                st.loss_sum += (double)loss * nb;
                st.correct += count_correct(bert_logits(m), K, b.labels, nb);
                st.loss_n += nb;
                st.done_ex += nb;
                st.examples_seen += nb;
            }
            /* A bad loss poisons the gradient, so that every data-parallel process sees a
             * non-finite norm after the all-reduce and all skip (or stop at) the same update. */
            if (be->last_error && be->last_error()[0]) {
                rc = bertc_errorf(err, BERTC_EIO, "%s (step %ld)", be->last_error(), st.step + 1);
                goto done;
            }
            zero_frozen_grads(m, o);
            if (bad || fault_nan_at(fault_spec, st.step + 1)) {
                const float nan = NAN;
                be->to_device(grads, &nan, sizeof nan);
            }
            if (h && h->sync && h->sync->world_size > 1 && (rc = h->sync->allreduce_mean(h->sync, grads, np))) {
                bertc_errorf(err, rc, "gradient all-reduce failed at step %ld", st.step + 1);
                goto done;
            }
            /* the norm only: clipping's scale is folded into the update (adamw_step_scaled) */
            float gnorm = clip_grad_norm_on(be, grads, np, 0.0f);
            if (!bad && !isfinite(gnorm)) bad = "gradient norm is not finite";
            if (bad && !o->skip_nonfinite) {
                rc = bertc_errorf(err, BERTC_ENUMERIC, "%s at step %ld (epoch %d); stopping before it reaches the weights "
                                  "(--skip-nonfinite skips such updates)", bad, st.step + 1, epoch);
                goto done;
            }
            if (bad) {
                bert_zero_grad(m);
                st.skipped++;
                if (++st.consecutive_skips > MAX_CONSECUTIVE_SKIPS) {
                    rc = bertc_errorf(err, BERTC_ENUMERIC, "%s at step %ld (epoch %d): more than %d updates in a row skipped; stopping",
                                      bad, st.step + 1, epoch, MAX_CONSECUTIVE_SKIPS);
                    goto done;
                }
                logf_line(o, "step %ld (epoch %d): %s; update skipped (%ld skipped so far)", st.step + 1, epoch, bad, st.skipped);
                if (h && h->metrics_jsonl)
                    fprintf(h->metrics_jsonl, "{\"type\":\"skip\",\"step\":%ld,\"epoch\":%d,\"reason\":\"%s\"}\n", st.step + 1,
                            epoch, bad);
            } else {
                adamw_step_scaled(&opt, params, grads, lr, grad_clip_coef(gnorm, o->max_grad_norm));
                /* a bf16 model's weight copy was written by the update itself (adamw_set_mirror above) */
                if (!opt.mirror) bert_params_changed(m);
                st.consecutive_skips = 0;
            }
            st.step++;
            st.batch = bi;
            st.opt_step = opt.step;
            double elapsed = now_s() - t_start;
            double eps_rate = elapsed > 0 ? (st.examples_seen - examples_at_start) / elapsed : 0;
            if (!bad && h && h->metrics_jsonl)
                fprintf(h->metrics_jsonl,
                        "{\"type\":\"step\",\"step\":%ld,\"epoch\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6f,\"examples_per_s\":%.2f}\n",
                        st.step, epoch, update_loss, lr, gnorm, eps_rate);
            if (o->on_progress) {
                double total_ex = (double)train->n * o->epochs;
                bertc_progress p = {.phase = "train", .epoch = epoch, .epochs = o->epochs, .step = st.step,
                                    .steps = total_updates, .done = st.done_ex, .total = train->n,
                                    .loss = (float)(st.loss_sum / (st.loss_n ? st.loss_n : 1)), .lr = lr, .examples_per_s = eps_rate,
                                    .eta_s = eps_rate > 0 ? (total_ex - st.examples_seen) / eps_rate : 0};
                o->on_progress(&p, o->user);
            }
            int stop = o->stop && *o->stop;
            if (ckdir && (stop || (o->checkpoint_every > 0 && st.step % o->checkpoint_every == 0))) {
                st.train_seconds = train_time0 + (now_s() - t_epoch);
                if ((rc = save_checkpoint(&ckw, m, h, &st, &opt, best, r, err))) goto done;
                t_last_checkpoint = now_s();
            }
            if (stop) {
                r->steps = st.step;
                rc = bertc_errorf(err, BERTC_EINTERRUPTED, "interrupted at step %ld", st.step);
                goto done;
            }
        }
        train_time0 += now_s() - t_epoch;
        st.train_seconds = train_time0;
        st.epochs_run = epoch;
        double train_loss_running = st.loss_sum / (st.loss_n ? st.loss_n : 1);
        /* From the training-mode logits of the epoch's batches (dropout on, weights moving): a
         * cheap running figure for the learning curves, not the final eval-mode accuracy. */
        double train_acc_running = (double)st.correct / (st.loss_n ? st.loss_n : 1);
        if (!val) {
            logf_line(o, "epoch %d/%d: train loss %.4f", epoch, o->epochs, train_loss_running);
            if (h && h->metrics_jsonl)
                fprintf(h->metrics_jsonl, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%ld,\"train_loss\":%.6f,\"train_accuracy\":%.6f}\n",
                        epoch, st.step, train_loss_running, train_acc_running);
        } else {
            if ((rc = evaluate_timed(m, val, o, &mt, r, err))) goto done;
            double vacc = metrics_accuracy(&mt), vloss = metrics_loss(&mt);
            int improved = vacc > st.best_acc;
            if (h && h->metrics_jsonl)
                fprintf(h->metrics_jsonl,
                        "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%ld,\"train_loss\":%.6f,\"train_accuracy\":%.6f,\"val_loss\":%.6f,\"val_accuracy\":%.6f,\"best\":%s}\n",
                        epoch, st.step, train_loss_running, train_acc_running, vloss, vacc, improved ? "true" : "false");
            if (h && h->metrics_jsonl) fflush(h->metrics_jsonl);
            logf_line(o, "epoch %d/%d: train loss %.4f, val loss %.4f, val accuracy %.4f%s", epoch, o->epochs,
                      train_loss_running, vloss, vacc, improved ? " (best)" : "");
            if (improved) {
                st.best_acc = vacc;
                st.best_epoch = epoch;
                st.bad_epochs = 0;
                /* kept in memory (and in the checkpoint); the model folder is written once, at the end */
                be->copy(best, params, np * sizeof *best);
                metrics_copy(&best_mt, &mt);
                have_best_mt = 1;
            } else if (o->patience > 0 && ++st.bad_epochs >= o->patience) {
                st.stopped_early = 1;
                st.finished = 1;
                logf_line(o, "early stop: no better validation accuracy for %d epoch%s; best epoch %d", st.bad_epochs,
                          st.bad_epochs == 1 ? "" : "s", st.best_epoch);
            }
        }
        st.epoch++;
        st.batch = 0;
        epoch_sums_reset(&st);
        if (st.epoch > o->epochs) st.finished = 1;
        int stop = o->stop && *o->stop;
        /* After the last epoch the run goes straight to its final evaluation and model, and the
         * checkpoint would be removed unread: a crash there resumes from the epoch before. A
         * pause needs the checkpoint; otherwise one is written when the work since the last is
         * worth more than writing it (checkpoint_min_seconds). */
        int pause = o->stop_after_epoch > 0 && epoch == o->stop_after_epoch && !st.finished;
        int due = o->checkpoint_min_seconds <= 0 || now_s() - t_last_checkpoint >= o->checkpoint_min_seconds;
        if (ckdir && (stop || (o->checkpoint_every >= 0 && !st.finished && (due || pause)))) {
            if ((rc = save_checkpoint(&ckw, m, h, &st, &opt, best, r, err))) goto done;
            t_last_checkpoint = now_s();
        }
        if (stop && !st.finished) {
            r->steps = st.step;
            rc = bertc_errorf(err, BERTC_EINTERRUPTED, "interrupted at step %ld", st.step);
            goto done;
        }
        /* A pause (successive halving in bertc sweep): the checkpoint just written is where --resume
         * continues; the best weights so far are evaluated below as at the end. */
        if (o->stop_after_epoch > 0 && epoch == o->stop_after_epoch && !st.finished && ckdir && o->checkpoint_every >= 0) {
            r->paused = 1;
            logf_line(o, "paused after epoch %d; continue with: bertc train --resume OUT", epoch);
            break;
        }
    }
    r->epochs_run = st.epochs_run;
    r->best_epoch = st.best_epoch;
    r->stopped_early = st.stopped_early;
    r->skipped_updates = st.skipped;
    r->steps = st.step;
    r->train_seconds = train_time0;
    r->examples_per_s = train_time0 > 0 ? (double)st.examples_seen / train_time0 : 0;

    if (val) {
        /* Reload the best epoch's weights: the reference reloads its best checkpoint. */
        be->copy(params, best, np * sizeof *best);
        bert_params_changed(m);
        /* Evaluation is deterministic (the same batches in the same order, every sum in a fixed
         * order), so the best epoch's figures are what a second pass would give: test_train
         * checks them against the written model evaluated again. Only a run resumed after its
         * best epoch has to evaluate that epoch's weights once more. */
        if (have_best_mt) metrics_copy(&mt, &best_mt);
        else if ((rc = evaluate_timed(m, val, o, &mt, r, err))) goto done;
        r->val = (bertc_eval_result){metrics_accuracy(&mt), metrics_loss(&mt), metrics_macro_f1(&mt), (long)mt.n};
        if (h && h->metrics_jsonl) {
            /* The best weights' full validation metrics (per class, confusion matrix) for the report. */
            fputs("{\"type\":\"val_metrics\",\"metrics\":", h->metrics_jsonl);
            metrics_write_json(&mt, h->label_names, h->metrics_jsonl);
            fputs("}\n", h->metrics_jsonl);
        }
    }
    if (h && h->save_model) { /* the best weights (or, without validation, the last) */
        double t_save = now_s();
        rc = h->save_model(h->ctx, err);
        r->save_seconds += now_s() - t_save;
        if (rc) goto done;
    }
    if (o->eval_train) {
        if ((rc = evaluate_timed(m, train, o, &mt, r, err))) goto done;
        r->train = (bertc_eval_result){metrics_accuracy(&mt), metrics_loss(&mt), metrics_macro_f1(&mt), (long)mt.n};
    }
done:
    /* the last checkpoint's write, if it is still going on: a failed write is the run's error */
    rc = checkpoint_writer_finish(&ckw, rc, err, &r->save_seconds);
    checkpoint_writer_free(&ckw);
    bert_set_no_grad_below(m, 0);
    free(dz);
    free(rows2);
    if (best) be->free(best);
    free(order);
    metrics_free(&mt);
    metrics_free(&best_mt);
    batch_free(&b);
    adamw_free(&opt);
    free(groups);
    return rc;
}
