#include "train/regularise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "util/error.h"

int param_frozen(const bert_param_info *p, const bertc_train_options *o) {
    if (p->layer == 0) return o->freeze_embeddings != 0;
    return o->freeze_layers > 0 && p->layer <= o->freeze_layers;
}

int param_groups(bert_model *m, const bertc_train_options *o, adamw_group **out, size_t *n_out, bertc_error *err) {
    const bert_param_info *info;
    size_t n = bert_param_table(m, &info);
    const int L = bert_get_config(m)->num_hidden_layers;
    const double decay = o->layer_lr_decay > 0 ? o->layer_lr_decay : 1.0;
    adamw_group *g = malloc((n ? n : 1) * sizeof *g);
    if (!g) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (param_frozen(&info[i], o)) continue;
        int depth = L + 1 - info[i].layer; /* 0 for the head, L + 1 for the embeddings */
        g[k].offset = info[i].offset;
        g[k].numel = info[i].numel;
        g[k].weight_decay = info[i].no_decay ? 0.0f : o->weight_decay;
        /* Exactly 1 without decay, so the default run's arithmetic is unchanged. */
        g[k].lr_scale = decay == 1.0 ? 1.0f : (float)pow(decay, depth);
        k++;
    }
    *out = g;
    *n_out = k;
    return 0;
}

void zero_frozen_grads(bert_model *m, const bertc_train_options *o) {
    if (!o->freeze_embeddings && o->freeze_layers <= 0) return;
    const bert_param_info *info;
    size_t n = bert_param_table(m, &info);
    float *grads = bert_grads(m); /* the backend's memory (a GPU's, maybe): zeroed by its op */
    const bertc_backend *be = bert_backend(m);
    for (size_t i = 0; i < n; i++)
        if (param_frozen(&info[i], o)) be->zero(grads + info[i].offset, info[i].numel * sizeof *grads);
}

/* log softmax of one row, in double: out (K). */
static void log_softmax(const float *z, int K, double *out) {
    double mx = z[0];
    for (int k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
    double s = 0;
    for (int k = 0; k < K; k++) s += exp((double)z[k] - mx);
    double lse = mx + log(s);
    for (int k = 0; k < K; k++) out[k] = (double)z[k] - lse;
}

double rdrop_kl(const float *z1, const float *z2, int B, int K, float *dz1, float *dz2) {
    double total = 0;
    double lp1[64], lp2[64], *heap = NULL;
    double *a = lp1, *b = lp2;
    if (K > 64) { /* rare: many labels */
        heap = malloc(2 * (size_t)K * sizeof *heap);
        if (!heap) return NAN;
        a = heap;
        b = heap + K;
    }
    for (int i = 0; i < B; i++) {
        const float *x1 = z1 + (size_t)i * K, *x2 = z2 + (size_t)i * K;
        log_softmax(x1, K, a);
        log_softmax(x2, K, b);
        double s = 0, e1 = 0, e2 = 0; /* e1 = E_p1[d], e2 = E_p2[d], d = log p1 - log p2 */
        for (int k = 0; k < K; k++) {
            double p1 = exp(a[k]), p2 = exp(b[k]), d = a[k] - b[k];
            s += (p1 - p2) * d;
            e1 += p1 * d;
            e2 += p2 * d;
        }
        total += 0.5 * s;
        for (int k = 0; k < K; k++) {
            double p1 = exp(a[k]), p2 = exp(b[k]), d = a[k] - b[k];
            /* KL(p1||p2) gives p1 (d - E_p1 d) for z1; KL(p2||p1) gives p1 - p2. For z2, d -> -d. */
            dz1[(size_t)i * K + k] = (float)(0.5 * (p1 * (d - e1) + p1 - p2) / B);
            dz2[(size_t)i * K + k] = (float)(0.5 * (p2 * (-d + e2) + p2 - p1) / B);
        }
    }
    free(heap);
    return B > 0 ? total / B : 0.0;
}
