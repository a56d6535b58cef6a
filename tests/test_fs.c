/* Atomic file helpers: write, overwrite, copy, mkdir -p, read with a size limit; failures name
 * the path and leave neither a temporary file nor a changed destination behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fs.h"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make(tmpdir, sizeof tmpdir, "fs");
}

static int teardown(void **state) {
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

/* Number of entries in dir whose name contains ".tmp." (leftover temporary files). */
static int count_tmp(const char *dir) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -c '\\.tmp\\.' > /dev/null", dir);
    return system(cmd) == 0;
}

static void test_write_read(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/a.txt", tmpdir);
    bertc_error err = {0};
    assert_int_equal(fs_write_atomic(path, "hello", 5, &err), 0);
    char *buf;
    size_t n;
    assert_int_equal(fs_read_all(path, &buf, &n, 100, &err), 0);
    assert_int_equal(n, 5);
    assert_string_equal(buf, "hello"); /* NUL-terminated */
    free(buf);
    /* Overwrite with something shorter: the old bytes are gone. */
    assert_int_equal(fs_write_atomic(path, "hi", 2, &err), 0);
    assert_int_equal(fs_read_all(path, &buf, &n, 100, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(buf, "hi");
    free(buf);
    /* Empty file. */
    assert_int_equal(fs_write_atomic(path, "", 0, &err), 0);
    assert_int_equal(fs_read_all(path, &buf, &n, 100, &err), 0);
    assert_int_equal(n, 0);
    assert_string_equal(buf, "");
    free(buf);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_false(count_tmp(tmpdir));
}

static void test_read_limits_and_errors(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/big.bin", tmpdir);
    bertc_error err = {0};
    char data[10000];
    memset(data, 'x', sizeof data);
    assert_int_equal(fs_write_atomic(path, data, sizeof data, &err), 0);
    char *buf = (char *)1;
    size_t n = 7;
    assert_int_equal(fs_read_all(path, &buf, &n, 9999, &err), BERTC_EFORMAT);
    assert_null(buf);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, "larger than the 9999 bytes allowed"));
    assert_int_equal(fs_read_all(path, &buf, &n, 10000, &err), 0);
    assert_int_equal(n, 10000);
    free(buf);
    assert_int_equal(fs_read_all("/nonexistent/file", &buf, &n, 10, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/file: cannot open"));
    assert_int_equal(fs_read_all(tmpdir, &buf, &n, 10, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "is a folder"));
    /* Writing into a folder that does not exist fails and names the path. */
    assert_int_equal(fs_write_atomic("/nonexistent/dir/x", "a", 1, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x"));
    assert_int_equal(fs_write_atomic("", "a", 1, &err), BERTC_EINVAL);
}

static void test_streaming_abort_keeps_old(void **state) {
    (void)state;
    char path[300];
    snprintf(path, sizeof path, "%s/keep.txt", tmpdir);
    bertc_error err = {0};
    assert_int_equal(fs_write_atomic(path, "old", 3, &err), 0);
    fs_atomic_file f;
    assert_int_equal(fs_atomic_open(&f, path, &err), 0);
    assert_int_equal(fs_atomic_write(&f, "new content", 11, &err), 0);
    assert_true(count_tmp(tmpdir)); /* the temporary file exists next to the destination */
    fs_atomic_abort(&f);
    fs_atomic_abort(&f); /* twice is harmless */
    assert_false(count_tmp(tmpdir));
    char *buf;
    size_t n;
    assert_int_equal(fs_read_all(path, &buf, &n, 100, &err), 0);
    assert_string_equal(buf, "old");
    free(buf);
    /* Streamed in pieces, then committed. */
    assert_int_equal(fs_atomic_open(&f, path, &err), 0);
    assert_int_equal(fs_atomic_write(&f, "new ", 4, &err), 0);
    assert_int_equal(fs_atomic_write(&f, "content", 7, &err), 0);
    assert_int_equal(fs_atomic_commit(&f, &err), 0);
    assert_int_equal(fs_read_all(path, &buf, &n, 100, &err), 0);
    assert_string_equal(buf, "new content");
    free(buf);
    assert_false(count_tmp(tmpdir));
}

static void test_copy(void **state) {
    (void)state;
    char src[300], dst[300];
    snprintf(src, sizeof src, "%s/src.bin", tmpdir);
    snprintf(dst, sizeof dst, "%s/dst.bin", tmpdir);
    bertc_error err = {0};
    /* Larger than the 1 MiB copy chunk, with every byte value. */
    size_t n = (3u << 20) + 123;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++) data[i] = (char)(i * 7 + (i >> 12));
    assert_int_equal(fs_write_atomic(src, data, n, &err), 0);
    assert_int_equal(fs_copy_file(src, dst, &err), 0);
    char *buf;
    size_t m;
    assert_int_equal(fs_read_all(dst, &buf, &m, n, &err), 0);
    assert_int_equal(m, n);
    assert_memory_equal(buf, data, n);
    free(buf);
    free(data);
    assert_int_equal(fs_copy_file("/nonexistent/src", dst, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent/src"));
    assert_false(count_tmp(tmpdir));
}

static void test_mkdir_p(void **state) {
    (void)state;
    char path[300];
    bertc_error err = {0};
    snprintf(path, sizeof path, "%s/a/b//c/", tmpdir);
    assert_int_equal(fs_mkdir_p(path, &err), 0);
    assert_int_equal(fs_mkdir_p(path, &err), 0); /* existing: fine */
    snprintf(path, sizeof path, "%s/a/b/c", tmpdir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A file in the way, as the last component or in the middle. */
    snprintf(path, sizeof path, "%s/a/file", tmpdir);
    assert_int_equal(fs_write_atomic(path, "x", 1, &err), 0);
    assert_int_equal(fs_mkdir_p(path, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "exists and is not a folder"));
    snprintf(path, sizeof path, "%s/a/file/sub", tmpdir);
    assert_int_equal(fs_mkdir_p(path, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "cannot create folder"));
    assert_int_equal(fs_mkdir_p("", &err), BERTC_EINVAL);
    assert_int_equal(fs_mkdir_p("/", &err), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_read_limits_and_errors),
        cmocka_unit_test(test_streaming_abort_keeps_old),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_mkdir_p),
    };
    return cmocka_run_group_tests_name("fs", tests, setup, teardown);
}
