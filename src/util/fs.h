/* File-system helpers that never leave a half-written file behind.
 *
 * Every writer here goes through a temporary file in the destination's own folder
 * ("<path>.tmp.XXXXXX"): write, fsync, rename over the destination, then fsync the folder,
 * so after a crash the destination holds either the old content or the new one, never a mix.
 * All functions return 0 or a bertc error code and fill err with one line naming the path. */
#ifndef BERTC_UTIL_FS_H
#define BERTC_UTIL_FS_H

#include <stddef.h>

#include "bertc.h"

/* A file being written atomically: open, write any number of times, then commit or abort.
 * Streaming lets big files (a 440 MB model) be written without building them in memory. */
typedef struct fs_atomic_file {
    char *path;     /* destination */
    char *tmp_path; /* the temporary file next to it; NULL once committed or aborted */
    int fd;
} fs_atomic_file;

int fs_atomic_open(fs_atomic_file *f, const char *path, bertc_error *err);
int fs_atomic_write(fs_atomic_file *f, const void *data, size_t n, bertc_error *err);
/* fsync, close, rename over the destination, fsync the folder. Frees f either way. */
int fs_atomic_commit(fs_atomic_file *f, bertc_error *err);
/* Closes and removes the temporary file; the destination is untouched. Safe to call twice. */
void fs_atomic_abort(fs_atomic_file *f);

/* Writes n bytes to path atomically (mode 0644). */
int fs_write_atomic(const char *path, const void *data, size_t n, bertc_error *err);
/* Copies src to dst atomically (streamed, so any size). */
int fs_copy_file(const char *src, const char *dst, bertc_error *err);
/* Creates path and any missing parents (mode 0755); an existing folder is fine. */
int fs_mkdir_p(const char *path, bertc_error *err);
/* Reads the whole file into a new buffer (*buf, free() it) with a '\0' after the last byte,
 * which *n does not count. Files larger than max_size are refused (BERTC_EFORMAT). */
int fs_read_all(const char *path, char **buf, size_t *n, size_t max_size, bertc_error *err);

#endif
