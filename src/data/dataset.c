/* Datasets: which reader a spec names, the label set, the seeded subset and split files.
 * The readers (read_folder.c, read_table.c) only collect raw records into a data_builder;
 * everything that decides order and labels lives here, so every format follows the same
 * rules (docs/DATA.md). */
#include "data/data_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/rng.h"

/* ---------------------------------------------------------------- small helpers */

int data_read_file(const char *path, char **buf, size_t *len, bertc_error *err) {
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return bertc_errorf(err, BERTC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return bertc_errorf(err, BERTC_EIO, "%s: not a regular file", path);
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    char *p = malloc(cap);
    if (!p) {
        close(fd);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory reading %zu bytes", path, cap);
    }
    for (;;) {
        if (n + 1 == cap) { /* the file grew while we read it: keep reading */
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                close(fd);
                return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
            }
            p = q;
            cap *= 2;
        }
        ssize_t r = read(fd, p + n, cap - 1 - n);
        if (r < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            free(p);
            close(fd);
            return bertc_errorf(err, BERTC_EIO, "%s: read error: %s", path, strerror(e));
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    close(fd);
    p[n] = '\0';
    *buf = p;
    *len = n;
    return BERTC_OK;
}

size_t data_drop_nuls(char *s, size_t len) {
    char *z = memchr(s, '\0', len);
    if (!z) return len;
    size_t w = (size_t)(z - s);
    for (size_t r = w; r < len; r++)
        if (s[r] != '\0') s[w++] = s[r];
    s[w] = '\0';
    return w;
}

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static int all_blank(const char *s) {
    for (; *s; s++)
        if (!is_blank(*s)) return 0;
    return 1;
}

/* A label is an integer when, trimmed of blanks, it is an optional sign and decimal digits
 * that fit in a long long. Integers compare by value ("01" and "1" are the same label). */
static int label_int(const char *s, long long *v) {
    while (is_blank(*s)) s++;
    const char *p = s;
    if (*p == '+' || *p == '-') p++;
    if (*p < '0' || *p > '9') return 0;
    while (*p >= '0' && *p <= '9') p++;
    const char *end = p;
    while (is_blank(*p)) p++;
    if (*p) return 0;
    errno = 0;
    char *e;
    long long x = strtoll(s, &e, 10);
    if (errno || e != end) return 0;
    *v = x;
    return 1;
}

/* The form labels are compared in: trimmed, and integers written in plain decimal. */
static char *label_canonical(const char *s) {
    long long v;
    if (label_int(s, &v)) {
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", v);
        return strdup(tmp);
    }
    while (is_blank(*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && is_blank(s[n - 1])) n--;
    return strndup(s, n);
}

/* ---------------------------------------------------------------- builder */

int builder_add(data_builder *b, char *id, char *text, char *text_pair, char *label, size_t line, bertc_error *err) {
    if (b->opt->unlabelled) { /* pretraining: the labels are not used */
        free(label);
        label = NULL;
    }
    if (!id || !text) goto oom;
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        data_record *r = realloc(b->rec, cap * sizeof *r);
        if (!r) goto oom;
        b->rec = r;
        b->cap = cap;
    }
    b->rec[b->n++] = (data_record){id, text, text_pair, label, line};
    return BERTC_OK;
oom:
    free(id);
    free(text);
    free(text_pair);
    free(label);
    return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory after %zu examples", b->source, b->n);
}

int builder_bad(data_builder *b, bertc_error *err, int code, const char *fmt, ...) {
    if (b->opt->skip_bad) {
        b->skipped++;
        return BERTC_OK;
    }
    va_list ap;
    va_start(ap, fmt);
    bertc_verrorf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void builder_where(const data_builder *b, const data_record *r, char *buf, size_t size) {
    switch (b->kind) {
    case DATA_TABLE: snprintf(buf, size, "%s: line %zu", b->source, r->line); break;
    case DATA_TREE: {
        size_t n = strlen(b->source);
        snprintf(buf, size, "%s%s%s", b->source, n && b->source[n - 1] == '/' ? "" : "/", r->id);
        break;
    }
    case DATA_ARCHIVE:
        snprintf(buf, size, "%s: member %s%s%s", b->source, b->folder, b->folder[0] ? "/" : "", r->id);
        break;
    }
}

static void record_free(data_record *r) {
    free(r->id);
    free(r->text);
    free(r->text_pair);
    free(r->label);
    memset(r, 0, sizeof *r);
}

void builder_free(data_builder *b) {
    for (size_t i = 0; i < b->n; i++) record_free(&b->rec[i]);
    free(b->rec);
    b->rec = NULL;
    b->n = b->cap = 0;
}

static int cmp_record_id(const void *a, const void *b) {
    return strcmp(((const data_record *)a)->id, ((const data_record *)b)->id);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int cmp_int_label(const void *a, const void *b) {
    long long x = 0, y = 0;
    label_int(*(char *const *)a, &x);
    label_int(*(char *const *)b, &y);
    return (x > y) - (x < y);
}

typedef struct label_key {
    const char *name; /* canonical */
    int id;
} label_key;

static int cmp_label_key(const void *a, const void *b) {
    return strcmp(((const label_key *)a)->name, ((const label_key *)b)->name);
}

/* "neg, pos" (cut with "..." when long), for messages. */
static void join_names(char *buf, size_t size, char *const *names, int n) {
    size_t w = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && w + 1 < size; k++) {
        int r = snprintf(buf + w, size - w, "%s%s", k ? ", " : "", names[k]);
        if (r < 0 || (size_t)r >= size - w) {
            if (size > 4) strcpy(buf + size - 4, "...");
            return;
        }
        w += (size_t)r;
    }
}

/* Drops record i as bad (under skip_bad) or fails with "WHERE: what". */
static int bad_record(data_builder *b, size_t i, bertc_error *err, const char *what) {
    char where[600];
    builder_where(b, &b->rec[i], where, sizeof where);
    int rc = builder_bad(b, err, BERTC_EFORMAT, "%s: %s", where, what);
    if (rc == BERTC_OK) record_free(&b->rec[i]); /* id == NULL marks it dropped */
    return rc;
}

int builder_finish(data_builder *b, dataset *out, bertc_error *err) {
    const dataset_read_options *opt = b->opt;
    int rc = BERTC_OK;
    char msg[700];
    char **names = NULL; /* label set, canonical */
    label_key *keys = NULL;
    int num_names = 0;

    /* Trees come out of directory listings and archives in no useful order. */
    if (b->kind != DATA_TABLE && b->n > 0) { /* (qsort must not be given a NULL array, even empty) */
        qsort(b->rec, b->n, sizeof *b->rec, cmp_record_id);
        for (size_t i = 1, last = 0; i < b->n; i++) {
            if (strcmp(b->rec[last].id, b->rec[i].id) != 0) {
                last = i;
                continue;
            }
            if ((rc = bad_record(b, i, err, "the same member twice"))) goto done;
        }
    }

    /* A table is labelled when any record has a label; then every record needs one. */
    int labelled = 0;
    if (b->kind == DATA_TABLE)
        for (size_t i = 0; i < b->n; i++) labelled |= b->rec[i].label != NULL;
    for (size_t i = 0; i < b->n; i++) {
        data_record *r = &b->rec[i];
        if (!r->id) continue;
        if (labelled && !r->label) {
            snprintf(msg, sizeof msg, "no value for the label field \"%s\" (other records have one)",
                     opt->label_column ? opt->label_column : "label");
            if ((rc = bad_record(b, i, err, msg))) goto done;
            continue;
        }
        if (r->label) {
            char *c = label_canonical(r->label);
            if (!c) {
                rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", b->source);
                goto done;
            }
            free(r->label);
            r->label = c;
            if (!c[0]) {
                if ((rc = bad_record(b, i, err, "empty label"))) goto done;
                continue;
            }
        }
        if (opt->reject_empty && (all_blank(r->text) || (r->text_pair && all_blank(r->text_pair)))) {
            if ((rc = bad_record(b, i, err, "empty text"))) goto done;
            continue;
        }
    }

    /* The label set: given from outside (the training set's), or the distinct values found. */
    if (opt->num_label_names > 0) {
        num_names = opt->num_label_names;
        names = calloc((size_t)num_names, sizeof *names);
        if (!names) goto oom;
        for (int k = 0; k < num_names; k++)
            if (!(names[k] = label_canonical(opt->label_names[k]))) goto oom;
    } else {
        size_t n = 0;
        names = malloc((b->n ? b->n : 1) * sizeof *names);
        if (!names) goto oom;
        for (size_t i = 0; i < b->n; i++)
            if (b->rec[i].id && b->rec[i].label) names[n++] = b->rec[i].label;
        qsort(names, n, sizeof *names, cmp_str);
        size_t u = 0;
        int all_int = 1;
        for (size_t i = 0; i < n; i++) {
            if (u > 0 && strcmp(names[u - 1], names[i]) == 0) continue;
            long long v;
            all_int &= label_int(names[i], &v);
            names[u++] = names[i];
        }
        if (u > (size_t)INT_MAX / 2) {
            rc = bertc_errorf(err, BERTC_EUNSUPPORTED, "%s: %zu distinct labels", b->source, u);
            free(names);
            names = NULL;
            goto done;
        }
        if (all_int) qsort(names, u, sizeof *names, cmp_int_label);
        num_names = (int)u;
        for (int k = 0; k < num_names; k++) /* own the strings: records keep theirs */
            if (!(names[k] = strdup(names[k]))) {
                for (int j = 0; j < k; j++) free(names[j]);
                free(names);
                names = NULL;
                goto oom;
            }
    }
    keys = malloc((size_t)(num_names ? num_names : 1) * sizeof *keys);
    if (!keys) goto oom;
    for (int k = 0; k < num_names; k++) keys[k] = (label_key){names[k], k};
    qsort(keys, (size_t)num_names, sizeof *keys, cmp_label_key);
    for (int k = 1; k < num_names; k++)
        if (strcmp(keys[k - 1].name, keys[k].name) == 0) {
            rc = bertc_errorf(err, BERTC_EINVAL, "label set: \"%s\" given twice", keys[k].name);
            goto done;
        }

    /* The dataset itself. */
    size_t kept = 0;
    for (size_t i = 0; i < b->n; i++) kept += b->rec[i].id != NULL;
    out->ex = calloc(kept ? kept : 1, sizeof *out->ex);
    out->labels = calloc((size_t)(num_names ? num_names : 1), sizeof *out->labels);
    if (!out->ex || !out->labels) goto oom;
    for (int k = 0; k < num_names; k++) {
        const char *given = opt->num_label_names > 0 ? opt->label_names[k] : names[k];
        if (!(out->labels[k] = strdup(given))) goto oom;
        out->num_labels = k + 1;
    }
    for (size_t i = 0; i < b->n; i++) {
        data_record *r = &b->rec[i];
        if (!r->id) continue;
        int label = -1;
        if (r->label) {
            label_key want = {r->label, 0};
            label_key *hit = bsearch(&want, keys, (size_t)num_names, sizeof *keys, cmp_label_key);
            if (!hit) {
                char set[256];
                join_names(set, sizeof set, names, num_names);
                snprintf(msg, sizeof msg, "label \"%.200s\" is not in the label set (%s)", r->label, set);
                if ((rc = bad_record(b, i, err, msg))) goto done;
                continue;
            }
            label = hit->id;
        }
        out->ex[out->n++] = (dataset_example){r->id, r->text, r->text_pair, label};
        free(r->label);
        memset(r, 0, sizeof *r); /* now owned by out */
    }
    out->skipped = b->skipped;
    if (out->n == 0) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s%s%s: no examples%s", b->source, b->kind == DATA_ARCHIVE ? ":" : "",
                          b->kind == DATA_ARCHIVE ? b->folder : "",
                          b->skipped ? " left after skipping bad records" : "");
        goto done;
    }
    goto done;
oom:
    rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", b->source);
done:
    if (names)
        for (int k = 0; k < num_names; k++) free(names[k]);
    free(names);
    free(keys);
    builder_free(b);
    if (rc) dataset_free(out);
    return rc;
}

/* ---------------------------------------------------------------- dataset_read */

/* Plain text for unlabelled data: one text per line (LF or CRLF), blank lines skipped. */
static int read_lines(data_builder *b, const char *path, bertc_error *err) {
    char *buf;
    size_t len;
    int rc = data_read_file(path, &buf, &len, err);
    if (rc) return rc;
    size_t line = 0;
    for (char *p = buf, *end = buf + len; p < end && rc == BERTC_OK;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *stop = nl ? nl : end;
        line++;
        size_t n = (size_t)(stop - p);
        if (n > 0 && p[n - 1] == '\r') n--;
        char *text = strndup(p, n);
        if (text) data_drop_nuls(text, n);
        if (text && all_blank(text)) {
            free(text);
        } else {
            char id[32];
            snprintf(id, sizeof id, "line:%zu", line);
            rc = builder_add(b, strdup(id), text, NULL, NULL, line, err);
        }
        p = nl ? nl + 1 : end;
    }
    free(buf);
    return rc;
}

static int ends_with_ci(const char *s, size_t n, const char *suffix) {
    size_t m = strlen(suffix);
    return n >= m && strncasecmp(s + n - m, suffix, m) == 0;
}

/* "ARCHIVE:FOLDER": the first ':' that follows ".tar" or ".tgz" in the spec. */
static const char *archive_colon(const char *spec) {
    const char *t = NULL;
    for (const char *p = spec; *p; p++)
        if (strncasecmp(p, ".tar", 4) == 0 || strncasecmp(p, ".tgz", 4) == 0) {
            t = p;
            break;
        }
    return t ? strchr(t, ':') : NULL;
}

int dataset_read(dataset *out, const char *spec, const dataset_read_options *opt, bertc_error *err) {
    static const dataset_read_options defaults;
    memset(out, 0, sizeof *out);
    if (!opt) opt = &defaults;
    if (!spec || !spec[0]) return bertc_errorf(err, BERTC_EINVAL, "dataset: no file or folder given");
    if (opt->num_label_names < 0 || (opt->num_label_names > 0 && !opt->label_names))
        return bertc_errorf(err, BERTC_EINVAL, "dataset: bad label set (%d names)", opt->num_label_names);
    for (int k = 0; k < opt->num_label_names; k++)
        if (!opt->label_names[k] || !opt->label_names[k][0])
            return bertc_errorf(err, BERTC_EINVAL, "dataset: label name %d is empty", k);

    data_builder b = {.source = spec, .folder = "", .opt = opt};
    int rc;
    struct stat st;
    size_t n = strlen(spec);
    const char *colon;
    if (stat(spec, &st) == 0 && S_ISDIR(st.st_mode)) {
        b.kind = DATA_TREE;
        rc = read_tree_dir(&b, spec, err);
    } else if ((colon = archive_colon(spec))) {
        char *archive = strndup(spec, (size_t)(colon - spec));
        if (!archive) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", spec);
        /* The folder as tar writes it: no "./" in front, no '/' at the end. */
        const char *folder = colon + 1;
        while (folder[0] == '.' && folder[1] == '/') folder += 2;
        char *f = strdup(folder);
        if (!f) {
            free(archive);
            return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", spec);
        }
        size_t fl = strlen(f);
        while (fl > 0 && f[fl - 1] == '/') f[--fl] = '\0';
        if (strcmp(f, ".") == 0) f[0] = '\0';
        b.kind = DATA_ARCHIVE;
        b.source = archive;
        b.folder = f;
        rc = read_tree_archive(&b, archive, f, err);
        if (rc == BERTC_OK) rc = builder_finish(&b, out, err);
        builder_free(&b);
        free(archive);
        free(f);
        return rc;
    } else if (ends_with_ci(spec, n, ".csv") || ends_with_ci(spec, n, ".tsv")) {
        b.kind = DATA_TABLE;
        rc = read_csv(&b, spec, ends_with_ci(spec, n, ".tsv") ? '\t' : ',', err);
    } else if (ends_with_ci(spec, n, ".jsonl") || ends_with_ci(spec, n, ".json")) {
        b.kind = DATA_TABLE;
        rc = read_jsonl(&b, spec, err);
    } else if (opt->unlabelled && ends_with_ci(spec, n, ".txt")) {
        b.kind = DATA_TABLE;
        rc = read_lines(&b, spec, err);
    } else if (ends_with_ci(spec, n, ".tar") || ends_with_ci(spec, n, ".tar.gz") || ends_with_ci(spec, n, ".tgz") ||
               ends_with_ci(spec, n, ".tar.bz2") || ends_with_ci(spec, n, ".tar.xz") ||
               ends_with_ci(spec, n, ".tar.zst")) {
        return bertc_errorf(err, BERTC_EINVAL,
                            "%s: name the folder of class folders inside the archive: %s:FOLDER (e.g. %s:aclImdb/train)",
                            spec, spec, spec);
    } else if (stat(spec, &st) == 0) {
        return bertc_errorf(err, BERTC_EUNSUPPORTED,
                            "%s: unknown dataset format (expected a folder of class folders, ARCHIVE.tar.gz:FOLDER, "
                            ".csv, .tsv, .jsonl or .json)",
                            spec);
    } else {
        return bertc_errorf(err, BERTC_EIO, "%s: no such file or folder", spec);
    }
    if (rc == BERTC_OK) rc = builder_finish(&b, out, err);
    builder_free(&b);
    return rc;
}

void dataset_free(dataset *d) {
    if (!d) return;
    for (size_t i = 0; i < d->n; i++) {
        free(d->ex[i].id);
        free(d->ex[i].text);
        free(d->ex[i].text_pair);
    }
    free(d->ex);
    for (int k = 0; k < d->num_labels; k++) free(d->labels[k]);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- subset and splits */

/* Keeps the examples at idx[0..n) in that order and frees the rest. */
static int dataset_keep(dataset *d, const uint32_t *idx, size_t n, bertc_error *err) {
    dataset_example *ex = malloc((n ? n : 1) * sizeof *ex);
    unsigned char *kept = calloc(d->n ? d->n : 1, 1);
    if (!ex || !kept) {
        free(ex);
        free(kept);
        return bertc_errorf(err, BERTC_ENOMEM, "dataset: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        ex[i] = d->ex[idx[i]];
        kept[idx[i]] = 1;
    }
    for (size_t i = 0; i < d->n; i++)
        if (!kept[i]) {
            free(d->ex[i].id);
            free(d->ex[i].text);
            free(d->ex[i].text_pair);
        }
    free(kept);
    free(d->ex);
    d->ex = ex;
    d->n = n;
    return BERTC_OK;
}

int dataset_select(dataset *d, size_t n, uint64_t seed, bertc_error *err) {
    if (d->n > UINT32_MAX) return bertc_errorf(err, BERTC_EUNSUPPORTED, "dataset: %zu examples is too many", d->n);
    if (n == 0 || n > d->n) n = d->n;
    uint32_t *idx = malloc((d->n ? d->n : 1) * sizeof *idx);
    if (!idx) return bertc_errorf(err, BERTC_ENOMEM, "dataset: out of memory");
    for (size_t i = 0; i < d->n; i++) idx[i] = (uint32_t)i;
    rng r;
    rng_seed(&r, seed);
    rng_shuffle_u32(&r, idx, d->n);
    int rc = dataset_keep(d, idx, n, err);
    free(idx);
    return rc;
}

int dataset_write_split(const dataset *d, FILE *f, const char *split_name, bertc_error *err) {
    for (size_t i = 0; i < d->n; i++) {
        const dataset_example *e = &d->ex[i];
        cJSON *o = cJSON_CreateObject();
        int ok = o && cJSON_AddStringToObject(o, "split", split_name) && cJSON_AddStringToObject(o, "id", e->id);
        if (ok && e->label >= 0 && e->label < d->num_labels)
            ok = cJSON_AddStringToObject(o, "label", d->labels[e->label]) != NULL;
        char *line = ok ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!line) return bertc_errorf(err, BERTC_ENOMEM, "split file: out of memory");
        int w = fputs(line, f);
        cJSON_free(line);
        if (w < 0 || fputc('\n', f) == EOF) return bertc_errorf(err, BERTC_EIO, "split file: write error");
    }
    if (fflush(f) != 0 || ferror(f)) return bertc_errorf(err, BERTC_EIO, "split file: write error");
    return BERTC_OK;
}

typedef struct id_index {
    const char *id;
    uint32_t i;
} id_index;

static int cmp_id_index(const void *a, const void *b) {
    return strcmp(((const id_index *)a)->id, ((const id_index *)b)->id);
}

int dataset_apply_split(dataset *d, const char *path, const char *split_name, bertc_error *err) {
    if (d->n > UINT32_MAX) return bertc_errorf(err, BERTC_EUNSUPPORTED, "dataset: %zu examples is too many", d->n);
    char *buf;
    size_t len;
    int rc = data_read_file(path, &buf, &len, err);
    if (rc) return rc;
    id_index *by_id = malloc((d->n ? d->n : 1) * sizeof *by_id);
    uint32_t *pick = malloc((d->n ? d->n : 1) * sizeof *pick);
    unsigned char *used = calloc(d->n ? d->n : 1, 1);
    size_t npick = 0;
    if (!by_id || !pick || !used) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < d->n; i++) by_id[i] = (id_index){d->ex[i].id, (uint32_t)i};
    qsort(by_id, d->n, sizeof *by_id, cmp_id_index);

    size_t line = 0;
    for (char *p = buf; p < buf + len;) {
        char *nl = memchr(p, '\n', (size_t)(buf + len - p));
        char *end = nl ? nl : buf + len;
        line++;
        char *s = p;
        p = nl ? nl + 1 : buf + len;
        while (s < end && is_blank(*s)) s++;
        if (s == end) continue;
        cJSON *o = cJSON_ParseWithLength(s, (size_t)(end - s));
        const cJSON *js = o ? cJSON_GetObjectItemCaseSensitive(o, "split") : NULL;
        const cJSON *jid = o ? cJSON_GetObjectItemCaseSensitive(o, "id") : NULL;
        const cJSON *jl = o ? cJSON_GetObjectItemCaseSensitive(o, "label") : NULL;
        if (!cJSON_IsString(js) || !cJSON_IsString(jid) || (jl && !cJSON_IsString(jl) && !cJSON_IsNull(jl))) {
            cJSON_Delete(o);
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: expected {\"split\":..., \"id\":..., \"label\":...}",
                              path, line);
            goto done;
        }
        if (strcmp(js->valuestring, split_name) != 0) {
            cJSON_Delete(o);
            continue;
        }
        id_index want_id = {jid->valuestring, 0};
        const id_index *found = bsearch(&want_id, by_id, d->n, sizeof *by_id, cmp_id_index);
        if (!found) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: id \"%.300s\" is not in the dataset", path, line,
                              jid->valuestring);
        } else {
            uint32_t i = found->i;
            const dataset_example *e = &d->ex[i];
            const char *have = e->label >= 0 && e->label < d->num_labels ? d->labels[e->label] : NULL;
            const char *want = cJSON_IsString(jl) ? jl->valuestring : NULL;
            if (used[i])
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: id \"%.300s\" listed twice", path, line,
                                  jid->valuestring);
            else if ((have == NULL) != (want == NULL) || (have && strcmp(have, want) != 0))
                rc = bertc_errorf(err, BERTC_EFORMAT,
                                  "%s: line %zu: id \"%.300s\" has label \"%.100s\" in the split file but \"%.100s\" "
                                  "in the dataset",
                                  path, line, jid->valuestring, want ? want : "(none)", have ? have : "(none)");
            used[i] = 1;
            pick[npick++] = i;
        }
        cJSON_Delete(o);
        if (rc) goto done;
    }
    if (npick == 0) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: no examples for split \"%s\"", path, split_name);
        goto done;
    }
    rc = dataset_keep(d, pick, npick, err);
done:
    free(buf);
    free(by_id);
    free(pick);
    free(used);
    return rc;
}
