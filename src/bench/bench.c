/* bertc bench: the training step, the evaluation forward and single-example latency of one
 * model, timed through the very calls the trainer makes (model/bert.h, train/optim.h), the
 * step's matrix products alone (bench/gemm_trace.h), and the machine's sgemm peak.
 * Output: one JSON object per measurement (docs/PERFORMANCE.md, "Benchmark"), or a table. */
#include "bench/bench.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backend/ops.h"
#include "bench/gemm_trace.h"
#include "model/bert.h"
#include "train/optim.h"
#include "util/clock.h"
#include "util/error.h"
#include "util/rng.h"

/* ------------------------------------------------------------------------------------------
 * shapes, precisions, FLOPs */

int bench_shape_config(const char *name, bert_config *c, bertc_error *err) {
    memset(c, 0, sizeof *c);
    int hidden, layers, inter;
    if (strcmp(name, "bert-base") == 0) hidden = 768, layers = 12, inter = 3072;
    else if (strcmp(name, "minilm") == 0) hidden = 384, layers = 6, inter = 1536;
    else return bertc_errorf(err, BERTC_EINVAL, "unknown shape '%s' (bert-base, minilm)", name);
    c->vocab_size = 30522;
    c->hidden_size = hidden;
    c->num_hidden_layers = layers;
    c->num_attention_heads = 12;
    c->intermediate_size = inter;
    c->max_position_embeddings = 512;
    c->type_vocab_size = 2;
    c->pad_token_id = 0;
    c->hidden_act = BERT_ACT_GELU;
    c->hidden_dropout_prob = c->attention_probs_dropout_prob = 0.1f;
    c->classifier_dropout = -1.0f;
    c->layer_norm_eps = 1e-12f;
    c->initializer_range = 0.02f;
    c->num_labels = 2; /* id2label NULL: LABEL_0, LABEL_1 */
    return 0;
}

double bench_model_flop(const bert_config *c, int B, int T, int train) {
    double C = c->hidden_size, F = c->intermediate_size, L = c->num_hidden_layers, K = c->num_labels;
    double fwd = 2.0 * B * T * L * (4 * C * C + 2 * C * F) + 4.0 * B * (double)T * T * C * L + 2.0 * B * (C * C + C * K);
    return train ? 3 * fwd : fwd;
}

/* bf16 mixed precision (bert_set_precision): the encoder's products in bf16, fp32 accumulation. */
static int set_bf16(bert_model *m, bertc_error *err) { return bert_set_precision(m, 1, err); }

/* A precision: how to switch a freshly built model to it (NULL: nothing to do). Adding one is
 * one line here, e.g. {"bf16", set_bf16} with set_bf16 calling the model's precision switch. */
static const struct bench_precision {
    const char *name;
    int (*apply)(bert_model *m, bertc_error *err);
} precisions[] = {
    {"fp32", NULL},
    {"bf16", set_bf16},
};
#define N_PRECISIONS (sizeof precisions / sizeof precisions[0])

const char *const *bertc_bench_precisions(void) {
    static const char *names[N_PRECISIONS + 1];
    for (size_t i = 0; i < N_PRECISIONS; i++) names[i] = precisions[i].name;
    return names;
}

void bertc_bench_options_default(bertc_bench_options *o) {
    memset(o, 0, sizeof *o);
    o->precision = "fp32";
    o->warmup = 1;
    o->reps = 5;
    o->train_batch = 16;
    o->eval_batch = 32;
    o->seq = 128;
    o->seed = 42;
    o->square = 2048;
}

/* ------------------------------------------------------------------------------------------
 * timing and output */

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct timing {
    double median, min;
} timing;

static timing summarize(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    timing r = {n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), t[0]};
    return r;
}

/* s as the inside of a JSON string (paths may hold quotes or backslashes), truncated to fit. */
static const char *json_escape(const char *s, char *buf, size_t size) {
    size_t j = 0;
    for (; *s && j + 7 < size; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') buf[j++] = '\\', buf[j++] = (char)ch;
        else if (ch < 0x20) j += (size_t)snprintf(buf + j, size - j, "\\u%04x", ch);
        else buf[j++] = (char)ch;
    }
    buf[j] = 0;
    return buf;
}

typedef struct bench_ctx {
    const bertc_bench_options *o;
    const char *shape, *precision, *device;
    char shape_json[1024];      /* shape, escaped for JSON */
    char wait_policy[64];       /* OMP_WAIT_POLICY as set ("default" when unset), escaped */
    const bert_config *cfg;
    int threads;
    FILE *json, *human;
} bench_ctx;

static void human_header(FILE *f) {
    fprintf(f, "%-14s %-10s %12s %12s %12s %10s %10s\n", "what", "batch x seq", "median s", "min s", "examples/s",
            "GFLOP/s", "RSS MiB");
}

/* One measurement row. flop: per run (model FLOPs, or the recorded products' for matmul_step). */
static void emit(const bench_ctx *x, const char *what, int batch, timing t, double flop, const char *extra_json) {
    double rss = peak_rss_mib();
    const bert_config *c = x->cfg;
    if (x->json) {
        fprintf(x->json,
                "{\"tool\":\"bertc\",\"shape\":\"%s\",\"what\":\"%s\",\"batch\":%d,\"seq\":%d,\"threads\":%d,"
                "\"device\":\"%s\",\"precision\":\"%s\",\"warmup\":%d,\"reps\":%d,\"seconds_median\":%.6g,\"seconds_min\":%.6g,"
                "\"examples_per_s\":%.6g,\"gflop\":%.6g,\"gflop_per_s\":%.6g,\"gflop_per_s_best\":%.6g,"
                "\"peak_rss_mib\":%.1f,\"layers\":%d,\"hidden\":%d,\"heads\":%d,\"intermediate\":%d,\"vocab\":%d,"
                "\"num_labels\":%d,\"omp_wait_policy\":\"%s\",\"huge_pages\":%s%s}\n",
                x->shape_json, what, batch, x->o->seq, x->threads, x->device, x->precision, x->o->warmup, x->o->reps, t.median, t.min,
                batch / t.median, flop * 1e-9, flop * 1e-9 / t.median, flop * 1e-9 / t.min, rss, c->num_hidden_layers,
                c->hidden_size, c->num_attention_heads, c->intermediate_size, c->vocab_size, c->num_labels,
                x->wait_policy, cpu_huge_pages_wanted() ? "true" : "false", extra_json ? extra_json : "");
        fflush(x->json);
    }
    if (x->human) {
        char bs[32];
        snprintf(bs, sizeof bs, "%d x %d", batch, x->o->seq);
        fprintf(x->human, "%-14s %-10s %12.4f %12.4f %12.2f %10.1f %10.1f\n", what, bs, t.median, t.min,
                batch / t.median, flop * 1e-9 / t.median, rss);
        fflush(x->human);
    }
}

/* ------------------------------------------------------------------------------------------
 * the measurements */

typedef struct bench_data {
    int32_t *ids, *mask, *types, *labels;
} bench_data;

/* Random full-length rows (no padding): every position does work in both tools. */
static int data_make(bench_data *d, const bert_config *c, int B, int T, uint64_t seed, bertc_error *err) {
    size_t n = (size_t)B * T;
    d->ids = malloc(n * sizeof *d->ids);
    d->mask = malloc(n * sizeof *d->mask);
    d->types = calloc(n, sizeof *d->types);
    d->labels = malloc((size_t)B * sizeof *d->labels);
    if (!d->ids || !d->mask || !d->types || !d->labels) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        d->ids[i] = c->vocab_size > 1 ? 1 + (int32_t)rng_below(&r, (uint64_t)c->vocab_size - 1) : 0;
        d->mask[i] = 1;
    }
    for (int b = 0; b < B; b++) d->labels[b] = (int32_t)rng_below(&r, (uint64_t)c->num_labels);
    return 0;
}

static void data_free(bench_data *d) {
    free(d->ids), free(d->mask), free(d->types), free(d->labels);
}

typedef struct step_state {
    bert_model *m;
    float *params; /* bert_params(m), taken once (each call marks the bf16 copy stale) */
    adamw opt;
    adamw_group *groups;
    const bench_data *d;
    int B, T;
    uint64_t seed, n;
} step_state;

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* One optimiser update as trainer_run makes it (one micro-batch): zero the gradients, forward
 * in training mode (dropout on), backward, clip to norm 1, AdamW (which, for a bf16 model, also
 * writes the weights' bf16 copy). Returns the loss. If the trainer's
 * update gains a stage, add it here. On a GPU the step ends when its last op has run: a copy
 * of one weight back to the host waits for it. */
static float train_step(step_state *s) {
    const bertc_backend *be = bert_backend(s->m);
    bert_zero_grad(s->m);
    uint64_t dseed = mix64(s->seed ^ mix64(++s->n));
    float loss = bert_forward(s->m, s->d->ids, s->d->mask, s->d->types, s->d->labels, s->B, s->T, 1, dseed);
    bert_backward(s->m, 1.0f);
    float gnorm = clip_grad_norm_on(be, bert_grads(s->m), bert_num_params(s->m), 0.0f); /* clip folded into: */
    adamw_step_scaled(&s->opt, s->params, bert_grads(s->m), 2e-5f, grad_clip_coef(gnorm, 1.0f));
    if (!s->opt.mirror) bert_params_changed(s->m);
    float w;
    be->to_host(&w, s->params, sizeof w);
    return loss;
}

/* The optimiser as the trainer builds it: weight decay 0.01 on weights, none on biases and LayerNorm. */
static int step_init(step_state *s, bert_model *m, const bench_data *d, int B, int T, uint64_t seed, bertc_error *err) {
    memset(s, 0, sizeof *s);
    s->m = m, s->params = bert_params(m), s->d = d, s->B = B, s->T = T, s->seed = seed;
    const bert_param_info *info;
    size_t n = bert_param_table(m, &info);
    s->groups = malloc(n * sizeof *s->groups);
    if (!s->groups) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        s->groups[i] = (adamw_group){info[i].offset, info[i].numel, info[i].no_decay ? 0.0f : 0.01f, 1.0f};
    int rc = adamw_init_on(&s->opt, bert_backend(m), bert_num_params(m), s->groups, n, err);
    size_t lo, hi;
    uint16_t *p16 = bert_params16(m, &lo, &hi);
    if (!rc) (void)adamw_set_mirror(&s->opt, p16, lo, hi); /* as the trainer's */
    return rc;
}

static void step_free(step_state *s) {
    adamw_free(&s->opt);
    free(s->groups);
}

/* The backend table with the product-running ops wrapped to mark regions for the gemm trace. */
static const bertc_backend *real_be;
static bertc_backend traced_be;

static void traced_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int N, int IC,
                                  int OC) {
    gemm_trace_next_region();
    real_be->matmul_forward(out, inp, weight, bias, N, IC, OC);
    gemm_trace_next_region();
}
static void traced_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                   const float *weight, int N, int IC, int OC, int accumulate) {
    gemm_trace_next_region();
    real_be->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, accumulate);
    gemm_trace_next_region();
}
static void traced_attention_forward(float *ctx, float *att, const float *q, const float *k, const float *v,
                                     const int32_t *mask, float *scratch, int B, int Tq, int T, int C, int NH,
                                     int ldq, int ldkv, float p_drop, uint64_t seed, uint64_t stream, uint8_t *keep) {
    gemm_trace_next_region();
    real_be->attention_forward(ctx, att, q, k, v, mask, scratch, B, Tq, T, C, NH, ldq, ldkv, p_drop, seed, stream,
                               keep);
    gemm_trace_next_region();
}
static void traced_attention_backward(float *dq, float *dk, float *dv, const float *dctx, const float *q,
                                      const float *k, const float *v, const float *att, float *scratch, int B, int Tq,
                                      int T, int C, int NH, int ldq, int ldkv, float p_drop, uint64_t seed,
                                      uint64_t stream, const uint8_t *keep) {
    gemm_trace_next_region();
    real_be->attention_backward(dq, dk, dv, dctx, q, k, v, att, scratch, B, Tq, T, C, NH, ldq, ldkv, p_drop, seed,
                                stream, keep);
    gemm_trace_next_region();
}

/* Records the products of one training step, then replays them alone. */
static int bench_matmul(bench_ctx *x, step_state *s, double *times, bertc_error *err) {
    const bertc_bench_options *o = x->o;
    if (bert_precision_bf16(s->m)) {
        /* The Linear products run through gemm_bf16 (oneDNN), not cblas_sgemm: only attention's
         * would be recorded, which is not "the step's products". Say so, time nothing. */
        if (x->json)
            fprintf(x->json, "{\"tool\":\"bertc\",\"shape\":\"%s\",\"what\":\"matmul_step\",\"precision\":\"%s\","
                    "\"threads\":%d,\"calls\":0,\"note\":\"bf16 products run in oneDNN, not replayed\"}\n", x->shape_json,
                    x->precision, x->threads);
        if (x->human) fprintf(x->human, "%-14s not replayed in bf16 (the Linear products run in oneDNN)\n", "matmul_step");
        return 0;
    }
    real_be = bert_backend(s->m);
    traced_be = *real_be;
    traced_be.matmul_forward = traced_matmul_forward;
    traced_be.matmul_backward = traced_matmul_backward;
    traced_be.attention_forward = traced_attention_forward;
    traced_be.attention_backward = traced_attention_backward;
    bert_swap_ops(s->m, &traced_be);
    int rc = gemm_trace_start((size_t)1 << 20, err);
    double recorded_step = now_s();
    if (!rc) train_step(s);
    recorded_step = now_s() - recorded_step;
    gemm_trace t;
    gemm_trace_stop(&t);
    bert_swap_ops(s->m, real_be);
    if (rc) return rc;
    if (t.dropped) {
        gemm_trace_free(&t);
        return bertc_errorf(err, BERTC_EUNSUPPORTED, "bench: more than %zu sgemm calls in one step", (size_t)1 << 20);
    }
    if (t.n == 0) {
        /* The products do not go through cblas_sgemm (another kernel or precision): say so, time nothing. */
        if (x->json)
            fprintf(x->json, "{\"tool\":\"bertc\",\"shape\":\"%s\",\"what\":\"matmul_step\",\"precision\":\"%s\","
                    "\"threads\":%d,\"calls\":0,\"note\":\"no cblas_sgemm calls recorded\"}\n", x->shape_json, x->precision,
                    x->threads);
        if (x->human) fprintf(x->human, "%-14s no cblas_sgemm calls recorded (products run elsewhere)\n", "matmul_step");
        gemm_trace_free(&t);
        return 0;
    }
    gemm_replay_scratch sc;
    if ((rc = gemm_replay_prepare(&sc, &t, err))) {
        gemm_trace_free(&t);
        return rc;
    }
    for (int i = 0; i < o->warmup; i++) gemm_replay(&t, &sc);
    for (int i = 0; i < o->reps; i++) times[i] = gemm_replay(&t, &sc);
    long regions = 0;
    for (size_t i = 0; i < t.n; i++) regions += i == 0 || t.calls[i].region != t.calls[i - 1].region;
    char extra[256];
    snprintf(extra, sizeof extra,
             ",\"flop_source\":\"recorded sgemm calls\",\"calls\":%zu,\"regions\":%ld,\"in_step_seconds\":%.6g,"
             "\"recorded_step_seconds\":%.6g,\"model_gflop_step\":%.6g,\"recorded_fraction\":%.4f",
             t.n, regions, t.thread_seconds / x->threads, recorded_step, bench_model_flop(x->cfg, s->B, s->T, 1) * 1e-9,
             t.flop / bench_model_flop(x->cfg, s->B, s->T, 1));
    emit(x, "matmul_step", s->B, summarize(times, o->reps), t.flop, extra);
    gemm_replay_free(&sc);
    gemm_trace_free(&t);
    return 0;
}

static int wants(const char *list, const char *what) {
    if (!list) return 1;
    size_t n = strlen(what);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && strncmp(p, what, n) == 0) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

static int check_what(const char *list, bertc_error *err) {
    static const char *known[] = {"latency", "eval", "step", "matmul"};
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        int ok = 0;
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) ok |= strlen(known[i]) == len && !strncmp(p, known[i], len);
        if (!ok)
            return bertc_errorf(err, BERTC_EINVAL, "bench: unknown measurement '%.*s' (latency, eval, step, matmul)",
                                (int)len, p);
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * peak */

static int bench_peak(const bertc_bench_options *o, const bert_config *c, const char *shape, int threads, FILE *json,
                      FILE *human, bertc_error *err) {
    int N = o->train_batch * o->seq, C = c->hidden_size, F = c->intermediate_size;
    /* A large square-ish product, then one layer's Linear products of the step as the engine
     * calls them: forward (N,OC) = x W^T, input gradient (N,IC) = dy W, weight gradient (OC,IC) = dy^T x. */
    struct {
        const char *label;
        int M, N, K;
        char ta, tb;
    } shapes[] = {
        {"square", o->square, o->square, o->square, 'N', 'N'},
        {"qkvo fwd", N, C, C, 'N', 'T'},     {"ffn-up fwd", N, F, C, 'N', 'T'},  {"ffn-down fwd", N, C, F, 'N', 'T'},
        {"ffn-up dinp", N, C, F, 'N', 'N'},  {"ffn-up dW", F, C, N, 'T', 'N'},   {"ffn-down dW", C, F, N, 'T', 'N'},
    };
    int nmodes;
    const char *const *modes = gemm_peak_modes(&nmodes);
    char esc[1024];
    shape = json_escape(shape, esc, sizeof esc);
    double best = 0;
    char best_what[96] = "";
    if (human) fprintf(human, "%-14s %-18s %-6s %8s %12s %10s\n", "product", "M x N x K", "mode", "trans", "best s", "GFLOP/s");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (int j = 0; j < nmodes; j++) {
            double t = gemm_peak_one(shapes[i].M, shapes[i].N, shapes[i].K, shapes[i].ta, shapes[i].tb, modes[j],
                                     o->reps);
            if (t <= 0) return bertc_errorf(err, BERTC_ENOMEM, "bench: out of memory (peak buffers)");
            double gf = 2.0 * shapes[i].M * shapes[i].N * shapes[i].K * 1e-9 / t;
            if (gf > best) {
                best = gf;
                snprintf(best_what, sizeof best_what, "%s (%s)", shapes[i].label, modes[j]);
            }
            if (json)
                fprintf(json,
                        "{\"tool\":\"bertc\",\"what\":\"peak_sgemm\",\"shape\":\"%s\",\"product\":\"%s\",\"m\":%d,"
                        "\"n\":%d,\"k\":%d,\"trans\":\"%c%c\",\"mode\":\"%s\",\"threads\":%d,\"precision\":\"fp32\","
                        "\"reps\":%d,\"seconds_min\":%.6g,\"gflop_per_s\":%.6g}\n",
                        shape, shapes[i].label, shapes[i].M, shapes[i].N, shapes[i].K, shapes[i].ta, shapes[i].tb,
                        modes[j], threads, o->reps, t, gf);
            if (human) {
                char dims[48], tr[3] = {shapes[i].ta, shapes[i].tb, 0};
                snprintf(dims, sizeof dims, "%d x %d x %d", shapes[i].M, shapes[i].N, shapes[i].K);
                fprintf(human, "%-14s %-18s %-6s %8s %12.5f %10.1f\n", shapes[i].label, dims, modes[j], tr, t, gf);
            }
        }
    if (json)
        fprintf(json, "{\"tool\":\"bertc\",\"what\":\"peak\",\"shape\":\"%s\",\"precision\":\"fp32\",\"threads\":%d,"
                "\"gflop_per_s\":%.6g,\"best_of\":\"%s\",\"library\":\"%s\"}\n",
                shape, threads, best, best_what, gemm_library());
    if (human) fprintf(human, "peak fp32 sgemm, %d threads: %.1f GFLOP/s (%s)\n", threads, best, best_what);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * the entry point */

int bertc_bench(const bertc_bench_options *o, FILE *jsonl, FILE *human, bertc_error *err) {
    int sources = (o->model_dir != NULL) + (o->config_path != NULL) + (o->shape != NULL);
    if (sources > 1) return bertc_errorf(err, BERTC_EINVAL, "bench: give one of a model folder, a config.json or a shape");
    if (o->reps < 1 || o->reps > 100000 || o->warmup < 0)
        return bertc_errorf(err, BERTC_EINVAL, "bench: reps must be at least 1 and warmup not negative");
    if (o->train_batch < 1 || o->eval_batch < 1 || o->seq < 2 || o->square < 1 || o->square > 65536)
        return bertc_errorf(err, BERTC_EINVAL, "bench: batch sizes and square must be positive and seq at least 2");
    const struct bench_precision *prec = NULL;
    for (size_t i = 0; i < N_PRECISIONS; i++)
        if (o->precision && strcmp(o->precision, precisions[i].name) == 0) prec = &precisions[i];
    if (!prec) return bertc_errorf(err, BERTC_EUNSUPPORTED, "bench: unknown precision '%s'", o->precision ? o->precision : "(null)");
    int rc = check_what(o->what, err);
    if (rc) return rc;

    const char *device = o->device && *o->device ? o->device : "cpu";
    const bertc_backend *be = NULL;
    if (strcmp(device, "cpu")) {
        if (o->peak || (o->what && wants(o->what, "matmul")))
            return bertc_errorf(err, BERTC_EUNSUPPORTED, "bench: --peak and matmul time the CPU's sgemm; not with --device %s",
                                device);
        char why[256];
        if (!(be = bertc_backend_by_name(device, why, sizeof why))) return bertc_errorf(err, BERTC_EUNSUPPORTED, "%s", why);
    }
    bertc_set_threads(o->threads);
    bench_ctx x = {.o = o, .precision = prec->name, .device = device, .threads = omp_get_max_threads(), .json = jsonl,
                   .human = human};
    bert_config shape_cfg;
    if (o->peak) {
        /* The products of the given shape (bert-base by default); weights are not needed. */
        if (o->model_dir || o->config_path) {
            char path[4096];
            snprintf(path, sizeof path, "%s/config.json", o->model_dir ? o->model_dir : "");
            bert_config c;
            if ((rc = bert_config_load(&c, o->model_dir ? path : o->config_path, err))) return rc;
            rc = bench_peak(o, &c, o->model_dir ? o->model_dir : o->config_path, x.threads, jsonl, human, err);
            bert_config_free(&c);
            return rc;
        }
        const char *name = o->shape ? o->shape : "bert-base";
        if ((rc = bench_shape_config(name, &shape_cfg, err))) return rc;
        return bench_peak(o, &shape_cfg, name, x.threads, jsonl, human, err);
    }
    if (sources == 0) return bertc_errorf(err, BERTC_EINVAL, "bench: give a model folder, a config.json or a shape");

    bert_model *m = NULL;
    if (o->model_dir) {
        bert_load_options lo;
        bert_load_options_default(&lo);
        rc = bert_load(&m, o->model_dir, &lo, err);
        x.shape = o->model_dir;
    } else if (o->config_path) {
        bert_config c;
        if ((rc = bert_config_load(&c, o->config_path, err))) return rc;
        rc = bert_init_random(&m, &c, o->seed, err);
        bert_config_free(&c);
        x.shape = o->config_path;
    } else {
        if ((rc = bench_shape_config(o->shape, &shape_cfg, err))) return rc;
        rc = bert_init_random(&m, &shape_cfg, o->seed, err);
        x.shape = o->shape;
    }
    if (rc) return rc;
    json_escape(x.shape, x.shape_json, sizeof x.shape_json);
    const char *wp = getenv("OMP_WAIT_POLICY");
    json_escape(wp && *wp ? wp : "default", x.wait_policy, sizeof x.wait_policy);
    x.cfg = bert_get_config(m);
    const bert_config *c = x.cfg;
    if (o->seq > c->max_position_embeddings) {
        rc = bertc_errorf(err, BERTC_EINVAL, "bench: seq %d is longer than the model's max_position_embeddings (%d)",
                          o->seq, c->max_position_embeddings);
        bert_free(m);
        return rc;
    }
    if (be && (rc = bert_set_backend(m, be, err))) { /* before the precision: bf16 copies live on the device */
        bert_free(m);
        return rc;
    }
    if (prec->apply && (rc = prec->apply(m, err))) {
        bert_free(m);
        return rc;
    }
    const int T = o->seq, Bt = o->train_batch, Be = o->eval_batch;
    const int Bmax = Bt > Be ? Bt : Be;
    bench_data d = {0};
    step_state s = {0};
    int have_step = 0;
    double *times = malloc((size_t)o->reps * sizeof *times);
    if (!times) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    if (!rc) rc = data_make(&d, c, Bmax, T, o->seed, err);
    if (rc) goto done;
    if (human) {
        fprintf(human, "bertc bench: %s (%d layers, hidden %d, %d heads, ffn %d), %s, %s, %d thread%s, %d warm-up + %d timed runs\n",
                x.shape, c->num_hidden_layers, c->hidden_size, c->num_attention_heads, c->intermediate_size, device,
                x.precision, x.threads, x.threads == 1 ? "" : "s", o->warmup, o->reps);
        char line[256];
        if (bert_bf16_notice(m, line, sizeof line)) fprintf(human, "%s\n", line);
        human_header(human);
    }
    /* From the smallest footprint to the largest, so that each row's peak RSS is its own. */
    /* Latency and evaluation run on inference plans, as bertc predict and eval do; the training
     * step on the plan trainer_run makes (training at Bt, evaluation at Be over the same memory). */
    if (wants(o->what, "latency")) {
        if ((rc = bert_prepare_inference(m, 1, T, err))) goto done;
        for (int i = 0; i < o->warmup; i++) bert_forward(m, d.ids, d.mask, d.types, NULL, 1, T, 0, 0);
        for (int i = 0; i < o->reps; i++) {
            double t0 = now_s();
            bert_forward(m, d.ids, d.mask, d.types, NULL, 1, T, 0, 0);
            times[i] = now_s() - t0;
        }
        emit(&x, "latency", 1, summarize(times, o->reps), bench_model_flop(c, 1, T, 0), NULL);
    }
    if (wants(o->what, "eval")) {
        if ((rc = bert_prepare_inference(m, Be, T, err))) goto done;
        for (int i = 0; i < o->warmup; i++) bert_forward(m, d.ids, d.mask, d.types, NULL, Be, T, 0, 0);
        for (int i = 0; i < o->reps; i++) {
            double t0 = now_s();
            bert_forward(m, d.ids, d.mask, d.types, NULL, Be, T, 0, 0);
            times[i] = now_s() - t0;
        }
        if (!isfinite(bert_logits(m)[0])) {
            rc = bertc_errorf(err, BERTC_ENUMERIC, "bench: non-finite logits in the evaluation forward");
            goto done;
        }
        emit(&x, "eval_forward", Be, summarize(times, o->reps), bench_model_flop(c, Be, T, 0), NULL);
    }
    /* the sgemm trace is the CPU's: on another device, "all" leaves matmul out */
    const int want_matmul = wants(o->what, "matmul") && !be;
    if (wants(o->what, "step") || want_matmul) {
        if ((rc = bert_prepare_train_eval(m, Bt, Be, T, err))) goto done;
        if ((rc = step_init(&s, m, &d, Bt, T, o->seed, err))) goto done;
        have_step = 1;
        for (int i = 0; i < o->warmup; i++) train_step(&s);
    }
    if (wants(o->what, "step")) {
        float loss = 0;
        for (int i = 0; i < o->reps; i++) {
            double t0 = now_s();
            loss = train_step(&s);
            times[i] = now_s() - t0;
        }
        if (!isfinite(loss)) {
            rc = bertc_errorf(err, BERTC_ENUMERIC, "bench: the training step's loss is not finite");
            goto done;
        }
        emit(&x, "train_step", Bt, summarize(times, o->reps), bench_model_flop(c, Bt, T, 1), NULL);
    }
    if (want_matmul) rc = bench_matmul(&x, &s, times, err);
done:
    if (have_step) step_free(&s);
    data_free(&d);
    free(times);
    bert_free(m);
    return rc;
}
