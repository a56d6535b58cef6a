/* Recipe files (`bertc train --recipe FILE`): one setting a line, "key = value", "key value" or
 * "key" (a boolean flag); '#' starts a comment; blank lines are skipped. The reader turns the file
 * into command-line flags ("--key", "value") and leaves their meaning to the flag parser. Kept in
 * the library (not the CLI) so that it returns errors instead of exiting and can be fuzzed. */
#ifndef BERTC_UTIL_RECIPE_FILE_H
#define BERTC_UTIL_RECIPE_FILE_H

#include "bertc.h"

/* Reads path into *flags (a NULL-terminated array of *n new strings: "--lr", "3e-5", "--quiet",
 * ...). Errors name the file and the line. Free the result with recipe_file_free. */
int recipe_file_read(const char *path, char ***flags, int *n, bertc_error *err);
void recipe_file_free(char **flags);

#endif
