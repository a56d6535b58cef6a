/* One piece of work (a file written from a host copy) run in a thread of its own while the
 * caller goes on, and joined later: the checkpoint writer (train/checkpoint.h) and the model
 * folder's writer (bertc.c) on a GPU. Where no thread can be had the work runs at once. A zeroed
 * struct is idle. Not for concurrent callers: one owner starts and waits. */
#ifndef BERTC_UTIL_BACKGROUND_H
#define BERTC_UTIL_BACKGROUND_H

#include <pthread.h>

#include "bertc.h"

typedef int (*background_fn)(void *ctx, bertc_error *err);

typedef struct background {
    pthread_t thread;
    int running;         /* a thread runs fn */
    background_fn fn;
    void *ctx;
    int rc;              /* fn's result, its message in err */
    bertc_error err;
} background;

/* Waits for the work before (returning its error, if it failed, without starting), then starts
 * fn(ctx). Returns 0 once it runs in a thread, or fn's own result when it had to run here. */
int background_start(background *b, background_fn fn, void *ctx, bertc_error *err);
/* Waits for the work, if any is running; its result (the message in err). */
int background_wait(background *b, bertc_error *err);
/* The end of a run that may have left work running: waits for it, adds the time waited to
 * *seconds, and returns rc, or the work's error (its message in err) when rc is 0 or
 * BERTC_EINTERRUPTED: a file that failed to be written makes the run fail, and an interrupted
 * run could not be resumed from it. */
int background_finish(background *b, int rc, bertc_error *err, double *seconds);

#endif
