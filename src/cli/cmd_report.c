/* bertc report: (re)writes DIR/report.html from a run folder's metrics.jsonl and summary.json. */
#include <stdio.h>
#include <string.h>

#include "bertc.h"
#include "cli/commands.h"
#include "report/html.h"

static void usage(void) {
    printf("usage: bertc report DIR\n\n"
           "Writes DIR/report.html from the metrics.jsonl and summary.json that bertc train wrote into DIR:\n"
           "loss and accuracy curves, the learning-rate schedule, the validation confusion matrix with\n"
           "per-class precision/recall/F1, the final figures and the hyperparameters. The page is\n"
           "self-contained (inline SVG, no JavaScript, nothing loaded from elsewhere). bertc train writes\n"
           "it at the end of each run; this command rebuilds it.\n\n"
           "  --help                   this text\n");
}

int cmd_report(int argc, char **argv) {
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage();
            return 0;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "bertc report: unknown option %s (see bertc report --help)\n", a);
            return 2;
        }
        if (dir) {
            fprintf(stderr, "bertc report: one run folder expected, got '%s' and '%s' (see bertc report --help)\n", dir, a);
            return 2;
        }
        dir = a;
    }
    if (!dir) {
        fprintf(stderr, "bertc report: a run folder is required: bertc report DIR (see bertc report --help)\n");
        return 2;
    }
    bertc_error err = {0};
    if (report_write_html(dir, &err)) {
        fprintf(stderr, "bertc report: %s\n", err.msg);
        return 1;
    }
    printf("report: %s/report.html\n", dir);
    return 0;
}
