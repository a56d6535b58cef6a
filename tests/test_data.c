/* Dataset readers: class-per-folder trees (on disk and in a .tar.gz), CSV, TSV, JSON Lines,
 * label sets, bad records, the seeded subset and split files. Fixtures: tests/fixtures/data,
 * written by reference/make_data_fixtures.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"

#define FIX "tests/fixtures/data/"

static const char *tree_ids[5] = {"neg/10_1.txt", "neg/1_2.txt", "neutral/3_5.txt", "pos/2_9.txt", "pos/7_10.txt"};

static void read_ok(dataset *d, const char *spec, const dataset_read_options *opt) {
    bertc_error err = {0};
    int rc = dataset_read(d, spec, opt, &err);
    if (rc) fail_msg("%s: %s", spec, err.msg);
}

/* Reading spec fails, with a message that holds each of the NULL-terminated strings. */
static void read_fails(const char *spec, const dataset_read_options *opt, ...) {
    dataset d;
    bertc_error err = {0};
    int rc = dataset_read(&d, spec, opt, &err);
    if (rc == 0) fail_msg("%s: read without error", spec);
    assert_int_equal(rc, err.code);
    assert_null(d.ex); /* nothing half-built is handed back */
    va_list ap;
    va_start(ap, opt);
    for (const char *want; (want = va_arg(ap, const char *));)
        if (!strstr(err.msg, want)) fail_msg("%s: message \"%s\" lacks \"%s\"", spec, err.msg, want);
    va_end(ap);
}

static void assert_labels(const dataset *d, int n, ...) {
    assert_int_equal(d->num_labels, n);
    va_list ap;
    va_start(ap, n);
    for (int k = 0; k < n; k++) assert_string_equal(d->labels[k], va_arg(ap, const char *));
    va_end(ap);
}

/* ---------------------------------------------------------------- trees */

static void test_tree_dir(void **state) {
    (void)state;
    dataset d;
    read_ok(&d, FIX "tree", NULL);
    /* unsup, the stray top-level files, pos/.hidden and pos/nested/ are not examples */
    assert_int_equal(d.n, 5);
    assert_labels(&d, 3, "neg", "neutral", "pos");
    static const int want_label[5] = {0, 0, 1, 2, 2};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(d.ex[i].id, tree_ids[i]); /* byte order: "10_1" before "1_2" */
        assert_int_equal(d.ex[i].label, want_label[i]);
        assert_null(d.ex[i].text_pair);
    }
    assert_string_equal(d.ex[0].text, "Terrible, just terrible.\n");
    assert_string_equal(d.ex[3].text, "Wonderful <br /><br />acting!");
    /* raw bytes kept (invalid UTF-8 too), the NUL byte dropped */
    assert_string_equal(d.ex[4].text, "caf\xc3\xa9 with a NUL inside and a bad byte \xff.");
    assert_int_equal(d.skipped, 0);
    dataset_free(&d);
    assert_null(d.ex);
}

static void test_tree_with_unsup(void **state) {
    (void)state;
    dataset d;
    dataset_read_options opt = {.with_unsup = 1};
    read_ok(&d, FIX "tree/", &opt);
    assert_int_equal(d.n, 6);
    assert_labels(&d, 3, "neg", "neutral", "pos");
    assert_string_equal(d.ex[5].id, "unsup/5_0.txt");
    assert_int_equal(d.ex[5].label, -1);
    assert_string_equal(d.ex[5].text, "No label here.");
    dataset_free(&d);
}

static void assert_same_dataset(const dataset *a, const dataset *b) {
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->num_labels, b->num_labels);
    for (int k = 0; k < a->num_labels; k++) assert_string_equal(a->labels[k], b->labels[k]);
    for (size_t i = 0; i < a->n; i++) {
        assert_string_equal(a->ex[i].id, b->ex[i].id);
        assert_string_equal(a->ex[i].text, b->ex[i].text);
        assert_int_equal(a->ex[i].label, b->ex[i].label);
    }
}

static void test_archive_same_as_tree(void **state) {
    (void)state;
    dataset dir, tar;
    read_ok(&dir, FIX "tree", NULL);
    read_ok(&tar, FIX "tree.tar.gz:corpus/train", NULL); /* members stored in reverse order */
    assert_same_dataset(&dir, &tar);
    dataset_free(&tar);
    read_ok(&tar, FIX "tree.tar.gz:./corpus/train/", NULL);
    assert_same_dataset(&dir, &tar);
    dataset_free(&tar);
    dataset_free(&dir);

    dataset_read_options opt = {.with_unsup = 1};
    read_ok(&dir, FIX "tree", &opt);
    read_ok(&tar, FIX "tree.tar.gz:corpus/train", &opt);
    assert_same_dataset(&dir, &tar);
    dataset_free(&tar);
    dataset_free(&dir);

    /* Members named "./neg/1_2.txt" (tar -C dir .): the class folders are at the root. */
    read_ok(&tar, FIX "dot.tgz:", NULL);
    assert_int_equal(tar.n, 2);
    assert_string_equal(tar.ex[0].id, "neg/1_2.txt");
    assert_string_equal(tar.ex[1].text, "Wonderful <br /><br />acting!");
    dataset_free(&tar);
}

static void test_archive_errors(void **state) {
    (void)state;
    read_fails(FIX "truncated.tar.gz:corpus/train", NULL, "truncated.tar.gz", "truncated", NULL);
    read_fails(FIX "notanarchive.tar.gz:x", NULL, "notanarchive.tar.gz", NULL);
    read_fails(FIX "tree.tar.gz:corpus/test", NULL, "tree.tar.gz", "no folder \"corpus/test\"", NULL);
    read_fails(FIX "tree.tar.gz", NULL, "tree.tar.gz:FOLDER", NULL);
    read_fails(FIX "missing.tar.gz:corpus/train", NULL, "missing.tar.gz", "no such file", NULL);
}

/* A tarball of many members cut short: the error comes mid-stream and names the last member read. */
static void test_archive_truncated_midway(void **state) {
    (void)state;
    char path[] = "/tmp/bertc_test_data_XXXXXX.tar.gz";
    int fd = mkstemps(path, 7);
    assert_true(fd >= 0);
    close(fd);
    struct archive *a = archive_write_new();
    archive_write_add_filter_gzip(a);
    archive_write_set_format_pax_restricted(a);
    assert_int_equal(archive_write_open_filename(a, path), ARCHIVE_OK);
    char text[4096];
    unsigned x = 12345;
    for (int i = 0; i < 300; i++) {
        for (size_t k = 0; k < sizeof text; k++) { /* incompressible enough to make the archive long */
            x = x * 1103515245u + 12345u;
            text[k] = (char)('a' + (x >> 16) % 26);
        }
        char name[64];
        snprintf(name, sizeof name, "data/%s/%03d.txt", i % 2 ? "pos" : "neg", i);
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, name);
        archive_entry_set_size(e, sizeof text);
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        assert_int_equal(archive_write_data(a, text, sizeof text), (la_ssize_t)sizeof text);
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);

    char spec[64];
    snprintf(spec, sizeof spec, "%s:data", path);
    dataset d;
    read_ok(&d, spec, NULL);
    assert_int_equal(d.n, 300);
    assert_labels(&d, 2, "neg", "pos");
    dataset_free(&d);

    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_true(size > 100000);
    assert_int_equal(truncate(path, size * 6 / 10), 0);
    dataset_read_options skip = {.skip_bad = 1}; /* a broken archive is never skipped over */
    read_fails(spec, &skip, path, "member data/", NULL);
    /* garbage in the middle instead */
    assert_int_equal(truncate(path, size), 0);
    f = fopen(path, "r+b");
    fseek(f, size / 2, SEEK_SET);
    for (int i = 0; i < 64; i++) fputc(0x55, f);
    fclose(f);
    read_fails(spec, NULL, path, NULL);
    unlink(path);
}

/* A file that cannot be read (here a dangling link) is a bad record naming its path. */
static void test_tree_unreadable_file(void **state) {
    (void)state;
    char root[] = "/tmp/bertc_test_tree_XXXXXX";
    assert_non_null(mkdtemp(root));
    char path[128];
    snprintf(path, sizeof path, "%s/pos", root);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/pos/good.txt", root);
    FILE *f = fopen(path, "w");
    fputs("fine", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/pos/gone.txt", root);
    assert_int_equal(symlink("/nonexistent/bertc", path), 0);
    read_fails(root, NULL, path, "cannot open", NULL);
    dataset d;
    dataset_read_options skip = {.skip_bad = 1};
    read_ok(&d, root, &skip);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.skipped, 1);
    assert_string_equal(d.ex[0].id, "pos/good.txt");
    dataset_free(&d);
    unlink(path);
    snprintf(path, sizeof path, "%s/pos/good.txt", root);
    unlink(path);
    snprintf(path, sizeof path, "%s/pos", root);
    rmdir(path);
    rmdir(root);
}

/* ---------------------------------------------------------------- tables */

static void test_csv_rfc4180(void **state) {
    (void)state;
    dataset d;
    read_ok(&d, FIX "basic.csv", NULL);
    assert_int_equal(d.n, 5);
    assert_labels(&d, 3, "neg", "neutral", "pos");
    static const char *want_text[5] = {"Hello, world", "She said \"hi\"", "two\nlines",
                                       "plain text with a \"quote\" inside", ""};
    static const char *want_id[5] = {"line:2", "line:3", "line:4", "line:7", "line:8"};
    static const int want_label[5] = {2, 0, 2, 1, 0};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(d.ex[i].text, want_text[i]);
        assert_string_equal(d.ex[i].id, want_id[i]);
        assert_int_equal(d.ex[i].label, want_label[i]);
    }
    dataset_free(&d);
}

static void test_csv_crlf_bom(void **state) {
    (void)state;
    dataset d;
    read_ok(&d, FIX "crlf.csv", NULL);
    assert_int_equal(d.n, 3);
    assert_labels(&d, 2, "x", "y");
    assert_string_equal(d.ex[0].text, "a, b");
    assert_string_equal(d.ex[1].text, "c\r\nd"); /* kept as written inside quotes */
    assert_string_equal(d.ex[2].text, "e");
    assert_string_equal(d.ex[2].id, "line:5");
    assert_int_equal(d.ex[2].label, 0);
    dataset_free(&d);
}

static void test_tsv_pairs_numeric_labels(void **state) {
    (void)state;
    dataset d;
    dataset_read_options opt = {.text_column = "sentence1", .text_pair_column = "sentence2"};
    read_ok(&d, FIX "pairs.tsv", &opt);
    assert_int_equal(d.n, 3);
    assert_labels(&d, 3, "0", "2", "10"); /* integers sort by value */
    assert_string_equal(d.ex[0].text, "A man eats.");
    assert_string_equal(d.ex[0].text_pair, "Someone eats.");
    assert_int_equal(d.ex[0].label, 2);
    assert_string_equal(d.ex[1].text_pair, "A cat, \"sleeps\"");
    assert_int_equal(d.ex[1].label, 1);
    assert_int_equal(d.ex[2].label, 0);
    dataset_free(&d);
}

static void test_csv_several_text_columns(void **state) {
    (void)state;
    dataset d;
    dataset_read_options opt = {.text_column = "title,content"};
    read_ok(&d, FIX "multi.csv", &opt);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.ex[0].text, "Great Loved it");
    assert_labels(&d, 2, "0", "1");
    assert_int_equal(d.ex[0].label, 1);
    dataset_free(&d);
}

static void test_unlabelled(void **state) {
    (void)state;
    dataset d;
    read_ok(&d, FIX "unlabelled.csv", NULL);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.num_labels, 0);
    assert_int_equal(d.ex[0].label, -1);
    assert_string_equal(d.ex[1].text, "second");
    dataset_free(&d);
    /* with the training set's labels: kept, so predictions can be named */
    char *names[2] = {"neg", "pos"};
    dataset_read_options opt = {.label_names = names, .num_label_names = 2};
    read_ok(&d, FIX "nolabel.jsonl", &opt);
    assert_int_equal(d.n, 2);
    assert_labels(&d, 2, "neg", "pos");
    assert_int_equal(d.ex[1].label, -1);
    dataset_free(&d);
}

static void test_jsonl(void **state) {
    (void)state;
    dataset d;
    read_ok(&d, FIX "labels.jsonl", NULL);
    assert_int_equal(d.n, 3); /* the blank line skipped */
    assert_labels(&d, 2, "neg", "pos");
    assert_string_equal(d.ex[1].id, "line:3");
    assert_string_equal(d.ex[2].text, "caf\xc3\xa9 \"quoted\"");
    assert_int_equal(d.ex[2].label, 1);
    dataset_free(&d);

    read_ok(&d, FIX "intlabels.jsonl", NULL); /* CRLF lines; 1 and "1" are one label */
    assert_int_equal(d.n, 3);
    assert_labels(&d, 2, "0", "1");
    assert_int_equal(d.ex[0].label, 1);
    assert_int_equal(d.ex[1].label, 0);
    assert_int_equal(d.ex[2].label, 1);
    dataset_free(&d);
}

static void test_nul_bytes(void **state) {
    (void)state;
    dataset d;
    read_ok(&d, FIX "nul.jsonl", NULL);
    assert_int_equal(d.n, 3);
    assert_string_equal(d.ex[0].text, "ab");
    assert_string_equal(d.ex[1].text, "c\\u0000d");
    assert_string_equal(d.ex[2].text, "ef");
    dataset_free(&d);
}

static void test_label_names_given(void **state) {
    (void)state;
    dataset d;
    char *order[3] = {"pos", "neg", "neutral"};
    dataset_read_options opt = {.label_names = order, .num_label_names = 3};
    read_ok(&d, FIX "basic.csv", &opt);
    assert_labels(&d, 3, "pos", "neg", "neutral");
    assert_int_equal(d.ex[0].label, 0);
    assert_int_equal(d.ex[1].label, 1);
    assert_int_equal(d.ex[3].label, 2);
    dataset_free(&d);

    /* integer labels map onto names that are integers... */
    char *digits[3] = {"0", "1", "2"};
    opt = (dataset_read_options){.label_names = digits, .num_label_names = 3};
    read_ok(&d, FIX "intlabels.jsonl", &opt);
    assert_int_equal(d.num_labels, 3);
    assert_int_equal(d.ex[0].label, 1);
    dataset_free(&d);
    /* ...never onto positions in a list of names */
    char *words[2] = {"neg", "pos"};
    opt = (dataset_read_options){.label_names = words, .num_label_names = 2};
    read_fails(FIX "intlabels.jsonl", &opt, "intlabels.jsonl: line 1", "label \"1\" is not in the label set (neg, pos)",
               NULL);
    /* a tree's folders too */
    char *two[2] = {"neg", "pos"};
    opt = (dataset_read_options){.label_names = two, .num_label_names = 2};
    read_fails(FIX "tree", &opt, "tree/neutral/3_5.txt", "\"neutral\"", NULL);
    opt.skip_bad = 1;
    read_ok(&d, FIX "tree", &opt);
    assert_int_equal(d.n, 4);
    assert_int_equal(d.skipped, 1);
    dataset_free(&d);
    char *dup[2] = {"a", "a"};
    opt = (dataset_read_options){.label_names = dup, .num_label_names = 2};
    read_fails(FIX "basic.csv", &opt, "\"a\" given twice", NULL);
}

static void test_bad_records(void **state) {
    (void)state;
    dataset d;
    char *two[2] = {"neg", "pos"};
    dataset_read_options names = {.label_names = two, .num_label_names = 2};
    read_fails(FIX "unknown.csv", &names, "unknown.csv: line 3", "\"maybe\"", NULL);
    read_fails(FIX "bad_fields.csv", NULL, "bad_fields.csv: line 3", "3 fields, the header has 2", NULL);
    read_fails(FIX "unterminated.csv", NULL, "unterminated.csv: line 3", "unterminated", NULL);
    read_fails(FIX "after_quote.csv", NULL, "after_quote.csv: line 2", NULL);
    read_fails(FIX "bad.jsonl", NULL, "bad.jsonl: line 3", "invalid JSON", NULL);
    read_fails(FIX "notext.jsonl", NULL, "notext.jsonl: line 2", "no field \"text\" (fields: sentence, label)", NULL);
    read_fails(FIX "mixed.jsonl", NULL, "mixed.jsonl: line 2", NULL);
    read_fails(FIX "array.json", NULL, "array.json", "JSON Lines", NULL);
    dataset_read_options reject = {.reject_empty = 1};
    read_fails(FIX "empty_text.csv", &reject, "empty_text.csv: line 3", "empty text", NULL);

    /* skip_bad: counted, never silent */
    dataset_read_options skip = {.skip_bad = 1};
    read_ok(&d, FIX "bad_fields.csv", &skip);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.skipped, 1);
    assert_string_equal(d.ex[1].id, "line:4");
    dataset_free(&d);
    read_ok(&d, FIX "bad.jsonl", &skip);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.skipped, 1);
    dataset_free(&d);
    read_ok(&d, FIX "mixed.jsonl", &skip);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.skipped, 1);
    dataset_free(&d);
    names.skip_bad = 1;
    read_ok(&d, FIX "unknown.csv", &names);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.skipped, 1);
    dataset_free(&d);
    reject.skip_bad = 1;
    read_ok(&d, FIX "empty_text.csv", &reject);
    assert_int_equal(d.n, 1);
    assert_int_equal(d.skipped, 1);
    dataset_free(&d);
    read_ok(&d, FIX "empty_text.csv", NULL); /* empty texts are fine unless rejected */
    assert_int_equal(d.n, 2);
    dataset_free(&d);
    /* an unterminated quote swallows the rest of the file: no way to skip it */
    read_fails(FIX "unterminated.csv", &skip, "line 3", NULL);
    /* every line bad: an error, not an empty dataset */
    dataset_read_options skip_text = {.skip_bad = 1, .text_column = "nope"};
    read_fails(FIX "labels.jsonl", &skip_text, "no examples", NULL);
}

static void test_spec_and_columns(void **state) {
    (void)state;
    read_fails("tests/fixtures/data/nothing_here", NULL, "nothing_here", "no such file or folder", NULL);
    read_fails(FIX "nothing.csv", NULL, "nothing.csv", NULL);
    read_fails(FIX "tree/labeledBow.feat", NULL, "unknown dataset format", NULL);
    read_fails("", NULL, "no file", NULL);
    dataset_read_options opt = {.text_column = "review"};
    read_fails(FIX "basic.csv", &opt, "basic.csv", "no text column \"review\"", "(columns: id, text, label)", NULL);
    opt = (dataset_read_options){.label_column = "sentiment"};
    read_fails(FIX "basic.csv", &opt, "no label column \"sentiment\"", NULL);
    read_fails(FIX "labels.jsonl", &opt, "no line has the label field \"sentiment\"", NULL);
    opt = (dataset_read_options){.text_pair_column = "hypothesis"};
    read_fails(FIX "basic.csv", &opt, "no text pair column \"hypothesis\"", NULL);
}

/* ---------------------------------------------------------------- subset and splits */

static void test_select_matches_python(void **state) {
    (void)state;
    /* Orders computed with reference/bertc_rng.py: idx = list(range(5)); Rng(seed).shuffle(idx) */
    static const char *want[3][5] = {
        {"neg/1_2.txt", "pos/2_9.txt", "pos/7_10.txt", "neg/10_1.txt", "neutral/3_5.txt"},    /* seed 1 */
        {"pos/7_10.txt", "neg/10_1.txt", "pos/2_9.txt", "neg/1_2.txt", "neutral/3_5.txt"},    /* seed 2 */
        {"pos/2_9.txt", "neutral/3_5.txt", "neg/10_1.txt", "pos/7_10.txt", "neg/1_2.txt"}}; /* seed 42 */
    static const uint64_t seeds[3] = {1, 2, 42};
    for (int s = 0; s < 3; s++) {
        dataset d;
        bertc_error err = {0};
        read_ok(&d, FIX "tree", NULL);
        assert_int_equal(dataset_select(&d, 3, seeds[s], &err), 0);
        assert_int_equal(d.n, 3);
        for (size_t i = 0; i < 3; i++) assert_string_equal(d.ex[i].id, want[s][i]);
        dataset_free(&d);
        read_ok(&d, FIX "tree", NULL); /* n == 0: all of them, in shuffled order */
        assert_int_equal(dataset_select(&d, 0, seeds[s], &err), 0);
        assert_int_equal(d.n, 5);
        for (size_t i = 0; i < 5; i++) assert_string_equal(d.ex[i].id, want[s][i]);
        dataset_free(&d);
    }
}

static void test_select_deterministic(void **state) {
    (void)state;
    char path[] = "/tmp/bertc_test_data_XXXXXX.csv";
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "text,label\n");
    for (int i = 0; i < 100; i++) fprintf(f, "example %d,%s\n", i, i % 3 ? "a" : "b");
    fclose(f);
    dataset a, b, c;
    bertc_error err = {0};
    read_ok(&a, path, NULL);
    read_ok(&b, path, NULL);
    read_ok(&c, path, NULL);
    assert_int_equal(dataset_select(&a, 10, 42, &err), 0);
    assert_int_equal(dataset_select(&b, 10, 42, &err), 0);
    assert_int_equal(dataset_select(&c, 10, 43, &err), 0);
    int differ = 0;
    for (size_t i = 0; i < 10; i++) {
        assert_string_equal(a.ex[i].id, b.ex[i].id);
        differ += strcmp(a.ex[i].id, c.ex[i].id) != 0;
    }
    assert_true(differ > 5);
    /* reference/bertc_rng.py, seed 42 over 100: 99, 57, 19, 65, 53, 47, 51, 27, 4, 29 (id line:i+2) */
    static const int want[10] = {99, 57, 19, 65, 53, 47, 51, 27, 4, 29};
    for (size_t i = 0; i < 10; i++) {
        char id[32];
        snprintf(id, sizeof id, "line:%d", want[i] + 2);
        assert_string_equal(a.ex[i].id, id);
    }
    dataset_free(&a);
    dataset_free(&b);
    dataset_free(&c);
    unlink(path);
}

static void test_split_round_trip(void **state) {
    (void)state;
    char path[] = "/tmp/bertc_test_split_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    dataset train, dev;
    bertc_error err = {0};
    dataset_read_options opt = {.with_unsup = 1};
    read_ok(&train, FIX "tree", &opt);
    assert_int_equal(dataset_select(&train, 4, 7, &err), 0);
    read_ok(&dev, FIX "tree.tar.gz:corpus/train", NULL);
    assert_int_equal(dataset_write_split(&train, f, "train", &err), 0);
    assert_int_equal(dataset_write_split(&dev, f, "dev", &err), 0);
    fclose(f);

    /* the format: one object a line, label omitted when unlabelled */
    char *text = NULL;
    size_t cap = 0;
    f = fopen(path, "r");
    int lines = 0, unlabelled = 0;
    while (getline(&text, &cap, f) > 0) {
        lines++;
        if (strstr(text, "\"unsup/5_0.txt\"")) {
            unlabelled++;
            assert_string_equal(text, "{\"split\":\"train\",\"id\":\"unsup/5_0.txt\"}\n");
        }
        if (lines == 5) assert_string_equal(text, "{\"split\":\"dev\",\"id\":\"neg/10_1.txt\",\"label\":\"neg\"}\n");
    }
    free(text);
    fclose(f);
    assert_int_equal(lines, 9);

    dataset again;
    read_ok(&again, FIX "tree", &opt);
    assert_int_equal(dataset_apply_split(&again, path, "train", &err), 0);
    assert_int_equal(again.n, train.n);
    for (size_t i = 0; i < train.n; i++) {
        assert_string_equal(again.ex[i].id, train.ex[i].id);
        assert_string_equal(again.ex[i].text, train.ex[i].text);
        assert_int_equal(again.ex[i].label, train.ex[i].label);
    }
    assert_int_equal(unlabelled, 1 - (again.ex[0].label >= 0 && again.ex[1].label >= 0 && again.ex[2].label >= 0 &&
                                      again.ex[3].label >= 0));
    dataset_free(&again);
    read_ok(&again, FIX "tree", NULL);
    assert_int_equal(dataset_apply_split(&again, path, "dev", &err), 0);
    assert_same_dataset(&again, &dev);
    dataset_free(&again);

    read_ok(&again, FIX "tree", NULL);
    assert_int_not_equal(dataset_apply_split(&again, path, "test", &err), 0);
    assert_non_null(strstr(err.msg, "no examples for split \"test\""));
    dataset_free(&again);

    /* ids that are not in the dataset, labels that changed, duplicates, garbage */
    f = fopen(path, "w");
    fprintf(f, "{\"split\":\"a\",\"id\":\"pos/2_9.txt\",\"label\":\"pos\"}\n"
               "{\"split\":\"a\",\"id\":\"pos/404.txt\",\"label\":\"pos\"}\n"
               "{\"split\":\"b\",\"id\":\"pos/2_9.txt\",\"label\":\"neg\"}\n"
               "{\"split\":\"c\",\"id\":\"pos/2_9.txt\",\"label\":\"pos\"}\n"
               "{\"split\":\"c\",\"id\":\"pos/2_9.txt\",\"label\":\"pos\"}\n"
               "{\"split\":\"d\",\"id\"\n");
    fclose(f);
    static const char *split[4] = {"a", "b", "c", "d"};
    static const char *want[4] = {"line 2: id \"pos/404.txt\" is not in the dataset", "line 3", "line 5",
                                  "line 6"};
    for (int s = 0; s < 4; s++) {
        read_ok(&again, FIX "tree", NULL);
        assert_int_not_equal(dataset_apply_split(&again, path, split[s], &err), 0);
        if (!strstr(err.msg, want[s]) || !strstr(err.msg, path)) fail_msg("split %s: %s", split[s], err.msg);
        dataset_free(&again);
    }
    dataset_free(&train);
    dataset_free(&dev);
    unlink(path);
}

/* The real IMDB tarball, when BERTC_IMDB names it (make test sets it when ../shared/data has it). */
static void test_imdb_tarball(void **state) {
    (void)state;
    const char *tarball = getenv("BERTC_IMDB");
    if (!tarball || !*tarball) skip();
    char spec[1024];
    snprintf(spec, sizeof spec, "%s:aclImdb/train", tarball);
    dataset d;
    read_ok(&d, spec, NULL);
    assert_int_equal(d.n, 25000);
    assert_labels(&d, 2, "neg", "pos");
    assert_string_equal(d.ex[0].id, "neg/0_3.txt");
    assert_int_equal(d.ex[12500].label, 1);
    dataset_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_dir),
        cmocka_unit_test(test_tree_with_unsup),
        cmocka_unit_test(test_archive_same_as_tree),
        cmocka_unit_test(test_archive_errors),
        cmocka_unit_test(test_archive_truncated_midway),
        cmocka_unit_test(test_tree_unreadable_file),
        cmocka_unit_test(test_csv_rfc4180),
        cmocka_unit_test(test_csv_crlf_bom),
        cmocka_unit_test(test_tsv_pairs_numeric_labels),
        cmocka_unit_test(test_csv_several_text_columns),
        cmocka_unit_test(test_unlabelled),
        cmocka_unit_test(test_jsonl),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_label_names_given),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_spec_and_columns),
        cmocka_unit_test(test_select_matches_python),
        cmocka_unit_test(test_select_deterministic),
        cmocka_unit_test(test_split_round_trip),
        cmocka_unit_test(test_imdb_tarball),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
