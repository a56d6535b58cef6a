#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

int bertc_errorf(bertc_error *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

void bertc_error_clear(bertc_error *err) {
    if (err) {
        err->code = BERTC_OK;
        err->msg[0] = '\0';
    }
}
