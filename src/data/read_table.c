/* Tables: CSV and TSV (RFC 4180, with a header row) and JSON Lines. One record is one
 * example; its id is "line:N", N the line where the record starts, and records keep file order. */
#include "data/data_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* A column (or JSON field) list such as "premise" or "title,content", split at ','. */
typedef struct column_list {
    char *buf;
    char *name[16];
    int n;
    int idx[16]; /* CSV: the column index of each name */
} column_list;

static int column_list_parse(column_list *c, const char *spec, const char *what, bertc_error *err) {
    memset(c, 0, sizeof *c);
    if (!spec) return BERTC_OK;
    if (!(c->buf = strdup(spec))) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    for (char *s = c->buf;;) {
        char *comma = strchr(s, ',');
        if (comma) *comma = '\0';
        if (!s[0] || c->n == 16) {
            free(c->buf);
            c->buf = NULL;
            return bertc_errorf(err, BERTC_EINVAL, "%s \"%s\": expected 1 to 16 names separated by ','", what, spec);
        }
        c->name[c->n++] = s;
        if (!comma) break;
        s = comma + 1;
    }
    return BERTC_OK;
}

/* Joins parts with single spaces (several text columns make one text). */
static char *join_parts(const char **part, int n) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += strlen(part[i]) + 1;
    char *s = malloc(len ? len : 1), *w = s;
    if (!s) return NULL;
    for (int i = 0; i < n; i++) {
        if (i) *w++ = ' ';
        size_t k = strlen(part[i]);
        memcpy(w, part[i], k);
        w += k;
    }
    *w = '\0';
    return s;
}

static const char *skip_bom(const char *s, size_t *len) {
    if (*len >= 3 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB && (unsigned char)s[2] == 0xBF) {
        *len -= 3;
        return s + 3;
    }
    return s;
}

/* ---------------------------------------------------------------- CSV / TSV */

typedef struct csv_parser {
    const char *s;
    size_t len, pos;
    size_t line; /* line number at pos */
    char delim;
    char *buf; /* unescaped fields, each NUL-terminated */
    size_t buf_len, buf_cap;
    size_t *off; /* field i starts at buf + off[i] */
    size_t nf, off_cap;
    size_t rec_line; /* line where the last record started */
} csv_parser;

static int csv_put(csv_parser *p, char c) {
    if (c == '\0') return 0; /* NUL bytes are dropped (texts are C strings) */
    if (p->buf_len == p->buf_cap) {
        size_t cap = p->buf_cap ? p->buf_cap * 2 : 4096;
        char *b = realloc(p->buf, cap);
        if (!b) return -1;
        p->buf = b;
        p->buf_cap = cap;
    }
    p->buf[p->buf_len++] = c;
    return 0;
}

static int csv_end_field(csv_parser *p) {
    if (csv_put(p, 'x')) return -1; /* room for the terminator */
    p->buf[p->buf_len - 1] = '\0';
    return 0;
}

static int csv_start_field(csv_parser *p) {
    if (p->nf == p->off_cap) {
        size_t cap = p->off_cap ? p->off_cap * 2 : 32;
        size_t *o = realloc(p->off, cap * sizeof *o);
        if (!o) return -1;
        p->off = o;
        p->off_cap = cap;
    }
    p->off[p->nf++] = p->buf_len;
    return 0;
}

/* Reads the next record into p->buf / p->off. Returns 1 for a record, 0 at the end,
 * or an error code. Blank lines between records are skipped. */
static int csv_next(csv_parser *p, const char *path, bertc_error *err) {
    const char *s = p->s;
    size_t n = p->len;
    for (;;) { /* blank lines */
        if (p->pos < n && s[p->pos] == '\n') {
            p->pos++;
            p->line++;
        } else if (p->pos + 1 < n && s[p->pos] == '\r' && s[p->pos + 1] == '\n') {
            p->pos += 2;
            p->line++;
        } else break;
    }
    if (p->pos >= n) return 0;
    p->rec_line = p->line;
    p->buf_len = 0;
    p->nf = 0;
    for (;;) {
        if (csv_start_field(p)) goto oom;
        if (p->pos < n && s[p->pos] == '"') {
            size_t open_line = p->line;
            p->pos++;
            for (;;) {
                if (p->pos >= n)
                    return bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: unterminated quoted field (opened here)",
                                        path, open_line);
                char c = s[p->pos];
                if (c == '"') {
                    if (p->pos + 1 < n && s[p->pos + 1] == '"') {
                        if (csv_put(p, '"')) goto oom;
                        p->pos += 2;
                        continue;
                    }
                    p->pos++;
                    break;
                }
                if (c == '\n') p->line++;
                if (csv_put(p, c)) goto oom;
                p->pos++;
            }
            if (p->pos < n && s[p->pos] != p->delim && s[p->pos] != '\n' &&
                !(s[p->pos] == '\r' && p->pos + 1 < n && s[p->pos + 1] == '\n'))
                return bertc_errorf(err, BERTC_EFORMAT,
                                    "%s: line %zu: unexpected character after a closing quote (a quote inside a "
                                    "quoted field must be doubled)",
                                    path, p->line);
        } else {
            /* Unquoted: up to the delimiter or the end of the line; quotes inside are plain characters. */
            while (p->pos < n) {
                char c = s[p->pos];
                if (c == p->delim || c == '\n' || (c == '\r' && p->pos + 1 < n && s[p->pos + 1] == '\n')) break;
                if (csv_put(p, c)) goto oom;
                p->pos++;
            }
        }
        if (csv_end_field(p)) goto oom;
        if (p->pos >= n) return 1;
        if (s[p->pos] == p->delim) {
            p->pos++;
            continue;
        }
        p->pos += s[p->pos] == '\r' ? 2 : 1;
        p->line++;
        return 1;
    }
oom:
    return bertc_errorf(err, BERTC_ENOMEM, "%s: line %zu: out of memory", path, p->line);
}

static const char *csv_field(const csv_parser *p, size_t i) { return p->buf + p->off[i]; }

/* "a, b, c" from the header, for messages. */
static void csv_columns(const char **cols, size_t n, char *buf, size_t size) {
    size_t w = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && w + 1 < size; i++) {
        int r = snprintf(buf + w, size - w, "%s%s", i ? ", " : "", cols[i]);
        if (r < 0 || (size_t)r >= size - w) break;
        w += (size_t)r;
    }
}

/* Finds each name of c among the header's columns; the first column of that name wins. */
static int csv_find(column_list *c, const char **cols, size_t ncols, const char *path, const char *what,
                    bertc_error *err) {
    for (int k = 0; k < c->n; k++) {
        c->idx[k] = -1;
        for (size_t i = 0; i < ncols && c->idx[k] < 0; i++)
            if (strcmp(cols[i], c->name[k]) == 0) c->idx[k] = (int)i;
        if (c->idx[k] < 0) {
            char list[400];
            csv_columns(cols, ncols, list, sizeof list);
            return bertc_errorf(err, BERTC_EFORMAT, "%s: no %s column \"%s\" in the header (columns: %s)", path, what,
                                c->name[k], list);
        }
    }
    return BERTC_OK;
}

static char *csv_join(const csv_parser *p, const column_list *c) {
    const char *part[16];
    for (int k = 0; k < c->n; k++) part[k] = csv_field(p, (size_t)c->idx[k]);
    return join_parts(part, c->n);
}

int read_csv(data_builder *b, const char *path, char delim, bertc_error *err) {
    const dataset_read_options *opt = b->opt;
    char *data;
    size_t len;
    int rc = data_read_file(path, &data, &len, err);
    if (rc) return rc;
    csv_parser p = {.delim = delim, .line = 1};
    p.s = skip_bom(data, &len);
    p.len = len;
    column_list text = {0}, pair = {0}, label = {0};
    char *header_buf = NULL;
    const char **cols = NULL;
    size_t ncols = 0;

    if ((rc = column_list_parse(&text, opt->text_column ? opt->text_column : "text", "text column", err)) ||
        (rc = column_list_parse(&pair, opt->text_pair_column, "text pair column", err)) ||
        (rc = column_list_parse(&label, opt->label_column ? opt->label_column : "label", "label column", err)))
        goto done;
    if (label.n != 1) {
        rc = bertc_errorf(err, BERTC_EINVAL, "label column \"%s\": give one column", opt->label_column);
        goto done;
    }

    rc = csv_next(&p, path, err);
    if (rc == 0) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: empty file (expected a header row naming the columns)", path);
        goto done;
    }
    if (rc != 1) goto done;
    /* Keep the header: the parser's buffer is reused for every record. */
    ncols = p.nf;
    header_buf = malloc(p.buf_len);
    cols = malloc(ncols * sizeof *cols);
    if (!header_buf || !cols) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    memcpy(header_buf, p.buf, p.buf_len);
    for (size_t i = 0; i < ncols; i++) cols[i] = header_buf + p.off[i];
    if ((rc = csv_find(&text, cols, ncols, path, "text", err)) ||
        (rc = csv_find(&pair, cols, ncols, path, "text pair", err)))
        goto done;
    /* No label column: unlabelled examples (for predict), unless one was asked for by name. */
    int has_label = csv_find(&label, cols, ncols, path, "label", err) == BERTC_OK;
    if (!has_label && opt->label_column) {
        rc = BERTC_EFORMAT;
        goto done;
    }
    bertc_error_clear(err);

    while ((rc = csv_next(&p, path, err)) == 1) {
        if (p.nf != ncols) {
            rc = builder_bad(b, err, BERTC_EFORMAT, "%s: line %zu: %zu fields, the header has %zu", path, p.rec_line,
                             p.nf, ncols);
            if (rc) goto done;
            continue;
        }
        char id[32];
        snprintf(id, sizeof id, "line:%zu", p.rec_line);
        char *t = csv_join(&p, &text);
        char *tp = pair.n ? csv_join(&p, &pair) : NULL;
        char *l = has_label ? strdup(csv_field(&p, (size_t)label.idx[0])) : NULL;
        char *i = strdup(id);
        if ((pair.n && !tp) || (has_label && !l)) {
            free(i);
            i = NULL; /* builder_add reports the failed allocation */
        }
        if ((rc = builder_add(b, i, t, tp, l, p.rec_line, err))) goto done;
    }
done:
    free(text.buf);
    free(pair.buf);
    free(label.buf);
    free(header_buf);
    free(cols);
    free(p.buf);
    free(p.off);
    free(data);
    return rc;
}

/* ---------------------------------------------------------------- JSON Lines */

/* cJSON hands strings back as C strings, so a "\u0000" escape would cut a text short
 * without a word. Removing the escapes first drops the NUL instead, as everywhere else.
 * Returns the new length of s[0..n). */
static size_t json_drop_nul_escapes(char *s, size_t n) {
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        if (s[r] == '\\' && r + 1 < n) {
            if (s[r + 1] == 'u' && r + 6 <= n && memcmp(s + r + 2, "0000", 4) == 0) {
                r += 6;
                continue;
            }
            s[w++] = s[r++]; /* the backslash and the character it escapes */
        }
        s[w++] = s[r++];
    }
    return w;
}

/* "text, label" (the keys of an object), for messages. */
static void json_keys(const cJSON *o, char *buf, size_t size) {
    size_t w = 0;
    buf[0] = '\0';
    int k = 0;
    for (const cJSON *c = o->child; c && w + 1 < size; c = c->next, k++) {
        int r = snprintf(buf + w, size - w, "%s%s", k ? ", " : "", c->string ? c->string : "");
        if (r < 0 || (size_t)r >= size - w) break;
        w += (size_t)r;
    }
}

/* The text of the fields in c joined by spaces; NULL with *why set when one is missing or not a string. */
static char *json_join(const cJSON *o, const column_list *c, const char **why, const char **which) {
    const char *part[16];
    for (int k = 0; k < c->n; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, c->name[k]);
        *which = c->name[k];
        if (!v) {
            *why = "no field";
            return NULL;
        }
        if (!cJSON_IsString(v)) {
            *why = "not a string:";
            return NULL;
        }
        part[k] = v->valuestring;
    }
    *why = "out of memory";
    return join_parts(part, c->n);
}

int read_jsonl(data_builder *b, const char *path, bertc_error *err) {
    const dataset_read_options *opt = b->opt;
    char *data;
    size_t len;
    int rc = data_read_file(path, &data, &len, err);
    if (rc) return rc;
    column_list text = {0}, pair = {0}, label = {0};
    const char *label_name = opt->label_column ? opt->label_column : "label";
    const char *s = skip_bom(data, &len), *end = s + len;
    size_t line = 0, labelled = 0;
    char keys[300];
    if ((rc = column_list_parse(&text, opt->text_column ? opt->text_column : "text", "text column", err)) ||
        (rc = column_list_parse(&pair, opt->text_pair_column, "text pair column", err)) ||
        (rc = column_list_parse(&label, label_name, "label column", err)))
        goto done;
    if (label.n != 1) {
        rc = bertc_errorf(err, BERTC_EINVAL, "label column \"%s\": give one column", label_name);
        goto done;
    }
    for (const char *p = s; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *e = nl ? nl : end;
        const char *q = p, *ls = p;
        line++;
        p = nl ? nl + 1 : end;
        while (q < e && (*q == ' ' || *q == '\t' || *q == '\r')) q++;
        if (q == e) continue; /* blank line */
        if (line == 1 && *q == '[') {
            rc = bertc_errorf(err, BERTC_EUNSUPPORTED,
                              "%s: a JSON array; bertc reads JSON Lines (one object per line)", path);
            goto done;
        }
        const char *fail = NULL;
        /* q points into data, ours to change */
        size_t n = json_drop_nul_escapes((char *)q, data_drop_nuls((char *)q, (size_t)(e - q)));
        cJSON *o = cJSON_ParseWithLengthOpts(q, n, &fail, 0);
        if (!o || !cJSON_IsObject(o)) {
            int is_json = o != NULL;
            cJSON_Delete(o);
            if (is_json) rc = builder_bad(b, err, BERTC_EFORMAT, "%s: line %zu: not a JSON object", path, line);
            else
                rc = builder_bad(b, err, BERTC_EFORMAT, "%s: line %zu: invalid JSON near column %zu", path, line,
                                 (size_t)((fail && fail >= q && fail <= e ? fail : q) - ls) + 1);
            if (rc) goto done;
            continue;
        }
        const char *why = NULL, *which = NULL;
        char *t = json_join(o, &text, &why, &which);
        char *tp = NULL;
        if (t && pair.n) tp = json_join(o, &pair, &why, &which);
        if (!t || (pair.n && !tp)) {
            json_keys(o, keys, sizeof keys);
            free(t);
            cJSON_Delete(o);
            rc = builder_bad(b, err, BERTC_EFORMAT, "%s: line %zu: %s \"%s\" (fields: %s)", path, line, why, which,
                             keys);
            if (rc) goto done;
            continue;
        }
        /* The label: a string or an integer; null or absent means unlabelled. */
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, label_name);
        char *l = NULL, num[32];
        int bad_label = 0;
        if (cJSON_IsString(v)) {
            l = strdup(v->valuestring);
        } else if (cJSON_IsNumber(v)) {
            double x = v->valuedouble;
            /* Range first: converting a double outside long long's range is undefined behaviour. */
            if (!(x >= -9007199254740992.0 && x <= 9007199254740992.0) || x != (double)(long long)x) bad_label = 1;
            else {
                snprintf(num, sizeof num, "%lld", (long long)x);
                l = strdup(num);
            }
        } else if (v && !cJSON_IsNull(v)) {
            bad_label = 1;
        }
        int has_label = v && !cJSON_IsNull(v);
        cJSON_Delete(o); /* v is gone from here on */
        if (bad_label) {
            free(t);
            free(tp);
            rc = builder_bad(b, err, BERTC_EFORMAT, "%s: line %zu: label \"%s\" must be a string or an integer", path,
                             line, label_name);
            if (rc) goto done;
            continue;
        }
        labelled += has_label;
        char id[32];
        snprintf(id, sizeof id, "line:%zu", line);
        char *i = strdup(id);
        if (has_label && !l) {
            free(i);
            i = NULL;
        }
        if ((rc = builder_add(b, i, t, tp, l, line, err))) goto done;
    }
    if (opt->label_column && labelled == 0 && b->n > 0)
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: no line has the label field \"%s\"", path, opt->label_column);
done:
    free(text.buf);
    free(pair.buf);
    free(label.buf);
    free(data);
    return rc;
}
