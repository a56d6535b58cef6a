/* BertForMaskedLM's head (cls.predictions) over the backend op set; see mlm_head.h for the maths.
 *
 * The gather of the masked rows (and the scatter of their gradient) is one backend copy per
 * row: a few hundred copies of C floats per batch, next to a (N,C) x (C,V) product. */
#include "model/mlm_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "model/safetensors.h"
#include "util/error.h"
#include "util/rng.h"

struct mlm_head {
    const bertc_backend *be;
    bert_model *enc;
    int C, V;
    float eps;
    ops_act act;
    const float *wte; /* (V,C) the encoder's word embeddings: the tied decoder weight */
    float *dwte;      /* (V,C) their gradient, in the encoder's arena */

    bert_param_info table[MLM_HEAD_TENSORS];
    size_t num_params;
    float *params, *grads; /* backend arenas */
    float *dense_w, *dense_b, *ln_w, *ln_b, *bias;
    float *g_dense_w, *g_dense_b, *g_ln_w, *g_ln_b, *g_bias;
    int loaded;

    /* activations, planned for at most maxN masked rows out of maxBT positions */
    int maxN, maxBT;
    float *act_arena;
    float *h;           /* (N,C) hidden states at the masked positions */
    float *pre, *post;  /* (N,C) dense output, after the activation */
    float *mean, *rstd; /* (N) */
    float *t;           /* (N,C) LayerNorm output: the decoder's input */
    float *logits;      /* (N,V); holds dlogits in backward */
    float *probs;       /* (N,V) */
    float *losses;      /* (N) */
    int32_t *labels;    /* (N) on the device */
    int32_t *pos;       /* (N) on the device: positions of the last forward, for backward's scatter */
    float *g_t, *g_h;   /* (N,C) */
    float *dhidden;     /* (BT,C) */
    float *losses_host; /* (N) */

    int N, BT; /* last forward; N < 0 when there is none to go back through */
};

static const char *const names[MLM_HEAD_TENSORS] = {
    "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
    "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
    "cls.predictions.bias"};

/* other names checkpoints use: LayerNorm gamma/beta (old TensorFlow conversions), the output bias
 * under the decoder (it is the same tensor in transformers) */
static const char *const old_names[MLM_HEAD_TENSORS] = {
    NULL, NULL, "cls.predictions.transform.LayerNorm.gamma", "cls.predictions.transform.LayerNorm.beta",
    "cls.predictions.decoder.bias"};

static void layout(mlm_head *h) {
    int64_t C = h->C, V = h->V;
    int64_t rows[MLM_HEAD_TENSORS] = {C, C, C, C, V}, cols[MLM_HEAD_TENSORS] = {C, 0, 0, 0, 0};
    size_t off = 0;
    for (int i = 0; i < MLM_HEAD_TENSORS; i++) {
        bert_param_info *p = &h->table[i];
        p->name = names[i];
        p->offset = off;
        p->numel = (size_t)rows[i] * (size_t)(cols[i] ? cols[i] : 1);
        p->ndim = cols[i] ? 2 : 1;
        p->shape[0] = rows[i];
        p->shape[1] = cols[i];
        p->no_decay = i != 0; /* biases and LayerNorm weights, as the encoder's */
        p->layer = bert_get_config(h->enc)->num_hidden_layers + 1;
        off += p->numel;
    }
    h->num_params = off;
}

static int init_weights(mlm_head *h, uint64_t seed, bertc_error *err) {
    float *host = malloc(h->num_params * sizeof(float));
    if (!host) return bertc_errorf(err, BERTC_ENOMEM, "mlm head: out of memory");
    memset(host, 0, h->num_params * sizeof(float));
    rng r;
    rng_seed(&r, seed);
    float std = bert_get_config(h->enc)->initializer_range;
    for (size_t i = 0; i < h->table[0].numel; i++) host[i] = rng_normal(&r) * std;
    for (size_t i = 0; i < h->table[2].numel; i++) host[h->table[2].offset + i] = 1.0f;
    h->be->to_device(h->params, host, h->num_params * sizeof(float));
    free(host);
    return 0;
}

static const st_tensor *find(const safetensors_file *f, int i) {
    const st_tensor *t = safetensors_find(f, names[i]);
    if (!t && old_names[i]) t = safetensors_find(f, old_names[i]);
    return t;
}

/* Loads the head from an open checkpoint; *found = 0 when it holds none of it. */
static int load_weights(mlm_head *h, const safetensors_file *f, const char *path, int *found, bertc_error *err) {
    int have = 0;
    for (int i = 0; i < MLM_HEAD_TENSORS; i++) have += find(f, i) != NULL;
    *found = have > 0;
    if (!have) return 0;
    /* The output bias alone may be missing (transformers would initialise it to zero); the
     * transform must be whole, or the checkpoint is not what it claims. */
    for (int i = 0; i < 4; i++)
        if (!find(f, i))
            return bertc_errorf(err, BERTC_EFORMAT, "%s: has part of the masked-LM head but not %s", path, names[i]);
    float *host = calloc(h->num_params, sizeof(float));
    if (!host) return bertc_errorf(err, BERTC_ENOMEM, "mlm head: out of memory");
    int rc = 0;
    for (int i = 0; i < MLM_HEAD_TENSORS && !rc; i++) {
        const bert_param_info *p = &h->table[i];
        const st_tensor *t = find(f, i);
        if (!t) continue; /* the bias: zero */
        if (t->ndim != p->ndim || t->shape[0] != p->shape[0] || (p->ndim == 2 && t->shape[1] != p->shape[1])) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: tensor %s has shape [%lld%s%lld] but the config implies [%lld%s%lld]",
                              path, t->name, (long long)t->shape[0], t->ndim > 1 ? ", " : "",
                              t->ndim > 1 ? (long long)t->shape[1] : 0LL, (long long)p->shape[0],
                              p->ndim > 1 ? ", " : "", p->ndim > 1 ? (long long)p->shape[1] : 0LL);
            break;
        }
        rc = safetensors_to_f32(t, host + p->offset, p->numel, err);
        if (rc && err) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = bertc_errorf(err, rc, "%s: tensor %s: %s", path, t->name, msg);
        }
    }
    if (!rc) h->be->to_device(h->params, host, h->num_params * sizeof(float));
    free(host);
    return rc;
}

int mlm_head_create(mlm_head **out, bert_model *m, const char *st_path, uint64_t init_seed, FILE *notices,
                    bertc_error *err) {
    *out = NULL;
    mlm_head *h = calloc(1, sizeof *h);
    if (!h) return bertc_errorf(err, BERTC_ENOMEM, "mlm head: out of memory");
    const bert_config *c = bert_get_config(m);
    h->be = bert_backend(m);
    h->enc = m;
    h->C = c->hidden_size;
    h->V = c->vocab_size;
    h->eps = c->layer_norm_eps;
    h->act = c->hidden_act == BERT_ACT_GELU_NEW ? OPS_ACT_GELU_NEW : c->hidden_act == BERT_ACT_RELU ? OPS_ACT_RELU
                                                                                                   : OPS_ACT_GELU;
    h->N = -1;
    const bert_param_info *tab;
    size_t nt = bert_param_table(m, &tab);
    for (size_t i = 0; i < nt; i++)
        if (!strcmp(tab[i].name, "bert.embeddings.word_embeddings.weight")) {
            h->wte = bert_params(m) + tab[i].offset;
            h->dwte = bert_grads(m) + tab[i].offset;
        }
    layout(h);
    h->params = h->be->alloc(h->num_params * sizeof(float));
    h->grads = h->be->alloc(h->num_params * sizeof(float));
    int rc = 0;
    if (!h->wte) rc = bertc_errorf(err, BERTC_EINVAL, "mlm head: the encoder has no word embeddings");
    else if (!h->params || !h->grads) rc = bertc_errorf(err, BERTC_ENOMEM, "mlm head: out of memory");
    if (!rc) {
        float **w[MLM_HEAD_TENSORS] = {&h->dense_w, &h->dense_b, &h->ln_w, &h->ln_b, &h->bias};
        float **g[MLM_HEAD_TENSORS] = {&h->g_dense_w, &h->g_dense_b, &h->g_ln_w, &h->g_ln_b, &h->g_bias};
        for (int i = 0; i < MLM_HEAD_TENSORS; i++) {
            *w[i] = h->params + h->table[i].offset;
            *g[i] = h->grads + h->table[i].offset;
        }
    }
    int found = 0;
    if (!rc && st_path) {
        safetensors_file f;
        rc = safetensors_open(&f, st_path, err);
        if (!rc) {
            rc = load_weights(h, &f, st_path, &found, err);
            safetensors_close(&f);
        }
    }
    if (!rc && !found) {
        rc = init_weights(h, init_seed, err);
        if (!rc && notices) fprintf(notices, "mlm head: cls.predictions not in the checkpoint: initialised\n");
    }
    if (rc) {
        mlm_head_free(h);
        return rc;
    }
    h->loaded = found;
    *out = h;
    return 0;
}

void mlm_head_free(mlm_head *h) {
    if (!h) return;
    h->be->free(h->params);
    h->be->free(h->grads);
    h->be->free(h->act_arena);
    free(h->losses_host);
    free(h);
}

int mlm_head_loaded(const mlm_head *h) { return h->loaded; }

static size_t up16(size_t n) { return (n + 15) / 16 * 16; } /* 64-byte aligned buffers */

int mlm_head_prepare(mlm_head *h, int BT, int N, bertc_error *err) {
    if (BT <= 0 || N < 0) return bertc_errorf(err, BERTC_EINVAL, "mlm head: %d positions, %d masked", BT, N);
    if (N < 1) N = 1;
    if (h->act_arena && BT <= h->maxBT && N <= h->maxN) return 0;
    if (BT < h->maxBT) BT = h->maxBT;
    if (N < h->maxN) N = h->maxN;
    h->be->free(h->act_arena);
    free(h->losses_host);
    h->act_arena = NULL;
    h->maxN = h->maxBT = 0;
    h->N = -1;
    size_t nc = up16((size_t)N * h->C), nv = up16((size_t)N * h->V), n1 = up16((size_t)N);
    size_t total = 5 * nc + 2 * n1 + 2 * nv + 3 * n1 + 2 * nc + up16((size_t)BT * h->C);
    h->act_arena = h->be->alloc(total * sizeof(float));
    h->losses_host = malloc((size_t)N * sizeof(float));
    if (!h->act_arena || !h->losses_host)
        return bertc_errorf(err, BERTC_ENOMEM, "mlm head: out of memory for %d masked positions (%zu MB)", N,
                            total * sizeof(float) >> 20);
    float *p = h->act_arena;
    h->h = p, p += nc;
    h->pre = p, p += nc;
    h->post = p, p += nc;
    h->t = p, p += nc;
    h->g_t = p, p += nc;
    h->mean = p, p += n1;
    h->rstd = p, p += n1;
    h->logits = p, p += nv;
    h->probs = p, p += nv;
    h->losses = p, p += n1;
    h->labels = (int32_t *)p, p += n1;
    h->pos = (int32_t *)p, p += n1;
    h->g_h = p, p += nc;
    p += nc; /* spare, keeps the count above simple */
    h->dhidden = p;
    h->maxN = N;
    h->maxBT = BT;
    return 0;
}

float mlm_head_forward(mlm_head *h, const float *hidden, int BT, const int32_t *positions, const int32_t *labels,
                       int N) {
    const bertc_backend *be = h->be;
    int C = h->C, V = h->V;
    h->N = -1;
    if (!hidden || BT <= 0 || N < 0) return NAN;
    for (int i = 0; i < N; i++)
        if (positions[i] < 0 || positions[i] >= BT || (i > 0 && positions[i] <= positions[i - 1]) || labels[i] < 0 ||
            labels[i] >= V)
            return NAN;
    if (mlm_head_prepare(h, BT, N, NULL)) return NAN;
    h->BT = BT;
    h->N = N;
    if (N == 0) return 0.0f;
    be->to_device(h->pos, positions, (size_t)N * sizeof(int32_t));
    be->rows_gather(h->h, hidden, h->pos, N, C); /* the masked rows: h (N,C) */
    /* transform: dense, activation, LayerNorm */
    be->matmul_forward(h->pre, h->h, h->dense_w, h->dense_b, N, C, C);
    be->act_forward(h->act, h->post, h->pre, (size_t)N * C);
    be->layernorm_forward(h->t, h->mean, h->rstd, h->post, h->ln_w, h->ln_b, N, C, h->eps);
    /* decoder, tied: logits (N,V) = t @ wte^T + bias */
    be->matmul_forward(h->logits, h->t, h->wte, h->bias, N, C, V);
    be->to_device(h->labels, labels, (size_t)N * sizeof(int32_t));
    be->crossentropy_forward(h->losses, h->probs, h->logits, h->labels, N, V, 0.0f);
    be->to_host(h->losses_host, h->losses, (size_t)N * sizeof(float));
    double sum = 0.0;
    for (int i = 0; i < N; i++) sum += h->losses_host[i];
    return (float)(sum / N);
}

const float *mlm_head_backward(mlm_head *h, float loss_scale) {
    const bertc_backend *be = h->be;
    int C = h->C, V = h->V, N = h->N;
    if (N < 0) return NULL;
    be->zero(h->dhidden, (size_t)h->BT * C * sizeof(float));
    if (N == 0) return h->dhidden;
    /* loss = (1/N) sum_i loss_i; dlogits overwrite the logits, which backward does not need */
    float *dlogits = h->logits;
    be->crossentropy_backward(dlogits, h->probs, h->labels, N, V, 0.0f, loss_scale / (float)N);
    be->matmul_backward(h->g_t, h->dwte, h->g_bias, dlogits, h->t, h->wte, N, C, V, 0);
    be->layernorm_backward(h->g_t, h->g_ln_w, h->g_ln_b, h->g_t, h->post, h->ln_w, h->mean, h->rstd, N, C);
    be->act_backward(h->act, h->g_t, h->g_t, h->pre, (size_t)N * C);
    be->matmul_backward(h->g_h, h->g_dense_w, h->g_dense_b, h->g_t, h->h, h->dense_w, N, C, C, 0);
    be->rows_scatter(h->dhidden, h->g_h, h->pos, N, C); /* the positions are distinct */
    return h->dhidden;
}

float *mlm_head_params(mlm_head *h) { return h->params; }
float *mlm_head_grads(mlm_head *h) { return h->grads; }
size_t mlm_head_num_params(const mlm_head *h) { return h->num_params; }
void mlm_head_zero_grad(mlm_head *h) { h->be->zero(h->grads, h->num_params * sizeof(float)); }

size_t mlm_head_param_table(const mlm_head *h, const bert_param_info **out) {
    *out = h->table;
    return MLM_HEAD_TENSORS;
}
