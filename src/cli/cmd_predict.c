/* bertc predict: JSON Lines records in ({"text": ..., "text_pair": ...}), one JSON line out per record. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bertc.h"
#include "cli/args.h"
#include "cli/commands.h"

static void usage(void) {
    printf("usage: bertc predict --model DIR [options] < records.jsonl\n\n"
           "Reads one JSON object per line with \"text\" (and optionally \"text_pair\") and writes one line per\n"
           "record: {\"label\": NAME, \"probs\": [...]} (and \"logits\" with --logits), in input order.\n\n"
           "  --model DIR        model folder\n"
           "  --plain            each input line is a text, not JSON\n"
           "  --logits           also write the logits\n"
           "  --max-length N     tokens per example (default 128)\n"
           "  --threads N        CPU threads; 0 = all cores (default 0)\n"
           "  --device NAME      cpu (default), cuda, cuda:tf32 or cuda:bf16 (see bertc train --help)\n"
           "  --precision P      fp32, or bf16: matrix products in bf16, fp32 accumulation (default fp32)\n");
}

enum { CHUNK = 256 };

typedef struct pending {
    char *text[CHUNK], *pair[CHUNK];
    int n;
} pending;

static void pending_clear(pending *p) {
    for (int i = 0; i < p->n; i++) {
        free(p->text[i]);
        free(p->pair[i]);
    }
    p->n = 0;
}

static int flush(bertc_model *m, pending *p, int max_length, int with_logits, bertc_error *err) {
    if (p->n == 0) return 0;
    int K = bertc_model_num_labels(m);
    float *probs = malloc((size_t)p->n * K * sizeof *probs), *logits = malloc((size_t)p->n * K * sizeof *logits);
    int rc = !probs || !logits ? (snprintf(err->msg, sizeof err->msg, "out of memory"), BERTC_ENOMEM)
                               : bertc_predict(m, (const char *const *)p->text, (const char *const *)p->pair, (size_t)p->n,
                                               max_length, probs, logits, err);
    for (int i = 0; !rc && i < p->n; i++) {
        const float *pr = probs + (size_t)i * K, *lg = logits + (size_t)i * K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (pr[k] > pr[best]) best = k;
        cJSON *lab = cJSON_CreateString(bertc_model_label(m, best));
        char *ls = cJSON_PrintUnformatted(lab);
        cJSON_Delete(lab);
        printf("{\"label\":%s,\"label_id\":%d,\"probs\":[", ls ? ls : "null", best);
        free(ls);
        for (int k = 0; k < K; k++) printf("%s%.6g", k ? "," : "", pr[k]);
        printf("]");
        if (with_logits) {
            printf(",\"logits\":[");
            for (int k = 0; k < K; k++) printf("%s%.7g", k ? "," : "", lg[k]);
            printf("]");
        }
        printf("}\n");
    }
    free(probs);
    free(logits);
    pending_clear(p);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    const char *model = NULL, *device = NULL;
    int plain = 0, with_logits = 0, max_length = 128, threads = 0;
    const char *precision = "fp32";
    args a;
    args_init(&a, "predict", argc, argv);
    const char *f;
    while ((f = args_next(&a))) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage();
            return 0;
        }
        else if (!strcmp(f, "--model")) model = args_str(&a);
        else if (!strcmp(f, "--plain")) plain = 1;
        else if (!strcmp(f, "--logits")) with_logits = 1;
        else if (!strcmp(f, "--max-length")) max_length = (int)args_long(&a, 2, 1 << 16);
        else if (!strcmp(f, "--threads")) threads = (int)args_long(&a, 0, 1024);
        else if (!strcmp(f, "--device")) device = args_str(&a);
        else if (!strcmp(f, "--precision")) precision = args_precision(&a);
        else args_unknown(&a);
    }
    if (!model) {
        fprintf(stderr, "bertc predict: --model is required (see bertc predict --help)\n");
        return 2;
    }
    bertc_set_threads(threads);
    bertc_error err = {0};
    bertc_model *m = NULL;
    bertc_open_options oo;
    bertc_open_options_default(&oo);
    oo.device = device;
    oo.precision = precision;
    if (bertc_model_open(&m, model, &oo, &err)) {
        fprintf(stderr, "bertc predict: %s\n", err.msg);
        return 1;
    }
    pending p = {0};
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (!rc && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        char *text = NULL, *pair = NULL;
        if (plain) {
            text = strdup(line);
        } else {
            if (len == 0) continue;
            cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
            cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "text") : NULL;
            cJSON *tp = j ? cJSON_GetObjectItemCaseSensitive(j, "text_pair") : NULL;
            if (!cJSON_IsString(t) || (tp && !cJSON_IsString(tp) && !cJSON_IsNull(tp))) {
                cJSON_Delete(j);
                snprintf(err.msg, sizeof err.msg, "stdin: line %ld: %s", lineno,
                         !j ? "not valid JSON" : "expected an object with a string \"text\" (and optional string \"text_pair\")");
                rc = BERTC_EFORMAT;
                break;
            }
            text = strdup(t->valuestring);
            if (cJSON_IsString(tp) && !(pair = strdup(tp->valuestring))) {
                free(text);
                text = NULL;
            }
            cJSON_Delete(j);
        }
        if (!text) {
            snprintf(err.msg, sizeof err.msg, "stdin: line %ld: out of memory", lineno);
            rc = BERTC_ENOMEM;
            break;
        }
        p.text[p.n] = text;
        p.pair[p.n] = pair;
        p.n++;
        if (p.n == CHUNK) rc = flush(m, &p, max_length, with_logits, &err);
    }
    if (!rc) rc = flush(m, &p, max_length, with_logits, &err);
    pending_clear(&p);
    free(line);
    bertc_model_free(m);
    if (rc) {
        fprintf(stderr, "bertc predict: %s\n", err.msg);
        return 1;
    }
    return 0;
}
