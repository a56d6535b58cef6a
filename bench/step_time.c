/* One training step (zero_grad, forward with dropout, backward; no optimiser) of a randomly
 * initialised model with CONFIG_JSON's shape, timed per step in wall time and in the process's
 * CPU time; prints every step and the median and best of each after one warm-up step.
 *
 * With one thread the CPU time leaves out the time the thread waited for a core, so on a machine
 * shared with other work it is the steadier measure of the work a step does; with several
 * threads it also counts their spinning, and the wall time is what a user waits.
 *
 * Usage: step_time CONFIG_JSON B T STEPS [linear-ab|thp-ab [eval]]      (threads: OMP_NUM_THREADS)
 * Built by scripts/bench-step.sh, which can link it against an older commit's library too.
 *
 * linear-ab: every step twice, once with the Linear products chunked over the threads on
 * OpenBLAS and once threaded by oneDNN (backend/cpu/gemm.h), in alternating order, and the
 * median of the per-step ratios: both see the same moment of a shared machine. With eval, the
 * steps are evaluation forwards (no dropout, no backward).
 *
 * thp-ab: the same alternation between two copies of the model, one whose arenas were allocated
 * on 4 KB pages and one on huge pages (cpu_huge_pages_set; backend/cpu/ops_cpu.c, cpu_alloc). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "median.h"

#include "backend/cpu/gemm.h"
#include "backend/ops.h"
#include "model/bert.h"
#include "util/rng.h"

int main(int argc, char **argv) {
    int thp_ab = argc > 5 && !strcmp(argv[5], "thp-ab");
    int ab = thp_ab || (argc > 5 && !strcmp(argv[5], "linear-ab")), eval = ab && argc > 6 && !strcmp(argv[6], "eval");
    if (argc < 5 || argc > 7 || (argc > 5 && !ab) || (argc > 6 && !eval)) {
        fprintf(stderr, "usage: step_time CONFIG_JSON B T STEPS [linear-ab|thp-ab [eval]]\n");
        return 2;
    }
    const char *name[2] = {thp_ab ? "4k-pages" : "chunked ", thp_ab ? "huge    " : "threaded"};
    int B = atoi(argv[2]), T = atoi(argv[3]), steps = atoi(argv[4]);
    if (B <= 0 || T <= 0 || steps <= 0 || steps > 1000) {
        fprintf(stderr, "step_time: bad B, T or STEPS\n");
        return 2;
    }
    bertc_error err;
    bert_config cfg;
    bert_model *mm[2] = {NULL, NULL}, *m;
    char *names[] = {"NEG", "POS"};
    if (bert_config_load(&cfg, argv[1], &err) || bert_config_set_labels(&cfg, names, 2, &err)) {
        fprintf(stderr, "step_time: %s\n", err.msg);
        return 1;
    }
    /* thp-ab: model 0 on 4 KB pages, model 1 on huge pages; otherwise one model, as the
     * environment says */
    for (int k = 0; k < (thp_ab ? 2 : 1); k++) {
        if (thp_ab) cpu_huge_pages_set(k);
        if (bert_init_random(&mm[k], &cfg, 1, &err) || bert_prepare(mm[k], B, T, &err)) {
            fprintf(stderr, "step_time: %s\n", err.msg);
            return 1;
        }
    }
    bert_config_free(&cfg);
    m = mm[0];
    size_t NT = (size_t)B * T;
    int32_t *ids = malloc(NT * sizeof(int32_t)), *mask = malloc(NT * sizeof(int32_t));
    int32_t *types = calloc(NT, sizeof(int32_t)), *labels = malloc((size_t)B * sizeof(int32_t));
    double *wall = malloc((size_t)steps * sizeof(double)), *cpu = malloc((size_t)steps * sizeof(double));
    double *ratio = malloc((size_t)steps * sizeof(double));
    if (!ids || !mask || !types || !labels || !wall || !cpu || !ratio) {
        fprintf(stderr, "step_time: out of memory\n");
        return 1;
    }
    rng r;
    rng_seed(&r, 3);
    int V = bert_get_config(m)->vocab_size;
    for (size_t i = 0; i < NT; i++) {
        ids[i] = (V > 1000 ? 1000 : 0) + (int32_t)rng_below(&r, (uint64_t)(V > 1000 ? V - 1000 : V));
        mask[i] = 1;
    }
    for (int b = 0; b < B; b++) labels[b] = b % 2;
    if (ab) {
        double *chunked = wall, *threaded_wall = cpu; /* wall times both */
        for (int s = 0; s <= steps; s++) {
            double w[2];
            for (int k = 0; k < 2; k++) {
                int threaded = (s + k) % 2; /* which goes first alternates (thp-ab: 1 = huge pages) */
                if (thp_ab) m = mm[threaded];
                else gemm_linear_set_path(threaded ? GEMM_LINEAR_THREADED : GEMM_LINEAR_CHUNKED);
                double w0 = clock_s(CLOCK_MONOTONIC);
                bert_zero_grad(m);
                float loss = bert_forward(m, ids, mask, types, labels, B, T, !eval, (uint64_t)s);
                if (!eval) bert_backward(m, 1.0f);
                w[threaded] = clock_s(CLOCK_MONOTONIC) - w0;
                printf("step %d %s loss %.6f wall %.1f ms%s\n", s, name[threaded], loss,
                       1e3 * w[threaded], s ? "" : " (warm-up)");
            }
            if (s > 0) {
                chunked[s - 1] = w[0];
                threaded_wall[s - 1] = w[1];
                ratio[s - 1] = w[1] / w[0];
            }
        }
        int faster = 0;
        for (int s = 0; s < steps; s++) faster += ratio[s] < 1.0;
        double rmed = median(ratio, steps), cmed = median(chunked, steps), tmed = median(threaded_wall, steps);
        const char *a = thp_ab ? "4k-pages" : "chunked", *b = thp_ab ? "huge" : "threaded";
        printf("B=%d T=%d threads=%d steps=%d %s: %s median %.1f ms, %s median %.1f ms, %s/%s median %.3f, %s faster in %d of %d\n",
               B, T, omp_get_max_threads(), steps, eval ? "eval" : "train", a, 1e3 * cmed, b, 1e3 * tmed, b, a, rmed, b,
               faster, steps);
    } else {
        for (int s = 0; s <= steps; s++) {
            double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
            bert_zero_grad(m);
            float loss = bert_forward(m, ids, mask, types, labels, B, T, 1, (uint64_t)s);
            bert_backward(m, 1.0f);
            double w = clock_s(CLOCK_MONOTONIC) - w0, c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            printf("step %d loss %.6f wall %.1f ms cpu %.1f ms%s\n", s, loss, 1e3 * w, 1e3 * c, s ? "" : " (warm-up)");
            if (s > 0) {
                wall[s - 1] = w;
                cpu[s - 1] = c;
            }
        }
        double wmed = median(wall, steps), cmed = median(cpu, steps);
        printf("B=%d T=%d threads=%d steps=%d: wall median %.1f ms best %.1f ms; cpu median %.1f ms best %.1f ms\n", B, T,
               omp_get_max_threads(), steps, 1e3 * wmed, 1e3 * wall[0], 1e3 * cmed, 1e3 * cpu[0]);
    }
    bert_free(mm[0]);
    bert_free(mm[1]);
    free(ids);
    free(mask);
    free(types);
    free(labels);
    free(wall);
    free(cpu);
    free(ratio);
    return 0;
}
