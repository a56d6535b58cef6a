/* util/background.h: work run in a thread and joined later, its error handed to the caller once,
 * and background_finish's rule for which error a run reports. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <unistd.h>

#include "util/background.h"
#include "util/error.h"

typedef struct job {
    int fail;        /* return this code (0: succeed) */
    int ran;
} job;

static int work(void *ctx, bertc_error *err) {
    job *j = ctx;
    usleep(20000); /* long enough that the caller goes on before it ends */
    j->ran++;
    return j->fail ? bertc_errorf(err, j->fail, "work failed (%d)", j->fail) : 0;
}

static void test_runs_and_reports_once(void **state) {
    (void)state;
    background b = {0};
    bertc_error err = {0};
    job ok = {0}, bad = {.fail = BERTC_EIO};
    assert_int_equal(background_start(&b, work, &ok, &err), 0);
    assert_int_equal(background_wait(&b, &err), 0);
    assert_int_equal(ok.ran, 1);
    assert_int_equal(background_start(&b, work, &bad, &err), 0); /* started: its error comes later */
    assert_int_equal(background_wait(&b, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "work failed"));
    assert_int_equal(background_wait(&b, &err), 0); /* reported once */
    /* a start waits for the work before and, when that failed, returns its error without starting */
    bad.ran = 0;
    assert_int_equal(background_start(&b, work, &bad, &err), 0);
    ok.ran = 0;
    assert_int_equal(background_start(&b, work, &ok, &err), BERTC_EIO);
    assert_int_equal(ok.ran, 0);
    assert_int_equal(bad.ran, 1);
}

static void test_finish(void **state) {
    (void)state;
    bertc_error err = {0};
    double seconds = 0;
    background b = {0};
    job bad = {.fail = BERTC_EIO};
    /* a clean run takes the work's error, and the time waited is counted */
    assert_int_equal(background_start(&b, work, &bad, &err), 0);
    assert_int_equal(background_finish(&b, 0, &err, &seconds), BERTC_EIO);
    assert_non_null(strstr(err.msg, "work failed"));
    assert_true(seconds > 0.005);
    /* so does an interrupted one (it could not be resumed from that file) */
    assert_int_equal(background_start(&b, work, &bad, &err), 0);
    assert_int_equal(background_finish(&b, BERTC_EINTERRUPTED, &err, NULL), BERTC_EIO);
    /* another error stays the run's, with its message */
    assert_int_equal(background_start(&b, work, &bad, &err), 0);
    bertc_errorf(&err, BERTC_ENUMERIC, "the run's own error");
    assert_int_equal(background_finish(&b, BERTC_ENUMERIC, &err, NULL), BERTC_ENUMERIC);
    assert_string_equal(err.msg, "the run's own error");
    /* nothing running: rc as it was */
    assert_int_equal(background_finish(&b, 0, &err, NULL), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runs_and_reports_once),
        cmocka_unit_test(test_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
