/* Minimal flag parsing shared by the subcommands: "--name value", "--name=value" and
 * boolean "--name". Numbers are checked whole ("12x" is an error). */
#ifndef BERTC_CLI_ARGS_H
#define BERTC_CLI_ARGS_H

#include <stdint.h>

typedef struct args {
    int argc;
    char **argv;
    int i;              /* index of the current argument */
    const char *cmd;    /* subcommand name, for messages */
} args;

void args_init(args *a, const char *cmd, int argc, char **argv);
/* The next flag name (without value), or NULL at the end. A positional argument is an error. */
const char *args_next(args *a);
/* Value of the current flag (from "=value" or the next argument); exits with a message if absent. */
const char *args_str(args *a);
long args_long(args *a, long min, long max);
double args_double(args *a, double min, double max);
uint64_t args_u64(args *a);
/* The value of --precision: "fp32" or "bf16"; anything else is a usage error (exit 2). */
const char *args_precision(args *a);
/* --pad static|dynamic: 1 for dynamic (exits 2 on anything else). */
int args_pad(args *a);
/* Prints "bertc CMD: unknown option --X (see bertc CMD --help)" and exits 2. */
void args_unknown(args *a);
/* Installs handler for SIGINT and SIGTERM (the commands that can be stopped cleanly: train,
 * pretrain, sweep). restart: SA_RESTART, so reads and writes in progress carry on; without it a
 * blocking wait (the sweep's wait for its trials) returns EINTR and sees the stop. */
void args_catch_stop(void (*handler)(int), int restart);
/* Prints "bertc: MESSAGE" to stderr and exits with status 1. */
void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

#endif
