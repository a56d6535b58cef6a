/* bertc train: fine-tune a model folder on a dataset and write the fine-tuned folder. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"
#include "cli/recipe.h"

static void usage(const bertc_train_options *d) {
    printf("usage: bertc train --model DIR --train DATA [--val DATA] --out DIR [options]\n\n"
           "Fine-tunes a BERT-family model for sequence classification and writes a Hugging Face model folder\n"
           "(config.json, model.safetensors, vocab.txt, tokenizer_config.json) plus metrics.jsonl, summary.json,\n"
           "split.jsonl and report.html (the training report; see bertc report --help) to --out.\n"
           "DATA is a class-per-folder tree, ARCHIVE.tar.gz:FOLDER, or a .csv/.tsv/.jsonl file.\n\n"
           "data:\n"
           "  --model DIR              model folder to start from (config.json, vocab.txt, model.safetensors)\n"
           "  --train DATA             training set\n"
           "  --val DATA               validation set (evaluated after each epoch; early stopping)\n"
           "  --out DIR                output folder\n"
           "  --recipe FILE            read settings from a recipe file first (see recipes/); flags given here win\n"
           "  --train-size N           seeded random subset of the training set (default: all)\n"
           "  --val-size N             seeded random subset of the validation set (default: all)\n"
           "  --save-split FILE        write the chosen example ids (JSON Lines) for other programs\n"
           "  --load-split FILE        train and validate on exactly the ids in FILE\n"
           "  --text-column NAME       table column(s) holding the text, comma-separated to join (default %s)\n"
           "  --text-pair-column NAME  table column holding a second segment (default: none)\n"
           "  --label-column NAME      table column holding the label (default %s)\n"
           "  --skip-bad               skip bad records (counted) instead of stopping\n"
           "  --max-length N           tokens per example, [CLS] and [SEP] included (default %d)\n"
           "  --pad static|dynamic     pad to --max-length, or each batch to its longest example (default static)\n\n"
           "optimisation:\n"
           "  --epochs N               (default %d)\n"
           "  --batch-size N           examples per update (default %d)\n"
           "  --grad-accum N           micro-batches accumulated per update (default %d)\n"
           "  --eval-batch-size N      (default %d)\n"
           "  --lr X                   peak learning rate (default %g)\n"
           "  --scheduler NAME         constant, linear or cosine (default %s)\n"
           "  --warmup-steps N         warm-up updates (default 0)\n"
           "  --warmup-ratio X         warm-up as a fraction of all updates (overrides --warmup-steps)\n"
           "  --weight-decay X         AdamW decoupled weight decay, not on biases and LayerNorm (default %g)\n"
           "  --adam-beta1 X, --adam-beta2 X, --adam-eps X   (defaults %g, %g, %g)\n"
           "  --max-grad-norm X        clip gradients to this global norm; 0 = off (default off)\n"
           "  --patience N             stop after N epochs without a better validation accuracy; 0 = never (default %d)\n\n"
           "regularisation:\n"
           "  --hidden-dropout P       hidden_dropout_prob (default: config.json's)\n"
           "  --attention-dropout P    attention_probs_dropout_prob (default: config.json's)\n"
           "  --classifier-dropout P   classifier_dropout (default: config.json's, else the hidden dropout)\n"
           "  --label-smoothing X      cross-entropy label smoothing (default 0)\n"
           "  --layer-lr-decay X       layer-wise lr decay in (0, 1]: head lr, top layer lr*X, ..., layer 0 lr*X^L,\n"
           "                           embeddings lr*X^(L+1) (default 1: off)\n"
           "  --freeze-embeddings      do not train the embeddings (no gradient computed for them)\n"
           "  --freeze-layers N        do not train the lowest N encoder layers (default 0)\n"
           "  --rdrop ALPHA            R-Drop: each batch twice with other dropout masks; loss = mean CE + ALPHA *\n"
           "                           mean symmetric KL of the two predictions (default 0: off; doubles the work)\n"
           "  --truncation RULE        head, tail, head+tail (first (max-length-2)/4 tokens + the rest from the end)\n"
           "                           or head+tail:H (first H tokens); single texts only (default head, as HF)\n\n"
           "run:\n"
           "  --seed N                 data subset, shuffling, dropout and new heads (default %llu)\n"
           "  --threads N              CPU threads; 0 = all cores (default 0)\n"
           "  --device NAME            cpu (default); cuda: an NVIDIA GPU, fp32 products (the CPU's results);\n"
           "                           cuda:tf32, cuda:bf16: tensor-core products, fp32 weights (see docs/GPU.md)\n"
           "  --precision P            fp32, or bf16: the encoder's matrix products in bf16 with fp32 accumulation\n"
           "                           (AVX512-BF16 where the CPU has it; docs/PERFORMANCE.md) (default fp32)\n"
           "  --no-eval-train          skip the final eval-mode pass over the training set\n"
           "  --summary FILE           also write the summary JSON here\n"
           "  --quiet                  no progress display\n\n"
           "reliability (docs/RELIABILITY.md):\n"
           "  --checkpoint-every N     also checkpoint to OUT/checkpoint every N updates (besides: after each epoch,\n"
           "                           and on Ctrl-C / SIGTERM; removed when the run completes)\n"
           "  --checkpoint-min-seconds S  skip the checkpoint after an epoch when less than S seconds have passed\n"
           "                           since the last one (default 60: redoing a minute costs less than writing a\n"
           "                           bert-base checkpoint on a GPU; 0: after every epoch)\n"
           "  --no-checkpoint          no checkpoint after each epoch; Ctrl-C still writes one\n"
           "  --resume OUT             continue the interrupted run in OUT with its own options (only --threads and\n"
           "                           --quiet may be given with it)\n"
           "  --deterministic          bit-identical results, resumed or not, for the same --threads (kept on resume)\n"
           "  --stop-after-epoch N     pause after epoch N: checkpoint kept, summary.json marked paused; --resume OUT\n"
           "                           continues (may be given with --resume; bertc sweep's successive halving)\n"
           "  --skip-nonfinite         skip an update whose loss or gradient is NaN/inf instead of stopping\n"
           "                           (more than 10 in a row stop the run)\n"
           "Ctrl-C or SIGTERM saves a checkpoint after the current update and exits with 130 (SIGINT) or 143\n"
           "(SIGTERM); a second Ctrl-C exits at once, leaving the previous checkpoint.\n",
           d->text_column, d->label_column, d->max_length, d->epochs, d->batch_size, d->grad_accum, d->eval_batch_size,
           (double)d->lr, d->scheduler, (double)d->weight_decay, (double)d->adam_beta1, (double)d->adam_beta2,
           (double)d->adam_eps, d->patience, (unsigned long long)d->seed);
}

/* The signal number that asked to stop; the trainer checks it after every update. */
static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    /* A second signal: the user means it. Exit now; the last complete checkpoint stays valid. */
    if (stop_signal) _exit(128 + sig);
    stop_signal = sig;
}

static void install_signals(void) {
    args_catch_stop(on_stop_signal, 1);
    /* A file-size limit (ulimit -f) then makes write() fail with EFBIG, reported as an error,
     * instead of killing the process. */
    signal(SIGXFSZ, SIG_IGN);
}

int cmd_train(int argc0, char **argv0) {
    int argc;
    char **argv = recipe_expand(argc0, argv0, &argc);
    bertc_train_options o;
    bertc_train_options_default(&o);
    int quiet = 0, threads_given = 0, others = 0, stop_after = 0;
    const char *resume = NULL, *device = NULL;
    args a;
    args_init(&a, "train", argc, argv);
    const char *f;
    while ((f = args_next(&a))) {
        /* With --resume the options come from the checkpoint: count anything else given. */
        others += strcmp(f, "--resume") && strcmp(f, "--threads") && strcmp(f, "--quiet") &&
                  strcmp(f, "--stop-after-epoch") && strcmp(f, "--device");
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(&o);
            recipe_free(argv, argc0, argv0);
            return 0;
        }
        else if (!strcmp(f, "--resume")) resume = args_str(&a);
        else if (!strcmp(f, "--threads")) o.threads = (int)args_long(&a, 0, 1024), threads_given = 1;
        else if (!strcmp(f, "--quiet")) quiet = 1;
        else if (!strcmp(f, "--device")) device = args_str(&a);
        else if (!strcmp(f, "--model")) o.model_dir = args_str(&a);
        else if (!strcmp(f, "--train")) o.train_spec = args_str(&a);
        else if (!strcmp(f, "--val")) o.val_spec = args_str(&a);
        else if (!strcmp(f, "--out")) o.out_dir = args_str(&a);
        else if (!strcmp(f, "--summary")) o.summary_path = args_str(&a);
        else if (!strcmp(f, "--save-split")) o.save_split = args_str(&a);
        else if (!strcmp(f, "--load-split")) o.load_split = args_str(&a);
        else if (!strcmp(f, "--text-column")) o.text_column = args_str(&a);
        else if (!strcmp(f, "--text-pair-column")) o.text_pair_column = args_str(&a);
        else if (!strcmp(f, "--label-column")) o.label_column = args_str(&a);
        else if (!strcmp(f, "--skip-bad")) o.skip_bad = 1;
        else if (!strcmp(f, "--train-size")) o.train_size = args_long(&a, 0, 1L << 40);
        else if (!strcmp(f, "--val-size")) o.val_size = args_long(&a, 0, 1L << 40);
        else if (!strcmp(f, "--max-length")) o.max_length = (int)args_long(&a, 2, 1 << 16);
        else if (!strcmp(f, "--pad")) o.pad_dynamic = args_pad(&a);
        else if (!strcmp(f, "--epochs")) o.epochs = (int)args_long(&a, 1, 100000);
        else if (!strcmp(f, "--batch-size")) o.batch_size = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--grad-accum")) o.grad_accum = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--eval-batch-size")) o.eval_batch_size = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--lr")) o.lr = (float)args_double(&a, 0, 10);
        else if (!strcmp(f, "--scheduler")) o.scheduler = args_str(&a);
        else if (!strcmp(f, "--warmup-steps")) o.warmup_steps = args_long(&a, 0, 1L << 40);
        else if (!strcmp(f, "--warmup-ratio")) o.warmup_ratio = (float)args_double(&a, 0, 1);
        else if (!strcmp(f, "--weight-decay")) o.weight_decay = (float)args_double(&a, 0, 10);
        else if (!strcmp(f, "--adam-beta1")) o.adam_beta1 = (float)args_double(&a, 0, 0.999999);
        else if (!strcmp(f, "--adam-beta2")) o.adam_beta2 = (float)args_double(&a, 0, 0.999999999);
        else if (!strcmp(f, "--adam-eps")) o.adam_eps = (float)args_double(&a, 1e-30, 1);
        else if (!strcmp(f, "--max-grad-norm")) o.max_grad_norm = (float)args_double(&a, 0, 1e30);
        else if (!strcmp(f, "--patience")) o.patience = (int)args_long(&a, 0, 100000);
        else if (!strcmp(f, "--hidden-dropout")) o.hidden_dropout = (float)args_double(&a, 0, 0.99);
        else if (!strcmp(f, "--attention-dropout")) o.attention_dropout = (float)args_double(&a, 0, 0.99);
        else if (!strcmp(f, "--classifier-dropout")) o.classifier_dropout = (float)args_double(&a, 0, 0.99);
        else if (!strcmp(f, "--label-smoothing")) o.label_smoothing = (float)args_double(&a, 0, 0.99);
        else if (!strcmp(f, "--seed")) o.seed = args_u64(&a);
        else if (!strcmp(f, "--no-eval-train")) o.eval_train = 0;
        else if (!strcmp(f, "--checkpoint-every")) o.checkpoint_every = (int)args_long(&a, 0, 1 << 30);
        else if (!strcmp(f, "--no-checkpoint")) o.checkpoint_every = -1;
        else if (!strcmp(f, "--checkpoint-min-seconds")) o.checkpoint_min_seconds = args_double(&a, 0, 1e9);
        else if (!strcmp(f, "--deterministic")) o.deterministic = 1;
        else if (!strcmp(f, "--layer-lr-decay")) o.layer_lr_decay = (float)args_double(&a, 1e-6, 1);
        else if (!strcmp(f, "--freeze-embeddings")) o.freeze_embeddings = 1;
        else if (!strcmp(f, "--freeze-layers")) o.freeze_layers = (int)args_long(&a, 0, 1000);
        else if (!strcmp(f, "--rdrop")) o.rdrop = (float)args_double(&a, 0, 1000);
        else if (!strcmp(f, "--truncation")) o.truncation = args_str(&a);
        else if (!strcmp(f, "--stop-after-epoch")) stop_after = (int)args_long(&a, 0, 100000);
        else if (!strcmp(f, "--skip-nonfinite")) o.skip_nonfinite = 1;
        else if (!strcmp(f, "--precision")) o.precision = args_precision(&a);
        else args_unknown(&a);
    }
    void *keep = NULL;
    if (resume) {
        if (others) {
            fprintf(stderr, "bertc train: --resume takes every option from the checkpoint; only --threads and --quiet (and --device) may be given with it\n");
            recipe_free(argv, argc0, argv0);
            return 2;
        }
        bertc_error lerr = {0};
        int given = o.threads;
        if (bertc_train_options_load(&o, resume, &keep, &lerr)) {
            fprintf(stderr, "bertc train: %s\n", lerr.msg);
            recipe_free(argv, argc0, argv0);
            return 1;
        }
        if (threads_given) o.threads = given;
    }
    if (device) o.device = device; /* a resumed run may move to another device */
    o.stop_after_epoch = stop_after;
    if (!o.model_dir || !o.train_spec || !o.out_dir) {
        fprintf(stderr, "bertc train: --model, --train and --out are required (see bertc train --help)\n");
        recipe_free(argv, argc0, argv0);
        return 2;
    }
    o.on_log = progress_log;
    if (!quiet) o.on_progress = progress_print;
    o.stop = &stop_signal;
    install_signals();

    bertc_train_result r;
    bertc_error err = {0};
    int rc = bertc_train(&o, &r, &err);
    if (rc) {
        progress_end();
        fprintf(stderr, "bertc train: %s\n", err.msg);
        bertc_train_options_release(keep);
        recipe_free(argv, argc0, argv0);
        /* Interrupted (checkpoint saved): the shell's convention for death by that signal. */
        return rc == BERTC_EINTERRUPTED && stop_signal ? 128 + stop_signal : 1;
    }
    if (r.paused) {
        progress_end();
        printf("paused after epoch %d: val accuracy %.4f, train accuracy %.4f (best weights so far); continue with: bertc train --resume %s\n",
               r.epochs_run, r.val.accuracy, r.train.accuracy, o.out_dir);
        bertc_train_options_release(keep);
        recipe_free(argv, argc0, argv0);
        return 0;
    }
    if (r.skipped_updates) printf("%ld updates skipped for a non-finite loss or gradient\n", r.skipped_updates);
    progress_end();
    if (o.eval_train) printf("train accuracy %.4f  train loss %.4f  (%ld examples, eval mode)\n", r.train.accuracy, r.train.loss, r.train.n);
    if (o.val_spec) {
        printf("val   accuracy %.4f  val   loss %.4f  (%ld examples)\n", r.val.accuracy, r.val.loss, r.val.n);
        printf("best epoch %d of %d run%s", r.best_epoch, r.epochs_run, r.stopped_early ? " (stopped early)" : "");
        if (o.eval_train) printf(", train-val accuracy gap %.4f", r.train.accuracy - r.val.accuracy);
        printf("\n");
    }
    printf("%ld updates in %.1f s (%.1f examples/s); model written to %s\n", r.steps, r.train_seconds, r.examples_per_s, o.out_dir);
    double this_train = r.train_seconds - r.resumed_seconds; /* a resumed run: this call's share */
    printf("wall %.1f s: training %.1f, evaluation %.1f, checkpoints and model %.1f, data and model loading %.1f "
           "(data %.2f, waiting for the device %.2f, model %.2f, tokenizing %.2f)\n",
           r.wall_seconds, this_train, r.eval_seconds, r.save_seconds,
           r.wall_seconds - this_train - r.eval_seconds - r.save_seconds, r.data_seconds, r.device_wait_seconds,
           r.model_seconds, r.tokenize_seconds);
    printf("report: %s/report.html\n", o.out_dir);
    bertc_train_options_release(keep);
    recipe_free(argv, argc0, argv0);
    return 0;
}
