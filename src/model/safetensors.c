/* safetensors reader and writer.
 *
 * Reading follows the format's own advice for untrusted files: read the 8-byte header length,
 * bound it, parse the JSON header, and check every tensor's dtype, shape and data_offsets
 * against the file size and against each other before any tensor byte is touched. Only then is
 * the file memory-mapped (read-only), and st_tensor.data points into that mapping.
 *
 * Dtypes: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL are named by st_dtype. U16, U32, U64,
 * F8_E4M3, F8_E5M2, F8_E8M0 and C64 have a known element size, so their entries can be checked
 * and the file opened; they show up as ST_OTHER and safetensors_to_f32 refuses them. Any other
 * dtype string (including the sub-byte F4/F6 types) is rejected at open: its size is unknown,
 * so its offsets could not be checked.
 *
 * Other rules: the header must be strict UTF-8 JSON, an object, with only whitespace after it;
 * __metadata__ (optional, at most once) must map strings to strings and is skipped; tensor names
 * must be unique; non-empty tensors must not overlap (empty ones occupy no bytes and may sit
 * anywhere); unlike the Rust reader, gaps between tensors are tolerated, since they are harmless.
 * Unknown keys inside a tensor entry are ignored, as the Rust reader does.
 *
 * Writing (safetensors_write) produces what the Rust library produces for F32 tensors:
 * __metadata__ first, tensors contiguous in the given order, the header padded with spaces to a
 * multiple of 8, all through a temporary file renamed into place (util/fs.h).
 *
 * st_tensor.data is only as aligned as the file makes it (the format does not promise alignment
 * when the header length is not a multiple of 8): read it through safetensors_to_f32 or memcpy.
 * Byte order: the format is little-endian and so is every machine bertc targets (checked below).
 * A file that is truncated by someone else *after* it was opened can still fault on access
 * (SIGBUS); that is the price of mmap, and no file bertc writes is ever modified in place. */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <utf8proc.h>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "util/error.h"
#include "util/text.h"
#include "util/fs.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "bertc reads safetensors data in place and needs a little-endian machine"
#endif
_Static_assert(sizeof(size_t) == 8, "bertc maps whole model files and needs a 64-bit size_t");

/* The Rust reference implementation refuses headers above 100 MB; so do we. */
#define ST_MAX_HEADER_BYTES 100000000ULL
/* Integers in the header arrive as doubles (cJSON); above 2^53 they are no longer exact. */
#define ST_MAX_EXACT_INT 9007199254740992.0

typedef struct dtype_info {
    const char *name;
    st_dtype dtype;
    size_t size;
} dtype_info;

static const dtype_info DTYPES[] = {
    {"F32", ST_F32, 4},  {"F16", ST_F16, 2},  {"BF16", ST_BF16, 2}, {"F64", ST_F64, 8},
    {"I64", ST_I64, 8},  {"I32", ST_I32, 4},  {"I16", ST_I16, 2},   {"I8", ST_I8, 1},
    {"U8", ST_U8, 1},    {"BOOL", ST_BOOL, 1}, {"U16", ST_OTHER, 2}, {"U32", ST_OTHER, 4},
    {"U64", ST_OTHER, 8}, {"F8_E4M3", ST_OTHER, 1}, {"F8_E5M2", ST_OTHER, 1}, {"F8_E8M0", ST_OTHER, 1},
    {"C64", ST_OTHER, 8},
};

static const dtype_info *dtype_lookup(const char *name) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(DTYPES[i].name, name) == 0) return &DTYPES[i];
    return NULL;
}

const char *safetensors_dtype_name(st_dtype d) {
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dtype == d && d != ST_OTHER) return DTYPES[i].name;
    return "another dtype";
}

static int is_valid_utf8(const char *s) {
    size_t n = strlen(s);
    return utf8_valid_prefix(s, n) == n;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading                                                                                  */

static int pread_all(int fd, void *buf, size_t n, off_t off) {
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* A JSON number that is a whole number in [0, 2^53]; what shapes and offsets must be. */
static int json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= ST_MAX_EXACT_INT) || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

/* One tensor entry, as checked: where its bytes are relative to the data buffer. */
typedef struct entry_span {
    uint64_t begin, end;
    size_t index;
} entry_span;

static int span_cmp(const void *a, const void *b) {
    const entry_span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int name_cmp(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int check_metadata(const char *path, const cJSON *meta, bertc_error *err) {
    if (!cJSON_IsObject(meta))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: __metadata__ must be an object of strings", path);
    for (const cJSON *kv = meta->child; kv; kv = kv->next)
        if (!cJSON_IsString(kv))
            return bertc_errorf(err, BERTC_EFORMAT, "%s: __metadata__ value '%s' must be a string", path,
                                kv->string);
    return BERTC_OK;
}

/* Checks one header entry and fills t (name, dtype, shape, numel, nbytes) and its span. */
static int parse_entry(const char *path, const cJSON *e, uint64_t data_size, st_tensor *t, entry_span *span,
                       bertc_error *err) {
    const char *name = e->string;
    if (!cJSON_IsObject(e))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': entry must be an object", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dtype) return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': missing dtype", path, name);
    if (!shape) return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': missing shape", path, name);
    if (!offs) return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': missing data_offsets", path, name);

    if (!cJSON_IsString(dtype))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': dtype must be a string", path, name);
    const dtype_info *di = dtype_lookup(dtype->valuestring);
    if (!di)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': unknown dtype '%s'", path, name,
                            dtype->valuestring);
    t->dtype = di->dtype;

    if (!cJSON_IsArray(shape))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': shape must be an array", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > ST_MAX_DIMS)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': %d dimensions, at most %d supported", path,
                            name, ndim, ST_MAX_DIMS);
    t->ndim = ndim;
    size_t numel = 1;
    int d = 0;
    for (const cJSON *s = shape->child; s; s = s->next, d++) {
        uint64_t v;
        if (json_to_u64(s, &v) != 0) {
            if (cJSON_IsNumber(s) && s->valuedouble < 0)
                return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': shape[%d] is negative (%g)", path,
                                    name, d, s->valuedouble);
            return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': shape[%d] is not a non-negative integer",
                                path, name, d);
        }
        t->shape[d] = (int64_t)v;
        if (__builtin_mul_overflow(numel, (size_t)v, &numel))
            return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': shape has too many elements", path, name);
    }
    t->numel = numel;
    if (__builtin_mul_overflow(numel, di->size, &t->nbytes))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': shape has too many elements", path, name);

    uint64_t begin, end;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || json_to_u64(offs->child, &begin) != 0 ||
        json_to_u64(offs->child->next, &end) != 0)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': data_offsets must be two non-negative integers",
                            path, name);
    if (begin > end)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] end before they begin", path, name, begin, end);
    if (end > data_size)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] past the end of the data (size %" PRIu64 ")", path, name, begin, end, data_size);
    if (end - begin != (uint64_t)t->nbytes)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                            "] hold %" PRIu64 " bytes but dtype %s and shape need %zu", path, name, begin, end,
                            end - begin, dtype->valuestring, t->nbytes);
    span->begin = begin;
    span->end = end;
    return BERTC_OK;
}

/* Everything in the header, checked against the data buffer size. On success f->tensors/n are
 * filled (data pointers still unset: they are relative offsets in spans). */
static int parse_header(safetensors_file *f, const char *hdr, size_t hdr_len, uint64_t data_size,
                        entry_span **spans_out, bertc_error *err) {
    const char *path = f->path;
    /* JSON text never holds a raw NUL; one would also let two different names compare equal as C strings. */
    if (memchr(hdr, '\0', hdr_len))
        return bertc_errorf(err, BERTC_EFORMAT, "%s: header holds a NUL byte; it is not JSON", path);
    size_t bad_utf8 = utf8_valid_prefix(hdr, hdr_len);
    if (bad_utf8 != hdr_len)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: header is not valid UTF-8 (byte %zu)", path, bad_utf8);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(hdr, hdr_len, &end, 0);
    if (!root)
        return bertc_errorf(err, BERTC_EFORMAT, "%s: header is not valid JSON (error near byte %td of %zu)", path,
                            end ? end - hdr : 0, hdr_len);
    int rc = BERTC_OK;
    entry_span *spans = NULL;
    st_tensor **by_name = NULL;
    /* Writers pad the header with spaces to a multiple of 8; anything else after the object is junk. */
    for (const char *p = end; p < hdr + hdr_len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: header has data after the JSON object (byte %td)", path,
                              p - hdr);
            goto done;
        }
    if (!cJSON_IsObject(root)) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: header is JSON but not an object", path);
        goto done;
    }
    size_t count = 0;
    for (const cJSON *e = root->child; e; e = e->next) count++;
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    spans = calloc(count ? count : 1, sizeof *spans);
    by_name = calloc(count ? count : 1, sizeof *by_name);
    if (!f->tensors || !spans || !by_name) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory for %zu header entries", path, count);
        goto done;
    }
    int seen_metadata = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_metadata++) {
                rc = bertc_errorf(err, BERTC_EFORMAT, "%s: __metadata__ appears twice", path);
                goto done;
            }
            if ((rc = check_metadata(path, e, err))) goto done;
            continue;
        }
        st_tensor *t = &f->tensors[f->n];
        t->name = strdup(e->string);
        if (!t->name) {
            rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
            goto done;
        }
        f->n++; /* counted now so that close frees the name even if the entry is bad */
        if ((rc = parse_entry(path, e, data_size, t, &spans[f->n - 1], err))) goto done;
        spans[f->n - 1].index = f->n - 1;
        by_name[f->n - 1] = t;
    }
    /* Duplicate names: JSON allows them, safetensors does not, and a lookup would silently pick one. */
    qsort(by_name, f->n, sizeof *by_name, name_cmp);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(by_name[i - 1]->name, by_name[i]->name) == 0) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s' appears twice in the header", path,
                              by_name[i]->name);
            goto done;
        }
    /* Overlap: sorted by start, each non-empty tensor must begin at or after the previous one's end.
     * Empty tensors occupy no bytes and may sit anywhere. */
    qsort(spans, f->n, sizeof *spans, span_cmp);
    const entry_span *prev = NULL;
    for (size_t i = 0; i < f->n; i++) {
        const entry_span *s = &spans[i];
        if (s->begin == s->end) continue;
        if (prev && s->begin < prev->end) {
            rc = bertc_errorf(err, BERTC_EFORMAT,
                              "%s: tensors '%s' [%" PRIu64 ", %" PRIu64 "] and '%s' [%" PRIu64 ", %" PRIu64
                              "] overlap", path, f->tensors[prev->index].name, prev->begin, prev->end,
                              f->tensors[s->index].name, s->begin, s->end);
            goto done;
        }
        prev = s;
    }
done:
    free(by_name);
    cJSON_Delete(root);
    if (rc) {
        free(spans);
        return rc;
    }
    *spans_out = spans;
    return BERTC_OK;
}

int safetensors_open(safetensors_file *f, const char *path, bertc_error *err) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (!f->path) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    int rc = BERTC_OK;
    char *hdr = NULL;
    entry_span *spans = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot stat: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: not a regular file", path);
        goto fail;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    if (file_size < 8) {
        rc = bertc_errorf(err, BERTC_EFORMAT,
                          "%s: file is %" PRIu64 " bytes, too short for a safetensors header (at least 8)", path,
                          file_size);
        goto fail;
    }
    unsigned char len8[8];
    if (pread_all(fd, len8, 8, 0) != 0) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot read the header length", path);
        goto fail;
    }
    uint64_t hdr_len = 0;
    for (int i = 7; i >= 0; i--) hdr_len = hdr_len << 8 | len8[i];
    if (hdr_len > ST_MAX_HEADER_BYTES) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: header length %" PRIu64 " is over the %llu bytes allowed", path,
                          hdr_len, ST_MAX_HEADER_BYTES);
        goto fail;
    }
    if (hdr_len > file_size - 8) {
        rc = bertc_errorf(err, BERTC_EFORMAT,
                          "%s: header length %" PRIu64 " runs past the end of the file (size %" PRIu64 ")", path,
                          hdr_len, file_size);
        goto fail;
    }
    if (hdr_len < 2) {
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: header length %" PRIu64 " is too short for a JSON object", path,
                          hdr_len);
        goto fail;
    }
    hdr = malloc((size_t)hdr_len);
    if (!hdr) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory for a %" PRIu64 "-byte header", path, hdr_len);
        goto fail;
    }
    if (pread_all(fd, hdr, (size_t)hdr_len, 8) != 0) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot read the header", path);
        goto fail;
    }
    uint64_t data_start = 8 + hdr_len;
    if ((rc = parse_header(f, hdr, (size_t)hdr_len, file_size - data_start, &spans, err))) goto fail;

    /* Every entry checked: now map. */
    f->map_size = (size_t)file_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        rc = bertc_errorf(err, BERTC_EIO, "%s: cannot map the file: %s", path, strerror(errno));
        goto fail;
    }
    for (size_t i = 0; i < f->n; i++)
        f->tensors[spans[i].index].data = (const char *)f->map + data_start + spans[i].begin;
    free(spans);
    free(hdr);
    close(fd);
    return BERTC_OK;
fail:
    free(spans);
    free(hdr);
    if (fd >= 0) close(fd);
    safetensors_close(f);
    return rc;
}

void safetensors_close(safetensors_file *f) {
    if (!f) return;
    if (f->map) munmap(f->map, f->map_size);
    for (size_t i = 0; i < f->n; i++) free(f->tensors[i].name);
    free(f->tensors);
    free(f->path);
    memset(f, 0, sizeof *f);
}

const st_tensor *safetensors_find(const safetensors_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

/* IEEE half -> float, exact for every input: zeros, subnormals (which become normal floats),
 * normals, infinities, and NaNs (payload kept in the top mantissa bits, so a NaN stays a NaN). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    } else if (mant == 0) {
        bits = sign;
    } else {
        /* Subnormal: value = mant * 2^-24, exactly representable as a float. */
        float v = ldexpf((float)mant, -24);
        return sign ? -v : v;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int safetensors_to_f32(const st_tensor *t, float *dst, size_t n, bertc_error *err) {
    if (n != t->numel)
        return bertc_errorf(err, BERTC_EINVAL, "tensor '%s': has %zu elements, the destination holds %zu", t->name,
                            t->numel, n);
    if (n == 0) return BERTC_OK;
    const unsigned char *src = t->data;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, src, n * sizeof(float));
        return BERTC_OK;
    case ST_F16: {
        size_t i = 0;
#if defined(__F16C__)
        /* The hardware conversion is exact too (it quiets signalling NaNs, which stay NaNs). */
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
#endif
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = f16_to_f32(h);
        }
        return BERTC_OK;
    }
    case ST_BF16:
        /* bfloat16 is the top half of a float32. */
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return BERTC_OK;
    default:
        return bertc_errorf(err, BERTC_EUNSUPPORTED,
                            "tensor '%s': dtype %s cannot be read as float (only F32, F16 and BF16 can)", t->name,
                            safetensors_dtype_name(t->dtype));
    }
}

static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t len = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && len < n; d++)
        len += (size_t)snprintf(buf + len, n - len, "%s%" PRId64, d ? ", " : "", shape[d]);
    if (len < n) snprintf(buf + len, n - len, "]");
}

int safetensors_load_f32(const safetensors_file *f, const char *name, float *dst, int ndim, const int64_t *shape,
                         bertc_error *err) {
    const st_tensor *t = safetensors_find(f, name);
    if (!t) return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s' not found", f->path, name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char have[160], want[160];
        format_shape(have, sizeof have, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim < 0 ? 0 : ndim > ST_MAX_DIMS ? ST_MAX_DIMS : ndim, shape);
        return bertc_errorf(err, BERTC_EFORMAT, "%s: tensor '%s' has shape %s, expected %s", f->path, name, have,
                            want);
    }
    if (t->dtype != ST_F32 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return bertc_errorf(err, BERTC_EUNSUPPORTED,
                            "%s: tensor '%s': dtype %s cannot be read as float (only F32, F16 and BF16 can)", f->path,
                            name, safetensors_dtype_name(t->dtype));
    return safetensors_to_f32(t, dst, t->numel, err);
}

/* ---------------------------------------------------------------------------------------- */
/* Writing                                                                                  */

/* A growable string for building the header. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_putn(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* A JSON string literal. Names and metadata are expected to be UTF-8 (checked by the caller);
 * quotes, backslashes and control characters are escaped. */
static void sb_put_json_string(strbuf *b, const char *s) {
    sb_puts(b, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            sb_putn(b, esc, 2);
        } else if (*p < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            sb_puts(b, esc);
        } else {
            sb_putn(b, (const char *)p, 1);
        }
    }
    sb_puts(b, "\"");
}

int safetensors_write(const char *path, const st_write_tensor *t, size_t n, const char *const *metadata_kv,
                      size_t n_meta, bertc_error *err) {
    return safetensors_write_fetch(path, t, n, metadata_kv, n_meta, NULL, err);
}

/* Writes n bytes of fetched data through a reused host buffer. */
static int write_fetched(fs_atomic_file *out, const char *src, size_t n, st_fetch_fn fetch, char **buf, bertc_error *err) {
    enum { PIECE = 16 << 20 };
    if (!*buf && !(*buf = malloc(PIECE))) return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t off = 0; off < n && !rc; off += PIECE) {
        size_t k = n - off < (size_t)PIECE ? n - off : (size_t)PIECE;
        fetch(*buf, src + off, k);
        rc = fs_atomic_write(out, *buf, k, err);
    }
    return rc;
}

int safetensors_write_fetch(const char *path, const st_write_tensor *t, size_t n, const char *const *metadata_kv,
                            size_t n_meta, st_fetch_fn fetch, bertc_error *err) {
    if (n_meta && !metadata_kv) return bertc_errorf(err, BERTC_EINVAL, "%s: %zu metadata pairs but no list", path, n_meta);
    size_t *nbytes = calloc(n ? n : 1, sizeof *nbytes);
    if (!nbytes) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    strbuf h = {0};
    int rc = BERTC_OK;

    /* __metadata__ first, as the Rust library writes it; {"format": "pt"} unless the caller gives a format. */
    sb_puts(&h, "{\"__metadata__\":{");
    int caller_format = 0;
    for (size_t i = 0; i < n_meta; i++) {
        const char *k = metadata_kv[2 * i], *v = metadata_kv[2 * i + 1];
        if (!k || !v || !is_valid_utf8(k) || !is_valid_utf8(v)) {
            rc = bertc_errorf(err, BERTC_EINVAL, "%s: metadata pair %zu is missing or not UTF-8", path, i);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(metadata_kv[2 * j], k) == 0) {
                rc = bertc_errorf(err, BERTC_EINVAL, "%s: metadata key '%s' given twice", path, k);
                goto done;
            }
        caller_format |= strcmp(k, "format") == 0;
    }
    if (!caller_format) sb_puts(&h, "\"format\":\"pt\"");
    for (size_t i = 0; i < n_meta; i++) {
        if (i > 0 || !caller_format) sb_puts(&h, ",");
        sb_put_json_string(&h, metadata_kv[2 * i]);
        sb_puts(&h, ":");
        sb_put_json_string(&h, metadata_kv[2 * i + 1]);
    }
    sb_puts(&h, "}");

    uint64_t offset = 0;
    for (size_t i = 0; i < n; i++) {
        const st_write_tensor *w = &t[i];
        if (!w->name || !is_valid_utf8(w->name) || strcmp(w->name, "__metadata__") == 0) {
            rc = bertc_errorf(err, BERTC_EINVAL, "%s: tensor %zu has a missing or invalid name", path, i);
            goto done;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(t[j].name, w->name) == 0) {
                rc = bertc_errorf(err, BERTC_EINVAL, "%s: tensor '%s' given twice", path, w->name);
                goto done;
            }
        if (w->ndim < 0 || w->ndim > ST_MAX_DIMS) {
            rc = bertc_errorf(err, BERTC_EINVAL, "%s: tensor '%s': %d dimensions (0..%d allowed)", path, w->name,
                              w->ndim, ST_MAX_DIMS);
            goto done;
        }
        size_t numel = 1;
        for (int d = 0; d < w->ndim; d++)
            if (w->shape[d] < 0 || (double)w->shape[d] > ST_MAX_EXACT_INT ||
                __builtin_mul_overflow(numel, (size_t)w->shape[d], &numel)) {
                rc = bertc_errorf(err, BERTC_EINVAL, "%s: tensor '%s': bad shape[%d] = %" PRId64, path, w->name, d,
                                  w->shape[d]);
                goto done;
            }
        if (__builtin_mul_overflow(numel, sizeof(float), &nbytes[i]) || (numel && !w->data)) {
            rc = bertc_errorf(err, BERTC_EINVAL, "%s: tensor '%s': no data or too large", path, w->name);
            goto done;
        }
        char num[64];
        sb_puts(&h, ",");
        sb_put_json_string(&h, w->name);
        sb_puts(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < w->ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", w->shape[d]);
            sb_puts(&h, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", offset, offset + nbytes[i]);
        sb_puts(&h, num);
        offset += nbytes[i];
    }
    sb_puts(&h, "}");
    /* Pad with spaces to a multiple of 8 so the data buffer starts 8-aligned in the file (and in a mapping). */
    while (!h.oom && h.len % 8 != 0) sb_puts(&h, " ");
    if (h.oom) {
        rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory building the header", path);
        goto done;
    }

    fs_atomic_file out;
    if ((rc = fs_atomic_open(&out, path, err))) goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    rc = fs_atomic_write(&out, len8, 8, err);
    if (!rc) rc = fs_atomic_write(&out, h.s, h.len, err);
    char *piece = NULL;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!nbytes[i]) continue;
        rc = fetch && !t[i].host ? write_fetched(&out, (const char *)t[i].data, nbytes[i], fetch, &piece, err)
                   : fs_atomic_write(&out, t[i].data, nbytes[i], err);
    }
    free(piece);
    if (rc) fs_atomic_abort(&out);
    else rc = fs_atomic_commit(&out, err);
done:
    free(h.s);
    free(nbytes);
    return rc;
}
