/* A small driver around bert.h for checks against PyTorch that need real checkpoints (not part
 * of `make test`; scripts/check-minilm.sh builds and runs it).
 *
 *   check_logits logits MODEL_DIR IDS_FILE OUT_FILE
 *       IDS_FILE: int32 N, int32 T, then N*T int32 ids, N*T int32 attention mask (little-endian);
 *       token types are 0. Writes N*K float32 logits to OUT_FILE (eval mode, batches of 50);
 *       BERTC_PRECISION=bf16 in the environment computes them in bf16 mixed precision.
 *   check_logits bench CONFIG_JSON B T STEPS [MODEL_DIR]
 *       times forward+backward (training mode, dropout on) of a randomly initialised model with
 *       CONFIG_JSON's shape (or MODEL_DIR's weights) and prints ms/step (after one warm-up step);
 *       BERTC_PRECISION=bf16 in the environment runs it in bf16 mixed precision.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/bert.h"
#include "util/rng.h"

static int fail(const char *what, const bertc_error *err) {
    fprintf(stderr, "check_logits: %s: %s\n", what, err ? err->msg : "");
    return 1;
}

static int cmd_logits(const char *model_dir, const char *ids_path, const char *out_path) {
    bertc_error err;
    FILE *f = fopen(ids_path, "rb");
    if (!f) return fail(ids_path, NULL);
    int32_t hdr[2];
    if (fread(hdr, sizeof(int32_t), 2, f) != 2 || hdr[0] <= 0 || hdr[1] <= 0 || hdr[1] > 4096) {
        fclose(f);
        return fail("bad ids file header", NULL);
    }
    int N = hdr[0], T = hdr[1];
    size_t NT = (size_t)N * T;
    int32_t *ids = malloc(NT * sizeof(int32_t)), *mask = malloc(NT * sizeof(int32_t));
    int32_t *types = calloc(NT, sizeof(int32_t));
    if (!ids || !mask || !types || fread(ids, sizeof(int32_t), NT, f) != NT || fread(mask, sizeof(int32_t), NT, f) != NT) {
        fclose(f);
        return fail("short ids file", NULL);
    }
    fclose(f);
    bert_model *m;
    bert_load_options o;
    bert_load_options_default(&o);
    o.notices = stderr;
    if (bert_load(&m, model_dir, &o, &err)) return fail("load", &err);
    const char *prec = getenv("BERTC_PRECISION"); /* bf16: the logits of the bf16 mixed-precision forward */
    if (bert_set_precision(m, prec && !strcmp(prec, "bf16"), &err)) return fail("precision", &err);
    int BS = 50, K = bert_get_config(m)->num_labels;
    if (bert_prepare(m, BS, T, &err)) return fail("prepare", &err);
    FILE *out = fopen(out_path, "wb");
    if (!out) return fail(out_path, NULL);
    for (int i = 0; i < N; i += BS) {
        int b = N - i < BS ? N - i : BS;
        bert_forward(m, ids + (size_t)i * T, mask + (size_t)i * T, types + (size_t)i * T, NULL, b, T, 0, 0);
        fwrite(bert_logits(m), sizeof(float), (size_t)b * K, out);
    }
    fclose(out);
    bert_free(m);
    free(ids);
    free(mask);
    free(types);
    return 0;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmd_bench(const char *config_path, int B, int T, int steps, const char *model_dir) {
    bertc_error err;
    bert_model *m;
    if (model_dir) {
        bert_load_options o;
        bert_load_options_default(&o);
        o.num_labels = 2;
        if (bert_load(&m, model_dir, &o, &err)) return fail("load", &err);
    } else {
        bert_config cfg;
        if (bert_config_load(&cfg, config_path, &err)) return fail("config", &err);
        char *names[] = {"NEG", "POS"};
        if (bert_config_set_labels(&cfg, names, 2, &err)) return fail("labels", &err);
        if (bert_init_random(&m, &cfg, 1, &err)) return fail("init", &err);
        bert_config_free(&cfg);
    }
    /* BERTC_PRECISION=bf16 times the bf16 mixed-precision step */
    const char *prec = getenv("BERTC_PRECISION");
    if (bert_set_precision(m, prec && !strcmp(prec, "bf16"), &err)) return fail("precision", &err);
    if (bert_prepare(m, B, T, &err)) return fail("prepare", &err);
    size_t NT = (size_t)B * T;
    int32_t *ids = malloc(NT * sizeof(int32_t)), *mask = malloc(NT * sizeof(int32_t));
    int32_t *types = calloc(NT, sizeof(int32_t)), *labels = malloc((size_t)B * sizeof(int32_t));
    rng r;
    rng_seed(&r, 3);
    int V = bert_get_config(m)->vocab_size;
    for (size_t i = 0; i < NT; i++) {
        ids[i] = 1000 + (int32_t)rng_below(&r, (uint64_t)(V - 1000));
        mask[i] = 1;
    }
    for (int b = 0; b < B; b++) labels[b] = b % 2;
    double total = 0.0, fwd = 0.0;
    for (int s = 0; s <= steps; s++) {
        double t0 = now_ms();
        bert_zero_grad(m);
        float loss = bert_forward(m, ids, mask, types, labels, B, T, 1, (uint64_t)s);
        double t1 = now_ms();
        bert_backward(m, 1.0f);
        double t2 = now_ms();
        if (s > 0) {
            total += t2 - t0;
            fwd += t1 - t0;
        }
        fprintf(stderr, "step %d loss %.4f forward %.0f ms backward %.0f ms\n", s, loss, t1 - t0, t2 - t1);
    }
    printf("B=%d T=%d params=%zu: %.1f ms/step (forward %.1f ms) over %d steps\n", B, T, bert_num_params(m),
           total / steps, fwd / steps, steps);
    bert_free(m);
    free(ids);
    free(mask);
    free(types);
    free(labels);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && strcmp(argv[1], "logits") == 0) return cmd_logits(argv[2], argv[3], argv[4]);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "bench") == 0)
        return cmd_bench(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), argc == 7 ? argv[6] : NULL);
    fprintf(stderr, "usage: check_logits logits MODEL_DIR IDS_FILE OUT_FILE\n"
                    "       check_logits bench CONFIG_JSON B T STEPS [MODEL_DIR]\n");
    return 2;
}
