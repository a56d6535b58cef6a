/* Placeholder until this subcommand lands: says so and fails. */
#include <stdio.h>

#include "cli/commands.h"

int cmd_eval(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "bertc eval: not implemented yet\n");
    return 1;
}
