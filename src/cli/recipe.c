#include "cli/recipe.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static void push(char ***v, int *n, int *cap, char *s) {
    if (*n + 1 >= *cap) {
        *cap = *cap ? *cap * 2 : 32;
        *v = realloc(*v, (size_t)*cap * sizeof **v);
        if (!*v) die("out of memory");
    }
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

static char *dup_or_die(const char *s) {
    char *d = strdup(s);
    if (!d) die("out of memory");
    return d;
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
        FILE *f = fopen(path, "r");
        if (!f) die("%s: cannot open recipe: %s", path, strerror(errno));
        char line[4096];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            if (!strchr(line, '\n') && !feof(f)) die("%s: line %d: too long", path, lineno);
            char *hash = strchr(line, '#');
            if (hash) *hash = '\0';
            char *s = trim(line);
            if (!*s) continue;
            char *key = s, *val = NULL;
            char *sep = strpbrk(s, "= \t");
            if (sep) {
                *sep = '\0';
                val = trim(sep + 1);
                if (*val == '=') val = trim(val + 1);
                if (!*val) val = NULL;
            }
            key = trim(key);
            if (!strncmp(key, "--", 2)) key += 2;
            if (!*key) die("%s: line %d: missing setting name", path, lineno);
            if (!strcmp(key, "recipe")) die("%s: line %d: a recipe cannot include another", path, lineno);
            size_t kl = strlen(key);
            char *flag = malloc(kl + 3);
            if (!flag) die("out of memory");
            memcpy(flag, "--", 2);
            memcpy(flag + 2, key, kl + 1);
            push(&v, &n, &cap, flag);
            if (val) push(&v, &n, &cap, dup_or_die(val));
        }
        fclose(f);
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
