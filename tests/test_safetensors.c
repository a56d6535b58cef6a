/* safetensors reader and writer.
 * - mixed.safetensors (written by Python safetensors, reference/make_safetensors_fixture.py):
 *   every tensor's dtype, shape and converted values, F16 subnormals/inf/NaN and BF16 included.
 * - safetensors_write round trip, header layout (8-byte padding, metadata, order).
 * - Bad files: each must fail with a clear message naming the problem, never crash or read past
 *   the end. Built here byte by byte so each case is visible next to its expected message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "util/fs.h"

#define FIXTURE "tests/fixtures/model_io/mixed.safetensors"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make(tmpdir, sizeof tmpdir, "st");
}

static int teardown(void **state) {
    (void)state;
    return test_tmpdir_remove(tmpdir);
}

static void tmp_path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", tmpdir, name); }

static void assert_float_bits_equal(float got, float want) {
    if (isnan(want)) {
        assert_true(isnan(got));
        return;
    }
    uint32_t a, b;
    memcpy(&a, &got, 4);
    memcpy(&b, &want, 4);
    if (a != b) fail_msg("got %a, want %a", (double)got, (double)want);
}

/* Converts every tensor bertc can convert, so any out-of-bounds data pointer would be touched. */
static void touch_all(const safetensors_file *f) {
    for (size_t i = 0; i < f->n; i++) {
        const st_tensor *t = &f->tensors[i];
        float *buf = malloc((t->numel ? t->numel : 1) * sizeof(float));
        assert_non_null(buf);
        bertc_error err = {0};
        safetensors_to_f32(t, buf, t->numel, &err);
        const unsigned char *p = t->data;
        unsigned sum = 0;
        for (size_t k = 0; k < t->nbytes; k++) sum += p[k];
        (void)sum;
        free(buf);
    }
}

static void test_read_python_fixture(void **state) {
    (void)state;
    safetensors_file f;
    bertc_error err = {0};
    int rc = safetensors_open(&f, FIXTURE, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(f.n, 6);

    const st_tensor *t = safetensors_find(&f, "f32");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->nbytes, 24);
    float f32[6];
    assert_int_equal(safetensors_to_f32(t, f32, 6, &err), 0);
    const float want_f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, -1e30f};
    for (int i = 0; i < 6; i++) assert_float_bits_equal(f32[i], want_f32[i]);

    t = safetensors_find(&f, "f16");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F16);
    assert_int_equal(t->numel, 12);
    float f16[12];
    assert_int_equal(safetensors_to_f32(t, f16, 12, &err), 0);
    const float want_f16[12] = {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 0x1p-24f, 0x3p-24f, 0x3ffp-24f, 0x1p-14f,
                                INFINITY, -INFINITY, NAN};
    for (int i = 0; i < 12; i++) assert_float_bits_equal(f16[i], want_f16[i]);

    t = safetensors_find(&f, "bf16");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_BF16);
    assert_int_equal(t->ndim, 2);
    float bf16[6];
    assert_int_equal(safetensors_to_f32(t, bf16, 6, &err), 0);
    const float want_bf16[6] = {1.0f, -3.140625f, 0x1p-130f, 3.3895313892515355e38f, INFINITY, NAN};
    for (int i = 0; i < 6; i++) assert_float_bits_equal(bf16[i], want_bf16[i]);

    t = safetensors_find(&f, "i64");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_I64);
    assert_int_equal(t->nbytes, 24);
    int64_t i64[3];
    memcpy(i64, t->data, sizeof i64);
    assert_true(i64[0] == 1 && i64[1] == -2 && i64[2] == (int64_t)1 << 40);
    float dummy[3];
    assert_int_not_equal(safetensors_to_f32(t, dummy, 3, &err), 0);
    assert_non_null(strstr(err.msg, "tensor 'i64': dtype I64 cannot be read as float"));

    t = safetensors_find(&f, "scalar");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    float s;
    assert_int_equal(safetensors_to_f32(t, &s, 1, &err), 0);
    assert_true(s == 7.5f);

    t = safetensors_find(&f, "empty");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 0);
    assert_int_equal(t->shape[1], 4);
    assert_int_equal(t->numel, 0);
    assert_int_equal(safetensors_to_f32(t, NULL, 0, &err), 0);

    /* A wrong destination size is the caller's mistake, reported as such. */
    t = safetensors_find(&f, "f32");
    assert_int_equal(safetensors_to_f32(t, f32, 5, &err), BERTC_EINVAL);

    assert_null(safetensors_find(&f, "__metadata__"));
    assert_null(safetensors_find(&f, "nope"));
    safetensors_close(&f);
    safetensors_close(&f); /* closing twice is harmless */
}

static void test_write_read_round_trip(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "rt.safetensors");
    float a[6] = {1, 2, 3, 4, 5, -6.5f}, b[1] = {42}, c[3] = {NAN, INFINITY, -0.0f};
    const st_write_tensor ts[4] = {
        {"bert.embeddings.word_embeddings.weight", a, 2, {3, 2}, 0},
        {"scalar \"quoted\"\\ name", b, 0, {0}, 0},
        {"empty", NULL, 3, {2, 0, 5}, 0},
        {"classifier.bias", c, 1, {3}, 0},
    };
    const char *meta[] = {"epoch", "3", "note", "caf\xc3\xa9"};
    bertc_error err = {0};
    int rc = safetensors_write(path, ts, 4, meta, 2, &err);
    if (rc) fail_msg("%s", err.msg);

    /* Header layout: length multiple of 8, metadata first with format pt, tensors in the given order. */
    char *raw;
    size_t n;
    assert_int_equal(fs_read_all(path, &raw, &n, 1 << 20, &err), 0);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)raw[i];
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(n, 8 + hlen + (6 + 1 + 0 + 3) * 4);
    assert_memory_equal(raw + 8, "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":\"3\",\"note\":\"caf\xc3\xa9\"}", 57);
    char *p1 = strstr(raw + 8, "word_embeddings"), *p2 = strstr(raw + 8, "quoted"),
         *p3 = strstr(raw + 8, "\"empty\""), *p4 = strstr(raw + 8, "classifier.bias");
    assert_true(p1 && p2 && p3 && p4 && p1 < p2 && p2 < p3 && p3 < p4);
    free(raw);

    safetensors_file f;
    rc = safetensors_open(&f, path, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(f.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(f.tensors[i].name, ts[i].name);
        assert_int_equal(f.tensors[i].dtype, ST_F32);
        assert_int_equal(f.tensors[i].ndim, ts[i].ndim);
        for (int d = 0; d < ts[i].ndim; d++) assert_int_equal(f.tensors[i].shape[d], ts[i].shape[d]);
    }
    /* Data buffer starts 8-aligned in the file, so F32 data is 4-aligned in the mapping. */
    assert_int_equal(((uintptr_t)f.tensors[0].data) % 8, 0);
    float got[6];
    assert_int_equal(safetensors_to_f32(safetensors_find(&f, ts[0].name), got, 6, &err), 0);
    assert_memory_equal(got, a, sizeof a);
    assert_int_equal(safetensors_to_f32(safetensors_find(&f, ts[1].name), got, 1, &err), 0);
    assert_true(got[0] == 42.0f);
    assert_int_equal(safetensors_find(&f, "empty")->numel, 0);
    assert_int_equal(safetensors_to_f32(safetensors_find(&f, "classifier.bias"), got, 3, &err), 0);
    assert_memory_equal(got, c, sizeof c);
    safetensors_close(&f);

    /* Overwriting goes through a temporary file: nothing else is left in the folder. */
    assert_int_equal(safetensors_write(path, ts, 1, NULL, 0, &err), 0);
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    assert_int_equal(f.n, 1);
    safetensors_close(&f);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | grep -c tmp) -eq 0", tmpdir);
    assert_int_equal(system(cmd), 0);
}

static void test_write_rejects_bad_input(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "bad_write.safetensors");
    float a[2] = {1, 2};
    bertc_error err = {0};
    st_write_tensor dup[2] = {{"x", a, 1, {2}, 0}, {"x", a, 1, {2}, 0}};
    assert_int_equal(safetensors_write(path, dup, 2, NULL, 0, &err), BERTC_EINVAL);
    assert_non_null(strstr(err.msg, "'x' given twice"));
    st_write_tensor neg = {"y", a, 1, {-2}, 0};
    assert_int_equal(safetensors_write(path, &neg, 1, NULL, 0, &err), BERTC_EINVAL);
    st_write_tensor meta = {"__metadata__", a, 1, {2}, 0};
    assert_int_equal(safetensors_write(path, &meta, 1, NULL, 0, &err), BERTC_EINVAL);
    st_write_tensor bad_utf8 = {"\xff", a, 1, {2}, 0};
    assert_int_equal(safetensors_write(path, &bad_utf8, 1, NULL, 0, &err), BERTC_EINVAL);
    st_write_tensor nodata = {"z", NULL, 1, {2}, 0};
    assert_int_equal(safetensors_write(path, &nodata, 1, NULL, 0, &err), BERTC_EINVAL);
    assert_int_equal(access(path, F_OK), -1); /* nothing was written */
    /* A folder that does not exist: an I/O error naming the path. */
    assert_int_equal(safetensors_write("/nonexistent_dir/x.safetensors", dup, 1, NULL, 0, &err), BERTC_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent_dir/x.safetensors"));
}

/* ---------------------------------------------------------------------------------------- */
/* Bad files                                                                                */

/* Writes an 8-byte length (hlen, or strlen(header) when hlen is UINT64_MAX), the header, and
 * data_len bytes of data. */
static void write_raw(const char *path, uint64_t hlen, const char *header, size_t data_len) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    size_t len = strlen(header);
    if (hlen == UINT64_MAX) hlen = len;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hlen >> (8 * i));
    fwrite(len8, 1, 8, fp);
    fwrite(header, 1, len, fp);
    for (size_t i = 0; i < data_len; i++) fputc(0x3f, fp);
    fclose(fp);
}

/* Opens path, expects failure with BERTC_EFORMAT (or code) and a message containing want. */
static void expect_open_error(const char *path, int code, const char *want) {
    safetensors_file f;
    bertc_error err = {0};
    int rc = safetensors_open(&f, path, &err);
    if (rc == 0) {
        safetensors_close(&f);
        fail_msg("%s: opened, expected an error containing \"%s\"", path, want);
    }
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, want)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    assert_non_null(strstr(err.msg, path)); /* every message names the file */
    assert_null(f.tensors);                  /* nothing left to free */
    assert_null(f.map);
}

static void expect_header_error(const char *header, size_t data_len, const char *want) {
    char path[300];
    tmp_path(path, sizeof path, "bad.safetensors");
    write_raw(path, UINT64_MAX, header, data_len);
    expect_open_error(path, BERTC_EFORMAT, want);
}

static void test_bad_files(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "bad.safetensors");
    FILE *fp;

    fp = fopen(path, "wb");
    fclose(fp);
    expect_open_error(path, BERTC_EFORMAT, "file is 0 bytes, too short");
    fp = fopen(path, "wb");
    fwrite("\x10\0\0\0\0\0\0", 1, 7, fp);
    fclose(fp);
    expect_open_error(path, BERTC_EFORMAT, "file is 7 bytes, too short");

    write_raw(path, UINT64_MAX - 1, "{}", 0);
    expect_open_error(path, BERTC_EFORMAT, "header length 18446744073709551614 is over the 100000000 bytes allowed");
    write_raw(path, 100000001, "{}", 0);
    expect_open_error(path, BERTC_EFORMAT, "is over the 100000000 bytes allowed");
    write_raw(path, 64, "{}", 0);
    expect_open_error(path, BERTC_EFORMAT, "header length 64 runs past the end of the file (size 10)");
    write_raw(path, 0, "", 0);
    expect_open_error(path, BERTC_EFORMAT, "header length 0 is too short");
    expect_open_error("/nonexistent/model.safetensors", BERTC_EIO, "cannot open");
    expect_open_error(tmpdir, BERTC_EIO, "not a regular file");

    expect_header_error("{\"a\": {\"dtype\": ", 0, "header is not valid JSON");
    expect_header_error("not json at all!", 0, "header is not valid JSON");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", 4,
                        "data after the JSON object");
    expect_header_error("[1, 2, 3]", 0, "header is JSON but not an object");
    expect_header_error("\"str\"", 0, "header is JSON but not an object");
    expect_header_error("{\"a\": 5}", 0, "tensor 'a': entry must be an object");
    expect_header_error("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing dtype");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'a': missing shape");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'a': missing data_offsets");
    expect_header_error("{\"a\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "tensor 'a': dtype must be a string");
    expect_header_error("{\"a\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "tensor 'a': unknown dtype 'Q4'");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
                        "tensor 'a': shape[1] is negative (-1)");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
                        "tensor 'a': shape[0] is not a non-negative integer");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}}", 4,
                        "shape[0] is not a non-negative integer");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", 4,
                        "tensor 'a': shape must be an array");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                        "tensor 'a': 9 dimensions, at most 8 supported");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                        "\"data_offsets\":[0,4]}}", 4, "tensor 'a': shape has too many elements");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                        "tensor 'a': data_offsets [4, 0] end before they begin");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                        "tensor 'a': data_offsets must be two non-negative integers");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
                        "data_offsets must be two non-negative integers");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e300]}}", 4,
                        "data_offsets must be two non-negative integers");
    expect_header_error("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 8,
                        "tensor 'x': data_offsets [4, 12] past the end of the data (size 8)");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
                        "tensor 'a': data_offsets [0, 8] hold 8 bytes but dtype F32 and shape need 12");
    expect_header_error("{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", 8,
                        "hold 4 bytes but dtype F16 and shape need 8");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12,
                        "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8, "overlap");
    expect_header_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8,
                        "tensor 'a' appears twice in the header");
    expect_header_error("{\"__metadata__\":{\"format\":\"pt\",\"step\":3}}", 0,
                        "__metadata__ value 'step' must be a string");
    expect_header_error("{\"__metadata__\":[\"pt\"]}", 0, "__metadata__ must be an object of strings");
    expect_header_error("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice");

    expect_header_error("{\"caf\xe9\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        "header is not valid UTF-8 (byte 5)");

    /* A NUL byte inside the header: JSON never holds one. */
    fp = fopen(path, "wb");
    fwrite("\x08\0\0\0\0\0\0\0{\"a\0\":{}", 1, 16, fp);
    fclose(fp);
    expect_open_error(path, BERTC_EFORMAT, "header holds a NUL byte");
}

static void test_good_edge_cases(void **state) {
    (void)state;
    char path[300];
    tmp_path(path, sizeof path, "edge.safetensors");
    safetensors_file f;
    bertc_error err = {0};
    /* An empty header object, no tensors, no data: valid. */
    write_raw(path, UINT64_MAX, "{}", 0);
    assert_int_equal(safetensors_open(&f, path, &err), 0);
    assert_int_equal(f.n, 0);
    safetensors_close(&f);
    /* Dtypes with a known size but no conversion (U32): opened, refused by to_f32. Unknown extra
     * keys in an entry are ignored, as the Rust reader does. Gaps between tensors are allowed. */
    write_raw(path, UINT64_MAX,
              "{\"u\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1},"
              "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[2,2]},"
              "\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[6,8]}}  ", 8);
    int rc = safetensors_open(&f, path, &err);
    if (rc) fail_msg("%s", err.msg);
    assert_int_equal(f.n, 3);
    const st_tensor *t = safetensors_find(&f, "u");
    assert_int_equal(t->dtype, ST_OTHER);
    float x;
    assert_int_equal(safetensors_to_f32(t, &x, 1, &err), BERTC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "tensor 'u'"));
    assert_int_equal(safetensors_find(&f, "b")->dtype, ST_BOOL);
    safetensors_close(&f);
}

/* The Python-written file cut at every length: each must fail cleanly, never crash. The full
 * header with the data cut in the middle must name the tensor that runs past the end. */
static void test_truncated_everywhere(void **state) {
    (void)state;
    char *full;
    size_t n;
    bertc_error err = {0};
    assert_int_equal(fs_read_all(FIXTURE, &full, &n, 1 << 20, &err), 0);
    char path[300];
    tmp_path(path, sizeof path, "cut.safetensors");
    for (size_t len = 0; len < n; len++) {
        FILE *fp = fopen(path, "wb");
        fwrite(full, 1, len, fp);
        fclose(fp);
        safetensors_file f;
        int rc = safetensors_open(&f, path, &err);
        if (rc == 0) fail_msg("opened the file cut to %zu of %zu bytes", len, n);
        assert_true(err.msg[0] != '\0');
    }
    FILE *fp = fopen(path, "wb");
    fwrite(full, 1, n - 10, fp);
    fclose(fp);
    expect_open_error(path, BERTC_EFORMAT, "tensor 'f16': data_offsets [64, 88] past the end of the data (size 78)");
    free(full);
}

/* Every header byte replaced by a few others: whatever opens must have all its data in bounds. */
static void test_mutated_headers(void **state) {
    (void)state;
    char *full;
    size_t n;
    bertc_error err = {0};
    assert_int_equal(fs_read_all(FIXTURE, &full, &n, 1 << 20, &err), 0);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | (unsigned char)full[i];
    char path[300];
    tmp_path(path, sizeof path, "mut.safetensors");
    const char repl[] = {'0', '9', '-', '"', '[', ']', '{', '}', ',', ' ', 'e', 'x', '\0'};
    int opened = 0;
    for (size_t pos = 0; pos < 8 + hlen; pos++)
        for (size_t r = 0; r < sizeof repl; r++) {
            char saved = full[pos];
            full[pos] = repl[r];
            FILE *fp = fopen(path, "wb");
            fwrite(full, 1, n, fp);
            fclose(fp);
            full[pos] = saved;
            safetensors_file f;
            if (safetensors_open(&f, path, &err) == 0) {
                touch_all(&f);
                for (size_t i = 0; i < f.n; i++) {
                    const char *d = f.tensors[i].data;
                    assert_true(d >= (const char *)f.map + 8 + hlen);
                    assert_true(d + f.tensors[i].nbytes <= (const char *)f.map + f.map_size);
                }
                safetensors_close(&f);
                opened++;
            } else {
                assert_true(err.msg[0] != '\0');
            }
        }
    assert_true(opened > 0); /* e.g. digits changed inside names still make valid files */
    free(full);
}

/* The IEEE half value of h, computed independently of the reader (from the definition). */
static float half_reference(uint16_t h) {
    int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    double v;
    if (exp == 0x1f) v = mant ? NAN : INFINITY;
    else if (exp == 0) v = ldexp(mant, -24);
    else v = ldexp(1024 + mant, exp - 25);
    return (float)(sign ? -v : v);
}

/* All 65536 F16 and all 65536 BF16 bit patterns, converted through a file, against the definition.
 * Covers the vector path (8 at a time) and the scalar tail (the count is odd on purpose). */
static void test_all_half_values(void **state) {
    (void)state;
    enum { N = 65536 + 3 };
    uint16_t *bits = malloc(N * 2);
    for (uint32_t i = 0; i < N; i++) bits[i] = (uint16_t)(i * 1u); /* wraps: the last 3 repeat 0..2 */
    char header[256];
    snprintf(header, sizeof header,
             "{\"h\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[%d],\"data_offsets\":[%d,%d]}}", N, 2 * N, N, 2 * N, 4 * N);
    char path[300];
    tmp_path(path, sizeof path, "halves.safetensors");
    FILE *fp = fopen(path, "wb");
    uint64_t hlen = strlen(header);
    fwrite(&hlen, 8, 1, fp); /* little-endian machine */
    fwrite(header, 1, hlen, fp);
    fwrite(bits, 2, N, fp);
    fwrite(bits, 2, N, fp);
    fclose(fp);

    safetensors_file f;
    bertc_error err = {0};
    int rc = safetensors_open(&f, path, &err);
    if (rc) fail_msg("%s", err.msg);
    float *out = malloc(N * sizeof(float));
    assert_int_equal(safetensors_to_f32(safetensors_find(&f, "h"), out, N, &err), 0);
    for (uint32_t i = 0; i < N; i++) {
        float want = half_reference(bits[i]);
        if (isnan(want)) {
            if (!isnan(out[i])) fail_msg("F16 0x%04x: got %a, want NaN", bits[i], (double)out[i]);
        } else if (memcmp(&out[i], &want, 4) != 0) {
            fail_msg("F16 0x%04x: got %a, want %a", bits[i], (double)out[i], (double)want);
        }
    }
    assert_int_equal(safetensors_to_f32(safetensors_find(&f, "b"), out, N, &err), 0);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t want = (uint32_t)bits[i] << 16, got;
        memcpy(&got, &out[i], 4);
        if (got != want) fail_msg("BF16 0x%04x: got 0x%08x", bits[i], got);
    }
    free(out);
    free(bits);
    safetensors_close(&f);
}

static void test_load_f32(void **state) {
    (void)state;
    safetensors_file f;
    bertc_error err = {0};
    assert_int_equal(safetensors_open(&f, FIXTURE, &err), 0);
    float buf[6];
    const int64_t shape23[2] = {2, 3}, shape32[2] = {3, 2}, shape6[1] = {6};
    assert_int_equal(safetensors_load_f32(&f, "bf16", buf, 2, shape23, &err), 0);
    assert_true(buf[0] == 1.0f && buf[1] == -3.140625f);
    assert_int_equal(safetensors_load_f32(&f, "f32", buf, 2, shape32, &err), BERTC_EFORMAT);
    assert_non_null(strstr(err.msg, FIXTURE ": tensor 'f32' has shape [2, 3], expected [3, 2]"));
    assert_int_equal(safetensors_load_f32(&f, "f32", buf, 1, shape6, &err), BERTC_EFORMAT);
    assert_non_null(strstr(err.msg, "has shape [2, 3], expected [6]"));
    assert_int_equal(safetensors_load_f32(&f, "classifier.weight", buf, 1, shape6, &err), BERTC_EFORMAT);
    assert_string_equal(err.msg, FIXTURE ": tensor 'classifier.weight' not found");
    const int64_t shape3[1] = {3};
    assert_int_equal(safetensors_load_f32(&f, "i64", buf, 1, shape3, &err), BERTC_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, FIXTURE ": tensor 'i64': dtype I64 cannot be read as float"));
    assert_int_equal(safetensors_load_f32(&f, "scalar", buf, 0, NULL, &err), 0);
    assert_true(buf[0] == 7.5f);
    safetensors_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_python_fixture),
        cmocka_unit_test(test_load_f32),
        cmocka_unit_test(test_write_read_round_trip),
        cmocka_unit_test(test_write_rejects_bad_input),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_good_edge_cases),
        cmocka_unit_test(test_all_half_values),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_mutated_headers),
    };
    return cmocka_run_group_tests_name("safetensors", tests, setup, teardown);
}
