/* Error reporting for library code: fill a bertc_error and return its code.
 * Usage: return bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: ...", path, line); */
#ifndef BERTC_UTIL_ERROR_H
#define BERTC_UTIL_ERROR_H

#include <stdarg.h>

#include "bertc.h"

#if defined(__GNUC__)
#define BERTC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define BERTC_PRINTF(a, b)
#endif

/* Sets err (which may be NULL) to code and the formatted message; returns code. */
int bertc_errorf(bertc_error *err, int code, const char *fmt, ...) BERTC_PRINTF(3, 4);

/* The same with a va_list, for functions that take a format of their own. */
int bertc_verrorf(bertc_error *err, int code, const char *fmt, va_list ap) BERTC_PRINTF(3, 0);

/* Clears err to BERTC_OK and an empty message. */
void bertc_error_clear(bertc_error *err);

#endif
