/* Running a sweep: each trial is a `bertc train` process (fork + exec of o->exe), at most
 * o->parallel at once, each with its share of the threads; results are read from the trial's
 * summary.json and appended to trials.jsonl as they come. */
#include "sweep/sweep.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "train/checkpoint.h"
#include "util/error.h"
#include "util/fs.h"

enum trial_state { T_PENDING, T_PAUSED, T_DONE, T_FAILED, T_STOPPED, T_INTERRUPTED };
static const char *const STATE_NAMES[] = {"pending", "paused", "done", "failed", "stopped", "interrupted"};

/* One `bertc train` process: the trial's recipe, with --seed when the sweep repeats each trial
 * over several seeds (o->seeds). */
typedef struct run {
    char dir[PATH_MAX];
    uint64_t seed;            /* passed as --seed when the sweep has seeds */
    enum trial_state state;
    sweep_result res;
    int epochs_run;
    char error[512];
    pid_t pid;
} run;

/* A point of the plan: its runs (one, or one per seed), and their figures together (the mean). */
typedef struct trial {
    int id;
    char dir[PATH_MAX];
    char *const *values;      /* the plan's row */
    enum trial_state state;
    sweep_result res;
    int epochs_run, rung;
    char error[600];
    run *runs;
    int n_runs;
    int in_flight;            /* runs of the current job list not finished yet */
    int stop_after;           /* of the job in progress */
} trial;

typedef struct sweep_ctx {
    const sweep_options *o;
    const sweep_space *space;
    const sweep_objective *obj;
    trial *t;
    int n;
    int threads_each;
    FILE *jsonl;
} sweep_ctx;

void sweep_options_default(sweep_options *o) {
    memset(o, 0, sizeof *o);
    o->method = SWEEP_RANDOM;
    o->parallel = 1;
    o->eta = 3;
    o->seed = 42;
    o->objective = "max val_accuracy";
    o->exe = "/proc/self/exe";
}

static void logf_line(const sweep_options *o, const char *fmt, ...) BERTC_PRINTF(2, 3);
static void logf_line(const sweep_options *o, const char *fmt, ...) {
    if (!o->on_log) return;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    o->on_log(line, o->user);
}

/* A recipe file (src/cli/recipe.h): the base settings, then the trial's values. */
static int write_recipe(const char *path, const sweep_space *s, char *const *values, const char *header, bertc_error *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    if (header) fputs(header, f);
    for (int i = 0; i < s->n_base; i++) {
        if (s->base[i].value) fprintf(f, "%-18s = %s\n", s->base[i].key, s->base[i].value);
        else fprintf(f, "%s\n", s->base[i].key);
    }
    for (int d = 0; d < s->n_dims; d++) fprintf(f, "%-18s = %s\n", s->dims[d].key, values[d]);
    fclose(f);
    int rc = fs_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

static void params_line(const sweep_space *s, char *const *values, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = '\0';
    for (int d = 0; d < s->n_dims && used < n; d++)
        used += (size_t)snprintf(buf + used, n - used, "%s%s=%s", d ? " " : "", s->dims[d].key, values[d]);
}

/* The last line of the trial's train.log that starts with "bertc" (its error), or its last line. */
static void last_error_line(const char *log_path, char *out, size_t n) {
    snprintf(out, n, "no error message (see %.400s)", log_path);
    FILE *f = fopen(log_path, "r");
    if (!f) return;
    char line[1024], last[1024] = "";
    int found = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "bertc", 5)) {
            snprintf(out, n, "%.500s", line);
            found = 1;
        } else if (*line) {
            snprintf(last, sizeof last, "%s", line);
        }
    }
    fclose(f);
    if (!found && *last) snprintf(out, n, "%.500s", last);
}

static void add_num(cJSON *j, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(j, k, v);
    else cJSON_AddNullToObject(j, k);
}

static int write_trial_line(sweep_ctx *c, const trial *t) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "trial", t->id);
    char name[32];
    snprintf(name, sizeof name, "trial-%03d", t->id);
    cJSON_AddStringToObject(j, "dir", name);
    cJSON_AddNumberToObject(j, "rung", t->rung);
    cJSON_AddStringToObject(j, "status", STATE_NAMES[t->state]);
    cJSON_AddNumberToObject(j, "epochs_run", t->epochs_run);
    cJSON *p = cJSON_AddObjectToObject(j, "params");
    for (int d = 0; d < c->space->n_dims; d++) cJSON_AddStringToObject(p, c->space->dims[d].key, t->values[d]);
    for (int m = 0; m < SWEEP_N_METRICS; m++) add_num(j, sweep_metric_name((sweep_metric)m), t->res.ok ? t->res.m[m] : NAN);
    cJSON_AddBoolToObject(j, "feasible", sweep_feasible(c->obj, &t->res));
    add_num(j, "violation", t->res.ok ? sweep_violation(c->obj, &t->res) : NAN);
    if (*t->error) cJSON_AddStringToObject(j, "error", t->error);
    if (c->o->n_seeds > 0) { /* the metrics above are the means; each seed's run here */
        cJSON *runs = cJSON_AddArrayToObject(j, "seeds");
        for (int k = 0; k < t->n_runs; k++) {
            const run *r = &t->runs[k];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddNumberToObject(x, "seed", (double)r->seed);
            cJSON_AddStringToObject(x, "status", STATE_NAMES[r->state]);
            cJSON_AddNumberToObject(x, "epochs_run", r->epochs_run);
            for (int m = 0; m < SWEEP_N_METRICS; m++) add_num(x, sweep_metric_name((sweep_metric)m), r->res.ok ? r->res.m[m] : NAN);
            cJSON_AddItemToArray(runs, x);
        }
    }
    char *line = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!line) return bertc_errorf(NULL, BERTC_ENOMEM, "out of memory");
    int bad = fprintf(c->jsonl, "%s\n", line) < 0 || fflush(c->jsonl);
    free(line);
    return bad ? BERTC_EIO : 0;
}

/* The run's name in log lines: "trial-007", or "trial-007 seed 43". */
static void run_name(const sweep_ctx *c, const trial *t, const run *r, char *buf, size_t n) {
    if (c->o->n_seeds > 0) snprintf(buf, n, "trial-%03d seed %llu", t->id, (unsigned long long)r->seed);
    else snprintf(buf, n, "trial-%03d", t->id);
}

/* fork + exec: bertc train for run r of trial t, its output to r->dir/train.log. A paused run
 * resumes its checkpoint. */
static int start_run(sweep_ctx *c, trial *t, run *r, bertc_error *err) {
    char conf[PATH_MAX + 16], logp[PATH_MAX + 16], threads[16], stop[16], seed[24];
    snprintf(conf, sizeof conf, "%s/trial.conf", t->dir);
    snprintf(logp, sizeof logp, "%s/train.log", r->dir);
    snprintf(threads, sizeof threads, "%d", c->threads_each);
    snprintf(stop, sizeof stop, "%d", t->stop_after);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)r->seed);
    int resume = r->state == T_PAUSED;
    const char *argv[20];
    int a = 0;
    argv[a++] = c->o->exe;
    argv[a++] = "train";
    if (resume) {
        argv[a++] = "--resume";
        argv[a++] = r->dir;
    } else {
        argv[a++] = "--recipe";
        argv[a++] = conf;
        argv[a++] = "--out";
        argv[a++] = r->dir;
        if (c->o->n_seeds > 0) { /* flags win over the recipe */
            argv[a++] = "--seed";
            argv[a++] = seed;
        }
    }
    argv[a++] = "--threads";
    argv[a++] = threads;
    argv[a++] = "--quiet";
    if (t->stop_after > 0) {
        argv[a++] = "--stop-after-epoch";
        argv[a++] = stop;
    }
    argv[a] = NULL;
    int fd = open(logp, O_WRONLY | O_CREAT | O_CLOEXEC | (resume ? O_APPEND : O_TRUNC), 0644);
    if (fd < 0) return bertc_errorf(err, BERTC_EIO, "%s: cannot write: %s", logp, strerror(errno));
    fflush(NULL); /* nothing buffered in this process may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        close(fd);
        return bertc_errorf(err, BERTC_EIO, "cannot start a trial process: %s", strerror(errno));
    }
    if (pid == 0) {
        /* Its own process group: a Ctrl-C at the terminal reaches the sweep alone, which passes one
         * SIGTERM on (a second signal would make bertc train exit without its checkpoint). */
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) dup2(devnull, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(c->o->exe, (char *const *)argv);
        dprintf(2, "bertc sweep: cannot run %s: %s\n", c->o->exe, strerror(errno));
        _exit(127);
    }
    close(fd);
    r->pid = pid;
    char params[512], name[64];
    params_line(c->space, t->values, params, sizeof params);
    run_name(c, t, r, name, sizeof name);
    if (t->stop_after > 0)
        logf_line(c->o, "%s %s to epoch %d: %s", name, resume ? "continues" : "starts", t->stop_after, params);
    else
        logf_line(c->o, "%s %s: %s", name, resume ? "continues to its end" : "starts", params);
    return 0;
}

static void finish_run(sweep_ctx *c, const trial *t, run *r, int status) {
    r->pid = 0;
    char logp[PATH_MAX + 16], name[64];
    snprintf(logp, sizeof logp, "%s/train.log", r->dir);
    run_name(c, t, r, name, sizeof name);
    r->error[0] = '\0';
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        int paused = 0;
        bertc_error e = {0};
        if (sweep_read_summary(r->dir, &r->res, &paused, &r->epochs_run, &e)) {
            r->state = T_FAILED;
            snprintf(r->error, sizeof r->error, "%.500s", e.msg);
        } else {
            r->state = paused ? T_PAUSED : T_DONE;
        }
    } else {
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        r->state = code == 130 || code == 143 || (c->o->stop && *c->o->stop) ? T_INTERRUPTED : T_FAILED;
        memset(&r->res, 0, sizeof r->res);
        last_error_line(logp, r->error, sizeof r->error);
    }
    if (r->state == T_FAILED || r->state == T_INTERRUPTED) {
        logf_line(c->o, "%s %s: %s", name, STATE_NAMES[r->state], r->error);
    } else {
        logf_line(c->o, "%s %s after epoch %d: val_accuracy %.4f, train_accuracy %.4f, gap %.4f, val_loss %.4f%s", name,
                  r->state == T_PAUSED ? "paused" : "done", r->epochs_run, r->res.m[SWEEP_VAL_ACCURACY],
                  r->res.m[SWEEP_TRAIN_ACCURACY], r->res.m[SWEEP_GAP], r->res.m[SWEEP_VAL_LOSS],
                  sweep_feasible(c->obj, &r->res) ? " (meets the constraints)" : "");
    }
}

/* The trial from its runs: failed if one failed (interrupted likewise), paused while one is paused
 * (a run that stopped early is done and stays so), else done; its figures the means over the runs,
 * so that a recipe is ranked by how it does across the seeds, not on one lucky draw. */
static void aggregate_trial(sweep_ctx *c, trial *t) {
    int failed = -1, interrupted = 0, paused = 0;
    memset(&t->res, 0, sizeof t->res);
    t->epochs_run = 0;
    t->error[0] = '\0';
    for (int k = 0; k < t->n_runs; k++) {
        const run *r = &t->runs[k];
        if (r->state == T_FAILED && failed < 0) failed = k;
        interrupted |= r->state == T_INTERRUPTED;
        paused |= r->state == T_PAUSED;
        if (r->epochs_run > t->epochs_run) t->epochs_run = r->epochs_run;
        for (int m = 0; m < SWEEP_N_METRICS; m++) t->res.m[m] += r->res.m[m] / t->n_runs;
    }
    if (failed >= 0 || interrupted) {
        const run *r = &t->runs[failed >= 0 ? failed : 0];
        for (int k = 0; failed < 0 && k < t->n_runs; k++)
            if (t->runs[k].state == T_INTERRUPTED) r = &t->runs[k];
        t->state = failed >= 0 ? T_FAILED : T_INTERRUPTED;
        memset(&t->res, 0, sizeof t->res);
        if (c->o->n_seeds > 0) snprintf(t->error, sizeof t->error, "seed %llu: %s", (unsigned long long)r->seed, r->error);
        else snprintf(t->error, sizeof t->error, "%s", r->error);
        return;
    }
    t->state = paused ? T_PAUSED : T_DONE;
    t->res.ok = 1;
    if (c->o->n_seeds > 0)
        logf_line(c->o, "trial-%03d %s, mean of %d seeds: val_accuracy %.4f, train_accuracy %.4f, gap %.4f%s", t->id,
                  paused ? "paused" : "done", t->n_runs, t->res.m[SWEEP_VAL_ACCURACY], t->res.m[SWEEP_TRAIN_ACCURACY],
                  t->res.m[SWEEP_GAP], sweep_feasible(c->obj, &t->res) ? " (meets the constraints)" : "");
}

/* Runs the trials idx[0..n-1] (each with its stop_after set): every run of theirs that is pending
 * or paused, P processes at a time; a trial's line goes to trials.jsonl when its last run ends. */
static int run_jobs(sweep_ctx *c, const int *idx, int n, bertc_error *err) {
    int n_jobs = 0, rc = 0;
    for (int i = 0; i < n; i++) n_jobs += c->t[idx[i]].n_runs;
    int (*jobs)[2] = malloc((size_t)(n_jobs > 0 ? n_jobs : 1) * sizeof *jobs); /* (trial, run) */
    if (!jobs) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    n_jobs = 0;
    for (int i = 0; i < n; i++) {
        trial *t = &c->t[idx[i]];
        t->in_flight = 0;
        for (int k = 0; k < t->n_runs; k++)
            if (t->runs[k].state == T_PENDING || t->runs[k].state == T_PAUSED) {
                jobs[n_jobs][0] = idx[i];
                jobs[n_jobs++][1] = k;
                t->in_flight++;
            }
    }
    int next = 0, running = 0, forwarded = 0;
    for (;;) {
        if (!forwarded && c->o->stop && *c->o->stop) { /* each running trial checkpoints and stops */
            for (int i = 0; i < c->n; i++)
                for (int k = 0; k < c->t[i].n_runs; k++)
                    if (c->t[i].runs[k].pid > 0) kill(c->t[i].runs[k].pid, SIGTERM);
            forwarded = 1;
        }
        while (!rc && running < c->o->parallel && next < n_jobs && !(c->o->stop && *c->o->stop)) {
            trial *t = &c->t[jobs[next][0]];
            run *r = &t->runs[jobs[next++][1]];
            if ((rc = start_run(c, t, r, err))) break;
            running++;
        }
        if (running == 0) break;
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            rc = bertc_errorf(err, BERTC_EIO, "waiting for the trials: %s", strerror(errno));
            break;
        }
        for (int j = 0; j < next; j++) {
            trial *t = &c->t[jobs[j][0]];
            run *r = &t->runs[jobs[j][1]];
            if (r->pid != pid) continue;
            finish_run(c, t, r, status);
            running--;
            if (--t->in_flight == 0) {
                aggregate_trial(c, t);
                write_trial_line(c, t);
            }
            break;
        }
    }
    /* A trial some of whose runs never started (a stop, or an error starting one) is interrupted if
     * the others ran, and stays pending if none did. */
    for (int j = next; j < n_jobs; j++) {
        trial *t = &c->t[jobs[j][0]];
        if (t->in_flight == 0) continue;
        int started = 0;
        for (int i = 0; i < next; i++) started |= jobs[i][0] == jobs[j][0];
        t->in_flight = 0;
        if (!started) continue;
        t->state = T_INTERRUPTED;
        memset(&t->res, 0, sizeof t->res);
        snprintf(t->error, sizeof t->error, "stopped before all its seeds had run");
        write_trial_line(c, t);
    }
    free(jobs);
    return rc;
}

/* ranks the trials idx[0..n-1] by their results, best first, into idx */
static void rank_trials(sweep_ctx *c, int *idx, int n) {
    sweep_result *r = calloc((size_t)(n > 0 ? n : 1), sizeof *r);
    int *order = malloc((size_t)(n > 0 ? n : 1) * sizeof *order), *copy = malloc((size_t)(n > 0 ? n : 1) * sizeof *copy);
    if (!r || !order || !copy) { /* out of memory: keep the order given */
        free(r);
        free(order);
        free(copy);
        return;
    }
    for (int i = 0; i < n; i++) {
        r[i] = c->t[idx[i]].res;
        if (c->t[idx[i]].state == T_FAILED || c->t[idx[i]].state == T_INTERRUPTED) r[i].ok = 0;
        copy[i] = idx[i];
    }
    sweep_rank(c->obj, r, n, order);
    for (int i = 0; i < n; i++) idx[i] = copy[order[i]];
    free(r);
    free(order);
    free(copy);
}

static int run_halving(sweep_ctx *c, bertc_error *err) {
    int *alive = malloc((size_t)c->n * sizeof *alive), *jobs = malloc((size_t)c->n * sizeof *jobs);
    if (!alive || !jobs) {
        free(alive);
        free(jobs);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    int n_alive = c->n, rc = 0;
    for (int i = 0; i < c->n; i++) alive[i] = i;
    for (int rung = 0;; rung++) {
        int final = n_alive == 1, n_jobs = 0;
        int epoch = sweep_halving_epoch(rung, c->o->eta);
        for (int i = 0; i < n_alive; i++) {
            trial *t = &c->t[alive[i]];
            if (t->state != T_PENDING && t->state != T_PAUSED) continue;
            t->stop_after = final ? 0 : epoch;
            t->rung = rung;
            jobs[n_jobs++] = alive[i];
        }
        if (n_jobs && final) logf_line(c->o, "rung %d: %d trial%s to the end", rung, n_jobs, n_jobs == 1 ? "" : "s");
        else if (n_jobs) logf_line(c->o, "rung %d: %d trial%s to epoch %d", rung, n_jobs, n_jobs == 1 ? "" : "s", epoch);
        if ((rc = run_jobs(c, jobs, n_jobs, err)) || (c->o->stop && *c->o->stop)) break;
        int any_paused = 0;
        for (int i = 0; i < n_alive; i++) any_paused |= c->t[alive[i]].state == T_PAUSED;
        if (final || !any_paused) break;
        rank_trials(c, alive, n_alive);
        int keep = sweep_halving_keep(n_alive, c->o->eta);
        for (int i = keep; i < n_alive; i++) {
            trial *t = &c->t[alive[i]];
            if (t->state != T_PAUSED) continue;
            /* Stopped for good: its checkpoint (several times the model) is not needed. */
            t->state = T_STOPPED;
            for (int k = 0; k < t->n_runs; k++) {
                char ck[PATH_MAX + 16];
                snprintf(ck, sizeof ck, "%s/checkpoint", t->runs[k].dir);
                checkpoint_remove(ck);
            }
            logf_line(c->o, "trial-%03d stopped after epoch %d (not in the best %d of %d)", t->id, t->epochs_run, keep, n_alive);
            write_trial_line(c, t);
        }
        n_alive = keep;
    }
    free(alive);
    free(jobs);
    return rc;
}

static int write_best(sweep_ctx *c, int best, bertc_error *err) {
    const trial *t = &c->t[best];
    char path[PATH_MAX], header[2048], obj[512];
    snprintf(path, sizeof path, "%s/best.conf", c->o->out_dir);
    sweep_objective_format(c->obj, obj, sizeof obj);
    char seeds[300] = "";
    size_t used = 0;
    for (int k = 0; k < c->o->n_seeds && used < sizeof seeds; k++)
        used += (size_t)snprintf(seeds + used, sizeof seeds - used, "%s%llu%s", k ? ", " : "mean over seeds ",
                                 (unsigned long long)c->o->seeds[k], k == c->o->n_seeds - 1 ? " (--seed S for each): " : "");
    snprintf(header, sizeof header,
             "# The best trial of bertc sweep %.400s (trial-%03d of %d), for: %.500s\n"
             "# %sval_accuracy %.4f, train_accuracy %.4f, gap %.4f, val_loss %.4f, train_loss %.4f (%s)\n"
             "# Usage: bertc train --recipe %.400s --out DIR\n",
             c->o->sweep_path, t->id, c->n, obj, seeds, t->res.m[SWEEP_VAL_ACCURACY], t->res.m[SWEEP_TRAIN_ACCURACY],
             t->res.m[SWEEP_GAP], t->res.m[SWEEP_VAL_LOSS], t->res.m[SWEEP_TRAIN_LOSS],
             sweep_feasible(c->obj, &t->res) ? "meets the constraints" : "the constraints are NOT met: the least violation found",
             path);
    return write_recipe(path, c->space, t->values, header, err);
}

int sweep_run(const sweep_options *o, sweep_outcome *out, bertc_error *err) {
    memset(out, 0, sizeof *out);
    out->best = -1;
    if (!o->sweep_path || !o->out_dir) return bertc_errorf(err, BERTC_EINVAL, "a sweep file and an output folder are required");
    if (o->parallel < 1 || o->parallel > 256) return bertc_errorf(err, BERTC_EINVAL, "parallel trials must be in [1, 256]");
    if (o->method == SWEEP_HALVING && o->eta < 2) return bertc_errorf(err, BERTC_EINVAL, "halving's eta must be at least 2");
    if (access(o->exe, X_OK)) return bertc_errorf(err, BERTC_EINVAL, "%s: cannot run it: %s", o->exe, strerror(errno));
    sweep_objective obj;
    int rc = sweep_objective_parse(&obj, o->objective, err);
    if (rc) return rc;
    sweep_space space;
    if ((rc = sweep_space_load(&space, o->sweep_path, err))) return rc;
    for (int i = 0; i < o->n_set && !rc; i++) {
        char key[256];
        const char *eq = strchr(o->set[i], '=');
        size_t kl = eq ? (size_t)(eq - o->set[i]) : strlen(o->set[i]);
        if (kl == 0 || kl >= sizeof key) {
            rc = bertc_errorf(err, BERTC_EINVAL, "--set '%s': want KEY=VALUE", o->set[i]);
            break;
        }
        memcpy(key, o->set[i], kl);
        key[kl] = '\0';
        rc = sweep_space_set(&space, key[0] == '-' && key[1] == '-' ? key + 2 : key, eq ? eq + 1 : NULL, err);
    }
    if (!rc && o->n_seeds > 0) {
        if (o->n_seeds > SWEEP_MAX_SEEDS) rc = bertc_errorf(err, BERTC_EINVAL, "at most %d seeds", SWEEP_MAX_SEEDS);
        for (int i = 0; !rc && i < o->n_seeds; i++)
            for (int k = 0; k < i; k++)
                if (o->seeds[k] == o->seeds[i])
                    rc = bertc_errorf(err, BERTC_EINVAL, "seed %llu is given twice", (unsigned long long)o->seeds[i]);
        for (int d = 0; !rc && d < space.n_dims; d++)
            if (!strcmp(space.dims[d].key, "seed"))
                rc = bertc_errorf(err, BERTC_EINVAL, "%s: 'seed' is searched in the file and repeated by --seeds: use one of the two",
                                  o->sweep_path);
    }
    /* The objective's metrics must be measured: validation ones need a validation set, training
     * ones the final eval-mode pass (not no-eval-train). */
    int needs_val = 0, needs_train = 0, has_val = 0, no_eval_train = 0;
    for (int i = -1; i < obj.n; i++) {
        sweep_metric m = i < 0 ? obj.metric : obj.c[i].metric;
        needs_val |= m != SWEEP_TRAIN_ACCURACY && m != SWEEP_TRAIN_LOSS;
        needs_train |= m == SWEEP_TRAIN_ACCURACY || m == SWEEP_TRAIN_LOSS || m == SWEEP_GAP;
    }
    for (int i = 0; i < space.n_base; i++) {
        has_val |= !strcmp(space.base[i].key, "val");
        no_eval_train |= !strcmp(space.base[i].key, "no-eval-train");
    }
    if (!rc && needs_val && !has_val)
        rc = bertc_errorf(err, BERTC_EINVAL, "%s: the objective needs validation figures but no 'val' dataset is set", o->sweep_path);
    if (!rc && needs_train && no_eval_train)
        rc = bertc_errorf(err, BERTC_EINVAL, "%s: the objective needs training figures but 'no-eval-train' is set", o->sweep_path);
    sweep_plan plan = {0};
    if (!rc) rc = sweep_plan_make(&plan, &space, o->method, o->trials, o->seed, err);
    trial *t = NULL;
    FILE *jsonl = NULL;
    if (!rc && plan.n_trials == 0) rc = bertc_errorf(err, BERTC_EINVAL, "no trials to run");
    if (!rc) rc = fs_mkdir_p(o->out_dir, err);
    if (!rc && !(t = calloc((size_t)plan.n_trials, sizeof *t))) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/trials.jsonl", o->out_dir);
    if (!rc && !(jsonl = fopen(path, "w"))) rc = bertc_errorf(err, BERTC_EIO, "%s: cannot write: %s", path, strerror(errno));
    long cores = o->threads > 0 ? o->threads : sysconf(_SC_NPROCESSORS_ONLN);
    sweep_ctx c = {.o = o, .space = &space, .obj = &obj, .t = t, .n = plan.n_trials, .jsonl = jsonl,
                   .threads_each = cores / o->parallel > 0 ? (int)(cores / o->parallel) : 1};
    for (int i = 0; i < plan.n_trials && !rc; i++) {
        t[i].id = i;
        t[i].values = plan.values[i];
        snprintf(t[i].dir, sizeof t[i].dir, "%s/trial-%03d", o->out_dir, i);
        char conf[PATH_MAX + 16];
        snprintf(conf, sizeof conf, "%s/trial.conf", t[i].dir);
        if (!(rc = fs_mkdir_p(t[i].dir, err))) rc = write_recipe(conf, &space, plan.values[i], NULL, err);
        /* One run in the trial's folder, or one per seed in trial-NNN/seed-S/. */
        t[i].n_runs = o->n_seeds > 0 ? o->n_seeds : 1;
        if (!rc && !(t[i].runs = calloc((size_t)t[i].n_runs, sizeof *t[i].runs))) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        for (int k = 0; !rc && k < t[i].n_runs; k++) {
            run *r = &t[i].runs[k];
            if (o->n_seeds > 0) {
                r->seed = o->seeds[k];
                if (snprintf(r->dir, sizeof r->dir, "%s/seed-%llu", t[i].dir, (unsigned long long)r->seed) >= (int)sizeof r->dir)
                    rc = bertc_errorf(err, BERTC_EINVAL, "%s: path too long", t[i].dir);
                if (!rc) rc = fs_mkdir_p(r->dir, err);
            } else {
                snprintf(r->dir, sizeof r->dir, "%s", t[i].dir);
            }
        }
    }
    if (!rc) {
        char ob[512];
        sweep_objective_format(&obj, ob, sizeof ob);
        char per[64] = "";
        if (o->n_seeds > 0) snprintf(per, sizeof per, " x %d seed%s", o->n_seeds, o->n_seeds == 1 ? "" : "s");
        logf_line(o, "%d trial%s%s (%s), %d%s at a time with %d thread%s each; objective: %s", plan.n_trials,
                  plan.n_trials == 1 ? "" : "s", per, o->method == SWEEP_GRID ? "grid" : o->method == SWEEP_RANDOM ? "random" : "successive halving",
                  o->parallel, o->n_seeds > 0 ? " runs" : "", c.threads_each, c.threads_each == 1 ? "" : "s", ob);
        if (o->dry_run) {
            for (int i = 0; i < plan.n_trials; i++) {
                char params[1024];
                params_line(&space, plan.values[i], params, sizeof params);
                logf_line(o, "trial-%03d: %s", i, params);
            }
        } else if (o->method == SWEEP_HALVING) {
            rc = run_halving(&c, err);
        } else {
            int *all = malloc((size_t)plan.n_trials * sizeof *all);
            if (!all) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
            for (int i = 0; i < plan.n_trials && all; i++) all[i] = i;
            if (!rc) rc = run_jobs(&c, all, plan.n_trials, err);
            free(all);
        }
    }
    if (jsonl && fclose(jsonl) && !rc) rc = bertc_errorf(err, BERTC_EIO, "%s: write failed", path);
    if (!rc && o->dry_run) out->n_trials = plan.n_trials;
    else if (!rc) {
        /* The winner: among the trials that ran to their end. */
        int *done = malloc((size_t)plan.n_trials * sizeof *done), n_done = 0;
        if (!done) rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
        for (int i = 0; done && i < plan.n_trials; i++) {
            out->n_failed += t[i].state == T_FAILED;
            out->interrupted |= t[i].state == T_INTERRUPTED || t[i].state == T_PENDING;
            if (t[i].state == T_DONE) {
                done[n_done++] = i;
                out->n_feasible += sweep_feasible(&obj, &t[i].res);
            }
        }
        out->n_trials = plan.n_trials;
        if (done && n_done > 0) {
            rank_trials(&c, done, n_done);
            out->best = done[0];
            out->best_result = t[done[0]].res;
            rc = write_best(&c, done[0], err);
        }
        free(done);
        if (!rc) rc = sweep_write_html(o->out_dir, &obj, err);
        if (!rc && out->best < 0) {
            int first = -1;
            for (int i = 0; i < plan.n_trials && first < 0; i++)
                if (t[i].state == T_FAILED) first = i;
            if (out->interrupted)
                rc = bertc_errorf(err, BERTC_EINTERRUPTED, "interrupted before any trial finished");
            else
                rc = bertc_errorf(err, BERTC_EINVAL, "all %d trials failed; trial-%03d: %s", plan.n_trials, first < 0 ? 0 : first,
                                  first < 0 ? "?" : t[first].error);
        }
    }
    for (int i = 0; t && i < plan.n_trials; i++) free(t[i].runs);
    free(t);
    sweep_plan_free(&plan);
    sweep_space_free(&space);
    return rc;
}
