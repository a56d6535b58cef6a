/* Continued masked-language-model pretraining.
 *
 * - The MLM head (model/mlm_head.h) through the encoder against transformers' BertForMaskedLM:
 *   tests/fixtures/bert/mlm_tiny/ and mlm_tiny_ref.safetensors (reference/make_mlm_fixture.py)
 *   hold a random 2-layer model, a padded batch with masked positions, the float64 loss and every
 *   parameter's gradient. Tolerances as tests/test_bert.c: loss |a - b| <= 1e-5; a gradient passes
 *   when max|a - b| <= 1e-4 * max(max|b|, 1e-2).
 * - Masking (train/mlm_mask.h): proportions on a large synthetic batch, specials and padding never
 *   selected, whole words selected together, reproducible from the seed, and draw for draw the
 *   masks a Python re-implementation of the documented rule computes (tests/fixtures/mlm/,
 *   reference/make_mlm_mask_fixture.py).
 * - Unlabelled data: a folder of text files, a .txt file of lines, a class tree with labels dropped.
 * - End to end: bertc_pretrain on a tiny model and text set lowers the loss, and its folder opens
 *   for bertc train (the head ignored there) and for the MLM head (read back as written); two runs
 *   with the same seed write the same bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bertc.h"
#include "data/dataset.h"
#include "model/bert.h"
#include "model/mlm_head.h"
#include "model/safetensors.h"
#include "tokenizer/wordpiece.h"
#include "train/mlm_mask.h"
#include "util/rng.h"

#include "helpers.h"
#include "synthetic.h"

#define MLM_TINY "tests/fixtures/bert/mlm_tiny"
#define MLM_REF "tests/fixtures/bert/mlm_tiny_ref.safetensors"
#define CLS_TINY "tests/fixtures/bert/tiny"
#define CLS_REF "tests/fixtures/bert/tiny_ref.safetensors"
#define GRAD_TOL 1e-4
#define GRAD_FLOOR 1e-2

static char tmp[256];

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make(tmp, sizeof tmp, "mlm");
}

static int teardown(void **state) {
    (void)state;
    return test_tmpdir_remove(tmp);
}

static float *ref_floats(const safetensors_file *f, const char *name, size_t *n) {
    const st_tensor *t = safetensors_find(f, name);
    if (!t) fail_msg("reference tensor %s missing", name);
    float *out = malloc(t->numel * sizeof(float));
    assert_non_null(out);
    bertc_error err;
    assert_int_equal(safetensors_to_f32(t, out, t->numel, &err), 0);
    if (n) *n = t->numel;
    return out;
}

static int32_t *ref_ints(const safetensors_file *f, const char *name, int *B, int *T) {
    const st_tensor *t = safetensors_find(f, name);
    if (!t || t->dtype != ST_I32) fail_msg("reference tensor %s missing or not I32", name);
    int32_t *out = malloc(t->nbytes);
    assert_non_null(out);
    memcpy(out, t->data, t->nbytes);
    if (B) *B = (int)t->shape[0];
    if (T) *T = t->ndim > 1 ? (int)t->shape[1] : 1;
    return out;
}

/* Compares every gradient of tab that the reference has; returns how many were compared. */
static int check_grads(const safetensors_file *ref, const bert_param_info *tab, size_t nt, const float *g,
                       double *worst) {
    int checked = 0;
    for (size_t i = 0; i < nt; i++) {
        char name[160];
        snprintf(name, sizeof name, "grad.%s", tab[i].name);
        if (!safetensors_find(ref, name)) continue;
        size_t n;
        float *want = ref_floats(ref, name, &n);
        assert_int_equal(n, tab[i].numel);
        double d = 0, mref = 0;
        for (size_t j = 0; j < n; j++) {
            double e = fabs((double)g[tab[i].offset + j] - want[j]);
            if (e > d || isnan(e)) d = isnan(e) ? INFINITY : e;
            if (fabs(want[j]) > mref) mref = fabs(want[j]);
        }
        double rel = d / fmax(mref, GRAD_FLOOR);
        if (rel > *worst) *worst = rel;
        if (rel > GRAD_TOL)
            fail_msg("gradient of %s: max |diff| %.3g, max |ref| %.3g, relative %.3g > %g", tab[i].name, d, mref, rel,
                     GRAD_TOL);
        free(want);
        checked++;
    }
    return checked;
}

/* ------------------------------------------------------------------------------ the head */

static void test_head_against_transformers(void **state) {
    (void)state;
    safetensors_file ref;
    bertc_error err = {0};
    if (safetensors_open(&ref, MLM_REF, &err)) fail_msg("%s", err.msg);
    int B, T;
    int32_t *ids = ref_ints(&ref, "input.ids", &B, &T), *mask = ref_ints(&ref, "input.mask", NULL, NULL);
    int32_t *types = ref_ints(&ref, "input.types", NULL, NULL), *lab = ref_ints(&ref, "input.labels", NULL, NULL);
    int32_t pos[64], tgt[64];
    int N = 0;
    for (int i = 0; i < B * T; i++)
        if (lab[i] >= 0) pos[N] = i, tgt[N++] = lab[i];
    assert_true(N > 0 && N < 64);

    bert_model *m = NULL;
    if (bert_load(&m, MLM_TINY, NULL, &err)) fail_msg("bert_load: %s", err.msg);
    if (bert_prepare(m, B, T, &err)) fail_msg("%s", err.msg);
    mlm_head *h = NULL;
    if (mlm_head_create(&h, m, MLM_TINY "/model.safetensors", 1, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(mlm_head_loaded(h), 1);

    /* twice: the second pass shows nothing stale survives between batches */
    for (int pass = 0; pass < 2; pass++) {
        bert_zero_grad(m);
        mlm_head_zero_grad(h);
        const float *hidden = bert_forward_hidden(m, ids, mask, types, B, T, 0, 0);
        assert_non_null(hidden);
        float loss = mlm_head_forward(h, hidden, B * T, pos, tgt, N);
        float *want = ref_floats(&ref, "loss", NULL);
        printf("  mlm loss %.7f vs %.7f (%d masked positions)\n", loss, want[0], N);
        assert_true(fabs(loss - want[0]) <= 1e-5);
        free(want);
        bert_backward_hidden(m, mlm_head_backward(h, 1.0f));

        const bert_param_info *tab;
        size_t nt = bert_param_table(m, &tab);
        double worst = 0;
        int checked = check_grads(&ref, tab, nt, bert_grads(m), &worst);
        /* every encoder tensor has a reference (BertForMaskedLM has no pooler or classifier) */
        int encoder_tensors = 0;
        for (size_t i = 0; i < nt; i++) {
            int head = !strncmp(tab[i].name, "bert.pooler.", 12) || !strncmp(tab[i].name, "classifier.", 11);
            encoder_tensors += !head;
            if (head) /* untouched */
                for (size_t j = 0; j < tab[i].numel; j++) assert_true(bert_grads(m)[tab[i].offset + j] == 0.0f);
        }
        assert_int_equal(checked, encoder_tensors);
        size_t nh = mlm_head_param_table(h, &tab);
        assert_int_equal(check_grads(&ref, tab, nh, mlm_head_grads(h), &worst), MLM_HEAD_TENSORS);
        printf("  %d encoder + %d head gradients, worst relative %.3g\n", checked, MLM_HEAD_TENSORS, worst);
    }
    /* bad input: positions out of order or out of range, labels out of range */
    const float *hidden = bert_forward_hidden(m, ids, mask, types, B, T, 0, 0);
    int32_t p2[2] = {pos[1], pos[0]}, t2[2] = {tgt[0], tgt[1]};
    assert_true(isnan(mlm_head_forward(h, hidden, B * T, p2, t2, 2)));
    p2[0] = pos[0], p2[1] = B * T;
    assert_true(isnan(mlm_head_forward(h, hidden, B * T, p2, t2, 2)));
    p2[1] = pos[1], t2[1] = 100;
    assert_true(isnan(mlm_head_forward(h, hidden, B * T, p2, t2, 2)));
    assert_null(mlm_head_backward(h, 1.0f)); /* nothing to go back through */
    assert_true(mlm_head_forward(h, hidden, B * T, pos, tgt, 0) == 0.0f);

    mlm_head_free(h);
    bert_free(m);
    free(ids);
    free(mask);
    free(types);
    free(lab);
    safetensors_close(&ref);
}

/* After an encoder-only pass, the classification forward is the usual one again. */
static void test_classifier_after_hidden(void **state) {
    (void)state;
    safetensors_file ref;
    bertc_error err = {0};
    if (safetensors_open(&ref, CLS_REF, &err)) fail_msg("%s", err.msg);
    int B, T;
    int32_t *ids = ref_ints(&ref, "input.ids", &B, &T), *mask = ref_ints(&ref, "input.mask", NULL, NULL);
    int32_t *types = ref_ints(&ref, "input.types", NULL, NULL), *lab = ref_ints(&ref, "input.labels", NULL, NULL);
    bert_model *m = NULL;
    if (bert_load(&m, CLS_TINY, NULL, &err)) fail_msg("%s", err.msg);
    if (bert_prepare(m, B, T, &err)) fail_msg("%s", err.msg);
    assert_non_null(bert_forward_hidden(m, ids, mask, types, B, T, 1, 5));
    bert_backward(m, 1.0f); /* not a classification forward: does nothing */
    bert_zero_grad(m);
    float loss = bert_forward(m, ids, mask, types, lab, B, T, 0, 0);
    float *want = ref_floats(&ref, "loss", NULL);
    assert_true(fabs(loss - want[0]) <= 1e-5);
    bert_backward(m, 1.0f);
    const bert_param_info *tab;
    size_t nt = bert_param_table(m, &tab);
    double worst = 0;
    assert_true(check_grads(&ref, tab, nt, bert_grads(m), &worst) == (int)nt);
    bert_backward_hidden(m, NULL); /* the last forward was not encoder-only: does nothing */
    free(want);
    bert_free(m);
    free(ids);
    free(mask);
    free(types);
    free(lab);
    safetensors_close(&ref);
}

/* A checkpoint without cls.predictions (MiniLM's case) gets transformers' initialisation. */
static void test_head_initialised(void **state) {
    (void)state;
    bertc_error err = {0};
    bert_model *m = NULL;
    if (bert_load(&m, CLS_TINY, NULL, &err)) fail_msg("%s", err.msg);
    mlm_head *h = NULL;
    if (mlm_head_create(&h, m, CLS_TINY "/model.safetensors", 7, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(mlm_head_loaded(h), 0);
    const bert_param_info *tab;
    assert_int_equal(mlm_head_param_table(h, &tab), MLM_HEAD_TENSORS);
    const float *p = mlm_head_params(h);
    double s2 = 0;
    for (size_t j = 0; j < tab[0].numel; j++) s2 += (double)p[j] * p[j];
    double std = sqrt(s2 / tab[0].numel);
    printf("  dense weight std %.4f (initializer_range 0.02)\n", std);
    assert_true(fabs(std - 0.02) < 0.003);
    for (int i = 1; i < MLM_HEAD_TENSORS; i++)
        for (size_t j = 0; j < tab[i].numel; j++) assert_true(p[tab[i].offset + j] == (i == 2 ? 1.0f : 0.0f));
    assert_int_equal(tab[4].shape[0], 100); /* the output bias has the vocabulary's size */
    mlm_head_free(h);
    bert_free(m);
}

/* --------------------------------------------------------------------------------- masking */

/* [PAD] [UNK] [CLS] [SEP] [MASK], then words w0..w39, then pieces ##p0..##p19 */
static wordpiece *mask_vocab(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/mask_vocab.txt", tmp);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n", f);
    for (int i = 0; i < 40; i++) fprintf(f, "w%d\n", i);
    for (int i = 0; i < 20; i++) fprintf(f, "##p%d\n", i);
    fclose(f);
    wordpiece *wp = NULL;
    bertc_error err = {0};
    if (wordpiece_load(&wp, p, 1, &err)) fail_msg("%s", err.msg);
    return wp;
}

#define MB 256
#define MT 128
#define V 65

/* Rows: [CLS] tokens [SEP] [PAD]..., lengths varying; with pieces: a third of the tokens are ##. */
static void fill_batch(int32_t *ids, int32_t *attn, int pieces, uint64_t seed) {
    rng r;
    rng_seed(&r, seed);
    for (int b = 0; b < MB; b++) {
        int len = 40 + (int)rng_below(&r, MT - 40);
        for (int t = 0; t < MT; t++) {
            int32_t id;
            if (t == 0) id = 2;
            else if (t == len - 1) id = 3;
            else if (t >= len) id = 0;
            else if (t % 17 == 5) id = 1; /* some [UNK] */
            else if (pieces && t > 1 && rng_below(&r, 3) == 0) id = 45 + (int32_t)rng_below(&r, 20);
            else id = 5 + (int32_t)rng_below(&r, 40);
            ids[b * MT + t] = id;
            attn[b * MT + t] = t < len;
        }
    }
}

static void test_mask_proportions(void **state) {
    (void)state;
    wordpiece *wp = mask_vocab();
    mlm_masker mk;
    bertc_error err = {0};
    if (mlm_masker_init(&mk, wp, V, 0.15f, 0, &err)) fail_msg("%s", err.msg);
    static int32_t ids[MB * MT], orig[MB * MT], attn[MB * MT], pos[MB * MT], lab[MB * MT];
    fill_batch(orig, attn, 0, 3);
    memcpy(ids, orig, sizeof ids);
    rng r;
    rng_seed(&r, 42);
    int n = mlm_mask_batch(&mk, &r, ids, attn, MB, MT, pos, lab);
    long maskable = 0;
    for (int i = 0; i < MB * MT; i++) maskable += attn[i] && orig[i] >= 5;
    long to_mask = 0, to_other = 0, kept = 0;
    char *sel = calloc(MB * MT, 1);
    for (int k = 0; k < n; k++) {
        int i = pos[k];
        if (k) assert_true(pos[k] > pos[k - 1]);
        sel[i] = 1;
        assert_int_equal(lab[k], orig[i]);
        assert_true(attn[i] && orig[i] >= 5); /* never padding, [CLS], [SEP], [UNK], [PAD] */
        if (ids[i] == 4) to_mask++;
        else if (ids[i] != orig[i]) to_other++;
        else kept++;
    }
    for (int i = 0; i < MB * MT; i++)
        if (!sel[i]) assert_int_equal(ids[i], orig[i]); /* unselected tokens untouched */
    double ps = (double)n / maskable, pm = (double)to_mask / n, po = (double)to_other / n, pk = (double)kept / n;
    printf("  %d of %ld selected (%.4f); [MASK] %.4f, random %.4f, unchanged %.4f\n", n, maskable, ps, pm, po, pk);
    /* n is about 3,500: the binomial standard deviations are 0.001 and, below, 0.007 and 0.005 */
    assert_true(fabs(ps - 0.15) < 0.006);
    assert_true(fabs(pm - 0.80) < 0.03);
    /* a random token equal to the original (1 in 65) counts as unchanged */
    assert_true(fabs(po - 0.1 * 64 / 65) < 0.02);
    assert_true(fabs(pk - (0.1 + 0.1 / 65)) < 0.02);

    /* the same seed gives the same masks; another seed others */
    static int32_t ids2[MB * MT], pos2[MB * MT], lab2[MB * MT];
    memcpy(ids2, orig, sizeof ids2);
    rng_seed(&r, 42);
    assert_int_equal(mlm_mask_batch(&mk, &r, ids2, attn, MB, MT, pos2, lab2), n);
    assert_memory_equal(ids, ids2, sizeof ids);
    assert_memory_equal(pos, pos2, (size_t)n * sizeof *pos);
    memcpy(ids2, orig, sizeof ids2);
    rng_seed(&r, 43);
    mlm_mask_batch(&mk, &r, ids2, attn, MB, MT, pos2, lab2);
    assert_memory_not_equal(ids, ids2, sizeof ids);
    free(sel);
    mlm_masker_free(&mk);
    wordpiece_free(wp);
}

static void test_whole_word_mask(void **state) {
    (void)state;
    wordpiece *wp = mask_vocab();
    mlm_masker mk;
    bertc_error err = {0};
    if (mlm_masker_init(&mk, wp, V, 0.15f, 1, &err)) fail_msg("%s", err.msg);
    static int32_t ids[MB * MT], orig[MB * MT], attn[MB * MT], pos[MB * MT], lab[MB * MT];
    fill_batch(orig, attn, 1, 9);
    memcpy(ids, orig, sizeof ids);
    rng r;
    rng_seed(&r, 1);
    int n = mlm_mask_batch(&mk, &r, ids, attn, MB, MT, pos, lab);
    char *sel = calloc(MB * MT, 1);
    for (int k = 0; k < n; k++) sel[pos[k]] = 1;
    long words = 0, words_sel = 0, multi = 0, tokens = 0;
    for (int b = 0; b < MB; b++)
        for (int t = 0; t < MT; t++) {
            int i = b * MT + t;
            int maskable = attn[i] && orig[i] >= 5;
            tokens += maskable;
            if (!maskable) {
                assert_false(sel[i]);
                continue;
            }
            int cont = orig[i] >= 45;
            int prev_maskable = t > 0 && attn[i - 1] && orig[i - 1] >= 5;
            if (cont && prev_maskable) { /* a piece: selected exactly when its word start is */
                assert_int_equal(sel[i], sel[i - 1]);
                multi += sel[i];
                continue;
            }
            words++;
            words_sel += sel[i];
        }
    double pw = (double)words_sel / words, pt = (double)n / tokens;
    printf("  whole words: %ld of %ld words selected (%.4f), %d tokens (%.4f), %ld of them pieces\n", words_sel, words,
           pw, n, pt, multi);
    assert_true(fabs(pw - 0.15) < 0.01);
    assert_true(fabs(pt - 0.15) < 0.015);
    assert_true(multi > 100);
    free(sel);
    mlm_masker_free(&mk);
    wordpiece_free(wp);
}

/* The masks of tests/fixtures/mlm/mask_cases.json, recomputed in Python from mlm_mask.h's
 * description alone (reference/make_mlm_mask_fixture.py): the documented draws are the code's. */
static void test_mask_documented_draws(void **state) {
    (void)state;
    cJSON *j = test_load_json("tests/fixtures/mlm/mask_cases.json");
    assert_non_null(j);
    int B = cJSON_GetObjectItem(j, "B")->valueint, T = cJSON_GetObjectItem(j, "T")->valueint;
    int32_t *ids0 = malloc((size_t)B * T * 4), *ids = malloc((size_t)B * T * 4), *attn = malloc((size_t)B * T * 4);
    int32_t *pos = malloc((size_t)B * T * 4), *lab = malloc((size_t)B * T * 4);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            ids0[b * T + t] = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "ids"), b), t)->valueint;
            attn[b * T + t] = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "attn"), b), t)->valueint;
        }
    wordpiece *wp = mask_vocab();
    int n_cases = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(j, "cases")) {
        mlm_masker mk;
        bertc_error err = {0};
        float p = (float)cJSON_GetObjectItem(c, "probability")->valuedouble;
        int ww = cJSON_IsTrue(cJSON_GetObjectItem(c, "whole_word"));
        if (mlm_masker_init(&mk, wp, V, p, ww, &err)) fail_msg("%s", err.msg);
        rng r;
        rng_seed(&r, (uint64_t)cJSON_GetObjectItem(c, "seed")->valuedouble);
        memcpy(ids, ids0, (size_t)B * T * 4);
        int n = mlm_mask_batch(&mk, &r, ids, attn, B, T, pos, lab);
        const cJSON *want_pos = cJSON_GetObjectItem(c, "positions"), *want_lab = cJSON_GetObjectItem(c, "labels");
        assert_int_equal(n, cJSON_GetArraySize(want_pos));
        for (int k = 0; k < n; k++) {
            assert_int_equal(pos[k], cJSON_GetArrayItem(want_pos, k)->valueint);
            assert_int_equal(lab[k], cJSON_GetArrayItem(want_lab, k)->valueint);
        }
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++)
                assert_int_equal(ids[b * T + t],
                                 cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "ids"), b), t)->valueint);
        mlm_masker_free(&mk);
        n_cases++;
    }
    printf("  %d cases identical to the Python re-implementation\n", n_cases);
    assert_int_equal(n_cases, 4);
    wordpiece_free(wp);
    free(ids0);
    free(ids);
    free(attn);
    free(pos);
    free(lab);
    cJSON_Delete(j);
}

/* ---------------------------------------------------------------------- unlabelled data */

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_unlabelled_data(void **state) {
    (void)state;
    char d[400], p[500];
    dataset ds;
    bertc_error err = {0};
    dataset_read_options ro;
    memset(&ro, 0, sizeof ro);
    ro.unlabelled = 1;
    /* a folder of text files, as aclImdb/train/unsup */
    snprintf(d, sizeof d, "%s/unsup", tmp);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(p, sizeof p, "%s/2_0.txt", d);
    write_file(p, "second text");
    snprintf(p, sizeof p, "%s/1_0.txt", d);
    write_file(p, "first text");
    if (dataset_read(&ds, d, &ro, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 2);
    assert_string_equal(ds.ex[0].id, "1_0.txt");
    assert_string_equal(ds.ex[0].text, "first text");
    assert_int_equal(ds.ex[1].label, -1);
    dataset_free(&ds);
    /* without unlabelled, such a folder is still no dataset */
    ro.unlabelled = 0;
    assert_int_not_equal(dataset_read(&ds, d, &ro, &err), 0);
    ro.unlabelled = 1;
    /* a tree: labels dropped, unsup read, loose files ignored */
    snprintf(d, sizeof d, "%s/tree", tmp);
    assert_int_equal(mkdir(d, 0755), 0);
    snprintf(p, sizeof p, "%s/pos", d);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/unsup", d);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/pos/a.txt", d);
    write_file(p, "good");
    snprintf(p, sizeof p, "%s/unsup/b.txt", d);
    write_file(p, "unknown");
    snprintf(p, sizeof p, "%s/urls.txt", d);
    write_file(p, "http://x");
    if (dataset_read(&ds, d, &ro, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.num_labels, 0);
    assert_int_equal(ds.ex[0].label, -1);
    dataset_free(&ds);
    /* the same tree in a tarball, and the flat folder in it */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "tar czf '%s/t.tar.gz' -C '%s' tree unsup", tmp, tmp);
    assert_int_equal(system(cmd), 0);
    snprintf(p, sizeof p, "%s/t.tar.gz:tree", tmp);
    if (dataset_read(&ds, p, &ro, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 2);
    dataset_free(&ds);
    snprintf(p, sizeof p, "%s/t.tar.gz:unsup", tmp);
    if (dataset_read(&ds, p, &ro, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 2);
    assert_string_equal(ds.ex[1].id, "2_0.txt");
    assert_string_equal(ds.ex[1].text, "second text");
    dataset_free(&ds);
    /* a .txt file: one text a line, blank lines skipped */
    snprintf(p, sizeof p, "%s/lines.txt", tmp);
    write_file(p, "one line\r\n\n  \nanother line\nlast");
    if (dataset_read(&ds, p, &ro, &err)) fail_msg("%s", err.msg);
    assert_int_equal(ds.n, 3);
    assert_string_equal(ds.ex[0].text, "one line");
    assert_string_equal(ds.ex[1].id, "line:4");
    assert_string_equal(ds.ex[2].text, "last");
    dataset_free(&ds);
}

/* --------------------------------------------------------------------------- end to end */

static const char *filler[] = {"the", "a", "movie", "film", "plot", "actor", "was", "is", "very", "quite",
                               "story", "scene", "music", "it", "and", "but", "this", "that", "ending", "cast"};
static const synthetic_task task = {filler, sizeof filler / sizeof *filler, 6, 8};

static void test_pretrain_end_to_end(void **state) {
    (void)state;
    char model[400], data[400], out[400], p[500], ft[400];
    bertc_error err = {0};
    snprintf(model, sizeof model, "%s/model", tmp);
    snprintf(data, sizeof data, "%s/texts.jsonl", tmp);
    snprintf(out, sizeof out, "%s/pretrained", tmp);
    bert_config cfg;
    if (synthetic_make_model(&task, model, &cfg, 32, 2, 4, 64, 64, 0.1f, 99, &err)) fail_msg("%s", err.msg);
    bert_config_free(&cfg);
    /* texts a model can learn from: one filler word repeated, so every masked word follows from
     * the others (guessing without context costs ln(20) = 3.0) */
    FILE *tf = fopen(data, "w");
    assert_non_null(tf);
    rng tr_rng;
    rng_seed(&tr_rng, 5);
    for (int i = 0; i < 200; i++) {
        int start = (int)rng_below(&tr_rng, task.n_filler), len = 6 + (int)rng_below(&tr_rng, 8);
        fputs("{\"text\":\"", tf);
        for (int w = 0; w < len; w++) fprintf(tf, "%s%s", w ? " " : "", filler[start]);
        fputs("\"}\n", tf);
    }
    fclose(tf);

    bertc_pretrain_options o;
    bertc_pretrain_options_default(&o);
    o.model_dir = model;
    o.data_spec = data;
    o.out_dir = out;
    o.batch_size = 16;
    o.max_length = 16;
    o.steps = 60;
    o.lr = 5e-3f;
    o.threads = 1;
    bertc_pretrain_result r;
    if (bertc_pretrain(&o, &r, &err)) fail_msg("bertc_pretrain: %s", err.msg);
    printf("  mlm loss %.3f -> %.3f over %ld updates, %ld tokens (%ld masked), %.0f tokens/s\n", r.first_loss,
           r.last_loss, r.steps, r.tokens, r.masked_tokens, r.tokens_per_s);
    assert_int_equal(r.steps, 60);
    /* from about ln(27) = 3.3 (a random model) to well below ln(20) = 3.0, the loss of guessing a
     * filler word without context. The same setup in PyTorch (BertForMaskedLM, AdamW, the
     * collator's masking) goes from 3.20 to 2.33 over its first and last 10 updates. */
    assert_true(r.first_loss > 3.0);
    assert_true(r.last_loss < 2.7);
    assert_true(r.masked_tokens > 0.1 * r.tokens && r.masked_tokens < 0.2 * r.tokens);

    /* --precision bf16 (the encoder's products in bf16, as bertc train's) learns the same task to
     * about the same loss; an unknown precision is refused before any work */
    char out16[400];
    snprintf(out16, sizeof out16, "%s/pretrained-bf16", tmp);
    o.out_dir = out16;
    o.precision = "bf16";
    bertc_pretrain_result r16;
    if (bertc_pretrain(&o, &r16, &err)) fail_msg("bertc_pretrain --precision bf16: %s", err.msg);
    printf("  bf16: mlm loss %.3f -> %.3f\n", r16.first_loss, r16.last_loss);
    assert_true(r16.last_loss < 2.7);
    assert_true(fabs(r16.last_loss - r.last_loss) < 0.25);
    assert_true(r16.first_loss != r.first_loss || r16.last_loss != r.last_loss); /* it did run in bf16 */
    snprintf(p, sizeof p, "%s/summary.json", out16);
    cJSON *sj = test_load_json(p);
    assert_non_null(sj);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(sj, "hyperparameters"),
                                                         "precision")->valuestring, "bf16");
    cJSON_Delete(sj);
    o.precision = "fp16";
    assert_int_equal(bertc_pretrain(&o, &r16, &err), BERTC_EINVAL);
    o.precision = "fp32";
    o.out_dir = out;

    /* metrics.jsonl: one line per update */
    snprintf(p, sizeof p, "%s/metrics.jsonl", out);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, f)) lines += strstr(line, "\"type\":\"step\"") && strstr(line, "\"loss\":") != NULL;
    fclose(f);
    assert_int_equal(lines, 60);

    /* the folder: BertForMaskedLM config, bert.* and cls.predictions.*, no classifier */
    snprintf(p, sizeof p, "%s/config.json", out);
    cJSON *j = test_load_json(p);
    assert_non_null(j);
    cJSON *arch = cJSON_GetObjectItemCaseSensitive(j, "architectures");
    assert_true(cJSON_IsArray(arch) && cJSON_GetArraySize(arch) == 1);
    assert_string_equal(cJSON_GetArrayItem(arch, 0)->valuestring, "BertForMaskedLM");
    cJSON_Delete(j);
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    safetensors_file st;
    if (safetensors_open(&st, p, &err)) fail_msg("%s", err.msg);
    assert_non_null(safetensors_find(&st, "cls.predictions.transform.dense.weight"));
    assert_non_null(safetensors_find(&st, "cls.predictions.bias"));
    assert_non_null(safetensors_find(&st, "bert.pooler.dense.weight"));
    assert_null(safetensors_find(&st, "classifier.weight"));
    safetensors_close(&st);
    snprintf(p, sizeof p, "%s/vocab.txt", out);
    assert_int_equal(access(p, R_OK), 0);

    /* the pooler was not trained: as in the input model */
    bert_model *before = NULL, *after = NULL;
    if (bert_load(&before, model, NULL, &err)) fail_msg("%s", err.msg);
    if (bert_load(&after, out, NULL, &err)) fail_msg("%s", err.msg);
    const bert_param_info *tab;
    size_t nt = bert_param_table(before, &tab);
    int changed = 0;
    for (size_t i = 0; i < nt; i++) {
        int same = !memcmp(bert_params(before) + tab[i].offset, bert_params(after) + tab[i].offset,
                           tab[i].numel * sizeof(float));
        if (!strncmp(tab[i].name, "bert.pooler.", 12)) assert_true(same);
        else if (strncmp(tab[i].name, "classifier.", 11)) changed += !same;
    }
    assert_true(changed > 10);
    /* the head reads back as a loaded head */
    mlm_head *h = NULL;
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    if (mlm_head_create(&h, after, p, 1, NULL, &err)) fail_msg("%s", err.msg);
    assert_int_equal(mlm_head_loaded(h), 1);
    mlm_head_free(h);
    bert_free(before);
    bert_free(after);

    /* bertc train starts from it (the classifier initialised, the MLM head ignored) */
    snprintf(ft, sizeof ft, "%s/finetuned", tmp);
    snprintf(p, sizeof p, "%s/labelled.jsonl", tmp);
    assert_int_equal(synthetic_write_jsonl(&task, p, 64, 6), 0);
    bertc_train_options to;
    bertc_train_options_default(&to);
    to.model_dir = out;
    to.train_spec = p;
    to.out_dir = ft;
    to.epochs = 1;
    to.max_length = 16;
    to.eval_train = 0;
    to.threads = 1;
    bertc_train_result tr;
    if (bertc_train(&to, &tr, &err)) fail_msg("bertc_train from the pretrained folder: %s", err.msg);
    assert_int_equal(tr.steps, 4);

    /* reproducible: the same seed gives the same losses and weights (one thread); whole-word
     * masking runs too */
    char out2[400], m1[500], m2[500];
    snprintf(out2, sizeof out2, "%s/pretrained2", tmp);
    o.out_dir = out2;
    o.steps = 5;
    o.whole_word_mask = 1;
    bertc_pretrain_result r1, r2;
    if (bertc_pretrain(&o, &r1, &err)) fail_msg("%s", err.msg);
    snprintf(m1, sizeof m1, "%s/model.safetensors", out2);
    char *w1 = NULL, *w2 = NULL;
    size_t n1 = 0, n2 = 0;
    assert_int_equal(fs_read_all(m1, &w1, &n1, (size_t)1 << 26, &err), 0);
    if (bertc_pretrain(&o, &r2, &err)) fail_msg("%s", err.msg);
    snprintf(m2, sizeof m2, "%s/model.safetensors", out2);
    assert_int_equal(fs_read_all(m2, &w2, &n2, (size_t)1 << 26, &err), 0);
    assert_true(r1.first_loss == r2.first_loss && r1.last_loss == r2.last_loss);
    assert_true(n1 == n2 && memcmp(w1, w2, n1) == 0);
    free(w1);
    free(w2);
    /* --freeze-encoder-steps covering the run: the encoder comes out as it went in */
    o.freeze_encoder_steps = 5;
    if (bertc_pretrain(&o, &r1, &err)) fail_msg("%s", err.msg);
    o.freeze_encoder_steps = 0;
    if (bert_load(&before, model, NULL, &err)) fail_msg("%s", err.msg);
    if (bert_load(&after, out2, NULL, &err)) fail_msg("%s", err.msg);
    nt = bert_param_table(before, &tab);
    for (size_t i = 0; i < nt; i++)
        if (strncmp(tab[i].name, "classifier.", 11))
            assert_memory_equal(bert_params(before) + tab[i].offset, bert_params(after) + tab[i].offset,
                                tab[i].numel * sizeof(float));
    bert_free(before);
    bert_free(after);
    o.out_dir = out;

    /* errors: no data, a model folder that is not one */
    o.data_spec = "/nonexistent/texts.jsonl";
    assert_int_equal(bertc_pretrain(&o, &r, &err), BERTC_EIO);
    o.data_spec = data;
    o.model_dir = tmp;
    assert_int_not_equal(bertc_pretrain(&o, &r, &err), 0);
    printf("  (expected error) %s\n", err.msg);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_against_transformers),
        cmocka_unit_test(test_classifier_after_hidden),
        cmocka_unit_test(test_head_initialised),
        cmocka_unit_test(test_mask_proportions),
        cmocka_unit_test(test_whole_word_mask),
        cmocka_unit_test(test_mask_documented_draws),
        cmocka_unit_test(test_unlabelled_data),
        cmocka_unit_test(test_pretrain_end_to_end),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
