/* The synthetic task of the end-to-end tests: each text is filler words with one "good" or "bad"
 * among them, and the label ("positive"/"negative") says which; plus a tiny random BERT folder
 * whose vocabulary holds exactly those words. A model that learns anything learns this. */
#ifndef BERTC_TESTS_SYNTHETIC_H
#define BERTC_TESTS_SYNTHETIC_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "model/bert.h"
#include "model/config.h"
#include "util/error.h"
#include "util/rng.h"

typedef struct synthetic_task {
    const char *const *filler; /* the filler words */
    size_t n_filler;
    int min_words, extra_words; /* a text has min_words + [0, extra_words) words */
} synthetic_task;

static inline int synthetic_vocab_size(const synthetic_task *t) { return 7 + (int)t->n_filler; }

/* Writes n JSON Lines records to path, drawn from seed. Returns 0 or -1. */
static inline int synthetic_write_jsonl(const synthetic_task *t, const char *path, int n, uint64_t seed) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        int label = (int)rng_below(&r, 2);
        int words = t->min_words + (int)rng_below(&r, (uint64_t)t->extra_words), at = (int)rng_below(&r, (uint64_t)words);
        fputs("{\"text\":\"", f);
        for (int w = 0; w < words; w++) {
            if (w) fputc(' ', f);
            fputs(w == at ? (label ? "good" : "bad") : t->filler[rng_below(&r, t->n_filler)], f);
        }
        fprintf(f, "\",\"label\":\"%s\"}\n", label ? "positive" : "negative");
    }
    return fclose(f) ? -1 : 0;
}

/* Makes the folder dir (config.json, model.safetensors, vocab.txt) with a random model of the given
 * sizes and dropout; cfg is filled with its config (the caller frees it). Returns 0 or an error. */
static inline int synthetic_make_model(const synthetic_task *t, const char *dir, bert_config *cfg, int hidden, int layers,
                                       int heads, int intermediate, int max_positions, float dropout, uint64_t seed,
                                       bertc_error *err) {
    char p[600];
    if (mkdir(dir, 0755)) return bertc_errorf(err, BERTC_EIO, "%s: cannot create", dir);
    snprintf(p, sizeof p, "%s/vocab.txt", dir);
    FILE *f = fopen(p, "w");
    if (!f) return bertc_errorf(err, BERTC_EIO, "%s: cannot write", p);
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n", f);
    for (size_t i = 0; i < t->n_filler; i++) fprintf(f, "%s\n", t->filler[i]);
    fclose(f);
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab_size = synthetic_vocab_size(t);
    cfg->hidden_size = hidden;
    cfg->num_hidden_layers = layers;
    cfg->num_attention_heads = heads;
    cfg->intermediate_size = intermediate;
    cfg->max_position_embeddings = max_positions;
    cfg->type_vocab_size = 2;
    cfg->hidden_act = BERT_ACT_GELU;
    cfg->hidden_dropout_prob = dropout;
    cfg->attention_probs_dropout_prob = dropout;
    cfg->classifier_dropout = -1;
    cfg->layer_norm_eps = 1e-12f;
    cfg->initializer_range = 0.02f;
    char *labels[2] = {"LABEL_0", "LABEL_1"};
    int rc = bert_config_set_labels(cfg, labels, 2, err);
    bert_model *m = NULL;
    if (!rc) rc = bert_init_random(&m, cfg, seed, err);
    if (!rc) rc = bert_save(m, dir, err);
    bert_free(m);
    return rc;
}

#endif
