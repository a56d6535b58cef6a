#include "util/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/error.h"

/* The folder that holds path ("." for a bare name), as a new string. */
static char *parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* The rename is only durable once the folder entry itself reaches the disk. Some file
 * systems refuse fsync on a folder (EINVAL); that is not an error worth failing a save for. */
static int fsync_dir(const char *dir, bertc_error *err) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return bertc_errorf(err, BERTC_EIO, "%s: cannot open folder to sync it: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL && e != EROFS)
        return bertc_errorf(err, BERTC_EIO, "%s: cannot sync folder: %s", dir, strerror(e));
    return BERTC_OK;
}

int fs_atomic_open(fs_atomic_file *f, const char *path, bertc_error *err) {
    memset(f, 0, sizeof *f);
    f->fd = -1;
    size_t len = strlen(path);
    if (len == 0) return bertc_errorf(err, BERTC_EINVAL, "cannot write a file with an empty path");
    f->path = strdup(path);
    f->tmp_path = malloc(len + sizeof ".tmp.XXXXXX");
    if (!f->path || !f->tmp_path) {
        fs_atomic_abort(f);
        return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    }
    memcpy(f->tmp_path, path, len);
    memcpy(f->tmp_path + len, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    f->fd = mkostemp(f->tmp_path, O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL; /* nothing was created, nothing to remove */
        fs_atomic_abort(f);
        return bertc_errorf(err, BERTC_EIO, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    /* mkstemp creates 0600; model files are meant to be shared like any other output. */
    (void)fchmod(f->fd, 0644);
    return BERTC_OK;
}

int fs_atomic_write(fs_atomic_file *f, const void *data, size_t n, bertc_error *err) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(f->fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return bertc_errorf(err, BERTC_EIO, "%s: write failed: %s", f->path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return BERTC_OK;
}

int fs_atomic_commit(fs_atomic_file *f, bertc_error *err) {
    int rc = BERTC_OK;
    if (fsync(f->fd) != 0) {
        rc = bertc_errorf(err, BERTC_EIO, "%s: fsync failed: %s", f->path, strerror(errno));
    } else {
        int c = close(f->fd);
        f->fd = -1;
        if (c != 0) {
            rc = bertc_errorf(err, BERTC_EIO, "%s: close failed: %s", f->path, strerror(errno));
        } else if (rename(f->tmp_path, f->path) != 0) {
            rc = bertc_errorf(err, BERTC_EIO, "%s: cannot rename %s over it: %s", f->path, f->tmp_path,
                              strerror(errno));
        } else {
            free(f->tmp_path);
            f->tmp_path = NULL; /* renamed: nothing left to remove */
            char *dir = parent_dir(f->path);
            if (!dir) rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", f->path);
            else rc = fsync_dir(dir, err);
            free(dir);
        }
    }
    fs_atomic_abort(f);
    return rc;
}

void fs_atomic_abort(fs_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = NULL;
    f->path = NULL;
}

int fs_write_atomic(const char *path, const void *data, size_t n, bertc_error *err) {
    fs_atomic_file f;
    int rc = fs_atomic_open(&f, path, err);
    if (rc) return rc;
    rc = fs_atomic_write(&f, data, n, err);
    if (rc) {
        fs_atomic_abort(&f);
        return rc;
    }
    return fs_atomic_commit(&f, err);
}

int fs_copy_file(const char *src, const char *dst, bertc_error *err) {
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) return bertc_errorf(err, BERTC_EIO, "%s: cannot open: %s", src, strerror(errno));
    fs_atomic_file f;
    int rc = fs_atomic_open(&f, dst, err);
    if (rc) {
        close(in);
        return rc;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = malloc(CHUNK);
    if (!buf) rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", src);
    while (rc == BERTC_OK) {
        ssize_t r = read(in, buf, CHUNK);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) rc = bertc_errorf(err, BERTC_EIO, "%s: read failed: %s", src, strerror(errno));
        if (r <= 0) break;
        rc = fs_atomic_write(&f, buf, (size_t)r, err);
    }
    free(buf);
    close(in);
    if (rc) {
        fs_atomic_abort(&f);
        return rc;
    }
    return fs_atomic_commit(&f, err);
}

int fs_mkdir_p(const char *path, bertc_error *err) {
    if (!path || !*path) return bertc_errorf(err, BERTC_EINVAL, "cannot create a folder with an empty path");
    char *p = strdup(path);
    if (!p) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    /* Create each prefix ending at a '/', then the whole path. */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            int rc = bertc_errorf(err, BERTC_EIO, "%s: cannot create folder %s: %s", path, p, strerror(e));
            free(p);
            return rc;
        }
        *s = saved;
        if (saved == '\0') break;
    }
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!ok) return bertc_errorf(err, BERTC_EIO, "%s: exists and is not a folder", path);
    return BERTC_OK;
}

int fs_read_all(const char *path, char **buf, size_t *n, size_t max_size, bertc_error *err) {
    *buf = NULL;
    *n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bertc_errorf(err, BERTC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return bertc_errorf(err, BERTC_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return bertc_errorf(err, BERTC_EIO, "%s: is a folder, not a file", path);
    }
    /* Read until end of file rather than trusting st_size, so pipes and files that grow work;
     * the limit is enforced on what is actually read. */
    size_t cap = st.st_size > 0 && (uint64_t)st.st_size < max_size ? (size_t)st.st_size + 1 : 4096;
    char *b = malloc(cap + 1);
    size_t len = 0;
    int rc = b ? BERTC_OK : bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    while (rc == BERTC_OK) {
        if (len == cap) {
            size_t ncap = cap * 2;
            char *nb = realloc(b, ncap + 1);
            if (!nb) {
                rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
                break;
            }
            b = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, b + len, cap - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = bertc_errorf(err, BERTC_EIO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (r == 0) break;
        len += (size_t)r;
        if (len > max_size) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: larger than the %zu bytes allowed", path, max_size);
            break;
        }
    }
    close(fd);
    if (rc) {
        free(b);
        return rc;
    }
    b[len] = '\0';
    *buf = b;
    *n = len;
    return BERTC_OK;
}
