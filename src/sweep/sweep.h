/* bertc sweep: a hyperparameter search over `bertc train` runs (docs/SWEEP.md).
 *
 * A sweep file is a recipe (recipes/, one "key = value" a line) in which some values declare a
 * search space instead of one setting:
 *     lr             = log(1e-5, 1e-4)      a log-uniform range (random search)
 *     hidden-dropout = linear(0.1, 0.3)     a uniform range
 *     warmup-steps   = int(0, 50)           a uniform integer, both ends included
 *     epochs         = 3, 4, 5, 6           a list: the grid's values, or a uniform choice
 *     text-column    = "title,body"         quoted: one literal value, commas and all
 * Every other line is the base recipe all trials share.
 *
 * The objective is a small fixed grammar:
 *     (max|min) METRIC [s.t. METRIC (<|<=|>|>=) NUMBER [and METRIC OP NUMBER]...]
 * over the metrics val_accuracy, train_accuracy, val_loss, train_loss and gap (train accuracy
 * minus validation accuracy), as `bertc train` reports them in summary.json (best epoch's
 * weights; training accuracy in eval mode). Trials that meet every constraint rank first by the
 * objective; the others after them by their total constraint violation (then by the objective);
 * failed trials last.
 *
 * Methods: grid (every combination of the lists; ranges are refused), random (--trials samples
 * drawn from --seed), halving (successive halving over random samples, or the grid when the space
 * is all lists: every trial runs to epoch 1, the best 1/eta continue to epoch eta, then eta^2,
 * ...; a continuing trial resumes its own checkpoint (`bertc train --resume --stop-after-epoch`),
 * so its run is exactly the run it would have been uninterrupted, schedule included).
 *
 * With seeds (sweep_options.seeds) every trial is one run per seed and is ranked by the means of
 * its runs' metrics, so that the winner meets the objective across the seeds.
 *
 * The library part (this header) never prints; bertc sweep (src/cli/cmd_sweep.c) is the CLI. */
#ifndef BERTC_SWEEP_SWEEP_H
#define BERTC_SWEEP_SWEEP_H

#include <stdint.h>
#include <stdio.h>

#include "bertc.h"

/* ------------------------------------------------------------------------------ the space */

typedef enum sweep_dim_kind { SWEEP_CHOICE, SWEEP_LINEAR, SWEEP_LOG, SWEEP_INT } sweep_dim_kind;

typedef struct sweep_dim {
    char *key;
    sweep_dim_kind kind;
    char **choices;  /* SWEEP_CHOICE: n_choices values, as written */
    int n_choices;
    double lo, hi;   /* the ranges */
} sweep_dim;

typedef struct sweep_setting {
    char *key;
    char *value;     /* NULL for a flag without value ("freeze-embeddings") */
} sweep_setting;

typedef struct sweep_space {
    sweep_setting *base;
    int n_base;
    sweep_dim *dims;
    int n_dims;
} sweep_space;

/* Parses a sweep file's text; path names it in errors ("FILE: line N: ..."). */
int sweep_space_parse(sweep_space *s, const char *text, const char *path, bertc_error *err);
int sweep_space_load(sweep_space *s, const char *path, bertc_error *err);
void sweep_space_free(sweep_space *s);
/* Adds (or replaces) a base setting, e.g. --model given to bertc sweep. value may be NULL. */
int sweep_space_set(sweep_space *s, const char *key, const char *value, bertc_error *err);

typedef enum sweep_method { SWEEP_GRID, SWEEP_RANDOM, SWEEP_HALVING } sweep_method;
int sweep_method_parse(const char *s, sweep_method *m);

/* The trials to run: n_trials rows of n_dims value strings (values[t][d]). Grid: every combination
 * in order (the last dimension fastest), or when max_trials (> 0) is smaller, that many of them
 * drawn from seed without repetition, kept in grid order. Random: max_trials samples from seed.
 * Halving: random sampling, or the grid when every dimension is a list and max_trials is 0. */
typedef struct sweep_plan {
    int n_trials, n_dims;
    char ***values;
} sweep_plan;

int sweep_plan_make(sweep_plan *p, const sweep_space *s, sweep_method m, int max_trials, uint64_t seed, bertc_error *err);
void sweep_plan_free(sweep_plan *p);
/* The number of grid points (BERTC_EINVAL naming a range dimension, or when over 1e6). */
int sweep_grid_size(const sweep_space *s, long *n, bertc_error *err);

/* ------------------------------------------------------------------------- the objective */

typedef enum sweep_metric {
    SWEEP_VAL_ACCURACY, SWEEP_TRAIN_ACCURACY, SWEEP_VAL_LOSS, SWEEP_TRAIN_LOSS, SWEEP_GAP, SWEEP_N_METRICS
} sweep_metric;

typedef enum sweep_op { SWEEP_LT, SWEEP_LE, SWEEP_GT, SWEEP_GE } sweep_op;

#define SWEEP_MAX_CONSTRAINTS 8
#define SWEEP_MAX_SEEDS 16

typedef struct sweep_constraint {
    sweep_metric metric;
    sweep_op op;
    double bound;
} sweep_constraint;

typedef struct sweep_objective {
    int maximise;
    sweep_metric metric;
    sweep_constraint c[SWEEP_MAX_CONSTRAINTS];
    int n;
} sweep_objective;

const char *sweep_metric_name(sweep_metric m);
const char *sweep_op_name(sweep_op op);
/* Parses the grammar above; BERTC_EINVAL with the offending word on anything else. */
int sweep_objective_parse(sweep_objective *o, const char *text, bertc_error *err);
/* Writes the objective back in the grammar (canonical form) to buf. */
void sweep_objective_format(const sweep_objective *o, char *buf, size_t n);

/* One trial's figures. */
typedef struct sweep_result {
    int ok;                       /* the run finished (or paused) and its summary was read */
    double m[SWEEP_N_METRICS];
} sweep_result;

/* Sum of the constraints' violations (how far beyond each bound); 0 when all hold, though a strict
 * bound met with equality is violated by 0: use sweep_feasible for feasibility. */
double sweep_violation(const sweep_objective *o, const sweep_result *r);
int sweep_feasible(const sweep_objective *o, const sweep_result *r);
/* < 0 when a ranks before b, > 0 after, 0 for a tie: feasible by the objective, then infeasible
 * by violation (then objective), then failed. */
int sweep_compare(const sweep_objective *o, const sweep_result *a, const sweep_result *b);
/* order[0..n-1] = the indices of r best first (a stable sort: ties keep their index order). */
void sweep_rank(const sweep_objective *o, const sweep_result *r, int n, int *order);

/* Reads the figures of a run folder's summary.json (a paused one too); *paused set when marked so,
 * *epochs_run to its epochs. */
int sweep_read_summary(const char *run_dir, sweep_result *r, int *paused, int *epochs_run, bertc_error *err);

/* ---------------------------------------------------------------------- successive halving */

/* The epoch at which rung r (0-based) stops: eta^r (1, eta, eta^2, ...), capped at 1e6. */
int sweep_halving_epoch(int rung, int eta);
/* How many of n trials continue past a rung: n / eta, at least 1. */
int sweep_halving_keep(int n, int eta);

/* --------------------------------------------------------------------------- the whole run */

typedef struct sweep_options {
    const char *sweep_path;       /* the sweep file */
    const char *out_dir;          /* OUT: trials.jsonl, trial-NNN/, sweep.html, best.conf */
    const char *const *set;       /* extra base settings "key=value" (or "key"), n_set of them */
    int n_set;
    sweep_method method;
    int trials;                   /* random/halving: samples; grid: at most this many (0 = all) */
    int parallel;                 /* trials at once, each a process */
    int threads;                  /* CPU threads in all (0 = all cores), split evenly over the processes */
    int eta;                      /* halving's reduction factor (>= 2) */
    uint64_t seed;                /* trial sampling */
    const uint64_t *seeds;        /* when n_seeds > 0: each trial runs once per seed (bertc train --seed S, in
                                   * trial-NNN/seed-S/) and is ranked by the means of its runs' metrics */
    int n_seeds;
    const char *objective;
    const char *exe;              /* the bertc executable that runs `train` ("/proc/self/exe" from the CLI) */
    volatile int *stop;           /* non-zero: start no more trials, wait for the running ones */
    int dry_run;                  /* write the trials' recipes and log them; run nothing */
    bertc_log_fn on_log;          /* one line per trial started and finished */
    void *user;
} sweep_options;

typedef struct sweep_outcome {
    int n_trials, n_failed, n_feasible;
    int best;                     /* trial index of the winner, -1 when none finished */
    sweep_result best_result;
    int interrupted;
} sweep_outcome;

void sweep_options_default(sweep_options *o);
/* Runs the sweep and writes OUT/trials.jsonl (one line per trial result, per rung under halving),
 * OUT/trial-NNN/ (trial.conf, train.log and the run's files), OUT/sweep.html and OUT/best.conf. */
int sweep_run(const sweep_options *o, sweep_outcome *out, bertc_error *err);

/* Writes OUT/sweep.html from OUT/trials.jsonl (the last line of each trial counts). */
int sweep_write_html(const char *out_dir, const sweep_objective *obj, bertc_error *err);

#endif
