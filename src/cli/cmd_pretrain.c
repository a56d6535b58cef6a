/* bertc pretrain --mlm: continued masked-language-model training on unlabelled text. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/progress.h"

static void usage(const bertc_pretrain_options *d) {
    printf("usage: bertc pretrain --mlm --model DIR --data DATA --out DIR [options]\n\n"
           "Continues the masked-language-model pretraining of a model's encoder on unlabelled text (BERT's\n"
           "masking: %g%% of the tokens selected, of those 80%% [MASK], 10%% a random token, 10%% unchanged) and\n"
           "writes a Hugging Face folder (config.json with BertForMaskedLM, model.safetensors with bert.* and\n"
           "cls.predictions.*, vocab.txt, tokenizer_config.json) that bertc train --model and transformers load,\n"
           "plus metrics.jsonl (the loss of every update) and summary.json.\n"
           "DATA: a folder of text files (aclImdb/train/unsup), ARCHIVE.tar.gz:FOLDER, a tree of class folders\n"
           "(labels ignored, unsup read), a .jsonl/.csv/.tsv file (--text-column) or a .txt file (one text a line).\n\n"
           "  --mlm                    the objective (the only one so far; required)\n"
           "  --model DIR              model folder to start from\n"
           "  --data DATA              the texts\n"
           "  --out DIR                output folder\n"
           "  --max-examples N         seeded random subset of the texts (default: all)\n"
           "  --text-column NAME       table column holding the text (default %s)\n"
           "  --skip-bad               skip bad records (counted) instead of stopping\n"
           "  --max-length N           tokens per text, [CLS] and [SEP] included; longer texts are truncated (default %d)\n"
           "  --batch-size N           texts per update (default %d)\n"
           "  --steps N                number of updates (default: --epochs passes over the texts)\n"
           "  --epochs N               passes over the texts when --steps is not given (default %d)\n"
           "  --lr X                   peak learning rate (default %g)\n"
           "  --scheduler NAME         constant, linear or cosine (default %s)\n"
           "  --warmup-ratio X         warm-up as a fraction of all updates (default %g)\n"
           "  --weight-decay X         AdamW decoupled weight decay, not on biases and LayerNorm (default %g)\n"
           "  --max-grad-norm X        clip gradients to this global norm; 0 = off (default %g)\n"
           "  --mlm-probability X      share of tokens selected for prediction (default %g)\n"
           "  --whole-word-mask        select whole words (a token and the ## pieces after it)\n"
           "  --freeze-encoder-steps N the first N updates train only the MLM head (useful when the checkpoint\n"
           "                           has none and it starts random); they count in --steps and the schedule\n"
           "  --seed N                 subset, shuffling, masking, dropout and a new head (default %llu)\n"
           "  --precision P            fp32, or bf16: the encoder's matrix products in bf16 with fp32 accumulation,\n"
           "                           as bertc train --precision (default fp32)\n"
           "  --device NAME            cpu (default) or cuda (docs/GPU.md), as bertc train --device\n"
           "  --threads N              CPU threads; 0 = all cores (default 0)\n"
           "  --quiet                  no progress display\n"
           "Ctrl-C or SIGTERM writes the model after the current update and exits with 130 / 143.\n",
           (double)d->mlm_probability * 100, d->text_column, d->max_length, d->batch_size, d->epochs, (double)d->lr,
           d->scheduler, (double)d->warmup_ratio, (double)d->weight_decay, (double)d->max_grad_norm,
           (double)d->mlm_probability, (unsigned long long)d->seed);
}

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) {
    if (stop_signal) _exit(128 + sig);
    stop_signal = sig;
}

int cmd_pretrain(int argc, char **argv) {
    bertc_pretrain_options o;
    bertc_pretrain_options_default(&o);
    int quiet = 0, mlm = 0;
    args a;
    args_init(&a, "pretrain", argc, argv);
    const char *f;
    while ((f = args_next(&a))) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(&o);
            return 0;
        }
        else if (!strcmp(f, "--mlm")) mlm = 1;
        else if (!strcmp(f, "--precision")) o.precision = args_precision(&a);
        else if (!strcmp(f, "--device")) o.device = args_str(&a);
        else if (!strcmp(f, "--model")) o.model_dir = args_str(&a);
        else if (!strcmp(f, "--data")) o.data_spec = args_str(&a);
        else if (!strcmp(f, "--out")) o.out_dir = args_str(&a);
        else if (!strcmp(f, "--max-examples")) o.max_examples = args_long(&a, 0, 1L << 40);
        else if (!strcmp(f, "--text-column")) o.text_column = args_str(&a);
        else if (!strcmp(f, "--skip-bad")) o.skip_bad = 1;
        else if (!strcmp(f, "--max-length")) o.max_length = (int)args_long(&a, 3, 1 << 16);
        else if (!strcmp(f, "--batch-size")) o.batch_size = (int)args_long(&a, 1, 1 << 16);
        else if (!strcmp(f, "--steps")) o.steps = args_long(&a, 1, 1L << 40);
        else if (!strcmp(f, "--epochs")) o.epochs = (int)args_long(&a, 1, 100000);
        else if (!strcmp(f, "--lr")) o.lr = (float)args_double(&a, 0, 10);
        else if (!strcmp(f, "--scheduler")) o.scheduler = args_str(&a);
        else if (!strcmp(f, "--warmup-ratio")) o.warmup_ratio = (float)args_double(&a, 0, 1);
        else if (!strcmp(f, "--weight-decay")) o.weight_decay = (float)args_double(&a, 0, 10);
        else if (!strcmp(f, "--max-grad-norm")) o.max_grad_norm = (float)args_double(&a, 0, 1e30);
        else if (!strcmp(f, "--mlm-probability")) o.mlm_probability = (float)args_double(&a, 0.001, 0.999);
        else if (!strcmp(f, "--whole-word-mask")) o.whole_word_mask = 1;
        else if (!strcmp(f, "--freeze-encoder-steps")) o.freeze_encoder_steps = args_long(&a, 0, 1L << 40);
        else if (!strcmp(f, "--seed")) o.seed = args_u64(&a);
        else if (!strcmp(f, "--threads")) o.threads = (int)args_long(&a, 0, 1024);
        else if (!strcmp(f, "--quiet")) quiet = 1;
        else args_unknown(&a);
    }
    if (!mlm) {
        fprintf(stderr, "bertc pretrain: name the objective: --mlm (masked language modelling, the only one so far)\n");
        return 2;
    }
    if (!o.model_dir || !o.data_spec || !o.out_dir) {
        fprintf(stderr, "bertc pretrain: --model, --data and --out are required (see bertc pretrain --help)\n");
        return 2;
    }
    o.on_log = progress_log;
    if (!quiet) o.on_progress = progress_print;
    o.stop = &stop_signal;
    args_catch_stop(on_stop_signal, 1);

    bertc_pretrain_result r;
    bertc_error err = {0};
    int rc = bertc_pretrain(&o, &r, &err);
    progress_end();
    if (rc) {
        fprintf(stderr, "bertc pretrain: %s\n", err.msg);
        return rc == BERTC_EINTERRUPTED && stop_signal ? 128 + stop_signal : 1;
    }
    long w = r.steps / 2 < 10 ? (r.steps / 2 > 0 ? r.steps / 2 : 1) : 10;
    printf("mlm loss %.4f (mean of the first %ld updates) -> %.4f (of the last %ld)\n", r.first_loss, w, r.last_loss, w);
    printf("%ld updates, %ld texts, %ld tokens (%ld predicted) in %.1f s: %.0f tokens/s; model written to %s\n", r.steps,
           r.examples, r.tokens, r.masked_tokens, r.seconds, r.tokens_per_s, o.out_dir);
    return 0;
}
