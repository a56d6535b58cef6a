#include "cli/args.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *pending_value; /* value given inline as --name=value */
static char flag_buf[128];

void args_init(args *a, const char *cmd, int argc, char **argv) {
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->cmd = cmd;
    pending_value = NULL;
}

void die(const char *fmt, ...) {
    va_list ap;
    fputs("bertc: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

const char *args_next(args *a) {
    if (pending_value) {
        fprintf(stderr, "bertc %s: option %s takes no value\n", a->cmd, flag_buf);
        exit(2);
    }
    a->i++;
    if (a->i >= a->argc) return NULL;
    const char *s = a->argv[a->i];
    if (strncmp(s, "--", 2) != 0 && strcmp(s, "-h") != 0) {
        fprintf(stderr, "bertc %s: unexpected argument '%s' (see bertc %s --help)\n", a->cmd, s, a->cmd);
        exit(2);
    }
    const char *eq = strchr(s, '=');
    if (eq) {
        size_t n = (size_t)(eq - s);
        if (n >= sizeof flag_buf) n = sizeof flag_buf - 1;
        memcpy(flag_buf, s, n);
        flag_buf[n] = '\0';
        pending_value = eq + 1;
        return flag_buf;
    }
    snprintf(flag_buf, sizeof flag_buf, "%s", s);
    return flag_buf;
}

const char *args_str(args *a) {
    if (pending_value) {
        const char *v = pending_value;
        pending_value = NULL;
        return v;
    }
    if (a->i + 1 >= a->argc) {
        fprintf(stderr, "bertc %s: option %s needs a value\n", a->cmd, flag_buf);
        exit(2);
    }
    return a->argv[++a->i];
}

long args_long(args *a, long min, long max) {
    const char *s = args_str(a);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "bertc %s: %s must be an integer in [%ld, %ld], got '%s'\n", a->cmd, flag_buf, min, max, s);
        exit(2);
    }
    return v;
}

double args_double(args *a, double min, double max) {
    const char *s = args_str(a);
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "bertc %s: %s must be a number in [%g, %g], got '%s'\n", a->cmd, flag_buf, min, max, s);
        exit(2);
    }
    return v;
}

uint64_t args_u64(args *a) {
    const char *s = args_str(a);
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "bertc %s: %s must be a non-negative integer, got '%s'\n", a->cmd, flag_buf, s);
        exit(2);
    }
    return (uint64_t)v;
}

void args_unknown(args *a) {
    fprintf(stderr, "bertc %s: unknown option %s (see bertc %s --help)\n", a->cmd, flag_buf, a->cmd);
    exit(2);
}

const char *args_precision(args *a) {
    const char *s = args_str(a);
    if (strcmp(s, "fp32") && strcmp(s, "bf16")) {
        fprintf(stderr, "bertc %s: %s must be fp32 or bf16, got '%s'\n", a->cmd, flag_buf, s);
        exit(2);
    }
    return s;
}

int args_pad(args *a) {
    const char *s = args_str(a);
    if (strcmp(s, "static") && strcmp(s, "dynamic")) {
        fprintf(stderr, "bertc %s: %s must be static or dynamic, got '%s'\n", a->cmd, flag_buf, s);
        exit(2);
    }
    return !strcmp(s, "dynamic");
}

void args_catch_stop(void (*handler)(int), int restart) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = restart ? SA_RESTART : 0;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}
