/* Metrics against sklearn 1.9.1. The expected numbers were computed once with
 *   y_true = [0,0,0,0,0,1,1,1,1,2,2,2,0,1,2,1,0,0,1,2]
 *   y_pred = [0,0,1,0,4,1,1,0,1,0,1,1,0,1,1,1,0,4,0,1]
 *   confusion_matrix(y_true, y_pred, labels=range(5)), accuracy_score(y_true, y_pred),
 *   precision_recall_fscore_support(y_true, y_pred, labels=range(5), zero_division=0),
 *   f1_score(y_true, y_pred, average="macro", zero_division=0)
 * Class 2 is never predicted (precision 0/0), class 4 is predicted but never true (recall 0/0),
 * class 3 occurs in neither (left out of sklearn's macro average). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/metrics.h"

static const int y_true[20] = {0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 0, 1, 2, 1, 0, 0, 1, 2};
static const int y_pred[20] = {0, 0, 1, 0, 4, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 4, 0, 1};
static const long want_confusion[5][5] = {
    {5, 1, 0, 0, 2}, {2, 5, 0, 0, 0}, {1, 4, 0, 0, 0}, {0, 0, 0, 0, 0}, {0, 0, 0, 0, 0}};
static const double want_precision[5] = {0.625, 0.5, 0.0, 0.0, 0.0};
static const double want_recall[5] = {0.625, 0.7142857142857143, 0.0, 0.0, 0.0};
static const double want_f1[5] = {0.625, 0.5882352941176471, 0.0, 0.0, 0.0};
static const long want_support[5] = {8, 7, 5, 0, 0};
static const double want_accuracy = 0.5;
static const double want_macro_f1 = 0.3033088235294118;

static void fill(metrics *m) {
    assert_int_equal(metrics_init(m, 5, NULL), BERTC_OK);
    for (int i = 0; i < 20; i++) metrics_add(m, y_true[i], y_pred[i], 0.05 * i); /* losses sum to 9.5 */
}

static void test_matches_sklearn(void **state) {
    (void)state;
    metrics m;
    fill(&m);
    assert_int_equal(m.n, 20);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) assert_int_equal(m.confusion[i * 5 + j], want_confusion[i][j]);
    assert_float_equal(metrics_accuracy(&m), want_accuracy, 1e-15);
    assert_float_equal(metrics_loss(&m), 9.5 / 20, 1e-12);
    for (int c = 0; c < 5; c++) {
        double p, r, f1;
        metrics_class(&m, c, &p, &r, &f1);
        assert_float_equal(p, want_precision[c], 1e-15);
        assert_float_equal(r, want_recall[c], 1e-15);
        assert_float_equal(f1, want_f1[c], 1e-15);
        assert_int_equal(metrics_support(&m, c), want_support[c]);
    }
    assert_float_equal(metrics_macro_f1(&m), want_macro_f1, 1e-15);
    metrics_free(&m);
}

static void test_empty_and_bad_input(void **state) {
    (void)state;
    metrics m;
    bertc_error err;
    assert_int_equal(metrics_init(&m, 0, &err), BERTC_EINVAL);
    assert_int_equal(metrics_init(&m, -3, &err), BERTC_EINVAL);
    assert_int_equal(metrics_init(&m, METRICS_MAX_CLASSES + 1, &err), BERTC_EINVAL);
    metrics_free(&m); /* safe after a failed init */
    assert_int_equal(metrics_init(&m, 2, &err), BERTC_OK);
    /* No examples: every ratio is 0, nothing divides by zero. */
    assert_float_equal(metrics_accuracy(&m), 0, 0);
    assert_float_equal(metrics_loss(&m), 0, 0);
    assert_float_equal(metrics_macro_f1(&m), 0, 0);
    double p = 1, r = 1, f1 = 1;
    metrics_class(&m, 1, &p, &r, &f1);
    assert_true(p == 0 && r == 0 && f1 == 0);
    metrics_class(&m, 7, &p, &r, &f1); /* no such class */
    assert_true(p == 0 && r == 0 && f1 == 0);
    /* Out-of-range labels are ignored, not written out of bounds. */
    metrics_add(&m, 2, 0, 1.0);
    metrics_add(&m, 0, -1, 1.0);
    assert_int_equal(m.n, 0);
    /* All predictions one class: the other has precision 0/0 = 0, and sklearn's macro F1 is
     * (f1(0) + 0) / 2 with f1(0) = 2*0.5*1/1.5. */
    metrics_add(&m, 0, 0, 0.1);
    metrics_add(&m, 1, 0, 0.3);
    metrics_class(&m, 1, &p, &r, &f1);
    assert_true(p == 0 && r == 0 && f1 == 0);
    assert_float_equal(metrics_macro_f1(&m), (2.0 * 0.5 / 1.5) / 2, 1e-15);
    assert_float_equal(metrics_loss(&m), 0.2, 1e-15);
    metrics_reset(&m);
    assert_int_equal(m.n, 0);
    assert_int_equal(m.confusion[0], 0);
    metrics_free(&m);
}

static char *write_to_string(const metrics *m, char *const *names, int json) {
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    assert_non_null(f);
    if (json) metrics_write_json(m, names, f);
    else metrics_write_text(m, names, f);
    fclose(f);
    return text;
}

static double json_num(const cJSON *obj, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(obj, key);
    assert_true(cJSON_IsNumber(x));
    return x->valuedouble;
}

static void test_json_round_trip(void **state) {
    (void)state;
    metrics m;
    fill(&m);
    /* Names that need escaping: a quote, a backslash, a newline, a control byte, and UTF-8. */
    char *names[5] = {"neg \"bad\"", "pos\\ok", "line\nbreak", "bell\a", "caf\xc3\xa9"};
    char *text = write_to_string(&m, names, 1);
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    /* Stable key order. */
    const char *order[] = {"n", "accuracy", "loss", "macro_f1", "per_class", "confusion"};
    int i = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, j) assert_string_equal(item->string, order[i++]);
    assert_int_equal(i, 6);
    assert_int_equal((int)json_num(j, "n"), 20);
    assert_float_equal(json_num(j, "accuracy"), want_accuracy, 1e-14);
    assert_float_equal(json_num(j, "loss"), 0.475, 1e-14);
    assert_float_equal(json_num(j, "macro_f1"), want_macro_f1, 1e-14);
    const cJSON *per_class = cJSON_GetObjectItemCaseSensitive(j, "per_class");
    assert_int_equal(cJSON_GetArraySize(per_class), 5);
    for (int c = 0; c < 5; c++) {
        const cJSON *pc = cJSON_GetArrayItem(per_class, c);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(pc, "label")->valuestring, names[c]);
        assert_float_equal(json_num(pc, "precision"), want_precision[c], 1e-14);
        assert_float_equal(json_num(pc, "recall"), want_recall[c], 1e-14);
        assert_float_equal(json_num(pc, "f1"), want_f1[c], 1e-14);
        assert_int_equal((long)json_num(pc, "support"), want_support[c]);
    }
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(j, "confusion");
    assert_int_equal(cJSON_GetArraySize(conf), 5);
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++)
            assert_int_equal(cJSON_GetArrayItem(cJSON_GetArrayItem(conf, r), c)->valueint, want_confusion[r][c]);
    cJSON_Delete(j);
    free(text);

    /* Without names the labels are class numbers; a non-finite loss becomes null. */
    metrics_add(&m, 0, 0, INFINITY);
    text = write_to_string(&m, NULL, 1);
    j = cJSON_Parse(text);
    assert_non_null(j);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "loss")));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "per_class"), 4), "label")->valuestring, "4");
    cJSON_Delete(j);
    free(text);
    metrics_free(&m);
}

static void test_text_table(void **state) {
    (void)state;
    metrics m;
    fill(&m);
    char *names[5] = {"negative", "positive", "neutral", "other", NULL};
    char *text = write_to_string(&m, names, 0);
    assert_non_null(strstr(text, "accuracy  0.5000"));
    assert_non_null(strstr(text, "macro F1  0.3033"));
    assert_non_null(strstr(text, "positive  0.5000     0.7143  0.5882  7"));
    assert_non_null(strstr(text, "0  negative  5  1  0  0  2"));
    assert_non_null(strstr(text, "4  4         0  0  0  0  0"));
    print_message("%s", text);
    free(text);
    metrics_free(&m);
}

/* The trainer keeps the best epoch's metrics with metrics_copy: every count and the loss come
 * over, later additions to the source do not, and a copy between different class counts is
 * refused without writing. */
static void test_copy(void **state) {
    (void)state;
    metrics src, dst, other;
    fill(&src);
    assert_int_equal(metrics_init(&dst, 5, NULL), BERTC_OK);
    metrics_add(&dst, 3, 3, 7.0); /* overwritten by the copy */
    metrics_copy(&dst, &src);
    assert_int_equal(dst.n, 20);
    assert_true(metrics_accuracy(&dst) == want_accuracy && metrics_loss(&dst) == metrics_loss(&src));
    assert_memory_equal(dst.confusion, want_confusion, sizeof want_confusion);
    metrics_add(&src, 0, 0, 1.0);
    assert_int_equal(dst.n, 20);
    assert_int_equal(metrics_init(&other, 3, NULL), BERTC_OK);
    metrics_copy(&other, &src);
    assert_int_equal(other.n, 0);
    metrics_free(&src);
    metrics_free(&dst);
    metrics_free(&other);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_sklearn),
        cmocka_unit_test(test_empty_and_bad_input),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_text_table),
        cmocka_unit_test(test_copy),
    };
    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
