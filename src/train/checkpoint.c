#include "train/checkpoint.h"

#include <cJSON.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/ops.h"
#include "model/safetensors.h"
#include "util/error.h"
#include "util/fs.h"

/* The optimiser's moments and the best weights are stored as flat copies of the parameter arena,
 * so the format changes with the arena's order: 2 since each layer's query, key and value weights
 * came before their biases (one (3C,C) Linear); a format-1 checkpoint would resume with its
 * moments on the wrong parameters, and is refused. */
#define CHECKPOINT_VERSION "2"
#define HEADER_MAX 100000000ULL /* as the safetensors reader */

void remove_stale_temps(const char *dir, const char *const *names) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        for (const char *const *n = names; *n; n++) {
            size_t len = strlen(*n);
            /* exactly NAME ".tmp." and mkstemp's six characters */
            if (strncmp(e->d_name, *n, len) || strncmp(e->d_name + len, ".tmp.", 5) || strlen(e->d_name + len + 5) != 6) continue;
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

void checkpoint_remove(const char *dir) {
    static const char *const names[] = {CHECKPOINT_FILE, NULL};
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_FILE);
    unlink(path);
    remove_stale_temps(dir, names);
    rmdir(dir);
}

int all_finite(const float *x, size_t n) {
    int ok = 1;
    #pragma omp parallel for reduction(&& : ok) if (n >= (1 << 16))
    for (size_t i = 0; i < n; i++) ok = ok && isfinite(x[i]);
    return ok;
}

/* FNV-1a over 64-bit words (then the tail bytes): a cheap check that no tensor byte changed. */
uint64_t checkpoint_hash(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ULL;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static void hex64(char *buf, uint64_t x) { snprintf(buf, 17, "%016" PRIx64, x); }

static int parse_hex64(const char *s, uint64_t *out) {
    if (!s || strlen(s) != 16) return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 16);
    if (*end) return -1;
    *out = v;
    return 0;
}

static char *state_json(const train_state *s) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "epoch", s->epoch);
    cJSON_AddNumberToObject(j, "batch", (double)s->batch);
    cJSON_AddBoolToObject(j, "finished", s->finished);
    cJSON_AddNumberToObject(j, "step", (double)s->step);
    cJSON_AddNumberToObject(j, "opt_step", (double)s->opt_step);
    cJSON_AddNumberToObject(j, "micro", (double)s->micro);
    cJSON_AddNumberToObject(j, "examples_seen", (double)s->examples_seen);
    /* Doubles print with 17 significant digits when needed, so they read back bit for bit. */
    cJSON_AddNumberToObject(j, "loss_sum", s->loss_sum);
    cJSON_AddNumberToObject(j, "loss_n", (double)s->loss_n);
    cJSON_AddNumberToObject(j, "done_ex", (double)s->done_ex);
    cJSON_AddNumberToObject(j, "correct", (double)s->correct);
    cJSON_AddNumberToObject(j, "best_acc", s->best_acc);
    cJSON_AddNumberToObject(j, "best_epoch", s->best_epoch);
    cJSON_AddNumberToObject(j, "bad_epochs", s->bad_epochs);
    cJSON_AddBoolToObject(j, "stopped_early", s->stopped_early);
    cJSON_AddNumberToObject(j, "epochs_run", s->epochs_run);
    cJSON_AddNumberToObject(j, "skipped", (double)s->skipped);
    cJSON_AddNumberToObject(j, "consecutive_skips", (double)s->consecutive_skips);
    cJSON_AddNumberToObject(j, "train_seconds", s->train_seconds);
    cJSON *r = cJSON_AddArrayToObject(j, "shuffle_rng");
    for (int i = 0; i < 4; i++) {
        char h[17];
        hex64(h, s->rng[i]);
        cJSON_AddItemToArray(r, cJSON_CreateString(h));
    }
    char *text = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return text;
}

/* Reads one number field; integers must be whole and in range. */
static int get_num(const cJSON *j, const char *key, double lo, double hi, int whole, double *out, const char *path,
                   bertc_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi ||
        (whole && floor(v->valuedouble) != v->valuedouble))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint state field '%s' is missing or out of range", path, key);
    *out = v->valuedouble;
    return 0;
}

static int parse_state(const char *text, train_state *s, const char *path, bertc_error *err) {
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint state is missing or not a JSON object", path);
    }
    memset(s, 0, sizeof *s);
    const double L = 9007199254740992.0;
    double d;
    int rc = 0;
#define INT_FIELD(name, lo, hi, dst) \
    if (!rc && !(rc = get_num(j, name, lo, hi, 1, &d, path, err))) dst = (__typeof__(dst))d;
    INT_FIELD("epoch", 1, INT_MAX, s->epoch)
    INT_FIELD("batch", 0, L, s->batch)
    INT_FIELD("step", 0, L, s->step)
    INT_FIELD("opt_step", 0, L, s->opt_step)
    INT_FIELD("micro", 0, L, s->micro)
    INT_FIELD("examples_seen", 0, L, s->examples_seen)
    INT_FIELD("loss_n", 0, L, s->loss_n)
    INT_FIELD("done_ex", 0, L, s->done_ex)
    INT_FIELD("correct", 0, L, s->correct)
    INT_FIELD("best_epoch", 0, INT_MAX, s->best_epoch)
    INT_FIELD("bad_epochs", 0, INT_MAX, s->bad_epochs)
    INT_FIELD("epochs_run", 0, INT_MAX, s->epochs_run)
    INT_FIELD("skipped", 0, L, s->skipped)
    INT_FIELD("consecutive_skips", 0, L, s->consecutive_skips)
#undef INT_FIELD
    if (!rc && !(rc = get_num(j, "loss_sum", -HUGE_VAL, HUGE_VAL, 0, &d, path, err))) s->loss_sum = d;
    if (!rc && !(rc = get_num(j, "best_acc", -1, 1, 0, &d, path, err))) s->best_acc = d;
    if (!rc && !(rc = get_num(j, "train_seconds", 0, HUGE_VAL, 0, &d, path, err))) s->train_seconds = d;
    if (!rc) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(j, "finished"), *e = cJSON_GetObjectItemCaseSensitive(j, "stopped_early");
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "shuffle_rng");
        if (!cJSON_IsBool(f) || !cJSON_IsBool(e) || cJSON_GetArraySize(r) != 4)
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint state lacks finished, stopped_early or shuffle_rng", path);
        else {
            s->finished = cJSON_IsTrue(f);
            s->stopped_early = cJSON_IsTrue(e);
            for (int i = 0; i < 4 && !rc; i++)
                if (parse_hex64(cJSON_GetStringValue(cJSON_GetArrayItem(r, i)), &s->rng[i]))
                    rc = bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint shuffle_rng[%d] is not 16 hex digits", path, i);
        }
    }
    cJSON_Delete(j);
    return rc;
}

/* h chained over n tensors' bytes, each tensor as one run (as checkpoint_hash over a host copy of
 * it); with must_be_finite, -1 at the first tensor holding NaN or infinity. Tensors are host memory
 * where fetch is NULL or t->host is set; the others live in a device's memory (weights and AdamW
 * moments on a GPU) and are fetched a piece at a time, so no host copy of the whole state is made
 * (a fresh 1.3 GB buffer for bert-base costs more in page faults than this pass and the writer's
 * second one). */
static int hash_tensors(const st_write_tensor *t, size_t n, st_fetch_fn fetch, int must_be_finite, uint64_t *h,
                        bertc_error *err) {
    enum { PIECE = 16 << 20 }; /* a multiple of 8: the hash's words do not straddle pieces */
    float *buf = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t numel = 1;
        for (int d = 0; d < t[i].ndim; d++) numel *= (size_t)t[i].shape[d];
        size_t bytes = numel * sizeof(float);
        if (!fetch || t[i].host) {
            if (must_be_finite && !all_finite(t[i].data, numel)) rc = -1;
            *h = checkpoint_hash(*h, t[i].data, bytes);
            continue;
        }
        if (!buf && !(buf = malloc(PIECE))) return bertc_errorf(err, BERTC_ENOMEM, "out of memory writing a checkpoint");
        for (size_t off = 0; off < bytes && !rc; off += PIECE) {
            size_t k = bytes - off < (size_t)PIECE ? bytes - off : (size_t)PIECE;
            fetch(buf, (const char *)t[i].data + off, k);
            if (must_be_finite && !all_finite(buf, k / sizeof(float))) rc = -1;
            *h = checkpoint_hash(*h, buf, k);
        }
    }
    free(buf);
    return rc;
}

/* dir/checkpoint.safetensors from tensors whose checksum h is already computed */
static int write_file(const char *dir, const st_write_tensor *t, size_t n, uint64_t h, const char *state,
                      const char *options_json, const char *metrics, st_fetch_fn fetch, bertc_error *err) {
    int rc = fs_mkdir_p(dir, err);
    if (rc) return rc;
    static const char *const names[] = {CHECKPOINT_FILE, NULL};
    remove_stale_temps(dir, names); /* left by a process killed while writing */
    char hash[17];
    hex64(hash, h);
    const char *meta[] = {"format", "pt", "bertc_checkpoint", CHECKPOINT_VERSION, "state", state,
                          "options", options_json ? options_json : "{}", "metrics", metrics ? metrics : "",
                          "checksum", hash};
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_FILE);
    return safetensors_write_fetch(path, t, n, meta, sizeof meta / sizeof *meta / 2, fetch, err);
}

/* A checkpoint's tensors in file order into t (room for the model's tensors + 3): the weights
 * under their names (params: the arena or a host copy of it), AdamW's moments, the best weights
 * when there are some; host marks them all host memory. Returns how many. */
static size_t checkpoint_tensors(st_write_tensor *t, bert_model *m, const float *params, const float *exp_avg,
                                 const float *exp_avg_sq, const float *best, int host) {
    const int64_t np = (int64_t)bert_num_params(m);
    const bert_param_info *info;
    size_t nt = bert_param_table(m, &info), n = 0;
    for (; n < nt; n++)
        t[n] = (st_write_tensor){.name = info[n].name, .data = params + info[n].offset, .ndim = info[n].ndim,
                                 .shape = {info[n].shape[0], info[n].shape[1]}, .host = host};
    t[n++] = (st_write_tensor){.name = "optimizer.exp_avg", .data = exp_avg, .ndim = 1, .shape = {np}, .host = host};
    t[n++] = (st_write_tensor){.name = "optimizer.exp_avg_sq", .data = exp_avg_sq, .ndim = 1, .shape = {np}, .host = host};
    if (best) t[n++] = (st_write_tensor){.name = "best", .data = best, .ndim = 1, .shape = {np}, .host = host};
    return n;
}

static int refuse_weights(bertc_error *err, long step) {
    return bertc_errorf(err, BERTC_ENUMERIC, "the weights hold NaN or infinity at step %ld; not writing a checkpoint", step);
}
static int refuse_best(bertc_error *err) {
    return bertc_errorf(err, BERTC_ENUMERIC, "the best weights hold NaN or infinity; not writing a checkpoint");
}

int checkpoint_save(const char *dir, const train_state *s, bert_model *m, const adamw *opt, const float *best,
                    const char *options_json, const char *metrics, bertc_error *err) {
    const bertc_backend *be = bert_backend(m);
    /* on another backend than the CPU, weights, moments and best weights are fetched from its memory */
    st_fetch_fn fetch = be && strcmp(be->name, "cpu") ? be->to_host : NULL;
    const bert_param_info *info;
    size_t nt = bert_param_table(m, &info);
    st_write_tensor *t = calloc(nt + 3, sizeof *t);
    char *state = state_json(s);
    if (!t || !state) {
        free(t);
        free(state);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory writing a checkpoint");
    }
    size_t n = checkpoint_tensors(t, m, bert_params(m), opt->m, opt->v, best, 0);
    /* the checksum covers the tensors in file order; the weights and the best weights must be finite,
     * and nothing touches the folder until they are */
    uint64_t h = CHECKPOINT_HASH_INIT;
    int rc = hash_tensors(t, nt, fetch, 1, &h, err);
    if (rc < 0) rc = refuse_weights(err, s->step);
    if (!rc) rc = hash_tensors(t + nt, 2, fetch, 0, &h, err);
    if (!rc && best && hash_tensors(t + nt + 2, 1, fetch, 1, &h, err) < 0) rc = refuse_best(err);
    if (!rc) rc = write_file(dir, t, n, h, state, options_json, metrics, fetch, err);
    free(state);
    free(t);
    return rc;
}

/* ---- the background writer ---- */

static int writer_run(void *arg, bertc_error *err) {
    checkpoint_writer *w = arg;
    uint64_t h = CHECKPOINT_HASH_INIT;
    int rc = hash_tensors(w->t, w->n, NULL, 0, &h, err);
    return rc ? rc : write_file(w->dir, w->t, w->n, h, w->state, w->options, w->metrics, NULL, err);
}

/* the finished write's strings and tensor list */
static void writer_release(checkpoint_writer *w) {
    free(w->state), free(w->options), free(w->metrics), free(w->t);
    w->state = w->options = w->metrics = NULL;
    w->t = NULL;
}

int checkpoint_writer_wait(checkpoint_writer *w, bertc_error *err) {
    int rc = background_wait(&w->job, err);
    writer_release(w);
    return rc;
}

int checkpoint_writer_finish(checkpoint_writer *w, int rc, bertc_error *err, double *seconds) {
    rc = background_finish(&w->job, rc, err, seconds);
    writer_release(w);
    return rc;
}

void checkpoint_writer_free(checkpoint_writer *w) {
    checkpoint_writer_wait(w, NULL);
    free(w->snap);
    memset(w, 0, sizeof *w);
}

int checkpoint_writer_save(checkpoint_writer *w, const char *dir, const train_state *s, bert_model *m,
                           const adamw *opt, const float *best, const char *options_json, const char *metrics,
                           bertc_error *err) {
    int rc = checkpoint_writer_wait(w, err);
    if (rc) return rc;
    const bertc_backend *be = bert_backend(m);
    if (!be || !strcmp(be->name, "cpu") || strlen(dir) >= sizeof w->dir)
        return checkpoint_save(dir, s, m, opt, best, options_json, metrics, err);
    const size_t np = bert_num_params(m), need = (best ? 4 : 3) * np;
    if (need > w->snap_cap) { /* kept from one checkpoint to the next: its pages are touched once */
        free(w->snap);
        w->snap_cap = 0;
        if (!(w->snap = malloc(need * sizeof *w->snap))) return bertc_errorf(err, BERTC_ENOMEM, "out of memory writing a checkpoint");
        w->snap_cap = need;
    }
    float *wp = w->snap, *mp = wp + np, *vp = mp + np, *bp = vp + np;
    be->to_host(wp, bert_params(m), np * sizeof *wp);
    be->to_host(mp, opt->m, np * sizeof *mp);
    be->to_host(vp, opt->v, np * sizeof *vp);
    if (!all_finite(wp, np)) return refuse_weights(err, s->step);
    if (best) {
        be->to_host(bp, best, np * sizeof *bp);
        if (!all_finite(bp, np)) return refuse_best(err);
    }
    const bert_param_info *info;
    w->t = calloc(bert_param_table(m, &info) + 3, sizeof *w->t);
    w->state = state_json(s);
    w->options = strdup(options_json ? options_json : "{}");
    w->metrics = strdup(metrics ? metrics : "");
    if (!w->t || !w->state || !w->options || !w->metrics) {
        writer_release(w);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory writing a checkpoint");
    }
    w->n = checkpoint_tensors(w->t, m, wp, mp, vp, best ? bp : NULL, 1); /* checkpoint_save's, from the copy */
    snprintf(w->dir, sizeof w->dir, "%s", dir);
    return background_start(&w->job, writer_run, w, err);
}

/* The header's __metadata__ object of a file safetensors_open has already checked. */
static int read_metadata(const char *path, cJSON **out, bertc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return bertc_errorf(err, BERTC_EIO, "%s: cannot open", path);
    unsigned char b[8];
    uint64_t len = 0;
    if (fread(b, 1, 8, f) != 8) {
        fclose(f);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: cannot read the header length", path);
    }
    for (int i = 7; i >= 0; i--) len = len << 8 | b[i];
    char *hdr = len <= HEADER_MAX ? malloc((size_t)len + 1) : NULL;
    if (!hdr || fread(hdr, 1, (size_t)len, f) != (size_t)len) {
        free(hdr);
        fclose(f);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: cannot read the header", path);
    }
    fclose(f);
    hdr[len] = '\0';
    cJSON *j = cJSON_Parse(hdr);
    free(hdr);
    cJSON *meta = cJSON_DetachItemFromObjectCaseSensitive(j, "__metadata__");
    cJSON_Delete(j);
    const char *version = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "bertc_checkpoint"));
    if (!version) {
        cJSON_Delete(meta);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: not a bertc checkpoint (no bertc_checkpoint in __metadata__)", path);
    }
    if (strcmp(version, CHECKPOINT_VERSION)) {
        /* the message first: version points into meta */
        int rc = bertc_errorf(err, BERTC_EUNSUPPORTED,
                              "%s: checkpoint format %s; this bertc reads format %s (written by another version of "
                              "bertc: start the run again without --resume, or finish it with that version)",
                              path, version, CHECKPOINT_VERSION);
        cJSON_Delete(meta);
        return rc;
    }
    *out = meta;
    return 0;
}

static char *meta_dup(const cJSON *meta, const char *key) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, key));
    return s ? strdup(s) : NULL;
}

int checkpoint_read_meta(const char *dir, char **options_json, char **metrics, bertc_error *err) {
    *options_json = *metrics = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_FILE);
    safetensors_file f;
    int rc = safetensors_open(&f, path, err);
    if (rc) return rc;
    safetensors_close(&f);
    cJSON *meta = NULL;
    if ((rc = read_metadata(path, &meta, err))) return rc;
    *options_json = meta_dup(meta, "options");
    *metrics = meta_dup(meta, "metrics");
    cJSON_Delete(meta);
    if (!*options_json || !*metrics) {
        free(*options_json);
        free(*metrics);
        *options_json = *metrics = NULL;
        return bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint lacks its options or metrics", path);
    }
    return 0;
}

/* Finds a tensor of exactly numel F32 values. */
static const st_tensor *find_f32(const safetensors_file *f, const char *name, size_t numel, const char *path,
                                 bertc_error *err) {
    const st_tensor *t = safetensors_find(f, name);
    if (!t) {
        bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint has no tensor '%s'", path, name);
        return NULL;
    }
    if (t->dtype != ST_F32 || t->numel != numel) {
        bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint tensor '%s' is not %zu F32 values (this model's size)", path, name, numel);
        return NULL;
    }
    return t;
}

int checkpoint_load(const char *dir, train_state *s, bert_model *m, adamw *opt, float *best, bertc_error *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, CHECKPOINT_FILE);
    safetensors_file f;
    int rc = safetensors_open(&f, path, err);
    if (rc) return rc;
    cJSON *meta = NULL;
    if ((rc = read_metadata(path, &meta, err))) goto done;
    if ((rc = parse_state(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "state")), s, path, err))) goto done;
    uint64_t want;
    if (parse_hex64(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "checksum")), &want)) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: checkpoint checksum is missing", path);
        goto done;
    }
    const size_t np = bert_num_params(m);
    const bert_param_info *info;
    size_t nt = bert_param_table(m, &info);
    /* Check everything before touching the model: a bad file leaves it as it was. */
    const st_tensor **src = calloc(nt + 3, sizeof *src);
    if (!src) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t h = CHECKPOINT_HASH_INIT;
    size_t n = 0;
    for (size_t i = 0; i < nt; i++, n++) {
        if (!(src[n] = find_f32(&f, info[i].name, info[i].numel, path, err))) break;
        h = checkpoint_hash(h, src[n]->data, src[n]->nbytes);
    }
    const char *extra[] = {"optimizer.exp_avg", "optimizer.exp_avg_sq", "best"};
    int want_best = s->best_epoch > 0 && best;
    for (int k = 0; k < 2 + want_best && n == nt + (size_t)k; k++, n++) {
        if (!(src[n] = find_f32(&f, extra[k], np, path, err))) break;
        h = checkpoint_hash(h, src[n]->data, src[n]->nbytes);
    }
    if (n != nt + 2 + (size_t)want_best) {
        rc = err ? err->code : BERTC_EFORMAT;
    } else if (opt->n != np) {
        rc = bertc_errorf(err, BERTC_EINVAL, "%s: optimizer size %zu differs from the model's %zu", path, opt->n, np);
    } else if (h != want) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: checksum mismatch: the checkpoint is damaged", path);
    } else {
        /* through the backend: the weights and moments may live on a GPU */
        const bertc_backend *be = bert_backend(m);
        float *params = bert_params(m);
        for (size_t i = 0; i < nt; i++) be->to_device(params + info[i].offset, src[i]->data, src[i]->nbytes);
        const bertc_backend *obe = opt->be ? opt->be : bertc_backend_cpu();
        obe->to_device(opt->m, src[nt]->data, np * sizeof(float));
        obe->to_device(opt->v, src[nt + 1]->data, np * sizeof(float));
        if (want_best) be->to_device(best, src[nt + 2]->data, np * sizeof(float));
        opt->step = s->opt_step;
    }
    free(src);
done:
    cJSON_Delete(meta);
    safetensors_close(&f);
    return rc;
}
