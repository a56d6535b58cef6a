/* bertc sweep: a hyperparameter search, each trial a `bertc train` process (src/sweep/). */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "sweep/sweep.h"

static void usage(const sweep_options *d) {
    printf("usage: bertc sweep FILE --out DIR [options]\n"
           "       bertc sweep --space FILE --out DIR [options]\n\n"
           "Searches the hyperparameters declared in a sweep file (a recipe in which some settings are lists\n"
           "or ranges; see docs/SWEEP.md) by running `bertc train` once per trial, and writes to --out:\n"
           "trials.jsonl (every trial's figures), trial-NNN/ (each trial's recipe, log and run folder),\n"
           "sweep.html (table and train-vs-val accuracy plot) and best.conf (the winner, a recipe for\n"
           "bertc train --recipe).\n\n"
           "  --space FILE          the sweep file (or give it as the first argument)\n"
           "  --out DIR             output folder\n"
           "  --method M            grid, random or halving (successive halving) (default random)\n"
           "  --trials N            random/halving: trials drawn; grid: at most N points, drawn (default: all)\n"
           "  --objective TEXT      (max|min) METRIC [s.t. METRIC (<|<=|>|>=) X [and ...]]; metrics val_accuracy,\n"
           "                        train_accuracy, val_loss, train_loss, gap (default \"%s\")\n"
           "  --parallel P          trials at once, each a process with threads/P threads (default %d)\n"
           "  --threads N           CPU threads in all; 0 = all cores (default 0)\n"
           "  --eta N               halving: the best 1/N of the trials continue at each rung (default %d)\n"
           "  --seed N              trial sampling (default %llu); the trials' own seed is the sweep file's\n"
           "  --seeds S1,S2,...     run each trial once per seed (bertc train --seed S; the seed also draws the\n"
           "                        examples) and rank it by the means: a recipe that holds, not one lucky draw\n"
           "  --model DIR           sets the base recipe's model (same as --set model=DIR)\n"
           "  --set KEY=VALUE       sets (or overrides) a base recipe setting; repeatable\n"
           "  --dry-run             write the trials' recipes (OUT/trial-NNN/trial.conf) and list them; run nothing\n\n"
           "Successive halving runs every trial to epoch 1, continues the best 1/eta to epoch eta, then eta^2, ...\n"
           "(each resuming its checkpoint, so a continued trial is the same run as an uninterrupted one).\n"
           "Ctrl-C stops starting trials; running ones checkpoint and stop; the report covers what finished.\n",
           d->objective, d->parallel, d->eta, (unsigned long long)d->seed);
}

/* "42,43,44" -> seeds; 0, or -1 on anything but 1 to SWEEP_MAX_SEEDS decimal numbers. */
static int parse_seeds(const char *s, uint64_t *out) {
    int n = 0;
    for (const char *p = s;;) {
        char *end;
        if (*p < '0' || *p > '9' || n == SWEEP_MAX_SEEDS) return -1;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p) return -1;
        out[n++] = v;
        if (*end == '\0') return n;
        if (*end != ',') return -1;
        p = end + 1;
    }
}

static volatile int stop_flag; /* int, as sweep_options.stop: set once by the handler */
static void on_signal(int sig) {
    (void)sig;
    stop_flag = 1;
}

static void log_line(const char *line, void *user) {
    (void)user;
    fprintf(stderr, "%s\n", line);
}

int cmd_sweep(int argc, char **argv) {
    sweep_options o;
    sweep_options_default(&o);
    uint64_t seeds[SWEEP_MAX_SEEDS];
    const char **set = calloc((size_t)argc + 1, sizeof *set);
    char *model_set = NULL;
    if (!set) die("out of memory");
    int n_set = 0;
    /* The sweep file may come first, before the flags. */
    int first = 1;
    if (argc > 1 && strncmp(argv[1], "--", 2) && strcmp(argv[1], "-h")) {
        o.sweep_path = argv[1];
        first = 2;
    }
    args a;
    args_init(&a, "sweep", argc - (first - 1), argv + (first - 1));
    const char *f;
    while ((f = args_next(&a))) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(&o);
            free(set);
            return 0;
        }
        else if (!strcmp(f, "--space")) o.sweep_path = args_str(&a);
        else if (!strcmp(f, "--out")) o.out_dir = args_str(&a);
        else if (!strcmp(f, "--method")) {
            const char *m = args_str(&a);
            if (sweep_method_parse(m, &o.method)) {
                fprintf(stderr, "bertc sweep: --method must be grid, random or halving, got '%s'\n", m);
                free(set);
                return 2;
            }
        }
        else if (!strcmp(f, "--trials")) o.trials = (int)args_long(&a, 1, 100000);
        else if (!strcmp(f, "--objective")) o.objective = args_str(&a);
        else if (!strcmp(f, "--parallel")) o.parallel = (int)args_long(&a, 1, 256);
        else if (!strcmp(f, "--threads")) o.threads = (int)args_long(&a, 0, 1024);
        else if (!strcmp(f, "--eta")) o.eta = (int)args_long(&a, 2, 100);
        else if (!strcmp(f, "--seed")) o.seed = args_u64(&a);
        else if (!strcmp(f, "--seeds")) {
            const char *v = args_str(&a);
            if ((o.n_seeds = parse_seeds(v, seeds)) < 1) {
                fprintf(stderr, "bertc sweep: --seeds wants 1 to %d numbers separated by commas, got '%s'\n", SWEEP_MAX_SEEDS, v);
                free(set);
                free(model_set);
                return 2;
            }
            o.seeds = seeds;
        }
        else if (!strcmp(f, "--set")) set[n_set++] = args_str(&a);
        else if (!strcmp(f, "--dry-run")) o.dry_run = 1;
        else if (!strcmp(f, "--model")) {
            const char *m = args_str(&a);
            free(model_set);
            if (!(model_set = malloc(strlen(m) + 7))) die("out of memory");
            sprintf(model_set, "model=%s", m);
        }
        else args_unknown(&a);
    }
    if (model_set) set[n_set++] = model_set;
    if (!o.sweep_path || !o.out_dir) {
        fprintf(stderr, "bertc sweep: a sweep file and --out are required (see bertc sweep --help)\n");
        free(set);
        free(model_set);
        return 2;
    }
    o.set = set;
    o.n_set = n_set;
    o.stop = &stop_flag;
    o.on_log = log_line;
    /* Without SA_RESTART, so the wait for trials returns and passes the stop on to them. */
    args_catch_stop(on_signal, 0);

    sweep_outcome r;
    bertc_error err = {0};
    int rc = sweep_run(&o, &r, &err);
    free(set);
    free(model_set);
    if (rc) {
        fprintf(stderr, "bertc sweep: %s\n", err.msg);
        return rc == BERTC_EINTERRUPTED ? 130 : 1;
    }
    if (o.dry_run) {
        printf("%d trials planned in %s (dry run)\n", r.n_trials, o.out_dir);
        return 0;
    }
    const char *names[] = {"val_accuracy", "train_accuracy", "val_loss", "train_loss", "gap"};
    printf("%d trials, %d failed, %d meeting the constraints%s\n", r.n_trials, r.n_failed, r.n_feasible,
           r.interrupted ? " (interrupted: some did not run)" : "");
    printf("best: trial-%03d%s:", r.best, o.n_seeds > 0 ? " (means over the seeds)" : "");
    for (int m = 0; m < SWEEP_N_METRICS; m++) printf(" %s %.4f", names[m], r.best_result.m[m]);
    printf("\nrecipe: %s/best.conf   report: %s/sweep.html\n", o.out_dir, o.out_dir);
    return r.interrupted ? 130 : 0;
}
