/* Learning-rate schedules against transformers.get_scheduler: tests/fixtures/optim/schedules.json
 * (written by reference/make_optim_fixture.py) holds the lr of every update k = 0 .. total+1 for
 * constant, constant_with_warmup, linear and cosine, for 375 steps / 37 warm-up and the edge cases
 * warm-up 0, warm-up = total and total 1; each must agree within 1e-7 relative. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/schedule.h"

#define FIXTURE "tests/fixtures/optim/schedules.json"

static void test_matches_transformers(void **state) {
    (void)state;
    cJSON *fx = test_load_json(FIXTURE);
    assert_non_null(fx);
    const cJSON *c;
    int cases = 0;
    double max_rel = 0.0;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(fx, "cases")) {
        const char *name = cJSON_GetObjectItemCaseSensitive(c, "name")->valuestring;
        lr_schedule s = {.base_lr = (float)cJSON_GetObjectItemCaseSensitive(c, "base_lr")->valuedouble,
                         .warmup_steps = cJSON_GetObjectItemCaseSensitive(c, "warmup")->valueint,
                         .total_steps = cJSON_GetObjectItemCaseSensitive(c, "total")->valueint};
        /* transformers' constant_with_warmup is bertc's constant with warm-up steps. */
        const char *kind = strcmp(name, "constant_with_warmup") == 0 ? "constant" : name;
        assert_int_equal(lr_schedule_parse(kind, &s.kind), 0);
        long k = 0;
        const cJSON *want;
        cJSON_ArrayForEach(want, cJSON_GetObjectItemCaseSensitive(c, "lrs")) {
            double got = lr_schedule_at(&s, k), w = want->valuedouble;
            double rel = w != 0.0 ? fabs(got - w) / fabs(w) : fabs(got);
            if (rel > max_rel) max_rel = rel;
            if (rel > 1e-7)
                fail_msg("%s warmup %ld total %ld: step %ld: lr %.9g, transformers %.9g",
                         name, s.warmup_steps, s.total_steps, k, got, w);
            k++;
        }
        assert_int_equal(k, s.total_steps + 2);
        cases++;
    }
    print_message("%d schedules, max relative difference from transformers %.3g\n", cases, max_rel);
    cJSON_Delete(fx);
}

static void test_parse_and_name(void **state) {
    (void)state;
    lr_schedule_kind kind = LR_LINEAR;
    assert_int_equal(lr_schedule_parse("cosine", &kind), 0);
    assert_int_equal(kind, LR_COSINE);
    assert_string_equal(lr_schedule_name(kind), "cosine");
    assert_int_equal(lr_schedule_parse("constant", &kind), 0);
    assert_string_equal(lr_schedule_name(kind), "constant");
    assert_int_equal(lr_schedule_parse("linear", &kind), 0);
    assert_string_equal(lr_schedule_name(kind), "linear");
    assert_int_equal(lr_schedule_parse("Linear", &kind), -1);
    assert_int_equal(lr_schedule_parse("polynomial", &kind), -1);
    assert_int_equal(lr_schedule_parse("", &kind), -1);
    assert_int_equal(lr_schedule_parse(NULL, &kind), -1);
    assert_int_equal(kind, LR_LINEAR); /* untouched by failures */
}

static void test_shape(void **state) {
    (void)state;
    lr_schedule s = {.kind = LR_LINEAR, .base_lr = 1.0f, .warmup_steps = 4, .total_steps = 8};
    assert_float_equal(lr_schedule_at(&s, -3), 0.0f, 0); /* before the start: as step 0 */
    assert_float_equal(lr_schedule_at(&s, 2), 0.5f, 0);
    assert_float_equal(lr_schedule_at(&s, 4), 1.0f, 0);
    assert_float_equal(lr_schedule_at(&s, 6), 0.5f, 0);
    assert_float_equal(lr_schedule_at(&s, 100), 0.0f, 0);
    s.kind = LR_COSINE;
    assert_float_equal(lr_schedule_at(&s, 6), 0.5f, 1e-7);
    assert_float_equal(lr_schedule_at(&s, 8), 0.0f, 0);
    s.kind = LR_CONSTANT;
    assert_float_equal(lr_schedule_at(&s, 1), 0.25f, 0);
    assert_float_equal(lr_schedule_at(&s, 1000), 1.0f, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_transformers),
        cmocka_unit_test(test_parse_and_name),
        cmocka_unit_test(test_shape),
    };
    return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}
