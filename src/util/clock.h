/* Wall-clock seconds for timing and throughput figures, one definition for the trainer, the
 * pretrainer, the benchmark and the CLI's progress line (they used to carry a copy each). */
#ifndef BERTC_UTIL_CLOCK_H
#define BERTC_UTIL_CLOCK_H

#include <time.h>

/* Seconds on the monotonic clock (never steps back when the system time is set): only
 * differences mean anything. */
static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
