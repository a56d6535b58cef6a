/* bertc bench: times a training step, an evaluation forward and single-example latency
 * (JSON Lines, or a table with --human); --peak measures the machine's sgemm peak. */
#include <stdio.h>
#include <string.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"

static void usage(void) {
    bertc_bench_options d;
    bertc_bench_options_default(&d);
    printf("usage: bertc bench (--shape NAME | --config FILE | --model DIR) [options]\n"
           "       bertc bench --peak [--shape NAME | --config FILE | --model DIR] [options]\n\n"
           "Times, with warm-up runs first, through the same code the trainer runs:\n"
           "  train_step    forward + backward + gradient clipping + AdamW, dropout on (batch %d)\n"
           "  eval_forward  evaluation forward (batch %d)\n"
           "  latency       one example (batch 1)\n"
           "  matmul_step   the matrix products of one training step alone (its sgemm calls, recorded and replayed)\n"
           "and prints one JSON object per measurement (median and min seconds, examples/s, model GFLOP/s,\n"
           "peak RSS); the FLOP count is documented in docs/PERFORMANCE.md. Random weights unless --model.\n\n"
           "  --shape NAME             bert-base (12 x 768) or minilm (6 x 384, all-MiniLM-L6-v2), random weights\n"
           "  --config FILE            a config.json, random weights\n"
           "  --model DIR              a model folder (config.json + model.safetensors)\n"
           "  --precision P            ",
           d.train_batch, d.eval_batch);
    const char *const *p = bertc_bench_precisions();
    for (int i = 0; p[i]; i++) printf("%s%s", i ? " | " : "", p[i]);
    printf(" (default %s)\n"
           "  --device NAME            cpu (default), or cuda, cuda:tf32, cuda:bf16 as bertc train (no matmul, no --peak)\n"
           "  --threads N              CPU threads; 0 = all cores (default 0)\n"
           "  --reps N                 timed runs of each measurement (default %d)\n"
           "  --warmup N               untimed runs first (default %d)\n"
           "  --only LIST              some of latency,eval,step,matmul (default: all)\n"
           "  --seq N                  tokens per example (default %d)\n"
           "  --train-batch N          (default %d)\n"
           "  --eval-batch N           (default %d)\n"
           "  --seed N                 weights and token ids (default %llu)\n"
           "  --peak                   instead: the fp32 sgemm peak, best of --reps, on a square product and the\n"
           "                           shape's Linear products (bert-base by default), OpenMP-split and BLAS-threaded\n"
           "  --square N               size of the peak's square product (default %d)\n"
           "  --human                  a table instead of JSON Lines\n",
           d.precision, d.reps, d.warmup, d.seq, d.train_batch, d.eval_batch, (unsigned long long)d.seed, d.square);
}

int cmd_bench(int argc, char **argv) {
    bertc_bench_options o;
    bertc_bench_options_default(&o);
    int human = 0;
    args a;
    args_init(&a, "bench", argc, argv);
    const char *f;
    while ((f = args_next(&a))) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage();
            return 0;
        }
        else if (!strcmp(f, "--shape")) o.shape = args_str(&a);
        else if (!strcmp(f, "--config")) o.config_path = args_str(&a);
        else if (!strcmp(f, "--model")) o.model_dir = args_str(&a);
        else if (!strcmp(f, "--precision")) o.precision = args_str(&a);
        else if (!strcmp(f, "--device")) o.device = args_str(&a);
        else if (!strcmp(f, "--threads")) o.threads = (int)args_long(&a, 0, 1024);
        else if (!strcmp(f, "--reps")) o.reps = (int)args_long(&a, 1, 100000);
        else if (!strcmp(f, "--warmup")) o.warmup = (int)args_long(&a, 0, 100000);
        else if (!strcmp(f, "--only")) o.what = args_str(&a);
        else if (!strcmp(f, "--seq")) o.seq = (int)args_long(&a, 2, 1 << 16);
        else if (!strcmp(f, "--train-batch")) o.train_batch = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--eval-batch")) o.eval_batch = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--seed")) o.seed = args_u64(&a);
        else if (!strcmp(f, "--peak")) o.peak = 1;
        else if (!strcmp(f, "--square")) o.square = (int)args_long(&a, 1, 65536);
        else if (!strcmp(f, "--human")) human = 1;
        else args_unknown(&a);
    }
    if (!o.peak && !o.shape && !o.config_path && !o.model_dir) {
        fprintf(stderr, "bertc bench: one of --shape, --config or --model is required (see bertc bench --help)\n");
        return 2;
    }
    bertc_error err = {0};
    int rc = bertc_bench(&o, human ? NULL : stdout, human ? stdout : NULL, &err);
    if (rc) {
        fprintf(stderr, "bertc bench: %s\n", err.msg);
        return 1;
    }
    return 0;
}
