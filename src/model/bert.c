/* BertForSequenceClassification, forward and backward, over the backend op set.
 *
 * Letters (as in bert.h and backend/ops.h): B batch, T tokens, C hidden, NH heads, HS head
 * size, F intermediate, L layers, V vocabulary, P max positions, TT token types, K labels.
 *
 * The computation follows transformers' modeling_bert.py (eager attention) exactly:
 *   embeddings:  x = LayerNorm(word[ids] + token_type[types] + position[t]); x = dropout(x)
 *   each layer:  q,k,v = Linear(x); ctx = dropout(softmax(q k^T/sqrt(HS) + mask)) v
 *                a = LayerNorm(x + dropout(Linear(ctx)))
 *                x = LayerNorm(a + dropout(Linear(act(Linear(a)))))
 *   head:        pooled = tanh(Linear(x[:, 0])); logits = Linear(dropout(pooled))
 *
 * One exact shortcut: only [CLS]'s output of the last layer reaches the pooler, so that layer
 * computes keys and values for all tokens but queries, attention output, LayerNorms and the
 * feed-forward block for position 0 only (a sixth of the encoder's work for 6 layers). The
 * logits and gradients are those of the full computation; dropout masks in that layer are
 * drawn over its smaller tensors.
 *   loss:        CrossEntropyLoss(label_smoothing), mean over the batch
 *
 * Memory: parameters in one arena carved by the table below (transformers' state-dict order
 * and names), gradients in a mirror arena, activations planned once in bert_prepare. */
#include "model/bert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "backend/ops.h"
#include "model/safetensors.h"
#include "util/error.h"
#include "util/fs.h"
#include "util/rng.h"

/* ------------------------------------------------------------------------------------------
 * parameters */

typedef struct bert_layer_weights {
    /* attention.self.{query,key,value}: (C,C), (C). layout() puts the three weights one after the
     * other, then the three biases, so qw is also the (3C,C) weight and qb the (3C) bias of one
     * Linear that computes all three (kw, kb the (2C,C) and (2C) of keys and values). */
    float *qw, *kw, *vw, *qb, *kb, *vb;
    float *ow, *ob, *ln1w, *ln1b;         /* attention.output.dense (C,C), (C); LayerNorm (C) */
    float *fw1, *fb1;                     /* intermediate.dense (F,C), (F) */
    float *fw2, *fb2, *ln2w, *ln2b;       /* output.dense (C,F), (C); LayerNorm (C) */
} bert_layer_weights;

typedef struct bert_weights {
    float *wte, *wpe, *wtt;     /* (V,C), (P,C), (TT,C) */
    float *emb_lnw, *emb_lnb;   /* (C) */
    bert_layer_weights *layers; /* L of them */
    float *pool_w, *pool_b;     /* pooler.dense (C,C), (C) */
    float *cls_w, *cls_b;       /* classifier (K,C), (K) */
} bert_weights;

/* ------------------------------------------------------------------------------------------
 * activations, for the planned maximum (B, T); a smaller batch uses the front of each buffer */

typedef struct bert_layer_acts {
    float *qkv;                /* (B,T,3C) queries | keys | values, one product (qkv_views) */
    float *att;                /* (B,NH,T,T) softmax probabilities (before dropout) */
    /* the dropout draws, forward to backward, where the backend keeps them (keeps_dropout_draw),
     * else NULL, as in inference plans */
    uint8_t *att_keep;         /* (B,NH,T,T) attention dropout's */
    uint8_t *res1_keep, *res2_keep; /* (B,T,C) the two hidden dropouts' (after each sub-block's dense) */
    float *ctx;                /* (B,T,C) attention output, input of attention.output.dense */
    float *res1;               /* (B,T,C) x + dropout(dense(ctx)), input of LayerNorm 1 */
    float *ln1_mean, *ln1_rstd;/* (B,T) */
    float *a1;                 /* (B,T,C) LayerNorm 1 output */
    float *fpre, *fact;        /* (B,T,F) intermediate.dense output, after the activation */
    float *res2;               /* (B,T,C) a1 + dropout(dense(fact)), input of LayerNorm 2 */
    float *ln2_mean, *ln2_rstd;/* (B,T) */
    float *out;                /* (B,T,C) layer output */
    /* bf16 only: the Linear inputs rounded to bf16 in forward, read again by backward */
    uint16_t *x16;             /* (B,T,C) the layer input (queries, keys and values) */
    uint16_t *ctx16, *a1_16;   /* (B,T,C) */
    uint16_t *fact16;          /* (B,T,F) */
} bert_layer_acts;

typedef struct bert_acts {
    int32_t *ids, *mask, *types, *labels; /* (B,T) x3 and (B), on the device */
    float *emb_sum;            /* (B,T,C) embeddings before LayerNorm */
    float *emb_mean, *emb_rstd;/* (B,T) */
    float *emb_out;            /* (B,T,C) LayerNorm output after dropout: input of layer 0 */
    uint8_t *emb_keep;         /* (B,T,C) its dropout's draw, as the layers' (or NULL) */
    bert_layer_acts *layers;
    float *proj;               /* (B,T,C) scratch: dense outputs without bias, input of the fused ops */
    float *att_scratch;        /* 2*(B,NH,T,T) attention scratch */
    float *x_cls;              /* (B,C) the last layer's input at [CLS] (its query-side input) */
    float *cls;                /* (B,C) first token of the encoder output (when no layer is [CLS]-only) */
    const float *pool_in;      /* (B,C) the pooler's input in the last forward: cls or the last layer's out */
    float *pooled;             /* (B,C) tanh(pooler), kept for tanh backward */
    float *pooled_drop;        /* (B,C) classifier input */
    float *logits, *probs;     /* (B,K) */
    float *losses;             /* (B) */
    /* gradient buffers, shared by all layers */
    float *g_x, *g_y;          /* (B,T,C) two gradients w.r.t. the residual stream, swapped per layer */
    float *g_proj;             /* (B,T,C) */
    float *g_ff;               /* (B,T,F) */
    float *g_qkv;              /* (B,T,3C) their gradients, laid out as qkv */
    float *g_ctx;              /* (B,T,C) */
    float *g_cls, *g_pooled;   /* (B,C) */
    float *g_logits;           /* (B,K) */
    uint16_t *x_cls16;         /* (B,C) bf16 only: x_cls rounded (the last layer's query input) */
    uint16_t *bf16_scratch;    /* (B,T,max(3C,F)) bf16 only: an output gradient rounded on the way in */
} bert_acts;

struct bert_model {
    bert_config cfg;
    const bertc_backend *be;

    bert_param_info *table;    /* arena order */
    char (*names)[96];         /* the table's names */
    size_t n_tensors;
    size_t num_params;
    float *params, *grads;     /* device arenas */
    bert_weights w, g;         /* named pointers into params and grads */

    /* activations */
    int maxB, maxT;
    int infer_plan;            /* the arena holds bert_prepare_inference's plan: no backward */
    float *act_arena;
    bert_acts a;
    /* bert_prepare_train_eval: an inference plan for larger evaluation batches (up to maxB_eval),
     * carved from the same arena as a (they are never live at once) */
    int maxB_eval;
    bert_acts a_eval;
    int fwd_eval_plan;         /* the last forward ran on a_eval: no backward */
    size_t act_bytes;          /* the arena's size */
    float *logits_host, *losses_host; /* (maxB,K), (maxB); maxB_eval where larger, for these four */
    int32_t *ones_host;               /* (maxB*maxT) the mask used when none is given */

    /* last forward, for backward */
    int B, T, train, has_labels, n_valid;
    uint64_t seed;
    float label_smoothing;
    int no_grad_below;                /* bert_set_no_grad_below */
    float *dlogits_host;              /* (maxB,K) scratch for bert_backward_with */
    /* bert_forward_hidden / bert_backward_hidden: every position through the last layer, no head */
    int hidden_only, hidden_fwd; /* asked for in this forward; what the last forward did */
    const float *hidden_grad;  /* (B,T,C) the caller's gradient of the encoder output, in backward */

    /* bf16 mixed precision (bert_set_precision): a bf16 mirror of the parameter arena, same
     * offsets, of which only the encoder's Linear weights are filled; refreshed before a forward
     * when the parameters have changed since. */
    int bf16;
    uint16_t *params16;
    int params16_stale;
    /* the gradient arena is all zeros (fresh from alloc, or zeroed) and nobody has been handed it
     * since: bert_set_backend need not copy it (a loaded model's 440 MB of untouched zero pages) */
    int grads_clean;
};

/* Dropout streams: one per dropout site, so masks never repeat across sites. */
#define STREAM_EMB 0u
#define STREAM_ATT(l) (1u + 3u * (uint64_t)(l))
#define STREAM_ATT_OUT(l) (2u + 3u * (uint64_t)(l))
#define STREAM_FFN_OUT(l) (3u + 3u * (uint64_t)(l))
#define STREAM_CLS(L) (1u + 3u * (uint64_t)(L))

/* ------------------------------------------------------------------------------------------
 * the parameter table: built by one walk that also carves the named pointers */

typedef struct layout_walk {
    bert_param_info *table; /* NULL while counting */
    char (*names)[96];
    float *pbase, *gbase;   /* NULL while counting */
    void *w, *g;            /* the structs whose float* fields are being set (weights, grads) */
    size_t n, offset;
    int overflow;           /* the sizes (from config.json) overflow a size_t */
} layout_walk;

static void add_tensor(layout_walk *lw, size_t field, int64_t rows, int64_t cols, int no_decay,
                       int layer, const char *fmt, int idx) {
    size_t numel;
    if (__builtin_mul_overflow((size_t)rows, (size_t)(cols > 0 ? cols : 1), &numel) ||
        __builtin_add_overflow(lw->offset, numel, &(size_t){0}))
        lw->overflow = 1;
    if (lw->table) {
        bert_param_info *p = &lw->table[lw->n];
        snprintf(lw->names[lw->n], sizeof lw->names[lw->n], fmt, idx);
        p->name = lw->names[lw->n];
        p->offset = lw->offset;
        p->numel = numel;
        p->ndim = cols > 0 ? 2 : 1;
        p->shape[0] = rows;
        p->shape[1] = cols > 0 ? cols : 0;
        p->no_decay = no_decay;
        p->layer = layer;
    }
    if (lw->pbase) {
        /* field is the byte offset of a float* inside bert_weights or a bert_layer_weights */
        *(float **)((char *)lw->w + field) = lw->pbase + lw->offset;
        *(float **)((char *)lw->g + field) = lw->gbase + lw->offset;
    }
    lw->n++;
    lw->offset += numel;
}

static void layout(const bert_config *c, layout_walk *lw) {
    int64_t C = c->hidden_size, F = c->intermediate_size;
    bert_weights *w = lw->w, *g = lw->g;
    /* Top-level fields by offset; layer fields by the offset of the layer struct from w. */
#define TOP(field) offsetof(bert_weights, field)
    add_tensor(lw, TOP(wte), c->vocab_size, C, 0, 0, "bert.embeddings.word_embeddings.weight", 0);
    add_tensor(lw, TOP(wpe), c->max_position_embeddings, C, 0, 0,
               "bert.embeddings.position_embeddings.weight", 0);
    add_tensor(lw, TOP(wtt), c->type_vocab_size, C, 0, 0, "bert.embeddings.token_type_embeddings.weight", 0);
    add_tensor(lw, TOP(emb_lnw), C, 0, 1, 0, "bert.embeddings.LayerNorm.weight", 0);
    add_tensor(lw, TOP(emb_lnb), C, 0, 1, 0, "bert.embeddings.LayerNorm.bias", 0);
    for (int l = 0; l < c->num_hidden_layers; l++) {
        /* Point the walk at this layer's structs; field offsets are then relative to them. */
        layout_walk sub = *lw;
        if (lw->pbase) {
            sub.w = &w->layers[l];
            sub.g = &g->layers[l];
        }
#define LAY(field) offsetof(bert_layer_weights, field)
#define P "bert.encoder.layer.%d."
        /* weights, then biases: one (3C,C) Linear for queries, keys and values (bert_layer_weights) */
        add_tensor(&sub, LAY(qw), C, C, 0, l + 1, P "attention.self.query.weight", l);
        add_tensor(&sub, LAY(kw), C, C, 0, l + 1, P "attention.self.key.weight", l);
        add_tensor(&sub, LAY(vw), C, C, 0, l + 1, P "attention.self.value.weight", l);
        add_tensor(&sub, LAY(qb), C, 0, 1, l + 1, P "attention.self.query.bias", l);
        add_tensor(&sub, LAY(kb), C, 0, 1, l + 1, P "attention.self.key.bias", l);
        add_tensor(&sub, LAY(vb), C, 0, 1, l + 1, P "attention.self.value.bias", l);
        add_tensor(&sub, LAY(ow), C, C, 0, l + 1, P "attention.output.dense.weight", l);
        add_tensor(&sub, LAY(ob), C, 0, 1, l + 1, P "attention.output.dense.bias", l);
        add_tensor(&sub, LAY(ln1w), C, 0, 1, l + 1, P "attention.output.LayerNorm.weight", l);
        add_tensor(&sub, LAY(ln1b), C, 0, 1, l + 1, P "attention.output.LayerNorm.bias", l);
        add_tensor(&sub, LAY(fw1), F, C, 0, l + 1, P "intermediate.dense.weight", l);
        add_tensor(&sub, LAY(fb1), F, 0, 1, l + 1, P "intermediate.dense.bias", l);
        add_tensor(&sub, LAY(fw2), C, F, 0, l + 1, P "output.dense.weight", l);
        add_tensor(&sub, LAY(fb2), C, 0, 1, l + 1, P "output.dense.bias", l);
        add_tensor(&sub, LAY(ln2w), C, 0, 1, l + 1, P "output.LayerNorm.weight", l);
        add_tensor(&sub, LAY(ln2b), C, 0, 1, l + 1, P "output.LayerNorm.bias", l);
#undef P
#undef LAY
        lw->n = sub.n;
        lw->offset = sub.offset;
    }
    int head = c->num_hidden_layers + 1;
    add_tensor(lw, TOP(pool_w), C, C, 0, head, "bert.pooler.dense.weight", 0);
    add_tensor(lw, TOP(pool_b), C, 0, 1, head, "bert.pooler.dense.bias", 0);
    add_tensor(lw, TOP(cls_w), c->num_labels, C, 0, head, "classifier.weight", 0);
    add_tensor(lw, TOP(cls_b), c->num_labels, 0, 1, head, "classifier.bias", 0);
#undef TOP
}

/* ------------------------------------------------------------------------------------------
 * config copy (bert_config owns heap strings and a cJSON tree) */

static int set_default_labels(bert_config *c, int n, bertc_error *err) {
    char **names = calloc((size_t)n, sizeof *names);
    if (!names) return bertc_errorf(err, BERTC_ENOMEM, "config: out of memory");
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        names[i] = malloc(24);
        if (!names[i]) rc = bertc_errorf(err, BERTC_ENOMEM, "config: out of memory");
        else snprintf(names[i], 24, "LABEL_%d", i);
    }
    if (!rc) rc = bert_config_set_labels(c, names, n, err);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int config_copy(bert_config *dst, const bert_config *src, bertc_error *err) {
    *dst = *src;
    dst->id2label = NULL;
    dst->raw = NULL;
    dst->num_labels = 0;
    if (src->raw) {
        dst->raw = cJSON_Duplicate((const cJSON *)src->raw, 1);
        if (!dst->raw) return bertc_errorf(err, BERTC_ENOMEM, "config: out of memory");
    }
    if (src->num_labels <= 0)
        return bertc_errorf(err, BERTC_EINVAL, "config: num_labels must be positive (got %d)", src->num_labels);
    return src->id2label ? bert_config_set_labels(dst, src->id2label, src->num_labels, err)
                         : set_default_labels(dst, src->num_labels, err);
}

/* ------------------------------------------------------------------------------------------
 * creation */

/* Allocates the model for m->cfg (already filled): table, both arenas, named pointers. */
static int model_alloc(bert_model *m, bertc_error *err) {
    const bert_config *c = &m->cfg;
    if (c->num_labels <= 0)
        return bertc_errorf(err, BERTC_EINVAL, "model: num_labels must be positive (got %d)", c->num_labels);
    m->be = bertc_backend_cpu();
    layout_walk count = {0};
    layout(c, &count);
    /* Absurd sizes in config.json: say so before trying to allocate (weights + gradients). */
    if (count.overflow || count.offset > SIZE_MAX / (2 * sizeof(float)))
        return bertc_errorf(err, BERTC_EUNSUPPORTED, "model: config.json's sizes give more parameters than memory "
                            "can address (hidden_size %d, intermediate_size %d, vocab_size %d, %d layers)",
                            c->hidden_size, c->intermediate_size, c->vocab_size, c->num_hidden_layers);
    m->n_tensors = count.n;
    m->num_params = count.offset;
    m->table = calloc(m->n_tensors, sizeof *m->table);
    m->names = calloc(m->n_tensors, sizeof *m->names);
    m->w.layers = calloc((size_t)c->num_hidden_layers, sizeof *m->w.layers);
    m->g.layers = calloc((size_t)c->num_hidden_layers, sizeof *m->g.layers);
    m->params = m->be->alloc(m->num_params * sizeof(float));
    m->grads = m->be->alloc(m->num_params * sizeof(float));
    m->grads_clean = 1; /* alloc zeroes */
    if (!m->table || !m->names || !m->w.layers || !m->g.layers || !m->params || !m->grads)
        return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory for %zu parameters (%.1f GB of weights and as "
                            "much of gradients)", m->num_params, (double)m->num_params * sizeof(float) / 1e9);
    layout_walk lw = {.table = m->table, .names = m->names, .pbase = m->params, .gbase = m->grads,
                      .w = &m->w, .g = &m->g};
    layout(c, &lw);
    return 0;
}

static void fill_normal(rng *r, float *host, size_t n, float std) {
    for (size_t i = 0; i < n; i++) host[i] = rng_normal(r) * std;
}

/* Hugging Face _init_weights for one tensor of the table: Linear/Embedding weights normal(0,
 * initializer_range), biases 0, LayerNorm weight 1 and bias 0; the padding row zeroed. */
static int init_tensor(bert_model *m, size_t i, rng *r, bertc_error *err) {
    const bert_param_info *p = &m->table[i];
    float *host = malloc(p->numel * sizeof(float));
    if (!host) return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory");
    const char *name = p->name;
    size_t len = strlen(name);
    int is_ln = strstr(name, "LayerNorm") != NULL;
    int is_bias = len >= 5 && strcmp(name + len - 5, ".bias") == 0;
    if (is_bias) {
        memset(host, 0, p->numel * sizeof(float));
    } else if (is_ln) {
        for (size_t j = 0; j < p->numel; j++) host[j] = 1.0f;
    } else {
        fill_normal(r, host, p->numel, m->cfg.initializer_range);
        if (i == 0 && m->cfg.pad_token_id >= 0 && m->cfg.pad_token_id < m->cfg.vocab_size)
            memset(host + (size_t)m->cfg.pad_token_id * m->cfg.hidden_size, 0,
                   (size_t)m->cfg.hidden_size * sizeof(float));
    }
    m->be->to_device(m->params + p->offset, host, p->numel * sizeof(float));
    free(host);
    return 0;
}

void bert_load_options_default(bert_load_options *o) {
    memset(o, 0, sizeof *o);
    o->hidden_dropout = o->attention_dropout = o->classifier_dropout = -1.0f;
    o->init_seed = 42;
}

int bert_init_random(bert_model **out, const bert_config *cfg, uint64_t seed, bertc_error *err) {
    *out = NULL;
    bert_model *m = calloc(1, sizeof *m);
    if (!m) return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory");
    int rc = config_copy(&m->cfg, cfg, err);
    if (!rc) rc = model_alloc(m, err);
    rng r;
    rng_seed(&r, seed);
    for (size_t i = 0; !rc && i < m->n_tensors; i++) rc = init_tensor(m, i, &r, err);
    if (rc) {
        bert_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * loading */

/* Finds our tensor `name` ("bert.x.y" or "classifier.z") in f under the names checkpoints use:
 * with or without "bert.", and LayerNorm gamma/beta for weight/bias. */
static const st_tensor *find_checkpoint_tensor(const safetensors_file *f, const char *name) {
    char alt[160];
    const char *bare = strncmp(name, "bert.", 5) == 0 ? name + 5 : name;
    const st_tensor *t = safetensors_find(f, name);
    if (!t && bare != name) t = safetensors_find(f, bare);
    if (t) return t;
    size_t len = strlen(name);
    if (strstr(name, "LayerNorm.") && len < sizeof alt) {
        const char *suffix = strrchr(name, '.') + 1;
        const char *old = strcmp(suffix, "weight") == 0 ? "gamma" : strcmp(suffix, "bias") == 0 ? "beta" : NULL;
        if (old) {
            snprintf(alt, sizeof alt, "%.*s%s", (int)(suffix - name), name, old);
            t = safetensors_find(f, alt);
            if (!t && bare != name) t = safetensors_find(f, alt + 5);
        }
    }
    return t;
}

static int shape_matches(const st_tensor *t, const bert_param_info *p) {
    if (t->ndim != p->ndim) return 0;
    for (int d = 0; d < p->ndim; d++)
        if (t->shape[d] != p->shape[d]) return 0;
    return 1;
}

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

static void notice(const bert_load_options *o, const char *fmt, const char *a, const char *b) {
    if (o->notices) {
        fprintf(o->notices, fmt, a, b);
        fputc('\n', o->notices);
    }
}

int bert_load(bert_model **out, const char *model_dir, const bert_load_options *opts, bertc_error *err) {
    *out = NULL;
    bert_load_options defaults;
    if (!opts) {
        bert_load_options_default(&defaults);
        opts = &defaults;
    }
    char cfg_path[4096], st_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", model_dir);
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", model_dir);

    bert_model *m = calloc(1, sizeof *m);
    if (!m) return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory");
    int rc = bert_config_load(&m->cfg, cfg_path, err);
    if (rc) {
        free(m);
        return rc;
    }
    bert_config *c = &m->cfg;
    if (opts->hidden_dropout >= 0) c->hidden_dropout_prob = opts->hidden_dropout;
    if (opts->attention_dropout >= 0) c->attention_probs_dropout_prob = opts->attention_dropout;
    if (opts->classifier_dropout >= 0) c->classifier_dropout = opts->classifier_dropout;
    if (c->hidden_dropout_prob >= 1 || c->attention_probs_dropout_prob >= 1 || c->classifier_dropout >= 1) {
        bert_free(m);
        return bertc_errorf(err, BERTC_EINVAL, "%s: dropout probabilities must be below 1", model_dir);
    }
    /* The task's labels replace the checkpoint's; without names, the checkpoint's are kept when
     * the count agrees, else they become LABEL_0.. as transformers names them. */
    if (opts->num_labels > 0 && (opts->label_names || opts->num_labels != c->num_labels)) {
        rc = opts->label_names ? bert_config_set_labels(c, opts->label_names, opts->num_labels, err)
                               : set_default_labels(c, opts->num_labels, err);
        if (rc) {
            bert_free(m);
            return rc;
        }
    }
    rc = model_alloc(m, err);
    safetensors_file f;
    int opened = 0;
    if (!rc) {
        rc = safetensors_open(&f, st_path, err);
        opened = rc == 0;
    }
    rng r;
    rng_seed(&r, opts->init_seed);
    char have[64], want[64];
    /* The heads: a checkpoint without a pooler (e.g. a bare encoder) or without a classifier
     * of this task's shape gets them initialised as transformers would, with one notice each. */
    int init_pooler = 0, init_classifier = 0;
    for (size_t i = 0; !rc && i < m->n_tensors; i++) {
        const bert_param_info *p = &m->table[i];
        const st_tensor *t = find_checkpoint_tensor(&f, p->name);
        if (strncmp(p->name, "bert.pooler.", 12) == 0 && !t) init_pooler = 1;
        if (strncmp(p->name, "classifier.", 11) == 0 && (!t || !shape_matches(t, p))) {
            if (!init_classifier && t) {
                shape_str(have, sizeof have, t->ndim, t->shape);
                notice(opts, "classifier: the checkpoint's %s has shape %s, not this task's: initialised",
                       p->name, have);
            } else if (!init_classifier) {
                notice(opts, "classifier: %s not in the checkpoint: initialised%s", p->name, "");
            }
            init_classifier = 1;
        }
    }
    if (init_pooler) notice(opts, "pooler: %s not in the checkpoint: initialised%s", "bert.pooler.dense", "");
    for (size_t i = 0; !rc && i < m->n_tensors; i++) {
        const bert_param_info *p = &m->table[i];
        if ((init_pooler && strncmp(p->name, "bert.pooler.", 12) == 0) ||
            (init_classifier && strncmp(p->name, "classifier.", 11) == 0)) {
            rc = init_tensor(m, i, &r, err);
            continue;
        }
        const st_tensor *t = find_checkpoint_tensor(&f, p->name);
        if (!t) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: missing tensor %s", st_path, p->name);
            break;
        }
        if (!shape_matches(t, p)) {
            shape_str(have, sizeof have, t->ndim, t->shape);
            shape_str(want, sizeof want, p->ndim, p->shape);
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: tensor %s has shape %s but %s/config.json implies %s",
                              st_path, t->name, have, model_dir, want);
            break;
        }
        /* Convert straight into the arena on the CPU; through a host buffer elsewhere. */
        if (strcmp(m->be->name, "cpu") == 0) {
            rc = safetensors_to_f32(t, m->params + p->offset, p->numel, err);
        } else {
            float *host = malloc(p->numel * sizeof(float));
            if (!host) rc = bertc_errorf(err, BERTC_ENOMEM, "model: out of memory");
            if (!rc) rc = safetensors_to_f32(t, host, p->numel, err);
            if (!rc) m->be->to_device(m->params + p->offset, host, p->numel * sizeof(float));
            free(host);
        }
        if (rc && err) {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            rc = bertc_errorf(err, rc, "%s: %s", st_path, msg); /* msg names the tensor */
        }
    }
    if (opened) safetensors_close(&f);
    if (rc) {
        bert_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * saving */

int bert_save(const bert_model *m, const char *model_dir, bertc_error *err) {
    return bert_save_from(m, NULL, model_dir, err);
}

void bert_params_to_host(const bert_model *m, float *host) {
    m->be->to_host(host, m->params, m->num_params * sizeof(float));
}

int bert_save_from(const bert_model *m, const float *host_params, const char *model_dir, bertc_error *err) {
    int rc = fs_mkdir_p(model_dir, err);
    if (rc) return rc;
    char path[4096];
    st_write_tensor *t = calloc(m->n_tensors, sizeof *t);
    if (!t) return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory");
    /* On the CPU the arena is host memory already (and a host copy is), elsewhere the writer
     * fetches it piece by piece */
    const float *params = host_params ? host_params : m->params;
    st_fetch_fn fetch = !host_params && strcmp(m->be->name, "cpu") != 0 ? m->be->to_host : NULL;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const bert_param_info *p = &m->table[i];
        t[i].name = p->name;
        t[i].data = params + p->offset;
        t[i].ndim = p->ndim;
        t[i].shape[0] = p->shape[0];
        t[i].shape[1] = p->shape[1];
    }
    static const char *const meta[] = {"format", "pt"};
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    rc = safetensors_write_fetch(path, t, m->n_tensors, meta, 1, fetch, err);
    if (!rc) {
        snprintf(path, sizeof path, "%s/config.json", model_dir);
        rc = bert_config_save(&m->cfg, path, err);
    }
    free(t);
    return rc;
}

void bert_free(bert_model *m) {
    if (!m) return;
    if (m->be) {
        m->be->free(m->params);
        m->be->free(m->grads);
        m->be->free(m->act_arena);
        m->be->free(m->params16);
    }
    free(m->a.layers);
    free(m->a_eval.layers);
    free(m->logits_host);
    free(m->losses_host);
    free(m->ones_host);
    free(m->dlogits_host);
    free(m->w.layers);
    free(m->g.layers);
    free(m->table);
    free(m->names);
    bert_config_free(&m->cfg);
    free(m);
}

const bert_config *bert_get_config(const bert_model *m) { return &m->cfg; }
bert_config *bert_config_mut(bert_model *m) { return &m->cfg; }
float *bert_params(bert_model *m) {
    m->params16_stale = 1; /* the caller may write through it */
    return m->params;
}
float *bert_grads(bert_model *m) {
    m->grads_clean = 0; /* the caller may write to it */
    return m->grads;
}
size_t bert_num_params(const bert_model *m) { return m->num_params; }
const float *bert_logits(const bert_model *m) { return m->logits_host; }
void bert_set_label_smoothing(bert_model *m, float eps) { m->label_smoothing = eps; }
void bert_set_no_grad_below(bert_model *m, int depth) { m->no_grad_below = depth > 0 ? depth : 0; }

size_t bert_param_table(const bert_model *m, const bert_param_info **out) {
    *out = m->table;
    return m->n_tensors;
}

void bert_params_changed(bert_model *m) { m->params16_stale = 1; }
/* The optimiser keeps every entry it updates current; what it does not update did not change,
 * so the copy is exactly as current as it was (and the next forward refreshes a stale one). */
static void params16_span(const bert_model *m, size_t *lo, size_t *hi);
uint16_t *bert_params16(bert_model *m, size_t *lo, size_t *hi) {
    params16_span(m, lo, hi);
    return m->bf16 && *lo < *hi ? m->params16 : NULL;
}
int bert_precision_bf16(const bert_model *m) { return m->bf16; }

int bert_bf16_notice(const bert_model *m, char *buf, size_t n) {
    const char *why = m->bf16 && m->be->bf16_emulated ? m->be->bf16_emulated() : NULL;
    if (!why) return 0;
    snprintf(buf, n, "precision: bf16 without bf16 hardware (%s): the products are widened to fp32, slower than "
                     "--precision fp32", why);
    return 1;
}

int bert_parse_precision(const char *name, int *bf16, bertc_error *err) {
    if (!name || !strcmp(name, "fp32")) *bf16 = 0;
    else if (!strcmp(name, "bf16")) *bf16 = 1;
    else return bertc_errorf(err, BERTC_EINVAL, "precision must be fp32 or bf16, got '%s'", name);
    return 0;
}

int bert_set_precision(bert_model *m, int bf16, bertc_error *err) {
    bf16 = bf16 != 0;
    if (bf16 == m->bf16) return 0;
    if (bf16 && (!m->be->to_bf16 || !m->be->matmul_forward_bf16 || !m->be->matmul_backward_bf16))
        return bertc_errorf(err, BERTC_EUNSUPPORTED, "model: the %s backend has no bf16 matrix products", m->be->name);
    uint16_t *p16 = NULL;
    if (bf16 && !(p16 = m->be->alloc(m->num_params * sizeof(uint16_t))))
        return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory for the bf16 copy of %zu parameters", m->num_params);
    m->be->free(m->params16);
    m->params16 = p16;
    m->params16_stale = 1;
    m->bf16 = bf16;
    /* The activations gain (or lose) the bf16 scratch: bert_prepare plans them anew. */
    m->be->free(m->act_arena);
    m->act_arena = NULL;
    m->maxB = m->maxT = m->maxB_eval = 0;
    return 0;
}

/* Rounds the encoder's Linear weights (2-D tensors of layers 1..L) into the bf16 mirror: the
 * whole span from the first to the last of them in one call, since the biases and LayerNorm
 * parameters between them are under 0.1% of it (their mirror entries are never read) and a
 * GPU runs one kernel instead of six per layer at every step. */
static void params16_span(const bert_model *m, size_t *lo, size_t *hi) {
    *lo = SIZE_MAX, *hi = 0;
    for (size_t i = 0; i < m->n_tensors; i++) {
        const bert_param_info *p = &m->table[i];
        if (p->ndim == 2 && p->layer >= 1 && p->layer <= m->cfg.num_hidden_layers) {
            if (p->offset < *lo) *lo = p->offset;
            if (p->offset + p->numel > *hi) *hi = p->offset + p->numel;
        }
    }
    if (*lo > *hi) *lo = *hi = 0;
}

static void refresh_params16(bert_model *m) {
    size_t lo, hi;
    params16_span(m, &lo, &hi);
    if (lo < hi) m->be->to_bf16(m->params16 + lo, m->params + lo, hi - lo);
    m->params16_stale = 0;
}

/* Where a layer's queries, keys and values (and their gradients, at the same offsets in g_qkv)
 * live inside its (B,T,3C) qkv buffer. A full layer (Tq = T) computes all three as one (3C,C)
 * Linear: rows of q | k | v, row stride 3C for each. The [CLS]-only last layer (Tq = 1)
 * computes keys and values as one (2C,C) Linear into the front, rows of k | v (stride 2C), and
 * its (B,C) queries apart, after them. */
typedef struct qkv_views {
    size_t q, k, v; /* offsets into qkv (and g_qkv) */
    int ldq, ldkv;  /* row strides */
} qkv_views;

static qkv_views qkv_layout(size_t BT, int Tq, int T, int C) {
    if (Tq == T) return (qkv_views){0, (size_t)C, 2 * (size_t)C, 3 * C, 3 * C};
    return (qkv_views){BT * 2 * C, 0, (size_t)C, C, 2 * C};
}

/* The encoder's Linear layers, in the model's precision: bf16 reads the weight's mirror at the
 * same offset, and inp's bf16 copy inp16 (filled by forward unless inp16_ready, kept for
 * backward; unused in fp32). Shapes as backend/ops.h matmul_forward / matmul_backward. */
static void linear_forward(const bert_model *m, float *out, const float *inp, uint16_t *inp16, int inp16_ready,
                           const float *weight, const float *bias, int N, int IC, int OC) {
    if (m->bf16)
        m->be->matmul_forward_bf16(out, inp, inp16, inp16_ready, m->params16 + (weight - m->params), bias, N, IC, OC);
    else
        m->be->matmul_forward(out, inp, weight, bias, N, IC, OC);
}

/* dout16_ready: a bf16 model's fused op before left dout's rounding in the bf16 scratch */
static void linear_backward(const bert_model *m, float *dinp, float *dweight, float *dbias, const float *dout,
                            int dout16_ready, const float *inp, const uint16_t *inp16, const float *weight, int N,
                            int IC, int OC, int accumulate) {
    if (m->bf16)
        m->be->matmul_backward_bf16(dinp, dweight, dbias, dout, inp16, m->params16 + (weight - m->params), N, IC, OC,
                                    accumulate, m->a.bf16_scratch, dout16_ready);
    else
        m->be->matmul_backward(dinp, dweight, dbias, dout, inp, weight, N, IC, OC, accumulate);
}

/* The end of a sub-block (backend/ops.h residual_layernorm_forward / _backward) and the FFN's
 * activation backward. With a bf16 copy to fill (out16, dx16, dinp16: the next Linear's bf16
 * operand; NULL in fp32) and a backend that rounds in the op's own pass, the *_bf16 op writes it
 * too: they return 1 then, 0 when the Linear must round it itself. */
static int residual_ln_forward(const bert_model *m, float *out, uint16_t *out16, float *res, float *mean, float *rstd,
                               const float *x, const float *xbias, const float *inp_res, const float *weight,
                               const float *bias, int N, int C, float eps, float p, uint64_t seed, uint64_t stream,
                               uint8_t *keep) {
    if (out16 && m->be->residual_layernorm_forward_bf16) {
        m->be->residual_layernorm_forward_bf16(out, out16, res, mean, rstd, x, xbias, inp_res, weight, bias, N, C, eps,
                                               p, seed, stream, keep);
        return 1;
    }
    m->be->residual_layernorm_forward(out, res, mean, rstd, x, xbias, inp_res, weight, bias, N, C, eps, p, seed, stream,
                                      keep);
    return 0;
}

static int residual_ln_backward(const bert_model *m, float *dres, float *dx, uint16_t *dx16, float *dxbias,
                                float *dweight, float *dbias, const float *dout, const float *res, const float *weight,
                                const float *mean, const float *rstd, int N, int C, float p, uint64_t seed,
                                uint64_t stream, const uint8_t *keep) {
    if (dx16 && m->be->residual_layernorm_backward_bf16) {
        m->be->residual_layernorm_backward_bf16(dres, dx, dx16, dxbias, dweight, dbias, dout, res, weight, mean, rstd, N,
                                                C, p, seed, stream, keep);
        return 1;
    }
    m->be->residual_layernorm_backward(dres, dx, dxbias, dweight, dbias, dout, res, weight, mean, rstd, N, C, p, seed,
                                       stream, keep);
    return 0;
}

static int act_bias_backward(const bert_model *m, ops_act act, float *dinp, uint16_t *dinp16, float *dbias,
                             const float *dout, const float *pre, int N, int F) {
    if (dinp16 && m->be->act_bias_backward_bf16) {
        m->be->act_bias_backward_bf16(act, dinp, dinp16, dbias, dout, pre, N, F);
        return 1;
    }
    m->be->act_bias_backward(act, dinp, dbias, dout, pre, N, F);
    return 0;
}

void bert_zero_grad(bert_model *m) {
    m->be->zero(m->grads, m->num_params * sizeof(float));
    m->grads_clean = 1;
}

const bertc_backend *bert_backend(const bert_model *m) { return m->be; }

void bert_swap_ops(bert_model *m, const bertc_backend *be) { m->be = be; }

int bert_set_device(bert_model *m, const char *device, bertc_error *err) {
    if (!device || !*device || !strcmp(device, "cpu")) return 0;
    char why[256];
    const bertc_backend *be = bertc_backend_by_name(device, why, sizeof why);
    if (!be) return bertc_errorf(err, BERTC_EUNSUPPORTED, "%s", why);
    return bert_set_backend(m, be, err);
}

int bert_set_backend(bert_model *m, const bertc_backend *be, bertc_error *err) {
    if (be == m->be) return 0;
    if (m->bf16) /* the bf16 mirror lives in the old backend's memory */
        return bertc_errorf(err, BERTC_EINVAL, "model: move the model to %s before choosing its precision", be->name);
    size_t bytes = m->num_params * sizeof(float);
    /* From the CPU (a model is loaded there) the arenas are host memory already: no bounce
     * buffer, whose 440 MB of fresh pages for bert-base cost more than the copy itself. */
    int from_host = strcmp(m->be->name, "cpu") == 0;
    float *host = from_host ? NULL : malloc(bytes ? bytes : 1);
    float *p = be->alloc(bytes), *g = be->alloc(bytes);
    if ((!from_host && !host) || !p || !g) {
        free(host);
        if (p) be->free(p);
        if (g) be->free(g);
        return bertc_errorf(err, BERTC_ENOMEM, "model: out of %s memory for %zu parameters", be->name, m->num_params);
    }
    /* be->alloc zeroes: clean gradients need no copy */
    if (from_host) {
        be->to_device(p, m->params, bytes);
        if (!m->grads_clean) be->to_device(g, m->grads, bytes);
    } else {
        m->be->to_host(host, m->params, bytes);
        be->to_device(p, host, bytes);
        if (!m->grads_clean) {
            m->be->to_host(host, m->grads, bytes);
            be->to_device(g, host, bytes);
        }
        free(host);
    }
    m->be->free(m->params);
    m->be->free(m->grads);
    m->be->free(m->act_arena);
    m->act_arena = NULL; /* bert_prepare plans them again on the new backend */
    m->maxB = m->maxT = m->maxB_eval = m->B = 0;
    m->be = be;
    m->params = p;
    m->grads = g;
    layout_walk lw = {.pbase = p, .gbase = g, .w = &m->w, .g = &m->g}; /* re-point the named tensors */
    layout(&m->cfg, &lw);
    if (be->last_error && be->last_error()[0])
        return bertc_errorf(err, BERTC_EIO, "model: moving the weights to %s failed: %s", be->name, be->last_error());
    return 0;
}

/* The sum of squares in double is finite exactly when every weight is: a float's square is at
 * most 1.2e77, so no sum of finite ones overflows. It runs where the weights are (no host copy). */
int bert_params_finite(const bert_model *m) {
    return isfinite(m->be->sum_squares(m->params, m->num_params));
}

/* ------------------------------------------------------------------------------------------
 * activation planning */

typedef struct act_walk {
    float *base; /* NULL while counting */
    size_t offset;
} act_walk;

static float *carve(act_walk *aw, size_t n) {
    float *p = aw->base ? aw->base + aw->offset : NULL;
    aw->offset += (n + 15) / 16 * 16; /* keep every buffer 64-byte aligned */
    return p;
}

/* infer: two layers' activations, layer l using set l % 2 (its input, the previous layer's
 * output, is in the other set), and no gradient buffers. keep_draw: carve the dropout draws'
 * bytes (a plan with a backward, on a backend that keeps them). */
/* fact16_only: the activation output is written straight to bf16 (bias_act_forward_bf16), so
 * its fp32 copy (B,T,F) per layer is not allocated. */
static void plan_acts(const bert_config *c, int B, int T, int bf16, int fact16_only, int infer, int keep_draw,
                      bert_acts *a, act_walk *aw) {
    _Static_assert(sizeof(int32_t) == sizeof(float), "ints are carved from the float arena");
    size_t BT = (size_t)B * T, C = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    size_t K = (size_t)c->num_labels, NH = (size_t)c->num_attention_heads, TT = (size_t)T * T;
    a->ids = (int32_t *)carve(aw, BT);
    a->mask = (int32_t *)carve(aw, BT);
    a->types = (int32_t *)carve(aw, BT);
    a->labels = (int32_t *)carve(aw, (size_t)B);
    a->emb_sum = carve(aw, BT * C);
    a->emb_mean = carve(aw, BT);
    a->emb_rstd = carve(aw, BT);
    a->emb_out = carve(aw, BT * C);
    /* carve counts floats: four bytes each */
    a->emb_keep = keep_draw ? (uint8_t *)carve(aw, (BT * C + 3) / 4) : NULL;
    for (int l = 0; l < c->num_hidden_layers; l++) {
        bert_layer_acts *la = &a->layers[l];
        if (infer && l >= 2) {
            *la = a->layers[l % 2];
            continue;
        }
        la->qkv = carve(aw, BT * 3 * C);
        la->att = carve(aw, (size_t)B * NH * TT);
        la->att_keep = keep_draw ? (uint8_t *)carve(aw, ((size_t)B * NH * TT + 3) / 4) : NULL;
        la->res1_keep = keep_draw ? (uint8_t *)carve(aw, (BT * C + 3) / 4) : NULL;
        la->res2_keep = keep_draw ? (uint8_t *)carve(aw, (BT * C + 3) / 4) : NULL;
        la->ctx = carve(aw, BT * C);
        la->res1 = carve(aw, BT * C);
        la->ln1_mean = carve(aw, BT);
        la->ln1_rstd = carve(aw, BT);
        la->a1 = carve(aw, BT * C);
        la->fpre = carve(aw, BT * F);
        la->fact = fact16_only ? NULL : carve(aw, BT * F);
        la->res2 = carve(aw, BT * C);
        la->ln2_mean = carve(aw, BT);
        la->ln2_rstd = carve(aw, BT);
        la->out = carve(aw, BT * C);
        if (bf16) { /* carve counts floats: two bf16 per float */
            la->x16 = (uint16_t *)carve(aw, (BT * C + 1) / 2);
            la->ctx16 = (uint16_t *)carve(aw, (BT * C + 1) / 2);
            la->a1_16 = (uint16_t *)carve(aw, (BT * C + 1) / 2);
            la->fact16 = (uint16_t *)carve(aw, (BT * F + 1) / 2);
        }
    }
    a->proj = carve(aw, BT * C);
    a->att_scratch = carve(aw, 2 * (size_t)B * NH * TT);
    a->x_cls = carve(aw, (size_t)B * C);
    a->cls = carve(aw, (size_t)B * C);
    a->pooled = carve(aw, (size_t)B * C);
    a->pooled_drop = carve(aw, (size_t)B * C);
    a->logits = carve(aw, (size_t)B * K);
    a->probs = carve(aw, (size_t)B * K);
    a->losses = carve(aw, (size_t)B);
    if (bf16) a->x_cls16 = (uint16_t *)carve(aw, ((size_t)B * C + 1) / 2);
    if (infer) return;
    a->g_x = carve(aw, BT * C);
    a->g_y = carve(aw, BT * C);
    a->g_proj = carve(aw, BT * C);
    a->g_ff = carve(aw, BT * F);
    a->g_qkv = carve(aw, BT * 3 * C);
    a->g_ctx = carve(aw, BT * C);
    a->g_cls = carve(aw, (size_t)B * C);
    a->g_pooled = carve(aw, (size_t)B * C);
    a->g_logits = carve(aw, (size_t)B * K);
    /* the widest Linear output gradient: the FFN's (F) or queries | keys | values (3C) */
    if (bf16) a->bf16_scratch = (uint16_t *)carve(aw, (BT * (3 * C > F ? 3 * C : F) + 1) / 2);
}

/* Plans the arena: the main plan for B (training, or inference when infer) and, when B_eval > B,
 * an inference plan for B_eval over the same memory; the arena is the larger of the two. */
static int prepare(bert_model *m, int B, int B_eval, int T, int infer, bertc_error *err) {
    const bert_config *c = &m->cfg;
    if (B <= 0 || T <= 0)
        return bertc_errorf(err, BERTC_EINVAL, "model: batch %d x %d tokens is not a valid size", B, T);
    if (T > c->max_position_embeddings)
        return bertc_errorf(err, BERTC_EINVAL, "model: %d tokens exceed max_position_embeddings (%d)", T,
                            c->max_position_embeddings);
    if (infer || B_eval <= B) B_eval = 0;
    if (m->act_arena && B <= m->maxB && T <= m->maxT && (infer || !m->infer_plan) &&
        (B_eval <= m->maxB || B_eval <= m->maxB_eval))
        return 0;
    m->be->free(m->act_arena);
    m->act_arena = NULL;
    free(m->a.layers);
    free(m->a_eval.layers);
    free(m->logits_host);
    free(m->losses_host);
    free(m->ones_host);
    free(m->dlogits_host);
    m->dlogits_host = NULL;
    memset(&m->a, 0, sizeof m->a);
    memset(&m->a_eval, 0, sizeof m->a_eval);
    m->maxB = m->maxT = m->maxB_eval = 0;
    m->B = 0;
    m->infer_plan = infer;
    int Bhost = B > B_eval ? B : B_eval;
    m->a.layers = calloc((size_t)c->num_hidden_layers, sizeof *m->a.layers);
    m->a_eval.layers = B_eval ? calloc((size_t)c->num_hidden_layers, sizeof *m->a_eval.layers) : NULL;
    m->logits_host = calloc((size_t)Bhost * c->num_labels, sizeof(float));
    m->losses_host = calloc((size_t)Bhost, sizeof(float));
    m->ones_host = malloc((size_t)Bhost * T * sizeof(int32_t));
    m->dlogits_host = calloc((size_t)Bhost * c->num_labels, sizeof(float));
    if ((c->num_hidden_layers && (!m->a.layers || (B_eval && !m->a_eval.layers))) || !m->logits_host ||
        !m->losses_host || !m->ones_host || !m->dlogits_host)
        return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory");
    for (size_t i = 0; i < (size_t)Bhost * T; i++) m->ones_host[i] = 1;
    act_walk count = {0}, count_eval = {0};
    int fact16_only = m->bf16 && m->be->bias_act_forward_bf16;
    int keep_draw = !infer && m->be->keeps_dropout_draw;
    plan_acts(c, B, T, m->bf16, fact16_only, infer, keep_draw, &m->a, &count);
    if (B_eval) plan_acts(c, B_eval, T, m->bf16, fact16_only, 1, 0, &m->a_eval, &count_eval);
    size_t floats = count.offset > count_eval.offset ? count.offset : count_eval.offset;
    m->act_arena = m->be->alloc(floats * sizeof(float));
    m->act_bytes = m->act_arena ? floats * sizeof(float) : 0;
    if (!m->act_arena)
        return bertc_errorf(err, BERTC_ENOMEM, "model: out of memory for activations of %d x %d (%zu MB)", Bhost,
                            T, floats * sizeof(float) >> 20);
    act_walk aw = {.base = m->act_arena}, aw_eval = {.base = m->act_arena};
    plan_acts(c, B, T, m->bf16, fact16_only, infer, keep_draw, &m->a, &aw);
    if (B_eval) plan_acts(c, B_eval, T, m->bf16, fact16_only, 1, 0, &m->a_eval, &aw_eval);
    m->maxB = B;
    m->maxT = T;
    m->maxB_eval = B_eval;
    return 0;
}

int bert_prepare(bert_model *m, int B, int T, bertc_error *err) { return prepare(m, B, 0, T, 0, err); }
int bert_prepare_inference(bert_model *m, int B, int T, bertc_error *err) { return prepare(m, B, 0, T, 1, err); }
int bert_prepare_train_eval(bert_model *m, int B_train, int B_eval, int T, bertc_error *err) {
    return prepare(m, B_train, B_eval, T, 0, err);
}
size_t bert_activation_bytes(const bert_model *m) { return m->act_arena ? m->act_bytes : 0; }

/* ------------------------------------------------------------------------------------------
 * forward */

static float classifier_dropout_p(const bert_config *c) {
    return c->classifier_dropout >= 0 ? c->classifier_dropout : c->hidden_dropout_prob;
}

static ops_act ops_activation(bert_act a) {
    return a == BERT_ACT_GELU_NEW ? OPS_ACT_GELU_NEW : a == BERT_ACT_RELU ? OPS_ACT_RELU : OPS_ACT_GELU;
}

float bert_forward(bert_model *m, const int32_t *ids, const int32_t *mask, const int32_t *token_types,
                   const int32_t *labels, int B, int T, int train, uint64_t dropout_seed) {
    const bert_config *c = &m->cfg;
    const bertc_backend *be = m->be;
    m->B = 0; /* invalid until this forward completes */
    m->hidden_fwd = m->hidden_only;
    /* an evaluation batch larger than the training plan's runs on the evaluation plan */
    int eval_plan = B > m->maxB && !train && B <= m->maxB_eval;
    if (!m->act_arena || B <= 0 || T <= 0 || (B > m->maxB && !eval_plan) || T > m->maxT || (train && m->infer_plan))
        return NAN;
    int C = c->hidden_size, F = c->intermediate_size, NH = c->num_attention_heads, K = c->num_labels;
    size_t BT = (size_t)B * T;
    /* Inputs from outside are checked here, on the host, so no kernel reads out of bounds. */
    for (size_t i = 0; i < BT; i++) {
        if (ids[i] < 0 || ids[i] >= c->vocab_size) return NAN;
        if (token_types && (token_types[i] < 0 || token_types[i] >= c->type_vocab_size)) return NAN;
        if (mask && mask[i] != 0 && mask[i] != 1) return NAN; /* (1 - mask) * min would overflow */
    }
    bert_acts *a = eval_plan ? &m->a_eval : &m->a;
    m->fwd_eval_plan = eval_plan;
    if (m->bf16 && m->params16_stale) refresh_params16(m);
    be->to_device(a->ids, ids, BT * sizeof(int32_t));
    if (mask) be->to_device(a->mask, mask, BT * sizeof(int32_t));
    else be->to_device(a->mask, m->ones_host, BT * sizeof(int32_t)); /* every token attends to all */
    if (token_types) be->to_device(a->types, token_types, BT * sizeof(int32_t));
    else be->zero(a->types, BT * sizeof(int32_t));

    float p_hidden = train ? c->hidden_dropout_prob : 0.0f;
    float p_att = train ? c->attention_probs_dropout_prob : 0.0f;
    float p_cls = train ? classifier_dropout_p(c) : 0.0f;
    uint64_t seed = dropout_seed;

    /* embeddings */
    be->embeddings_forward(a->emb_sum, a->ids, a->types, m->w.wte, m->w.wpe, m->w.wtt, B, T, C);
    be->layernorm_forward(a->emb_out, a->emb_mean, a->emb_rstd, a->emb_sum, m->w.emb_lnw, m->w.emb_lnb,
                          (int)BT, C, c->layer_norm_eps);
    be->dropout_forward(a->emb_out, BT * C, p_hidden, seed, STREAM_EMB, a->emb_keep);

    /* encoder */
    const float *x = a->emb_out;
    int L = c->num_hidden_layers;
    /* a bf16 model whose backend rounds the LayerNorms' outputs in their own pass: each layer's
     * input (from the layer below) and the FFN's input come with their bf16 copy */
    int x16_ready = 0; /* this layer's x16 holds x rounded */
    for (int l = 0; l < L; l++) {
        const bert_layer_weights *w = &m->w.layers[l];
        bert_layer_acts *la = &a->layers[l];
        /* queries (and everything after attention) for Tq positions: all, or [CLS] in the last layer */
        int Tq = l == L - 1 && !m->hidden_only ? 1 : T;
        size_t NQ = (size_t)B * Tq;
        const float *xq = x;
        if (Tq != T) {
            be->first_token_forward(a->x_cls, x, B, T, C);
            xq = a->x_cls;
        }
        qkv_views qv = qkv_layout(BT, Tq, T, C);
        if (Tq == T) { /* queries, keys and values: one (3C,C) Linear */
            linear_forward(m, la->qkv, x, la->x16, x16_ready, w->qw, w->qb, (int)BT, C, 3 * C);
        } else { /* [CLS] queries, then keys and values: one (2C,C) Linear */
            linear_forward(m, la->qkv + qv.q, xq, a->x_cls16, 0, w->qw, w->qb, (int)NQ, C, C);
            linear_forward(m, la->qkv, x, la->x16, x16_ready, w->kw, w->kb, (int)BT, C, 2 * C);
        }
        (m->bf16 && be->attention_forward_bf16 ? be->attention_forward_bf16 : be->attention_forward)(
            la->ctx, la->att, la->qkv + qv.q, la->qkv + qv.k, la->qkv + qv.v, a->mask, a->att_scratch, B, Tq, T, C,
            NH, qv.ldq, qv.ldkv, p_att, seed, STREAM_ATT(l), la->att_keep);
        /* Each Linear below leaves its bias to the fused op after it, which adds it in the pass
         * it makes anyway (dropout + residual + LayerNorm, or the activation). */
        linear_forward(m, a->proj, la->ctx, la->ctx16, 0, w->ow, NULL, (int)NQ, C, C);
        int a1_16_ready = residual_ln_forward(m, la->a1, m->bf16 ? la->a1_16 : NULL, la->res1, la->ln1_mean,
                                              la->ln1_rstd, a->proj, w->ob, xq, w->ln1w, w->ln1b, (int)NQ, C,
                                              c->layer_norm_eps, p_hidden, seed, STREAM_ATT_OUT(l), la->res1_keep);
        linear_forward(m, la->fpre, la->a1, la->a1_16, a1_16_ready, w->fw1, NULL, (int)NQ, C, F);
        if (la->fact) {
            be->bias_act_forward(ops_activation(c->hidden_act), la->fact, la->fpre, w->fb1, (int)NQ, F);
            linear_forward(m, a->proj, la->fact, la->fact16, 0, w->fw2, NULL, (int)NQ, F, C);
        } else { /* bf16: the activation written as the product's bf16 input, in the same pass */
            be->bias_act_forward_bf16(ops_activation(c->hidden_act), la->fact16, la->fpre, w->fb1, (int)NQ, F);
            linear_forward(m, a->proj, NULL, la->fact16, 1, w->fw2, NULL, (int)NQ, F, C);
        }
        /* the next layer's input, rounded into its x16 where the backend does it in this pass */
        x16_ready = residual_ln_forward(m, la->out, m->bf16 && l + 1 < L ? a->layers[l + 1].x16 : NULL, la->res2,
                                        la->ln2_mean, la->ln2_rstd, a->proj, w->fb2, la->a1, w->ln2w, w->ln2b, (int)NQ,
                                        C, c->layer_norm_eps, p_hidden, seed, STREAM_FFN_OUT(l), la->res2_keep);
        x = la->out;
    }

    if (m->hidden_only) { /* bert_forward_hidden: the encoder output x is the result */
        m->B = B;
        m->T = T;
        m->train = train;
        m->seed = seed;
        m->has_labels = 0;
        return 0.0f;
    }

    /* pooler and classifier: the last layer's output is (B,C) already; with no layers, take [CLS] */
    a->pool_in = x;
    if (L == 0) {
        be->first_token_forward(a->cls, x, B, T, C);
        a->pool_in = a->cls;
    }
    be->matmul_forward(a->pooled, a->pool_in, m->w.pool_w, m->w.pool_b, B, C, C);
    be->tanh_forward(a->pooled, a->pooled, (size_t)B * C);
    be->copy(a->pooled_drop, a->pooled, (size_t)B * C * sizeof(float));
    /* (B,C): too few elements for a kept draw to matter */
    be->dropout_forward(a->pooled_drop, (size_t)B * C, p_cls, seed, STREAM_CLS(c->num_hidden_layers), NULL);
    be->matmul_forward(a->logits, a->pooled_drop, m->w.cls_w, m->w.cls_b, B, C, K);
    be->to_host(m->logits_host, a->logits, (size_t)B * K * sizeof(float));

    m->B = B;
    m->T = T;
    m->train = train;
    m->seed = seed;
    m->has_labels = labels != NULL;
    if (!labels) return 0.0f;
    /* loss: mean over the labelled rows (a label outside [0, K) is ignored, as torch's -100) */
    be->to_device(a->labels, labels, (size_t)B * sizeof(int32_t));
    be->crossentropy_forward(a->losses, a->probs, a->logits, a->labels, B, K, m->label_smoothing);
    be->to_host(m->losses_host, a->losses, (size_t)B * sizeof(float));
    double sum = 0.0;
    int n_valid = 0;
    for (int b = 0; b < B; b++) {
        if (labels[b] >= 0 && labels[b] < K) {
            sum += m->losses_host[b];
            n_valid++;
        }
    }
    m->n_valid = n_valid;
    return n_valid ? (float)(sum / n_valid) : 0.0f;
}

/* ------------------------------------------------------------------------------------------
 * backward */

void bert_backward(bert_model *m, float loss_scale) { bert_backward_with(m, loss_scale, NULL); }

void bert_backward_with(bert_model *m, float loss_scale, const float *dlogits_add) {
    m->grads_clean = 0;
    const bert_config *c = &m->cfg;
    const bertc_backend *be = m->be;
    if (m->B <= 0 || m->infer_plan || m->fwd_eval_plan || (!m->hidden_grad && (!m->has_labels || m->n_valid == 0))) return;
    int B = m->B, T = m->T;
    int C = c->hidden_size, F = c->intermediate_size, NH = c->num_attention_heads, K = c->num_labels;
    int L = c->num_hidden_layers;
    size_t BT = (size_t)B * T;
    bert_acts *a = &m->a;
    float p_hidden = m->train ? c->hidden_dropout_prob : 0.0f;
    float p_att = m->train ? c->attention_probs_dropout_prob : 0.0f;
    float p_cls = m->train ? classifier_dropout_p(c) : 0.0f;
    uint64_t seed = m->seed;
    ops_act act = ops_activation(c->hidden_act);
    if (m->hidden_grad) { /* bert_backward_hidden: the head was the caller's */
        be->copy(a->g_x, m->hidden_grad, BT * C * sizeof(float));
        goto encoder;
    }

    /* loss = (1/n) sum_b loss_b, scaled for gradient accumulation */
    be->crossentropy_backward(a->g_logits, a->probs, a->labels, B, K, m->label_smoothing,
                              loss_scale / (float)m->n_valid);
    if (dlogits_add) { /* a few floats: through the host, so every backend takes it as is */
        be->to_host(m->dlogits_host, a->g_logits, (size_t)B * K * sizeof(float));
        for (size_t i = 0; i < (size_t)B * K; i++) m->dlogits_host[i] += loss_scale * dlogits_add[i];
        be->to_device(a->g_logits, m->dlogits_host, (size_t)B * K * sizeof(float));
    }

    /* classifier, classifier dropout, tanh; then the pooler dense below */
    be->matmul_backward(a->g_pooled, m->g.cls_w, m->g.cls_b, a->g_logits, a->pooled_drop, m->w.cls_w, B, C,
                        K, 0);
    be->dropout_backward(a->g_pooled, a->g_pooled, (size_t)B * C, p_cls, seed, STREAM_CLS(L), NULL);
    be->tanh_backward(a->g_pooled, a->g_pooled, a->pooled, (size_t)B * C);
    /* g_x: gradient w.r.t. the current layer's output; g_y: the other residual-stream buffer */
    float *g_x = a->g_x, *g_y = a->g_y;
    if (L > 0) { /* the last layer's output is (B,C): its gradient is the pooler's input gradient */
        be->matmul_backward(g_x, m->g.pool_w, m->g.pool_b, a->g_pooled, a->pool_in, m->w.pool_w, B, C, C, 0);
    } else {
        be->matmul_backward(a->g_cls, m->g.pool_w, m->g.pool_b, a->g_pooled, a->pool_in, m->w.pool_w, B, C, C, 0);
        be->first_token_backward(g_x, a->g_cls, B, T, C);
    }

encoder:
    g_x = a->g_x; /* (the head only wrote into these; the jump above skipped their initialisation) */
    g_y = a->g_y;
    /* Frozen units (bert_set_no_grad_below): layer l is unit l + 1, the embeddings unit 0. */
    const int lowest = m->no_grad_below > 1 ? m->no_grad_below - 1 : 0;
    uint16_t *dout16 = m->bf16 ? m->a.bf16_scratch : NULL; /* the Linears' rounded dout, filled by the op before */
    for (int l = L - 1; l >= lowest; l--) {
        const bert_layer_weights *w = &m->w.layers[l];
        bert_layer_weights *g = &m->g.layers[l];
        bert_layer_acts *la = &a->layers[l];
        const float *x = l > 0 ? a->layers[l - 1].out : a->emb_out;
        int Tq = l == L - 1 && !m->hidden_fwd ? 1 : T; /* as in forward */
        size_t NQ = (size_t)B * Tq;
        const float *xq = Tq == T ? x : a->x_cls;

        /* out = LN2(a1 + dropout(dense2(act(dense1(a1))))); the fused ops also give the dense
         * layers' bias gradients, so matmul_backward gets dbias NULL */
        float *g_res2 = g_x; /* in place: g_x is not needed after this */
        float *g_o2 = p_hidden > 0.0f ? a->g_proj : NULL; /* NULL: no dropout, g_res2 is dense2's gradient */
        int ready = residual_ln_backward(m, g_res2, g_o2, dout16, g->fb2, g->ln2w, g->ln2b, g_x, la->res2, w->ln2w,
                                         la->ln2_mean, la->ln2_rstd, (int)NQ, C, p_hidden, seed, STREAM_FFN_OUT(l),
                                         la->res2_keep);
        linear_backward(m, a->g_ff, g->fw2, NULL, g_o2 ? g_o2 : g_res2, ready, la->fact, la->fact16, w->fw2, (int)NQ, F,
                        C, 0);
        ready = act_bias_backward(m, act, a->g_ff, dout16, g->fb1, a->g_ff, la->fpre, (int)NQ, F);
        float *g_a1 = g_res2; /* the residual branch's gradient; dense1's is added to it */
        linear_backward(m, g_a1, g->fw1, NULL, a->g_ff, ready, la->a1, la->a1_16, w->fw1, (int)NQ, C, F, 1);

        /* a1 = LN1(xq + dropout(dense_o(ctx))) */
        float *g_res1 = g_y;
        float *g_o1 = p_hidden > 0.0f ? a->g_proj : NULL;
        ready = residual_ln_backward(m, g_res1, g_o1, dout16, g->ob, g->ln1w, g->ln1b, g_a1, la->res1, w->ln1w,
                                     la->ln1_mean, la->ln1_rstd, (int)NQ, C, p_hidden, seed, STREAM_ATT_OUT(l),
                                     la->res1_keep);
        linear_backward(m, a->g_ctx, g->ow, NULL, g_o1 ? g_o1 : g_res1, ready, la->ctx, la->ctx16, w->ow, (int)NQ, C, C,
                        0);
        qkv_views qv = qkv_layout(BT, Tq, T, C);
        float *g_qkv = a->g_qkv;
        (m->bf16 && be->attention_backward_bf16 ? be->attention_backward_bf16 : be->attention_backward)(
            g_qkv + qv.q, g_qkv + qv.k, g_qkv + qv.v, a->g_ctx, la->qkv + qv.q, la->qkv + qv.k, la->qkv + qv.v,
            la->att, a->att_scratch, B, Tq, T, C, NH, qv.ldq, qv.ldkv, p_att, seed, STREAM_ATT(l),
            la->att_keep);
        /* xq feeds the residual (g_res1 already) and the queries; x feeds the keys and values */
        float *g_in = g_res1;
        if (Tq == T) {
            linear_backward(m, g_in, g->qw, g->qb, g_qkv, 0, x, la->x16, w->qw, (int)BT, C, 3 * C, 1);
        } else {
            linear_backward(m, g_res1, g->qw, g->qb, g_qkv + qv.q, 0, xq, a->x_cls16, w->qw, (int)NQ, C, C, 1);
            /* spread the [CLS] gradient over (B,T,C); g_x is free again */
            be->first_token_backward(g_x, g_res1, B, T, C);
            g_in = g_x;
            linear_backward(m, g_in, g->kw, g->kb, g_qkv, 0, x, la->x16, w->kw, (int)BT, C, 2 * C, 1);
        }

        /* the gradient w.r.t. this layer's input is the next (lower) layer's output gradient */
        g_y = g_in == g_x ? g_y : g_x;
        g_x = g_in;
    }

    if (m->no_grad_below > 0) return;
    /* embeddings: dropout, LayerNorm, then scatter into the three tables */
    be->dropout_backward(g_x, g_x, BT * C, p_hidden, seed, STREAM_EMB, a->emb_keep);
    be->layernorm_backward(g_x, m->g.emb_lnw, m->g.emb_lnb, g_x, a->emb_sum, m->w.emb_lnw, a->emb_mean,
                           a->emb_rstd, (int)BT, C);
    be->embeddings_backward(m->g.wte, m->g.wpe, m->g.wtt, g_x, a->ids, a->types, B, T, C, c->pad_token_id);
}

/* ------------------------------------------------------------------------------------------
 * the encoder alone, for other heads (the masked-language-model head, model/mlm_head.h) */

const float *bert_forward_hidden(bert_model *m, const int32_t *ids, const int32_t *mask, const int32_t *token_types,
                                 int B, int T, int train, uint64_t dropout_seed) {
    m->hidden_only = 1;
    float r = bert_forward(m, ids, mask, token_types, NULL, B, T, train, dropout_seed);
    m->hidden_only = 0;
    if (isnan(r) || m->B <= 0) return NULL;
    int L = m->cfg.num_hidden_layers;
    const bert_acts *a = m->fwd_eval_plan ? &m->a_eval : &m->a;
    return L > 0 ? a->layers[L - 1].out : a->emb_out;
}

void bert_backward_hidden(bert_model *m, const float *dhidden) {
    m->grads_clean = 0;
    if (m->B <= 0 || !m->hidden_fwd) return; /* the last forward was not bert_forward_hidden */
    m->hidden_grad = dhidden;
    bert_backward(m, 1.0f);
    m->hidden_grad = NULL;
}
