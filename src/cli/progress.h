/* Progress display: a one-line bar redrawn in place on a terminal, plain periodic lines otherwise. */
#ifndef BERTC_CLI_PROGRESS_H
#define BERTC_CLI_PROGRESS_H

#include "bertc.h"

/* bertc_progress_fn and bertc_log_fn that print to stderr; user is unused. */
void progress_print(const bertc_progress *p, void *user);
void progress_log(const char *line, void *user);
/* Clears a bar left on the terminal. */
void progress_end(void);

#endif
