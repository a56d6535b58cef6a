#include "util/recipe_file.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/fs.h"

/* A recipe is a few lines; lines longer than this are a mistake (or not a recipe). */
#define RECIPE_MAX_LINE 4096
/* Far more settings than bertc has flags; bounds the array a hostile file can make us build. */
#define RECIPE_MAX_FLAGS 4096
#define RECIPE_MAX_BYTES (1u << 20)

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Appends a copy of s (with prefix) to the NULL-terminated list. */
static int push(char ***v, int *n, int *cap, const char *prefix, const char *s) {
    if (*n + 1 >= *cap) {
        int nc = *cap ? *cap * 2 : 32;
        char **w = realloc(*v, (size_t)nc * sizeof *w);
        if (!w) return -1;
        *v = w;
        *cap = nc;
    }
    size_t np = strlen(prefix), ns = strlen(s);
    char *d = malloc(np + ns + 1);
    if (!d) return -1;
    memcpy(d, prefix, np);
    memcpy(d + np, s, ns + 1);
    (*v)[(*n)++] = d;
    (*v)[*n] = NULL;
    return 0;
}

int recipe_file_read(const char *path, char ***flags, int *n_out, bertc_error *err) {
    *flags = NULL;
    *n_out = 0;
    char *text;
    size_t len;
    int rc = fs_read_all(path, &text, &len, RECIPE_MAX_BYTES, err);
    if (rc) return rc;
    char **v = NULL;
    int n = 0, cap = 0, lineno = 0;
    for (char *p = text; p < text + len && !rc;) {
        char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char *line = p;
        size_t line_len = (size_t)((nl ? nl : text + len) - p);
        p = nl ? nl + 1 : text + len;
        line[line_len] = '\0';
        lineno++;
        if (line_len > RECIPE_MAX_LINE) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %d: too long (more than %d bytes)", path, lineno,
                              RECIPE_MAX_LINE);
            break;
        }
        if (strlen(line) != line_len) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %d: NUL byte; a recipe is a text file", path, lineno);
            break;
        }
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
        if (!*key) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %d: missing setting name", path, lineno);
            break;
        }
        if (!strcmp(key, "recipe")) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %d: a recipe cannot include another", path, lineno);
            break;
        }
        if (n + 2 > RECIPE_MAX_FLAGS) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %d: more than %d settings", path, lineno,
                              RECIPE_MAX_FLAGS / 2);
            break;
        }
        if (push(&v, &n, &cap, "--", key) || (val && push(&v, &n, &cap, "", val)))
            rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    }
    free(text);
    if (rc) {
        recipe_file_free(v);
        return rc;
    }
    if (!v && !(v = calloc(1, sizeof *v))) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    *flags = v;
    *n_out = n;
    return BERTC_OK;
}

void recipe_file_free(char **flags) {
    if (!flags) return;
    for (char **p = flags; *p; p++) free(*p);
    free(flags);
}
