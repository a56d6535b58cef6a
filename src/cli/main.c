/* bertc: the command-line front end. Each subcommand lives in its own cmd_*.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bertc.h"
#include "cli/commands.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", cmd_train, "fine-tune a model on a labelled dataset"},
    {"eval", cmd_eval, "accuracy, loss, per-class F1 and confusion matrix of a model on a dataset"},
    {"predict", cmd_predict, "label JSON Lines records read from stdin"},
    {"report", cmd_report, "write a run folder's HTML training report (report.html)"},
    {"tokenize", cmd_tokenize, "WordPiece-encode JSON Lines (or plain lines) exactly like Hugging Face"},
    {"init", cmd_init, "write a model folder with random weights for a config (speed checks without weights)"},
    {"bench", cmd_bench, "time a training step, evaluation and latency (JSON Lines); --peak: the sgemm peak"},
    {"sweep", cmd_sweep, "hyperparameter search: grid, random or successive halving over bertc train runs"},
    {"pretrain", cmd_pretrain, "continue masked-language-model pretraining on unlabelled text (--mlm)"},
};

static void usage(FILE *f) {
    fprintf(f, "bertc %s: fine-tune BERT-family encoders for text classification\n\n", BERTC_VERSION);
    fprintf(f, "usage: bertc <command> [options]   (bertc <command> --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

static double realtime_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Diagnostics for the time a command takes outside its own clock (scripts/gpu-check.sh): with
 * BERTC_EXIT_TIMING set, stderr gets the wall-clock times at which main started and returned, so
 * a caller that notes the time around the command sees the process start and the teardown after
 * main (a CUDA context's, above all). BERTC_FAST_EXIT=1 ends the process with _exit once stdio
 * is flushed, skipping the libraries' exit handlers (cudart's context teardown among them; the
 * driver frees a dead process's device memory all the same): an experiment, off by default. */
static int finish(int rc, double t_start) {
    if (getenv("BERTC_EXIT_TIMING"))
        fprintf(stderr, "bertc: main started %.6f returned %.6f (realtime, s)\n", t_start, realtime_s());
    const char *fast = getenv("BERTC_FAST_EXIT");
    if (fast && !strcmp(fast, "1")) {
        if (fflush(NULL) != 0 && rc == 0) rc = 1;
        _exit(rc);
    }
    return rc;
}

int main(int argc, char **argv) {
    double t_start = realtime_s();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("bertc %s\n", BERTC_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return finish(commands[i].run(argc - 1, argv + 1), t_start);
    fprintf(stderr, "bertc: unknown command '%s' (see bertc --help)\n", argv[1]);
    return 2;
}
