/* bertc init: a model folder with random weights for a config, e.g. bert-base's shape for a
 * speed check on a machine without its weights. */
#include <stdio.h>
#include <string.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"

static void usage(void) {
    printf("usage: bertc init --config DIR --out DIR [--seed N]\n\n"
           "Writes OUT/config.json, OUT/model.safetensors (random weights, initialised as transformers does),\n"
           "OUT/vocab.txt and OUT/tokenizer_config.json from the folder DIR (config.json and vocab.txt).\n"
           "The model trains and runs like any other; its accuracy means nothing until it is trained.\n\n"
           "  --config DIR       folder with config.json and vocab.txt (e.g. a Hugging Face model folder)\n"
           "  --out DIR          output folder\n"
           "  --seed N           (default 42)\n");
}

int cmd_init(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    uint64_t seed = 42;
    args a;
    args_init(&a, "init", argc, argv);
    const char *f;
    while ((f = args_next(&a))) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage();
            return 0;
        }
        else if (!strcmp(f, "--config")) config = args_str(&a);
        else if (!strcmp(f, "--out")) out = args_str(&a);
        else if (!strcmp(f, "--seed")) seed = args_u64(&a);
        else args_unknown(&a);
    }
    if (!config || !out) {
        fprintf(stderr, "bertc init: --config and --out are required (see bertc init --help)\n");
        return 2;
    }
    bertc_error err = {0};
    if (bertc_model_init_random(config, out, seed, &err)) {
        fprintf(stderr, "bertc init: %s\n", err.msg);
        return 1;
    }
    printf("random model written to %s\n", out);
    return 0;
}
