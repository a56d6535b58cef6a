/* The single-process gradient synchronisation: nothing to average. See grad_sync.h for how an
 * MPI or NCCL implementation plugs in. */
#include "train/grad_sync.h"

static int allreduce_mean_single(grad_sync *sync, float *grads, size_t n) {
    (void)sync;
    (void)grads;
    (void)n;
    return 0;
}

void grad_sync_single(grad_sync *sync) {
    sync->world_size = 1;
    sync->rank = 0;
    sync->allreduce_mean = allreduce_mean_single;
    sync->ctx = NULL;
}
