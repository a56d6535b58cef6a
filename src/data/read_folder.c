/* Class-per-folder trees (the layout of aclImdb and scikit-learn's load_files): ROOT/CLASS/FILE,
 * one example a file, the class folder's name its label. Read from disk, or streamed out of a
 * tarball in one pass with libarchive. Order and labels are settled in dataset.c. */
#include "data/data_internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Folders that hold unlabelled examples (aclImdb/train/unsup): read only with with_unsup. */
static int is_unsup(const char *name) { return strcmp(name, "unsup") == 0; }

static char *path_join(const char *a, const char *b) {
    size_t na = strlen(a), nb = strlen(b);
    int slash = na > 0 && a[na - 1] != '/';
    char *p = malloc(na + (size_t)slash + nb + 1);
    if (!p) return NULL;
    memcpy(p, a, na);
    if (slash) p[na] = '/';
    memcpy(p + na + (size_t)slash, b, nb + 1);
    return p;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Names in dir that are not hidden (".", "..", ".DS_Store", "._x") and whose stat (following
 * symlinks) matches want_dir; sorted. */
static int list_dir(const char *dir, int want_dir, char ***names, size_t *count, bertc_error *err) {
    *names = NULL;
    *count = 0;
    DIR *dp = opendir(dir);
    if (!dp) return bertc_errorf(err, BERTC_EIO, "%s: cannot open folder: %s", dir, strerror(errno));
    size_t n = 0, cap = 0;
    char **v = NULL;
    int rc = BERTC_OK;
    struct dirent *de;
    while ((de = readdir(dp))) {
        if (de->d_name[0] == '.') continue;
        char *full = path_join(dir, de->d_name);
        if (!full) {
            rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", dir);
            break;
        }
        struct stat st;
        int ok = stat(full, &st) == 0;
        free(full);
        /* An entry we cannot stat (a dangling link) is listed as a file so that reading it
         * reports it as a bad record instead of it vanishing. */
        int is_dir = ok && S_ISDIR(st.st_mode);
        int is_file = !ok || S_ISREG(st.st_mode);
        if (want_dir ? !is_dir : !is_file) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **w = realloc(v, cap * sizeof *v);
            if (!w) {
                rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", dir);
                break;
            }
            v = w;
        }
        if (!(v[n] = strdup(de->d_name))) {
            rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", dir);
            break;
        }
        n++;
    }
    closedir(dp);
    if (rc) {
        for (size_t i = 0; i < n; i++) free(v[i]);
        free(v);
        return rc;
    }
    if (n) qsort(v, n, sizeof *v, cmp_str);
    *names = v;
    *count = n;
    return BERTC_OK;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

/* Reads dir/name, one listed file of a folder dataset, into *text (NULs dropped), for both the
 * flat and the class-folder layouts. A file that cannot be read does not end the read by itself:
 * builder_bad counts it (or turns it into the error, per the options) and *text is NULL. Returns
 * BERTC_OK or the error that ends the read (out of memory is reported against root). */
static int read_listed_file(data_builder *b, const char *root, const char *dir, const char *name, char **text,
                            bertc_error *err) {
    *text = NULL;
    char *path = path_join(dir, name);
    if (!path) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", root);
    size_t len;
    bertc_error ferr = {0};
    int rc = data_read_file(path, text, &len, &ferr);
    free(path);
    if (rc != BERTC_OK) {
        *text = NULL;
        return builder_bad(b, err, ferr.code, "%s", ferr.msg);
    }
    data_drop_nuls(*text, len);
    return BERTC_OK;
}

/* Unlabelled data in one folder (aclImdb/train/unsup): each file an example, id = its name. */
static int read_flat_dir(data_builder *b, const char *root, bertc_error *err) {
    char **files;
    size_t nfiles;
    int rc = list_dir(root, 0, &files, &nfiles, err);
    for (size_t i = 0; i < nfiles && rc == BERTC_OK; i++) {
        char *text;
        rc = read_listed_file(b, root, root, files[i], &text, err);
        if (rc == BERTC_OK && text) rc = builder_add(b, strdup(files[i]), text, NULL, NULL, 0, err);
    }
    free_list(files, nfiles);
    return rc;
}

int read_tree_dir(data_builder *b, const char *root, bertc_error *err) {
    char **classes;
    size_t nclass;
    int rc = list_dir(root, 1, &classes, &nclass, err);
    if (rc) return rc;
    for (size_t c = 0; c < nclass && rc == BERTC_OK; c++) {
        int unsup = is_unsup(classes[c]);
        if (unsup && !b->opt->with_unsup && !b->opt->unlabelled) continue;
        char *cdir = path_join(root, classes[c]);
        char **files = NULL;
        size_t nfiles = 0;
        if (!cdir) rc = bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", root);
        else rc = list_dir(cdir, 0, &files, &nfiles, err);
        for (size_t i = 0; i < nfiles && rc == BERTC_OK; i++) {
            char *text;
            rc = read_listed_file(b, root, cdir, files[i], &text, err);
            if (rc != BERTC_OK || !text) continue;
            char *id = path_join(classes[c], files[i]);
            char *label = unsup ? NULL : strdup(classes[c]);
            if (!unsup && !label) {
                free(id);
                id = NULL; /* builder_add reports the failed allocation */
            }
            rc = builder_add(b, id, text, NULL, label, 0, err);
        }
        free_list(files, nfiles);
        free(cdir);
    }
    free_list(classes, nclass);
    if (rc == BERTC_OK && nclass == 0 && b->opt->unlabelled) rc = read_flat_dir(b, root, err);
    return rc;
}

/* The most read_entry_data allocates up front; the size a header announces is not trusted (a
 * damaged or hostile archive can announce gigabytes), the buffer grows with what is really read. */
#define ENTRY_FIRST_ALLOC ((size_t)1 << 20)

/* Reads the current entry's data (size bytes announced, or unknown when size < 0). */
static int read_entry_data(struct archive *a, la_int64_t size, char **out, size_t *len) {
    size_t cap = size >= 0 && (uint64_t)size < ENTRY_FIRST_ALLOC ? (size_t)size + 1 : ENTRY_FIRST_ALLOC, n = 0;
    char *p = malloc(cap);
    if (!p) return ARCHIVE_FATAL;
    for (;;) {
        if (n + 1 == cap) {
            char *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                return ARCHIVE_FATAL;
            }
            p = q;
            cap *= 2;
        }
        la_ssize_t r = archive_read_data(a, p + n, cap - 1 - n);
        if (r < 0) {
            free(p);
            return (int)r;
        }
        if (r == 0) break;
        n += (size_t)r;
    }
    p[n] = '\0';
    *out = p;
    *len = n;
    return ARCHIVE_OK;
}

int read_tree_archive(data_builder *b, const char *path, const char *folder, bertc_error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return bertc_errorf(err, BERTC_EIO, "%s: no such file", path);
    if (!S_ISREG(st.st_mode)) return bertc_errorf(err, BERTC_EIO, "%s: not a regular file", path);

    struct archive *a = archive_read_new();
    if (!a) return bertc_errorf(err, BERTC_ENOMEM, "%s: out of memory", path);
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    /* Read in blocks of 1 MiB, or the file's size (from 16 kB) when it is smaller. */
    size_t block = (size_t)1 << 20;
    if (st.st_size < (off_t)block) block = st.st_size < 16384 ? 16384 : (size_t)st.st_size;
    if (archive_read_open_filename(a, path, block) != ARCHIVE_OK) {
        int rc = bertc_errorf(err, BERTC_EFORMAT, "%s: cannot read archive: %s", path, archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    size_t flen = strlen(folder);
    int rc = BERTC_OK, seen_folder = flen == 0;
    int seen_class = 0; /* unlabelled: files directly in FOLDER count only while no class folder is seen */
    char last[512] = ""; /* the last member read, for messages about what follows it */
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF) break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) { /* ARCHIVE_RETRY too: a damaged header */
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: corrupt or truncated archive%s%s: %s", path,
                              last[0] ? " after member " : "", last, archive_error_string(a));
            break;
        }
        const char *name = archive_entry_pathname(e);
        if (!name) continue;
        snprintf(last, sizeof last, "%s", name);
        while (name[0] == '.' && name[1] == '/') name += 2;
        /* Keep FOLDER/CLASS/FILE: exactly one '/' after the folder, no hidden names. */
        if (flen) {
            if (strncmp(name, folder, flen) != 0 || name[flen] != '/') continue;
            seen_folder = 1;
            name += flen + 1;
        }
        const char *slash = strchr(name, '/');
        int flat = b->opt->unlabelled && !slash && name[0] && name[0] != '.' && !seen_class;
        if (!flat && (!slash || slash == name || name[0] == '.' || slash[1] == '\0' || slash[1] == '.' ||
                      strchr(slash + 1, '/')))
            continue;
        size_t clen = flat ? 0 : (size_t)(slash - name);
        int unsup = flat || (clen == 5 && strncmp(name, "unsup", 5) == 0);
        if (unsup && !b->opt->with_unsup && !b->opt->unlabelled) continue;
        if (!flat && b->opt->unlabelled && !seen_class) { /* a tree after all: drop the loose files */
            seen_class = 1;
            builder_free(b);
        }
        mode_t type = archive_entry_filetype(e);
        if (type == AE_IFLNK || archive_entry_hardlink(e)) {
            rc = builder_bad(b, err, BERTC_EUNSUPPORTED, "%s: member %s: links are not supported", path, last);
            if (rc) break;
            continue;
        }
        if (type != AE_IFREG) continue;
        char *text = NULL;
        size_t len = 0;
        r = read_entry_data(a, archive_entry_size_is_set(e) ? archive_entry_size(e) : -1, &text, &len);
        if (r != ARCHIVE_OK) {
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: member %s: %s", path, last,
                              archive_error_string(a) ? archive_error_string(a) : "out of memory");
            break;
        }
        data_drop_nuls(text, len);
        char *id = strdup(name);
        char *label = unsup ? NULL : strndup(name, clen);
        if (!unsup && !label) {
            free(id);
            id = NULL;
        }
        if ((rc = builder_add(b, id, text, NULL, label, 0, err))) break;
    }
    archive_read_free(a);
    if (rc == BERTC_OK && !seen_folder)
        rc = bertc_errorf(err, BERTC_EFORMAT, "%s: no folder \"%s\" in the archive", path, folder);
    return rc;
}
