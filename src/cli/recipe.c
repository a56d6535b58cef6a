#include "cli/recipe.h"

#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "util/recipe_file.h"

static void push(char ***v, int *n, int *cap, char *s) {
    if (*n + 1 >= *cap) {
        *cap = *cap ? *cap * 2 : 32;
        *v = realloc(*v, (size_t)*cap * sizeof **v);
        if (!*v) die("out of memory");
    }
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

char **recipe_expand(int argc, char **argv, int *out_argc) {
    const char *path = NULL;
    int skip_a = -1, skip_b = -1;
    for (int i = 1; i < argc && !path; i++) {
        if (!strcmp(argv[i], "--recipe")) {
            if (i + 1 >= argc) die("--recipe needs a file");
            path = argv[i + 1];
            skip_a = i;
            skip_b = i + 1;
        } else if (!strncmp(argv[i], "--recipe=", 9)) {
            path = argv[i] + 9;
            skip_a = skip_b = i;
        }
    }
    char **v = NULL;
    int n = 0, cap = 0;
    push(&v, &n, &cap, argv[0]);
    if (path) {
        char **flags;
        int nflags;
        bertc_error err;
        if (recipe_file_read(path, &flags, &nflags, &err)) die("recipe %s", err.msg);
        for (int i = 0; i < nflags; i++) push(&v, &n, &cap, flags[i]);
        free(flags); /* the strings now belong to v */
    }
    for (int i = 1; i < argc; i++)
        if (i != skip_a && i != skip_b) push(&v, &n, &cap, argv[i]);
    *out_argc = n;
    return v;
}

void recipe_free(char **v, int argc, char **argv) {
    if (!v) return;
    for (int i = 1; v[i]; i++) {
        int from_argv = 0;
        for (int j = 1; j < argc && !from_argv; j++) from_argv = v[i] == argv[j];
        if (!from_argv) free(v[i]);
    }
    free(v);
}
