#include "cli/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "util/clock.h"

static int bar_drawn;
static double last_plain;

static void fmt_eta(double s, char *buf, size_t n) {
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

void progress_print(const bertc_progress *p, void *user) {
    (void)user;
    int tty = isatty(STDERR_FILENO);
    char eta[32];
    fmt_eta(p->eta_s, eta, sizeof eta);
    if (!tty) {
        /* Logs from pipes and CI get a line every 30 seconds rather than a flood. */
        double t = now_s();
        if (t - last_plain < 30 && p->done < p->total) return;
        last_plain = t;
        if (!strcmp(p->phase, "train"))
            fprintf(stderr, "epoch %d/%d step %ld/%ld loss %.4f lr %.3g %.1f ex/s eta %s\n", p->epoch, p->epochs, p->step,
                    p->steps, p->loss, p->lr, p->examples_per_s, eta);
        return;
    }
    const int width = 24;
    int fill = p->total > 0 ? (int)((double)width * p->done / p->total) : 0;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    if (!strcmp(p->phase, "train"))
        fprintf(stderr, "\r\033[Kepoch %d/%d [%s] step %ld/%ld loss %.4f lr %.2e %.1f ex/s eta %s", p->epoch, p->epochs,
                bar, p->step, p->steps, p->loss, p->lr, p->examples_per_s, eta);
    else
        fprintf(stderr, "\r\033[Kevaluating [%s] %ld/%ld %.1f ex/s", bar, p->done, p->total, p->examples_per_s);
    bar_drawn = 1;
}

void progress_log(const char *line, void *user) {
    (void)user;
    if (bar_drawn) fputs("\r\033[K", stderr);
    bar_drawn = 0;
    fprintf(stderr, "%s\n", line);
}

void progress_end(void) {
    if (bar_drawn) fputs("\r\033[K", stderr);
    bar_drawn = 0;
}
