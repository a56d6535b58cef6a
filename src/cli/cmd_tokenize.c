/* bertc tokenize: WordPiece-encodes JSON Lines (or plain lines) from stdin, exactly like
 * Hugging Face's BertTokenizerFast, one JSON line of ids per record on stdout. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "tokenizer/wordpiece.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bertc tokenize (--model DIR | --vocab FILE) [options] < records.jsonl\n"
            "\n"
            "Reads one JSON object per line, {\"text\": \"...\", \"text_pair\": \"...\"} (text_pair optional),\n"
            "and writes one line per record:\n"
            "  {\"input_ids\":[...],\"attention_mask\":[...],\"token_type_ids\":[...]}\n"
            "the same ids as Hugging Face's tokenizer(text, text_pair, truncation=True,\n"
            "max_length=N, padding=\"max_length\") in a batch (so \"text_pair\": \"\" is an empty\n"
            "second segment: [CLS] a [SEP] [SEP]). Empty lines are skipped.\n"
            "\n"
            "options:\n"
            "  --model DIR        model folder: DIR/vocab.txt, and DIR/tokenizer_config.json if present\n"
            "  --vocab FILE       a vocab.txt alone (lower-cased, as BERT uncased, unless --no-lowercase)\n"
            "  --lowercase        with --vocab: lower-case and strip accents (the default)\n"
            "  --no-lowercase     with --vocab: keep case and accents (cased models)\n"
            "  --max-length N     truncate (longest first) and pad to N tokens (default 128);\n"
            "                     0: no truncation and no padding\n"
            "  --no-pad           do not pad to --max-length\n"
            "  --plain            each input line is a text, not JSON\n"
            "  --words            print the normalized, pre-tokenized words of each text (space-\n"
            "                     separated, one line per record) instead of ids: for debugging\n"
            "  --help             this help\n");
}

/* Output buffer: numbers are printed straight into it, and it is written out in big blocks. */
typedef struct outbuf {
    char *p;
    size_t n, cap;
} outbuf;

static void out_flush(outbuf *o) {
    if (o->n && fwrite(o->p, 1, o->n, stdout) != o->n) die("tokenize: cannot write to stdout");
    o->n = 0;
}

static void out_reserve(outbuf *o, size_t more) {
    if (o->n + more <= o->cap) return;
    out_flush(o);
    if (more > o->cap) {
        size_t cap = o->cap ? o->cap : 1;
        while (cap < more) cap *= 2;
        char *p = realloc(o->p, cap);
        if (!p) die("tokenize: out of memory");
        o->p = p;
        o->cap = cap;
    }
}

static void out_str(outbuf *o, const char *s, size_t n) {
    out_reserve(o, n);
    memcpy(o->p + o->n, s, n);
    o->n += n;
}

/* "name":[v0,v1,...] */
static void out_array(outbuf *o, const char *name, const int32_t *v, size_t n) {
    out_reserve(o, strlen(name) + 6 + n * 12);
    char *p = o->p + o->n;
    *p++ = '"';
    size_t nl = strlen(name);
    memcpy(p, name, nl);
    p += nl;
    *p++ = '"';
    *p++ = ':';
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        uint32_t x = (uint32_t)v[i];
        if (v[i] < 0) {
            *p++ = '-';
            x = (uint32_t)(-(int64_t)v[i]);
        }
        char tmp[12];
        int k = 0;
        do {
            tmp[k++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        while (k) *p++ = tmp[--k];
    }
    *p++ = ']';
    o->n = (size_t)(p - o->p);
}

/* cJSON keeps strings NUL-terminated, so a "\u0000" escape would cut the text short. The
 * tokenizer drops NUL characters anyway, without any other effect, so remove those escapes
 * before parsing. Returns the new length. */
static size_t remove_nul_escapes(char *s, size_t n) {
    size_t w = 0;
    for (size_t r = 0; r < n;) {
        if (s[r] == '\\' && r + 1 < n) {
            if (s[r + 1] == 'u' && r + 5 < n && !memcmp(s + r + 2, "0000", 4)) {
                r += 6;
                continue;
            }
            s[w++] = s[r++]; /* keep the escape pair whole so "\\u0000" stays text */
        }
        s[w++] = s[r++];
    }
    return w;
}

/* Growable id buffers for --max-length 0 (no truncation). */
typedef struct idbuf {
    int32_t *v;
    size_t cap;
} idbuf;

static size_t tokenize_all(const wordpiece *wp, const char *text, size_t len, idbuf *b) {
    size_t n = wordpiece_tokenize(wp, text, len, b->v, b->cap);
    if (n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < n) cap *= 2;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) die("tokenize: out of memory");
        b->v = v;
        b->cap = cap;
        n = wordpiece_tokenize(wp, text, len, b->v, b->cap);
    }
    return n;
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *vocab = NULL;
    int lowercase = 1, lowercase_given = 0, pad = 1, plain = 0, words = 0;
    long max_length = 128;
    args a;
    args_init(&a, "tokenize", argc, argv);
    for (const char *f; (f = args_next(&a));) {
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(f, "--model")) {
            model = args_str(&a);
        } else if (!strcmp(f, "--vocab")) {
            vocab = args_str(&a);
        } else if (!strcmp(f, "--lowercase")) {
            lowercase = 1;
            lowercase_given = 1;
        } else if (!strcmp(f, "--no-lowercase")) {
            lowercase = 0;
            lowercase_given = 1;
        } else if (!strcmp(f, "--max-length")) {
            max_length = args_long(&a, 0, 1 << 20);
        } else if (!strcmp(f, "--no-pad")) {
            pad = 0;
        } else if (!strcmp(f, "--plain")) {
            plain = 1;
        } else if (!strcmp(f, "--words")) {
            words = 1;
        } else {
            args_unknown(&a);
        }
    }
    if (!model == !vocab) {
        fprintf(stderr, "bertc tokenize: give exactly one of --model DIR and --vocab FILE (see bertc tokenize --help)\n");
        return 2;
    }
    if (model && lowercase_given) {
        fprintf(stderr, "bertc tokenize: --lowercase/--no-lowercase go with --vocab; --model reads tokenizer_config.json\n");
        return 2;
    }
    if (max_length == 1) {
        fprintf(stderr, "bertc tokenize: --max-length must be 0 (no truncation) or at least 2 ([CLS] [SEP])\n");
        return 2;
    }

    wordpiece *wp;
    bertc_error err;
    int rc = model ? wordpiece_load_dir(&wp, model, &err) : wordpiece_load(&wp, vocab, lowercase, &err);
    if (rc) die("%s", err.msg);

    static char inbuf[1 << 20];
    setvbuf(stdin, inbuf, _IOFBF, sizeof inbuf);
    outbuf o = {0};
    out_reserve(&o, 1 << 20);
    size_t n_max = max_length > 0 ? (size_t)max_length : 0;
    int32_t *ids = malloc((n_max + 1) * sizeof *ids), *mask = malloc((n_max + 1) * sizeof *mask),
            *types = malloc((n_max + 1) * sizeof *types);
    idbuf ba = {0}, bb = {0}, full = {0}, fmask = {0}, ftypes = {0};
    char *words_buf = NULL;
    size_t words_cap = 0;
    if (!ids || !mask || !types) die("tokenize: out of memory");

    char *line = NULL;
    size_t line_cap = 0, line_no = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        line_no++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        if (len == 0) continue;

        const char *text = line, *pair = NULL;
        size_t text_len = len, pair_len = 0;
        cJSON *rec = NULL;
        if (!plain) {
            len = remove_nul_escapes(line, len);
            rec = cJSON_ParseWithLength(line, len);
            if (!rec) die("stdin: line %zu: not valid JSON", line_no);
            if (!cJSON_IsObject(rec)) die("stdin: line %zu: not a JSON object", line_no);
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(rec, "text");
            if (!cJSON_IsString(t)) die("stdin: line %zu: field \"text\" must be a string", line_no);
            text = t->valuestring;
            text_len = strlen(text);
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(rec, "text_pair");
            if (p && !cJSON_IsNull(p)) {
                if (!cJSON_IsString(p)) die("stdin: line %zu: field \"text_pair\" must be a string or null", line_no);
                pair = p->valuestring;
                pair_len = strlen(pair);
            }
        }

        if (words) {
            for (int part = 0; part < (pair ? 2 : 1); part++) {
                const char *s = part ? pair : text;
                size_t sl = part ? pair_len : text_len;
                size_t need = wordpiece_basic_tokenize(wp, s, sl, words_buf, words_cap) + 1;
                if (need > words_cap) {
                    words_cap = need * 2;
                    words_buf = realloc(words_buf, words_cap);
                    if (!words_buf) die("tokenize: out of memory");
                    wordpiece_basic_tokenize(wp, s, sl, words_buf, words_cap);
                }
                if (part) out_str(&o, "\t", 1);
                out_str(&o, words_buf, strlen(words_buf));
            }
            out_str(&o, "\n", 1);
        } else if (n_max > 0) {
            int n;
            if (wordpiece_encode(wp, text, text_len, pair, pair_len, (int)n_max, pad, ids, mask, types, &n, &err))
                die("stdin: line %zu: %s", line_no, err.msg);
            size_t shown = pad ? n_max : (size_t)n;
            out_str(&o, "{", 1);
            out_array(&o, "input_ids", ids, shown);
            out_str(&o, ",", 1);
            out_array(&o, "attention_mask", mask, shown);
            out_str(&o, ",", 1);
            out_array(&o, "token_type_ids", types, shown);
            out_str(&o, "}\n", 2);
        } else {
            /* No truncation: [CLS] a [SEP] (b [SEP]) whatever the length. */
            size_t na = tokenize_all(wp, text, text_len, &ba);
            size_t nb = pair ? tokenize_all(wp, pair, pair_len, &bb) : 0;
            size_t n = na + nb + (pair ? 3 : 2);
            if (full.cap < n) {
                full.cap = fmask.cap = ftypes.cap = n * 2;
                full.v = realloc(full.v, full.cap * sizeof *full.v);
                fmask.v = realloc(fmask.v, full.cap * sizeof *fmask.v);
                ftypes.v = realloc(ftypes.v, full.cap * sizeof *ftypes.v);
                if (!full.v || !fmask.v || !ftypes.v) die("tokenize: out of memory");
            }
            size_t k = 0;
            full.v[k++] = wordpiece_cls_id(wp);
            memcpy(full.v + k, ba.v, na * sizeof *ba.v);
            k += na;
            full.v[k++] = wordpiece_sep_id(wp);
            size_t first = k;
            if (pair) {
                memcpy(full.v + k, bb.v, nb * sizeof *bb.v);
                k += nb;
                full.v[k++] = wordpiece_sep_id(wp);
            }
            for (size_t i = 0; i < k; i++) {
                fmask.v[i] = 1;
                ftypes.v[i] = i >= first;
            }
            out_str(&o, "{", 1);
            out_array(&o, "input_ids", full.v, k);
            out_str(&o, ",", 1);
            out_array(&o, "attention_mask", fmask.v, k);
            out_str(&o, ",", 1);
            out_array(&o, "token_type_ids", ftypes.v, k);
            out_str(&o, "}\n", 2);
        }
        cJSON_Delete(rec);
    }
    if (ferror(stdin)) die("tokenize: error reading stdin");
    out_flush(&o);
    if (fflush(stdout) != 0) die("tokenize: cannot write to stdout");
    free(line);
    free(o.p);
    free(ids);
    free(mask);
    free(types);
    free(ba.v);
    free(bb.v);
    free(full.v);
    free(fmask.v);
    free(ftypes.v);
    free(words_buf);
    wordpiece_free(wp);
    return 0;
}
