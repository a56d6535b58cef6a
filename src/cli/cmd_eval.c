/* bertc eval: accuracy, loss, per-class precision/recall/F1 and the confusion matrix of a model on a dataset. */
#include <stdio.h>
#include <string.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"

static void usage(void) {
    printf("usage: bertc eval --model DIR --data DATA [options]\n\n"
           "Evaluates a fine-tuned model on a labelled dataset (a class-per-folder tree, ARCHIVE.tar.gz:FOLDER,\n"
           "or a .csv/.tsv/.jsonl file). Prints a table, or one JSON object with --json.\n\n"
           "  --model DIR              model folder\n"
           "  --data DATA              labelled dataset\n"
           "  --size N                 seeded random subset of N examples (default: all)\n"
           "  --seed N                 seed of that subset (default 42)\n"
           "  --max-length N           tokens per example (default 128)\n"
           "  --batch-size N           (default 32)\n"
           "  --pad dynamic|static     pad each batch to its longest example, batching the examples longest\n"
           "                           first (default), or every example to --max-length\n"
           "  --text-column NAME, --text-pair-column NAME, --label-column NAME   table columns\n"
           "  --skip-bad               skip bad records (counted) instead of stopping\n"
           "  --threads N              CPU threads; 0 = all cores (default 0)\n"
           "  --device NAME            cpu (default), cuda, cuda:tf32 or cuda:bf16 (see bertc train --help)\n"
           "  --precision P            fp32, or bf16: the encoder's matrix products in bf16 with fp32 accumulation\n"
           "                           (AVX512-BF16 where the CPU has it; docs/PERFORMANCE.md) (default fp32)\n"
           "  --json                   print the metrics as one JSON object\n");
}

int cmd_eval(int argc, char **argv) {
    bertc_eval_options o;
    bertc_eval_options_default(&o);
    const char *model = NULL, *device = NULL;
    int json = 0, threads = 0;
    const char *precision = "fp32";
    args a;
    args_init(&a, "eval", argc, argv);
    const char *f;
    while ((f = args_next(&a))) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage();
            return 0;
        }
        else if (!strcmp(f, "--model")) model = args_str(&a);
        else if (!strcmp(f, "--data")) o.data_spec = args_str(&a);
        else if (!strcmp(f, "--size")) o.size = args_long(&a, 0, 1L << 40);
        else if (!strcmp(f, "--seed")) o.seed = args_u64(&a);
        else if (!strcmp(f, "--max-length")) o.max_length = (int)args_long(&a, 2, 1 << 16);
        else if (!strcmp(f, "--batch-size")) o.batch_size = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--pad")) o.pad_dynamic = args_pad(&a);
        else if (!strcmp(f, "--text-column")) o.text_column = args_str(&a);
        else if (!strcmp(f, "--text-pair-column")) o.text_pair_column = args_str(&a);
        else if (!strcmp(f, "--label-column")) o.label_column = args_str(&a);
        else if (!strcmp(f, "--skip-bad")) o.skip_bad = 1;
        else if (!strcmp(f, "--threads")) threads = (int)args_long(&a, 0, 1024);
        else if (!strcmp(f, "--json")) json = 1;
        else if (!strcmp(f, "--device")) device = args_str(&a);
        else if (!strcmp(f, "--precision")) precision = args_precision(&a);
        else args_unknown(&a);
    }
    if (!model || !o.data_spec) {
        fprintf(stderr, "bertc eval: --model and --data are required (see bertc eval --help)\n");
        return 2;
    }
    bertc_set_threads(threads);
    bertc_error err = {0};
    bertc_model *m = NULL;
    bertc_open_options oo;
    bertc_open_options_default(&oo);
    oo.device = device;
    oo.precision = precision;
    int rc = bertc_model_open(&m, model, &oo, &err);
    bertc_eval_result r;
    if (!rc) rc = bertc_evaluate(m, &o, &r, json ? stdout : NULL, json ? NULL : stdout, &err);
    bertc_model_free(m);
    if (rc) {
        fprintf(stderr, "bertc eval: %s\n", err.msg);
        return 1;
    }
    return 0;
}
