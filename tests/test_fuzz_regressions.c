/* Replays the fuzzers' inputs through the fuzz targets' own bodies (fuzz/targets.c), in the normal
 * build, without libFuzzer: every seed of fuzz/corpus/NAME and every input that once crashed, leaked
 * or hit undefined behaviour, kept in tests/fixtures/fuzz/NAME (the file name says what it was).
 * Each must come back with BERTC_OK or an error code, never a crash; under `make asan` memory errors,
 * leaks and undefined behaviour fail the run as well. The harness itself aborts when a successful
 * parse breaks an invariant (targets.c: harness_check()). */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../fuzz/targets.c"
#include "util/fs.h"

/* Feeds every file of folder to t; returns how many there were (0 when the folder is absent). */
static int replay_folder(const fuzz_target *t, const char *folder, int *ok, int *failed) {
    char dpath[512];
    snprintf(dpath, sizeof dpath, "%s/%s", folder, t->name);
    DIR *d = opendir(dpath);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dpath, e->d_name);
        char *buf;
        size_t len;
        bertc_error err;
        assert_int_equal(fs_read_all(path, &buf, &len, (size_t)16 << 20, &err), BERTC_OK);
        int rc = t->run((const uint8_t *)buf, len);
        free(buf);
        if (rc < BERTC_OK || rc > BERTC_EINTERRUPTED) fail_msg("%s: status %d is not a bertc status", path, rc);
        if (rc == BERTC_OK) (*ok)++;
        else (*failed)++;
        n++;
    }
    closedir(d);
    return n;
}

static void test_target(void **state) {
    const fuzz_target *t = *state;
    int ok = 0, failed = 0;
    int seeds = replay_folder(t, "fuzz/corpus", &ok, &failed);
    int kept = replay_folder(t, "tests/fixtures/fuzz", &ok, &failed);
    printf("  %-17s %2d seeds, %2d regression inputs: %d accepted, %d refused\n", t->name, seeds, kept, ok, failed);
    /* Every target has seeds, and the seeds are (nearly all) good files of their kind: a target
     * whose seeds all fail would be fuzzing only the first error check. */
    assert_true(seeds >= 2);
    assert_true(ok >= 1);
}

static int run_file(fuzz_fn fn, const char *path) {
    char *buf;
    size_t len;
    bertc_error err;
    assert_int_equal(fs_read_all(path, &buf, &len, (size_t)16 << 20, &err), BERTC_OK);
    int rc = fn((const uint8_t *)buf, len);
    free(buf);
    return rc;
}

/* The kept inputs whose status is known: each must be refused, with the right code. */
static void test_known_statuses(void **state) {
    (void)state;
    assert_int_equal(run_file(fuzz_tar, "tests/fixtures/fuzz/tar/empty_archive_qsort_null"), BERTC_EFORMAT);
    assert_int_equal(run_file(fuzz_tar, "tests/fixtures/fuzz/tar/member_size_8GiB_oom"), BERTC_EFORMAT);
    assert_int_equal(run_file(fuzz_jsonl, "tests/fixtures/fuzz/jsonl/label_1e300_float_cast_ub"), BERTC_EFORMAT);
    assert_int_equal(run_file(fuzz_config, "tests/fixtures/fuzz/config/num_labels_2e9_oom"), BERTC_EUNSUPPORTED);
    assert_int_equal(run_file(fuzz_sweep, "tests/fixtures/fuzz/sweep/line_over_4096_leak"), BERTC_EFORMAT);
}

int main(void) {
    struct CMUnitTest tests[32];
    size_t n = 0;
    for (const fuzz_target *t = FUZZ_TARGETS; t->name && n < 31; t++)
        tests[n++] = (struct CMUnitTest){t->name, test_target, NULL, NULL, (void *)t};
    tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_known_statuses);
    return _cmocka_run_group_tests("fuzz_regressions", tests, n, NULL, NULL);
}
