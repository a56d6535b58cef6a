/* The tokenizer must give Hugging Face's ids. The fixtures hold raw texts (invalid UTF-8
 * included) with BertTokenizerFast's input_ids, attention_mask and token_type_ids, written by
 * reference/hf_tokenize.py; each case is re-encoded here and compared field by field. The
 * first mismatch of every failing case is printed with its position and the tokens around it. */
#include <archive.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "tokenizer/utf8.h"
#include "tokenizer/wordpiece.h"
#include "util/rng.h"

#define FIXTURES "tests/fixtures/tokenizer"

static wordpiece *load_bert(void) {
    wordpiece *wp = NULL;
    bertc_error err;
    int rc = wordpiece_load_dir(&wp, FIXTURES, &err);
    if (rc) fprintf(stderr, "%s\n", err.msg);
    assert_int_equal(rc, 0);
    return wp;
}

/* ------------------------------------------------------------------ case files */

/* Whole file into memory; ".gz" files are decompressed through libarchive. */
static char *read_all(const char *path, size_t *len) {
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_raw(a);
    struct archive_entry *e;
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK) {
        fprintf(stderr, "%s: %s\n", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    size_t cap = 1 << 20, n = 0;
    char *buf = malloc(cap + 1);
    for (;;) {
        if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
        la_ssize_t got = archive_read_data(a, buf + n, cap - n);
        if (got < 0) {
            fprintf(stderr, "%s: %s\n", path, archive_error_string(a));
            free(buf);
            archive_read_free(a);
            return NULL;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    archive_read_free(a);
    buf[n] = '\0';
    *len = n;
    return buf;
}

typedef struct reader {
    const char *p, *end;
} reader;

/* "KEY N\n": returns N, or -1 when the key does not match. */
static long read_key(reader *r, const char *key) {
    size_t kl = strlen(key);
    if ((size_t)(r->end - r->p) < kl + 1 || memcmp(r->p, key, kl) != 0 || r->p[kl] != ' ') return -1;
    char *e;
    long v = strtol(r->p + kl + 1, &e, 10);
    r->p = e;
    return v;
}

static int read_ints(reader *r, const char *key, int32_t *out, long cap) {
    long n = read_key(r, key);
    assert_true(n >= 0 && n <= cap);
    for (long i = 0; i < n; i++) {
        char *e;
        out[i] = (int32_t)strtol(r->p, &e, 10);
        assert_true(e != r->p);
        r->p = e;
    }
    assert_true(r->p < r->end && *r->p == '\n');
    r->p++;
    return (int)n;
}

static void print_tokens(const wordpiece *wp, const char *label, const int32_t *v, int n, int at) {
    fprintf(stderr, "    %s:", label);
    for (int i = at - 3 < 0 ? 0 : at - 3; i < n && i <= at + 3; i++) {
        const char *t = wordpiece_token(wp, v[i]);
        fprintf(stderr, i == at ? " >%d(%s)<" : " %d(%s)", v[i], t ? t : "?");
    }
    fprintf(stderr, "\n");
}

/* Encodes every case of a file and compares; returns the number of failing cases. */
static int check_case_file(const char *path, int *n_cases) {
    wordpiece *wp = load_bert();
    size_t len = 0;
    char *data = read_all(path, &len);
    assert_non_null(data);
    reader r = {data, data + len};
    const char *magic = "BERTC-TOKENIZER-CASES 1\n";
    assert_memory_equal(r.p, magic, strlen(magic));
    r.p += strlen(magic);
    enum { CAP = 1 << 16 };
    int32_t *want[3], *got[3];
    for (int k = 0; k < 3; k++) {
        want[k] = malloc(CAP * sizeof(int32_t));
        got[k] = malloc(CAP * sizeof(int32_t));
    }
    int32_t *a_ids = malloc(CAP * sizeof(int32_t)), *b_ids = malloc(CAP * sizeof(int32_t));
    int failures = 0;
    *n_cases = 0;
    while (r.p < r.end) {
        char name[256];
        int ml, pad, has_pair, used;
        assert_int_equal(sscanf(r.p, "case %255s %d %d %d%n", name, &ml, &pad, &has_pair, &used), 4);
        r.p += used + 1;
        long tl = read_key(&r, "text");
        assert_true(tl >= 0 && r.p + 1 + tl < r.end);
        const char *text = r.p + 1;
        r.p += 1 + tl + 1;
        const char *pair = NULL;
        long pl = 0;
        if (has_pair) {
            pl = read_key(&r, "pair");
            assert_true(pl >= 0 && r.p + 1 + pl < r.end);
            pair = r.p + 1;
            r.p += 1 + pl + 1;
        }
        int nw = read_ints(&r, "ids", want[0], CAP);
        assert_int_equal(read_ints(&r, "mask", want[1], CAP), nw);
        assert_int_equal(read_ints(&r, "types", want[2], CAP), nw);
        (*n_cases)++;

        int ng;
        if (ml > 0) {
            bertc_error err;
            for (int k = 0; k < 3; k++) memset(got[k], 0x55, (size_t)ml * sizeof(int32_t));
            assert_int_equal(wordpiece_encode(wp, text, (size_t)tl, pair, (size_t)pl, ml, pad, got[0], got[1], got[2], &ng, &err), 0);
            if (pad) ng = ml;
        } else {
            /* No truncation: [CLS] a [SEP] (b [SEP]) from wordpiece_tokenize. */
            size_t na = wordpiece_tokenize(wp, text, (size_t)tl, a_ids, CAP);
            size_t nb = pair ? wordpiece_tokenize(wp, pair, (size_t)pl, b_ids, CAP) : 0;
            assert_true(na + nb + 3 < CAP);
            ng = 0;
            got[0][ng++] = wordpiece_cls_id(wp);
            for (size_t i = 0; i < na; i++) got[0][ng++] = a_ids[i];
            got[0][ng++] = wordpiece_sep_id(wp);
            int first = ng;
            if (pair) {
                for (size_t i = 0; i < nb; i++) got[0][ng++] = b_ids[i];
                got[0][ng++] = wordpiece_sep_id(wp);
            }
            for (int i = 0; i < ng; i++) {
                got[1][i] = 1;
                got[2][i] = i >= first;
            }
        }
        static const char *fields[3] = {"input_ids", "attention_mask", "token_type_ids"};
        for (int k = 0; k < 3; k++) {
            int at = -1;
            for (int i = 0; i < (ng < nw ? ng : nw) && at < 0; i++)
                if (got[k][i] != want[k][i]) at = i;
            if (at < 0 && ng != nw) at = ng < nw ? ng : nw;
            if (at >= 0) {
                fprintf(stderr, "MISMATCH %s: case %s (max_length %d, pad %d): %s differ at position %d (length %d, want %d)\n",
                        path, name, ml, pad, fields[k], at, ng, nw);
                print_tokens(wp, "want", want[0], nw, at);
                print_tokens(wp, "got ", got[0], ng, at);
                failures++;
                break;
            }
        }
    }
    for (int k = 0; k < 3; k++) {
        free(want[k]);
        free(got[k]);
    }
    free(a_ids);
    free(b_ids);
    free(data);
    wordpiece_free(wp);
    return failures;
}

static void test_hard_cases(void **state) {
    (void)state;
    int n;
    int bad = check_case_file(FIXTURES "/hard.cases", &n);
    fprintf(stderr, "hard.cases: %d of %d cases match Hugging Face\n", n - bad, n);
    assert_true(n > 100);
    assert_int_equal(bad, 0);
}

static void test_imdb_cases(void **state) {
    (void)state;
    int n;
    int bad = check_case_file(FIXTURES "/imdb.cases.gz", &n);
    fprintf(stderr, "imdb.cases.gz: %d of %d cases match Hugging Face\n", n - bad, n);
    assert_true(n >= 600);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------------ API */

static void test_vocab_and_specials(void **state) {
    (void)state;
    wordpiece *wp = load_bert();
    assert_int_equal(wordpiece_vocab_size(wp), 30522);
    assert_int_equal(wordpiece_pad_id(wp), 0);
    assert_int_equal(wordpiece_unk_id(wp), 100);
    assert_int_equal(wordpiece_cls_id(wp), 101);
    assert_int_equal(wordpiece_sep_id(wp), 102);
    assert_int_equal(wordpiece_mask_id(wp), 103);
    assert_int_equal(wordpiece_token_id(wp, "hello"), 7592);
    assert_int_equal(wordpiece_token_id(wp, "##ing"), 2075);
    assert_int_equal(wordpiece_token_id(wp, "no-such-token"), -1);
    assert_string_equal(wordpiece_token(wp, 7592), "hello");
    assert_string_equal(wordpiece_token(wp, 30521), "##～");
    assert_null(wordpiece_token(wp, -1));
    assert_null(wordpiece_token(wp, 30522));
    wordpiece_free(wp);
}

static void test_pair_truncation_and_padding(void **state) {
    (void)state;
    wordpiece *wp = load_bert();
    bertc_error err;
    int32_t ids[16], mask[16], types[16];
    int n;
    /* 10 + 10 tokens into 12 - 3 = 9: the second gets the odd one (Hugging Face: 4 and 5). */
    const char *a = "a b c d e f g h i j", *b = "k l m n o p q r s t";
    assert_int_equal(wordpiece_encode(wp, a, strlen(a), b, strlen(b), 12, 1, ids, mask, types, &n, &err), 0);
    assert_int_equal(n, 12);
    int sep1 = -1;
    for (int i = 1; i < n; i++)
        if (ids[i] == 102 && sep1 < 0) sep1 = i;
    assert_int_equal(sep1, 5);
    assert_int_equal(ids[0], 101);
    assert_int_equal(ids[11], 102);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(mask[i], 1);
        assert_int_equal(types[i], i > 5);
    }
    /* A short first text is kept whole; the long second one is cut. */
    const char *s = "short";
    assert_int_equal(wordpiece_encode(wp, s, strlen(s), b, strlen(b), 8, 1, ids, mask, types, &n, &err), 0);
    static const int32_t want[8] = {101, 2460, 102, 1047, 1048, 1049, 1050, 102};
    assert_memory_equal(ids, want, sizeof want);
    /* Padding: [PAD] with mask 0 and type 0 after the real tokens. */
    assert_int_equal(wordpiece_encode(wp, s, strlen(s), NULL, 0, 16, 1, ids, mask, types, &n, &err), 0);
    assert_int_equal(n, 3);
    for (int i = 3; i < 16; i++) {
        assert_int_equal(ids[i], 0);
        assert_int_equal(mask[i], 0);
        assert_int_equal(types[i], 0);
    }
    /* No padding: nothing is written past the real tokens. */
    for (int i = 0; i < 16; i++) ids[i] = mask[i] = types[i] = -7;
    assert_int_equal(wordpiece_encode(wp, s, strlen(s), b, strlen(b), 16, 0, ids, mask, types, &n, &err), 0);
    assert_int_equal(n, 14);
    assert_int_equal(ids[13], 102);
    assert_int_equal(ids[14], -7);
    assert_int_equal(mask[14], -7);
    assert_int_equal(types[15], -7);
    /* Too short for the special tokens. */
    assert_int_equal(wordpiece_encode(wp, s, strlen(s), b, strlen(b), 2, 1, ids, mask, types, &n, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "max_length"));
    assert_int_equal(wordpiece_encode(wp, s, strlen(s), NULL, 0, 2, 1, ids, mask, types, &n, &err), 0);
    assert_int_equal(n, 2);
    wordpiece_free(wp);
}

static void test_basic_tokenize(void **state) {
    (void)state;
    wordpiece *wp = load_bert();
    char out[256];
    const char *t = "Héllo,WORLD!  İstanbul ΣΑΣ 我爱 a\xc2\xad" "b [SEP]x\xe2\x80\x8by";
    wordpiece_basic_tokenize(wp, t, strlen(t), out, sizeof out);
    assert_string_equal(out, "hello , world ! istanbul σασ 我 爱 ab [SEP] xy");
    /* Truncated output is still NUL-terminated; the full length is returned. */
    size_t full = wordpiece_basic_tokenize(wp, t, strlen(t), out, 6);
    assert_string_equal(out, "hello");
    assert_int_equal(full, strlen("hello , world ! istanbul σασ 我 爱 ab [SEP] xy"));
    wordpiece_free(wp);
}

static void test_utf8_replacement(void **state) {
    (void)state;
    /* Number of code points Python's errors="replace" makes of each byte string. */
    static const struct {
        const char *bytes;
        int n_chars;
        uint32_t last;
    } cases[] = {
        {"\xed\xa0\x80", 3, 0xFFFD},     {"\xe2\x82", 1, 0xFFFD},         {"\xc0\xaf", 2, 0xFFFD},
        {"\xf4\x90\x80\x80", 4, 0xFFFD}, {"\xe2\x82x", 2, 'x'},           {"\xf0\x9f\x98", 1, 0xFFFD},
        {"\x80\xbf", 2, 0xFFFD},         {"\xf0\x80\x80\xaf", 4, 0xFFFD}, {"\xe0\x80\xaf", 3, 0xFFFD},
        {"\xf5\x80\x80\x80", 4, 0xFFFD}, {"\xc3(", 2, '('},               {"\xf0\x9f\x98\x80", 1, 0x1F600},
        {"\xf4\x8f\xbf\xbf", 1, 0x10FFFF}, {"\xed\x9f\xbf", 1, 0xD7FF},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const unsigned char *s = (const unsigned char *)cases[k].bytes;
        size_t n = strlen(cases[k].bytes), i = 0;
        int chars = 0;
        uint32_t cp = 0;
        while (i < n) {
            i += (size_t)utf8_decode_replace(s + i, n - i, &cp);
            chars++;
        }
        assert_int_equal(chars, cases[k].n_chars);
        assert_int_equal(cp, cases[k].last);
    }
}

/* A tiny vocabulary in a temporary model folder: WordPiece's greedy longest match, [UNK] for
 * words that cannot be covered or are too long, and the config options. */
static char tmpdir[64];

static void write_file(const char *name, const char *content) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void remove_tmp(void) {
    char path[128];
    snprintf(path, sizeof path, "%s/vocab.txt", tmpdir);
    unlink(path);
    snprintf(path, sizeof path, "%s/tokenizer_config.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

static void test_small_vocab(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bertc-tok-XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    /* ids: 0 [PAD] 1 [UNK] 2 [CLS] 3 [SEP] 4 [MASK] 5 un 6 ##aff 7 ##able 8 unaff 9 a 10 ##b 11 Hello */
    write_file("vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nun\n##aff\n##able\nunaff\na\n##b\nHello\r\n");
    wordpiece *wp;
    bertc_error err;
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), 0);
    int32_t ids[64];
    size_t n = wordpiece_tokenize(wp, "unaffable unable UNAFF ab abc", 29, ids, 64);
    /* unaff ##able | un ##able | unaff | a ##b | [UNK] (no "##c") */
    static const int32_t want[] = {8, 7, 5, 7, 8, 9, 10, 1};
    assert_int_equal(n, sizeof want / sizeof want[0]);
    assert_memory_equal(ids, want, sizeof want);
    /* The cap bounds what is written, not what is counted. */
    ids[2] = -1;
    assert_int_equal(wordpiece_tokenize(wp, "unaffable unable", 16, ids, 2), 4);
    assert_int_equal(ids[2], -1);
    /* 100 characters are still a word; 101 are [UNK]. */
    char longw[102];
    memset(longw, 'a', 101);
    longw[101] = '\0';
    assert_int_equal(wordpiece_tokenize(wp, longw, 100, ids, 64), 1);
    assert_int_equal(ids[0], 1); /* "a" + 99 x "##a": no "##a", so [UNK] all the same */
    memcpy(longw, "ab", 2);
    for (int i = 2; i < 100; i += 2) memcpy(longw + i, "bb", 2);
    assert_int_equal(wordpiece_tokenize(wp, longw, 100, ids, 64), 100); /* a, then 99 x ##b */
    assert_int_equal(wordpiece_tokenize(wp, longw, 101, ids, 64), 1);  /* 101 chars */
    assert_int_equal(ids[0], 1);
    assert_int_equal(wordpiece_token_id(wp, "Hello"), 11); /* the \r is not part of the token */
    wordpiece_free(wp);

    /* A cased tokenizer keeps case and accents. */
    write_file("tokenizer_config.json", "{\"do_lower_case\": false, \"strip_accents\": null}");
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), 0);
    char out[64];
    wordpiece_basic_tokenize(wp, "Héllo WORLD", 12, out, sizeof out);
    assert_string_equal(out, "Héllo WORLD");
    assert_int_equal(wordpiece_tokenize(wp, "Hello", 5, ids, 64), 1);
    assert_int_equal(ids[0], 11);
    wordpiece_free(wp);

    /* Lower-casing without accent stripping keeps the marks ('İ' -> "i" + U+0307). */
    write_file("tokenizer_config.json", "{\"do_lower_case\": true, \"strip_accents\": false}");
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), 0);
    wordpiece_basic_tokenize(wp, "Héllo İ", 9, out, sizeof out);
    assert_string_equal(out, "héllo i\xcc\x87");
    wordpiece_free(wp);

    /* Bad configs and vocabularies are errors that name the file. */
    write_file("tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), BERTC_EFORMAT);
    assert_non_null(strstr(err.msg, "tokenizer_config.json"));
    assert_non_null(strstr(err.msg, "do_lower_case"));
    write_file("tokenizer_config.json", "{not json");
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), BERTC_EFORMAT);
    write_file("tokenizer_config.json", "{\"unk_token\": \"<unk>\"}");
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), BERTC_EFORMAT);
    assert_non_null(strstr(err.msg, "<unk>"));
    write_file("tokenizer_config.json", "{}");
    write_file("vocab.txt", "");
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), BERTC_EFORMAT);
    assert_non_null(strstr(err.msg, "vocab.txt"));
    remove_tmp();
    assert_int_equal(wordpiece_load_dir(&wp, tmpdir, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "vocab.txt"));
    assert_int_equal(wordpiece_load(&wp, "/nonexistent/vocab.txt", 1, &err), BERTC_EIO);
}

/* Random mixtures of hard fragments never crash (run under ASan by `make asan`), and a truncated
 * single text is exactly [CLS] + the first ids of the untruncated one + [SEP] (bertc stops
 * tokenizing early there, which must not change anything). */
static void test_random_texts(void **state) {
    (void)state;
    static const char *frags[] = {"a", "b", "the", "un", "##", " ", "  ", "\t", "\n", ".", ",", "!", "'", "[SEP]",
                                  "[CLS", "]", "[", "\xc3\xa9", "\xc3", "\xe2\x82", "\xed\xa0\x80",
                                  "\xf0\x9f\x98\x80", "\xf0\x9f\x98", "\xcc\x81", "\xe4\xb8\xad",
                                  "\xe2\x80\x8d", "\xc2\xad", "\xc4\xb0", "\xce\xa3", "\xef\xbf\xbd",
                                  "\xf0\x9d\x85\xa5", "\xf0\x9d\x85\xad", "\xff", "\x80", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"};
    const int n_frags = (int)(sizeof frags / sizeof frags[0]);
    wordpiece *wp = load_bert();
    rng r;
    rng_seed(&r, 20261126);
    char text[120 * 64 + 1], pair[120 * 64];
    int32_t all[8192], ids[32], mask[32], types[32];
    bertc_error err;
    for (int iter = 0; iter < 3000; iter++) {
        size_t tl = 0, pl = 0;
        int nt = (int)rng_below(&r, 120), np = (int)rng_below(&r, 120);
        for (int i = 0; i < nt; i++) {
            const char *f = frags[rng_below(&r, (uint64_t)n_frags)];
            memcpy(text + tl, f, strlen(f));
            tl += strlen(f);
        }
        if (rng_below(&r, 10) == 0) text[tl++] = '\0';
        for (int i = 0; i < np; i++) {
            const char *f = frags[rng_below(&r, (uint64_t)n_frags)];
            memcpy(pair + pl, f, strlen(f));
            pl += strlen(f);
        }
        size_t n_all = wordpiece_tokenize(wp, text, tl, all, 8192);
        assert_true(n_all < 8192);
        int n;
        assert_int_equal(wordpiece_encode(wp, text, tl, NULL, 0, 32, 1, ids, mask, types, &n, &err), 0);
        size_t keep = n_all < 30 ? n_all : 30;
        assert_int_equal(n, (int)keep + 2);
        assert_int_equal(ids[0], 101);
        assert_memory_equal(ids + 1, all, keep * sizeof(int32_t));
        assert_int_equal(ids[keep + 1], 102);
        assert_int_equal(wordpiece_encode(wp, text, tl, pair, pl, 32, 0, ids, mask, types, &n, &err), 0);
        assert_true(n >= 3 && n <= 32);
        assert_int_equal(ids[n - 1], 102);
    }
    wordpiece_free(wp);
}

/* ------------------------------------------------------------------ the command */

/* Runs a shell command, returns its exit status and its stdout (first cap-1 bytes). */
static int run_cmd(const char *cmd0, char *out, size_t cap) {
    /* The binary under test: $BERTC (make test sets it, e.g. build-asan/bertc), else ./bertc. */
    const char *bin = getenv("BERTC") ? getenv("BERTC") : "./bertc";
    char cmd[4096];
    size_t o = 0;
    for (const char *s = cmd0; *s && o + strlen(bin) + 1 < sizeof cmd;) {
        if (!strncmp(s, "./bertc", 7)) {
            o += (size_t)snprintf(cmd + o, sizeof cmd - o, "%s", bin);
            s += 7;
        } else {
            cmd[o++] = *s++;
        }
    }
    cmd[o] = '\0';
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_cli(void **state) {
    (void)state;
    char out[4096];
    int rc = run_cmd("printf '{\"text\":\"Hello world\",\"text_pair\":\"ok\"}\\n\\n{\"text\":\"a\\\\u0000b\"}\\n' | "
                     "./bertc tokenize --model " FIXTURES " --max-length 8",
                     out, sizeof out);
    assert_int_equal(rc, 0);
    assert_string_equal(out,
                        "{\"input_ids\":[101,7592,2088,102,7929,102,0,0],\"attention_mask\":[1,1,1,1,1,1,0,0],"
                        "\"token_type_ids\":[0,0,0,0,1,1,0,0]}\n"
                        "{\"input_ids\":[101,11113,102,0,0,0,0,0],\"attention_mask\":[1,1,1,0,0,0,0,0],"
                        "\"token_type_ids\":[0,0,0,0,0,0,0,0]}\n");
    rc = run_cmd("printf 'Hello world\\n' | ./bertc tokenize --vocab " FIXTURES "/vocab.txt --plain --no-pad", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "{\"input_ids\":[101,7592,2088,102],\"attention_mask\":[1,1,1,1],\"token_type_ids\":[0,0,0,0]}\n");
    rc = run_cmd("printf 'a b c d e\\n' | ./bertc tokenize --model " FIXTURES " --plain --max-length 0", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "{\"input_ids\":[101,1037,1038,1039,1040,1041,102],\"attention_mask\":[1,1,1,1,1,1,1],"
                             "\"token_type_ids\":[0,0,0,0,0,0,0]}\n");
    /* A bad line is an error that names it. */
    rc = run_cmd("printf '{\"text\":\"ok\"}\\n{\"text\": 3}\\n' | ./bertc tokenize --model " FIXTURES " 2>&1 >/dev/null", out,
                 sizeof out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "line 2"));
    rc = run_cmd("printf '{\"text\":\"ok\"}\\n\\n{oops\\n' | ./bertc tokenize --model " FIXTURES " 2>&1 >/dev/null", out, sizeof out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "line 3"));
    rc = run_cmd("./bertc tokenize --help", out, sizeof out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "--max-length"));
    rc = run_cmd("./bertc tokenize --model /nonexistent 2>&1 </dev/null", out, sizeof out);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "/nonexistent/vocab.txt"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocab_and_specials), cmocka_unit_test(test_pair_truncation_and_padding),
        cmocka_unit_test(test_basic_tokenize),     cmocka_unit_test(test_utf8_replacement),
        cmocka_unit_test(test_small_vocab),        cmocka_unit_test(test_cli),
        cmocka_unit_test(test_random_texts),
        cmocka_unit_test(test_hard_cases),         cmocka_unit_test(test_imdb_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
