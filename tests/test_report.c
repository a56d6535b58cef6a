/* The HTML training report: from a synthetic run folder (metrics.jsonl + summary.json written here)
 * the page holds every chart, the escaped label names and the final figures, and its <svg> elements
 * are closed; runs without validation, with one epoch, with many steps or many classes give a page
 * too; missing or malformed input gives an error naming the file (and line) and leaves no page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report/html.h"
#include "util/fs.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bertc_test_report_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static FILE *open_in_run(const char *name, const char *mode) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, mode);
    assert_non_null(f);
    return f;
}

static void write_text(const char *name, const char *text) {
    FILE *f = open_in_run(name, "w");
    fputs(text, f);
    fclose(f);
}

static int exists(const char *name) {
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    return stat(path, &st) == 0;
}

static char *read_report(void) {
    char path[512], *buf;
    size_t n;
    bertc_error err = {0};
    snprintf(path, sizeof path, "%s/report.html", tmpdir);
    assert_int_equal(fs_read_all(path, &buf, &n, 64 << 20, &err), 0);
    return buf;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* A run: `epochs` epochs of `steps_per_epoch` steps, linear LR decay, a loss that falls; with_val
 * adds validation figures to the epoch lines, a val_metrics line and the summary's "val"/"gap". */
static void write_run(int epochs, int steps_per_epoch, int with_val, int k, const char *const *labels) {
    FILE *f = open_in_run("metrics.jsonl", "w");
    int total = epochs * steps_per_epoch, step = 0;
    for (int e = 1; e <= epochs; e++) {
        for (int s = 0; s < steps_per_epoch; s++) {
            step++;
            fprintf(f, "{\"type\":\"step\",\"step\":%d,\"epoch\":%d,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":1.0,\"examples_per_s\":50.0}\n", step, e,
                    0.7 - 0.4 * step / total + 0.03 * ((step * 7) % 5) / 5.0, 2e-5 * (1 - (double)(step - 1) / total));
        }
        if (with_val)
            fprintf(f, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%d,\"train_loss\":%.6f,\"train_accuracy\":%.6f,\"val_loss\":%.6f,\"val_accuracy\":%.6f,\"best\":%s}\n",
                    e, step, 0.65 - 0.1 * e, 0.6 + 0.1 * e, 0.6 - 0.05 * e, 0.7 + 0.05 * e, "true");
        else
            fprintf(f, "{\"type\":\"epoch\",\"epoch\":%d,\"step\":%d,\"train_loss\":%.6f,\"train_accuracy\":%.6f}\n", e, step, 0.65 - 0.1 * e,
                    0.6 + 0.1 * e);
    }
    if (with_val) {
        fputs("{\"type\":\"val_metrics\",\"metrics\":{\"n\":32,\"accuracy\":0.8125,\"loss\":0.4321,\"macro_f1\":0.8,\"per_class\":[", f);
        for (int c = 0; c < k; c++) {
            char *esc = NULL;
            /* labels[c] holds no backslash; quotes are escaped for JSON. */
            size_t n = strlen(labels[c]);
            esc = calloc(2 * n + 1, 1);
            for (size_t i = 0, j = 0; i < n; i++) {
                if (labels[c][i] == '"') esc[j++] = '\\';
                esc[j++] = labels[c][i];
            }
            fprintf(f, "%s{\"label\":\"%s\",\"precision\":0.8,\"recall\":0.75,\"f1\":0.774194,\"support\":%d}", c ? "," : "", esc, 10 + c);
            free(esc);
        }
        fputs("],\"confusion\":[", f);
        for (int r = 0; r < k; r++) {
            fprintf(f, "%s[", r ? "," : "");
            for (int c = 0; c < k; c++) fprintf(f, "%s%d", c ? "," : "", r == c ? 12 : 1);
            fputs("]", f);
        }
        fputs("]}}\n", f);
    }
    fputs("{\"type\":\"final\",\"train_accuracy\":0.9,\"train_loss\":0.3,\"val_accuracy\":0.8125,\"val_loss\":0.4321,\"best_epoch\":3}\n", f);
    fclose(f);

    f = open_in_run("summary.json", "w");
    fputs("{\n\"bertc_version\": \"0.1.0\",\n\"model\": \"models/<tiny>\",\n\"train_data\": \"data/train.jsonl\",\n", f);
    if (with_val) fputs("\"val_data\": \"data/val.jsonl\",\n", f);
    fputs("\"train\": {\"accuracy\": 0.90625, \"loss\": 0.2987, \"macro_f1\": 0.9, \"n\": 64},\n", f);
    if (with_val) fputs("\"val\": {\"accuracy\": 0.8125, \"loss\": 0.4321, \"macro_f1\": 0.8, \"n\": 32},\n\"gap\": 0.09375,\n", f);
    fprintf(f, "\"best_epoch\": %d, \"epochs_run\": %d, \"stopped_early\": false, \"steps\": %d,\n", with_val ? epochs : 0, epochs, total);
    fputs("\"train_seconds\": 123.4, \"examples_per_s\": 56.7,\n\"labels\": [", f);
    for (int c = 0; c < k; c++) {
        fputs(c ? ", \"" : "\"", f);
        for (const char *p = labels[c]; *p; p++) {
            if (*p == '"') fputc('\\', f);
            fputc(*p, f);
        }
        fputc('"', f);
    }
    fputs("],\n\"hyperparameters\": {\"lr\": 2e-05, \"batch_size\": 16, \"scheduler\": \"linear & <warm>\", \"pad_dynamic\": false, "
          "\"seed\": 1234567890123}\n}\n",
          f);
    fclose(f);
}

static const char *const two_labels[] = {"neg", "a<b&\"c\""};

/* Every <svg> is closed, and nothing is loaded from elsewhere or run. */
static void assert_well_formed(const char *html, int want_svgs) {
    assert_int_equal(count(html, "<svg"), want_svgs);
    assert_int_equal(count(html, "</svg>"), want_svgs);
    assert_int_equal(count(html, "<html"), 1);
    assert_non_null(strstr(html, "</html>"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
    for (const char *p = html; (p = strstr(p, "url(")); p++) assert_int_equal(p[4], '#'); /* in-page references only */
    assert_null(strstr(html, "nan"));
    assert_null(strstr(html, "inf"));
    /* Each svg is closed before the next opens. */
    for (const char *p = html; (p = strstr(p, "<svg")); p++) {
        const char *close = strstr(p, "</svg>"), *next = strstr(p + 1, "<svg");
        assert_non_null(close);
        assert_true(!next || close < next);
    }
}

static void test_report_full(void **state) {
    (void)state;
    write_run(3, 10, 1, 2, two_labels);
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), 0);
    char *html = read_report();
    assert_well_formed(html, 5);
    const char *ids[] = {"id=\"chart-step-loss\"", "id=\"chart-epoch-loss\"", "id=\"chart-epoch-accuracy\"", "id=\"chart-lr\"",
                         "id=\"chart-confusion\"", "id=\"per-class\"", "id=\"final-figures\"", "id=\"hyperparameters\""};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) assert_non_null(strstr(html, ids[i]));
    /* Label names, paths and hyperparameter values from the data are escaped. */
    assert_non_null(strstr(html, "a&lt;b&amp;&quot;c&quot;"));
    assert_null(strstr(html, "a<b"));
    assert_non_null(strstr(html, "models/&lt;tiny&gt;"));
    assert_non_null(strstr(html, "linear &amp; &lt;warm&gt;"));
    /* The final figures. */
    const char *figures[] = {"0.8125", "0.4321", "0.9062", "0.2987", "0.0938", ">3<", "of 3 run", "2 min 03 s", "56.7", "30 optimiser steps",
                             "1234567890123", "2e-05"};
    for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
        if (!strstr(html, figures[i])) fail_msg("report lacks %s", figures[i]);
    }
    /* Step charts: 30 points; epoch boundaries after epochs 1 and 2 in both step charts; the best-epoch marker. */
    assert_int_equal(count(html, "class=\"epoch-boundary\""), 4);
    assert_int_equal(count(html, "class=\"best-marker\""), 2);
    assert_true(count(html, "<polyline") >= 6);
    assert_int_equal(count(html, "<rect class=\"cell\""), 4);
    assert_null(strstr(html, "id=\"no-validation\""));
    free(html);
    /* No temporary file left next to it. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -q '\\.tmp\\.'", tmpdir);
    assert_int_not_equal(system(cmd), 0);
}

static void test_report_no_validation(void **state) {
    (void)state;
    write_run(3, 10, 0, 2, two_labels);
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), 0);
    char *html = read_report();
    assert_well_formed(html, 4);
    assert_non_null(strstr(html, "id=\"no-validation\""));
    assert_null(strstr(html, "chart-confusion"));
    assert_null(strstr(html, "best-marker"));
    assert_null(strstr(html, ">validation<"));
    assert_non_null(strstr(html, "id=\"chart-epoch-accuracy\""));
    free(html);
}

static void test_report_one_epoch(void **state) {
    (void)state;
    write_run(1, 1, 1, 2, two_labels);
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), 0);
    char *html = read_report();
    assert_well_formed(html, 5);
    assert_int_equal(count(html, "class=\"epoch-boundary\""), 0);
    free(html);
}

/* 20,000 steps: drawn as envelopes of two points per pixel column, so the page stays small. */
static void test_report_many_steps(void **state) {
    (void)state;
    write_run(4, 5000, 1, 2, two_labels);
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), 0);
    char *html = read_report();
    assert_well_formed(html, 5);
    assert_true(strlen(html) < 200 * 1024);
    assert_non_null(strstr(html, "smoothed"));
    assert_int_equal(count(html, "class=\"series band\""), 3); /* raw and smoothed loss, learning rate */
    free(html);
}

/* 50 classes: the grid is not drawn (the per-class table is). */
static void test_report_many_classes(void **state) {
    (void)state;
    char names[50][24]; /* room for "class" and any int (-Wformat-truncation in the -O1 ASan build) */
    const char *labels[50];
    for (int i = 0; i < 50; i++) {
        snprintf(names[i], sizeof names[i], "class%d", i);
        labels[i] = names[i];
    }
    write_run(2, 3, 1, 50, labels);
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), 0);
    char *html = read_report();
    assert_well_formed(html, 4);
    assert_non_null(strstr(html, "id=\"confusion-omitted\""));
    assert_non_null(strstr(html, ">class49<"));
    free(html);
}

/* Values at the ends of the double range (a corrupt but parseable file) still give a page, with
 * no "nan" or "inf" in its coordinates and no endless tick loop. */
static void test_report_extreme_values(void **state) {
    (void)state;
    write_run(3, 10, 1, 2, two_labels);
    write_text("metrics.jsonl",
               "{\"type\":\"step\",\"step\":1,\"epoch\":1,\"loss\":1e308,\"lr\":4.9e-324}\n"
               "{\"type\":\"step\",\"step\":-1e308,\"epoch\":1,\"loss\":-1e308,\"lr\":1e-320}\n"
               "{\"type\":\"step\",\"step\":3,\"epoch\":1,\"loss\":null,\"lr\":0}\n"
               "{\"type\":\"step\",\"step\":4,\"epoch\":1,\"loss\":1e999,\"lr\":-1e999}\n"
               "{\"type\":\"epoch\",\"epoch\":1,\"step\":1e308,\"train_loss\":null,\"train_accuracy\":1e300,"
               "\"val_loss\":-1e308,\"val_accuracy\":null,\"best\":true}\n");
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), 0);
    char *html = read_report();
    assert_well_formed(html, 4);
    free(html);
}

static void expect_error(int code, const char *want1, const char *want2) {
    bertc_error err = {0};
    assert_int_equal(report_write_html(tmpdir, &err), code);
    if (!strstr(err.msg, want1) || (want2 && !strstr(err.msg, want2))) fail_msg("error \"%s\" lacks \"%s\"", err.msg, want1);
    assert_null(strchr(err.msg, '\n'));
}

static void test_report_missing_files(void **state) {
    (void)state;
    write_run(3, 10, 1, 2, two_labels);
    char path[512];
    snprintf(path, sizeof path, "%s/summary.json", tmpdir);
    unlink(path);
    expect_error(BERTC_EIO, "summary.json", NULL);
    snprintf(path, sizeof path, "%s/metrics.jsonl", tmpdir);
    unlink(path);
    expect_error(BERTC_EIO, "metrics.jsonl", NULL);
    assert_false(exists("report.html"));
    bertc_error err = {0};
    assert_int_equal(report_write_html("/nonexistent/run", &err), BERTC_EIO);
    assert_int_equal(report_write_html("", &err), BERTC_EINVAL);
}

/* Bad lines name their line; an existing report.html is left as it was. */
static void test_report_bad_metrics(void **state) {
    (void)state;
    write_run(3, 10, 1, 2, two_labels);
    write_text("report.html", "old");
    FILE *f = open_in_run("metrics.jsonl", "a");
    fputs("{\"type\":\"step\",\"step\":31,\"epoch\":4,\"loss\":0.5,\"lr\":1e-5}\n", f);
    fputs("{\"type\":\"step\",\"step\":32,\"epoch\":4,\"loss\":0.5,\"lr\":1e-5\n", f); /* line 37: cut short */
    fclose(f);
    expect_error(BERTC_EFORMAT, "metrics.jsonl: line 37", "not valid JSON");
    char *html = read_report();
    assert_string_equal(html, "old");
    free(html);

    write_text("metrics.jsonl", "{\"type\":\"step\",\"step\":1,\"epoch\":1,\"lr\":1e-5}\n");
    expect_error(BERTC_EFORMAT, "metrics.jsonl: line 1", "\"loss\"");
    write_text("metrics.jsonl", "\n{\"type\":\"step\",\"step\":1,\"epoch\":1,\"loss\":\"x\",\"lr\":1e-5}\n");
    expect_error(BERTC_EFORMAT, "line 2", "\"loss\"");
    write_text("metrics.jsonl", "{\"type\":\"final\"}\n{\"type\":\"final\"} {\"type\":\"final\"}\n");
    expect_error(BERTC_EFORMAT, "metrics.jsonl: line 2", "not valid JSON");
    write_text("metrics.jsonl", "[1,2]\n");
    expect_error(BERTC_EFORMAT, "line 1", "not a JSON object");
    write_text("metrics.jsonl", "{\"step\":1}\n");
    expect_error(BERTC_EFORMAT, "line 1", "\"type\"");
    write_text("metrics.jsonl", "{\"type\":\"epoch\",\"epoch\":0,\"step\":1,\"train_loss\":1,\"train_accuracy\":0.5}\n");
    expect_error(BERTC_EFORMAT, "line 1", "\"epoch\"");
    write_text("metrics.jsonl", "{\"type\":\"epoch\",\"epoch\":1,\"step\":1,\"train_loss\":1,\"train_accuracy\":0.5,\"val_loss\":1}\n");
    expect_error(BERTC_EFORMAT, "line 1", "\"val_accuracy\"");
    write_text("metrics.jsonl",
               "{\"type\":\"val_metrics\",\"metrics\":{\"n\":2,\"accuracy\":1,\"loss\":0.1,\"macro_f1\":1,\"per_class\":["
               "{\"label\":\"a\",\"precision\":1,\"recall\":1,\"f1\":1,\"support\":1},{\"label\":\"b\",\"precision\":1,\"recall\":1,\"f1\":1,\"support\":1}],"
               "\"confusion\":[[1,0]]}}\n");
    expect_error(BERTC_EFORMAT, "line 1", "confusion");
    write_text("metrics.jsonl",
               "{\"type\":\"val_metrics\",\"metrics\":{\"n\":2,\"accuracy\":1,\"loss\":0.1,\"macro_f1\":1,\"per_class\":["
               "{\"label\":\"a\",\"precision\":1,\"recall\":1,\"f1\":1,\"support\":1}],\"confusion\":[[-1]]}}\n");
    expect_error(BERTC_EFORMAT, "line 1", "confusion row 0");
    write_text("metrics.jsonl",
               "{\"type\":\"val_metrics\",\"metrics\":{\"n\":2,\"accuracy\":1,\"loss\":0.1,\"macro_f1\":1,\"per_class\":["
               "{\"label\":\"a\",\"precision\":1,\"recall\":1,\"f1\":1,\"support\":1}],\"confusion\":[[1e999]]}}\n");
    expect_error(BERTC_EFORMAT, "line 1", "confusion row 0");
    write_text("metrics.jsonl", "{\"type\":\"val_metrics\",\"metrics\":{\"n\":2}}\n");
    expect_error(BERTC_EFORMAT, "line 1", "\"accuracy\"");
}

static void test_report_bad_summary(void **state) {
    (void)state;
    write_run(3, 10, 1, 2, two_labels);
    write_text("summary.json", "{\n\"steps\": 3,\n\"train\": {,\n}\n");
    expect_error(BERTC_EFORMAT, "summary.json: line 3", "not valid JSON");
    write_text("summary.json", "{}\n\n{}\n");
    expect_error(BERTC_EFORMAT, "summary.json: line 3", "not valid JSON");
    write_text("summary.json", "[]");
    expect_error(BERTC_EFORMAT, "summary.json", "not a JSON object");
    write_text("summary.json", "{\"best_epoch\":1,\"epochs_run\":1,\"steps\":1,\"train_seconds\":1,\"examples_per_s\":1,\"stopped_early\":false,"
                               "\"train\":{\"accuracy\":1,\"loss\":1,\"n\":1},\"labels\":[\"a\",2],\"hyperparameters\":{}}");
    expect_error(BERTC_EFORMAT, "summary.json", "\"labels\"");
    write_text("summary.json", "{\"best_epoch\":1,\"epochs_run\":1,\"steps\":1,\"train_seconds\":1,\"examples_per_s\":1,\"stopped_early\":false,"
                               "\"train\":{\"accuracy\":1,\"n\":1},\"labels\":[\"a\"],\"hyperparameters\":{}}");
    expect_error(BERTC_EFORMAT, "summary.json: \"train\"", "\"loss\"");
    write_text("summary.json", "{\"best_epoch\":1,\"epochs_run\":1,\"steps\":1,\"train_seconds\":1,\"examples_per_s\":1,\"stopped_early\":false,"
                               "\"train\":{\"accuracy\":1,\"loss\":1,\"n\":1},\"labels\":[\"a\"]}");
    expect_error(BERTC_EFORMAT, "summary.json", "\"hyperparameters\"");
    write_text("summary.json", "{\"epochs_run\":1}");
    expect_error(BERTC_EFORMAT, "summary.json", "\"best_epoch\"");
    assert_false(exists("report.html"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_report_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_no_validation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_one_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_many_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_many_classes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_extreme_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_missing_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_bad_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_bad_summary, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
