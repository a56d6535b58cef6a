/* safetensors reader (bounds-checked, memory-mapped) and writer (atomic).
 * Format: 8-byte little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
 * then the data buffer; offsets are relative to the start of the buffer. */
#ifndef BERTC_MODEL_SAFETENSORS_H
#define BERTC_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "bertc.h"

typedef enum st_dtype {
    ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL, ST_OTHER
} st_dtype;

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data; /* points into the mapping; never written */
} st_tensor;

typedef struct safetensors_file {
    char *path;
    st_tensor *tensors;
    size_t n;
    void *map;
    size_t map_size;
} safetensors_file;

/* Opens and checks the whole header against the file size before anything is used:
 * header length bound, JSON, known dtypes, shapes, offsets in range, non-overlapping,
 * nbytes == numel * dtype size. */
int safetensors_open(safetensors_file *f, const char *path, bertc_error *err);
void safetensors_close(safetensors_file *f);
const st_tensor *safetensors_find(const safetensors_file *f, const char *name);
/* Converts an F32, F16 or BF16 tensor to float; n must equal t->numel. */
int safetensors_to_f32(const st_tensor *t, float *dst, size_t n, bertc_error *err);
/* Finds name, checks its shape is exactly shape[0..ndim) and converts it into dst (which holds
 * the product of shape floats). The one-call way to load a weight: errors name the file, the
 * tensor and both shapes ("model.safetensors: tensor 'x' has shape [2, 3], expected [3, 2]"). */
int safetensors_load_f32(const safetensors_file *f, const char *name, float *dst, int ndim, const int64_t *shape,
                         bertc_error *err);
/* "F32", "BF16", ...; "another dtype" for ST_OTHER (U16, U32, U64, F8_*, C64: opened and
 * bounds-checked, never converted). */
const char *safetensors_dtype_name(st_dtype d);

typedef struct st_write_tensor {
    const char *name;
    const float *data; /* written as F32 */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int host;          /* safetensors_write_fetch: data is host memory, written without fetch */
} st_write_tensor;

/* Writes F32 tensors (in the given order) to path through a temporary file in the same
 * folder, fsync, then rename, so a crash never leaves a half-written file. metadata may be NULL
 * or a list of key/value string pairs (n_meta pairs). */
int safetensors_write(const char *path, const st_write_tensor *t, size_t n,
                      const char *const *metadata_kv, size_t n_meta, bertc_error *err);
/* The same for tensors that live elsewhere (a GPU's memory): each t[i].data is handed to
 * fetch(dst, src, bytes), which copies it to host memory, a piece at a time, so no host copy of
 * the whole model is made (a fresh 440 MB buffer costs more in page faults than the copy). */
typedef void (*st_fetch_fn)(void *host_dst, const void *src, size_t bytes);
int safetensors_write_fetch(const char *path, const st_write_tensor *t, size_t n, const char *const *metadata_kv,
                            size_t n_meta, st_fetch_fn fetch, bertc_error *err);

#endif
