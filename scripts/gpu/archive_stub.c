/* A stand-in for libarchive, linked by scripts/gpu-check.sh only on a machine that lacks the
 * library: every archive fails to open with a message that says why. bertc reads archives only
 * for ARCHIVE.tar.gz:FOLDER datasets; the GPU check uses JSON Lines. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>

struct archive *archive_read_new(void) { return (struct archive *)calloc(1, 16); }
int archive_read_support_filter_all(struct archive *a) { (void)a; return ARCHIVE_OK; }
int archive_read_support_format_all(struct archive *a) { (void)a; return ARCHIVE_OK; }
int archive_read_open_filename(struct archive *a, const char *f, size_t b) { (void)a, (void)f, (void)b; return ARCHIVE_FATAL; }
const char *archive_error_string(struct archive *a) { (void)a; return "this bertc was linked without libarchive (gpu-check stub)"; }
int archive_read_next_header(struct archive *a, struct archive_entry **e) { (void)a, (void)e; return ARCHIVE_FATAL; }
la_ssize_t archive_read_data(struct archive *a, void *buf, size_t n) { (void)a, (void)buf, (void)n; return ARCHIVE_FATAL; }
int archive_read_free(struct archive *a) { free(a); return ARCHIVE_OK; }
const char *archive_entry_pathname(struct archive_entry *e) { (void)e; return ""; }
const char *archive_entry_hardlink(struct archive_entry *e) { (void)e; return NULL; }
__LA_MODE_T archive_entry_filetype(struct archive_entry *e) { (void)e; return 0; }
la_int64_t archive_entry_size(struct archive_entry *e) { (void)e; return 0; }
int archive_entry_size_is_set(struct archive_entry *e) { (void)e; return 0; }
