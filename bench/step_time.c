/* One training step (zero_grad, forward with dropout, backward; no optimiser) of a randomly
 * initialised model with CONFIG_JSON's shape, timed per step in wall time and in the process's
 * CPU time; prints every step and the median and best of each after one warm-up step.
 *
 * With one thread the CPU time leaves out the time the thread waited for a core, so on a machine
 * shared with other work it is the steadier measure of the work a step does; with several
 * threads it also counts their spinning, and the wall time is what a user waits.
 *
 * Usage: step_time CONFIG_JSON B T STEPS      (threads: OMP_NUM_THREADS)
 * Built by scripts/bench-step.sh, which can link it against an older commit's library too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <omp.h>

#include "model/bert.h"
#include "util/rng.h"

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: step_time CONFIG_JSON B T STEPS\n");
        return 2;
    }
    int B = atoi(argv[2]), T = atoi(argv[3]), steps = atoi(argv[4]);
    if (B <= 0 || T <= 0 || steps <= 0 || steps > 1000) {
        fprintf(stderr, "step_time: bad B, T or STEPS\n");
        return 2;
    }
    bertc_error err;
    bert_config cfg;
    bert_model *m;
    char *names[] = {"NEG", "POS"};
    if (bert_config_load(&cfg, argv[1], &err) || bert_config_set_labels(&cfg, names, 2, &err) ||
        bert_init_random(&m, &cfg, 1, &err)) {
        fprintf(stderr, "step_time: %s\n", err.msg);
        return 1;
    }
    bert_config_free(&cfg);
    if (bert_prepare(m, B, T, &err)) {
        fprintf(stderr, "step_time: %s\n", err.msg);
        return 1;
    }
    size_t NT = (size_t)B * T;
    int32_t *ids = malloc(NT * sizeof(int32_t)), *mask = malloc(NT * sizeof(int32_t));
    int32_t *types = calloc(NT, sizeof(int32_t)), *labels = malloc((size_t)B * sizeof(int32_t));
    double *wall = malloc((size_t)steps * sizeof(double)), *cpu = malloc((size_t)steps * sizeof(double));
    if (!ids || !mask || !types || !labels || !wall || !cpu) {
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
    bert_free(m);
    free(ids);
    free(mask);
    free(types);
    free(labels);
    free(wall);
    free(cpu);
    return 0;
}
