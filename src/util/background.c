#include "util/background.h"

#include "util/clock.h"

static void *background_run(void *arg) {
    background *b = arg;
    b->rc = b->fn(b->ctx, &b->err);
    return NULL;
}

int background_wait(background *b, bertc_error *err) {
    if (b->running) {
        pthread_join(b->thread, NULL);
        b->running = 0;
    }
    int rc = b->rc;
    if (rc && err) *err = b->err;
    b->rc = 0; /* reported once */
    return rc;
}

int background_start(background *b, background_fn fn, void *ctx, bertc_error *err) {
    int rc = background_wait(b, err);
    if (rc) return rc;
    b->fn = fn;
    b->ctx = ctx;
    b->rc = 0;
    if (pthread_create(&b->thread, NULL, background_run, b) == 0) {
        b->running = 1;
        return 0;
    }
    return fn(ctx, err); /* no thread to be had: the work runs here */
}

int background_finish(background *b, int rc, bertc_error *err, double *seconds) {
    double t = now_s();
    bertc_error werr = {0};
    int wrc = background_wait(b, &werr);
    if (seconds) *seconds += now_s() - t;
    if (wrc && (!rc || rc == BERTC_EINTERRUPTED)) {
        if (err) *err = werr;
        return wrc;
    }
    return rc;
}
