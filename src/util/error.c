#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

int bertc_verrorf(bertc_error *err, int code, const char *fmt, va_list ap) {
    if (err) {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        err->code = code;
    }
    return code;
}

int bertc_errorf(bertc_error *err, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    bertc_verrorf(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void bertc_error_clear(bertc_error *err) {
    if (err) {
        err->code = BERTC_OK;
        err->msg[0] = '\0';
    }
}
