/* Helpers shared by the C tests: a private temporary folder, and JSON fixtures. */
#ifndef BERTC_TESTS_HELPERS_H
#define BERTC_TESTS_HELPERS_H

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "util/fs.h"

/* Makes /tmp/bertc_test_NAME_XXXXXX in dir (at least 64 bytes); returns 0 or -1. */
static inline int test_tmpdir_make(char *dir, size_t size, const char *name) {
    snprintf(dir, size, "/tmp/bertc_test_%s_XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

static inline int test_tmpdir_remove(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Parses a JSON fixture file; NULL when it cannot be read or parsed. */
static inline cJSON *test_load_json(const char *path) {
    char *text = NULL;
    size_t n = 0;
    bertc_error err;
    if (fs_read_all(path, &text, &n, (size_t)64 << 20, &err)) return NULL;
    cJSON *json = cJSON_ParseWithLength(text, n);
    free(text);
    return json;
}

#endif
