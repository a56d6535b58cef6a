/* bertc: fine-tune BERT-family encoders for text classification, in C.
 *
 * The public API. The command-line program (src/cli) is a thin user of it.
 * Every function that can fail returns 0 on success and a non-zero error code
 * otherwise, and fills a bertc_error with one line that names the file and the
 * field at fault. The library never prints and never exits.
 */
#ifndef BERTC_H
#define BERTC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BERTC_VERSION "0.1.0"

enum bertc_status {
    BERTC_OK = 0,
    BERTC_EIO = 1,          /* a file could not be opened, read or written */
    BERTC_EFORMAT = 2,      /* a file or record is malformed */
    BERTC_EINVAL = 3,       /* an argument or option is out of range */
    BERTC_ENOMEM = 4,       /* an allocation failed */
    BERTC_EUNSUPPORTED = 5, /* valid input that bertc does not handle (yet) */
    BERTC_ENUMERIC = 6,     /* NaN or infinity in a loss or a gradient */
    BERTC_EINTERRUPTED = 7  /* stopped by a signal after saving state */
};

typedef struct bertc_error {
    int code;
    char msg[1024];
} bertc_error;

#ifdef __cplusplus
}
#endif
#endif
