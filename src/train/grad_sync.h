/* The seam for data-parallel training. Each of world_size processes (ranks) computes gradients on
 * its own slice of the batch; before clipping and the optimiser step, the trainer calls
 *
 *     sync->allreduce_mean(sync, grads, n);
 *
 * so every rank holds the mean gradient and takes the same AdamW step, keeping the replicas equal.
 * The single-process implementation does nothing (the mean over one rank is itself).
 *
 * Plugging in MPI: grad_sync_mpi_init() would fill world_size/rank from MPI_Comm_size/rank and set
 * allreduce_mean to MPI_Allreduce(MPI_IN_PLACE, grads, n, MPI_FLOAT, MPI_SUM, comm) followed by a
 * scale by 1/world_size (n above INT_MAX in chunks). With NCCL (CUDA backend) the gradients live
 * on the device: ncclAllReduce(grads, grads, n, ncclFloat, ncclAvg, comm, stream) does both at
 * once. Either keeps its communicator in ctx; the trainer only sees this struct. Data loaders use
 * rank and world_size to pick each rank's share of a batch; only rank 0 writes checkpoints. */
#ifndef BERTC_TRAIN_GRAD_SYNC_H
#define BERTC_TRAIN_GRAD_SYNC_H

#include <stddef.h>

typedef struct grad_sync {
    int world_size; /* processes training together, >= 1 */
    int rank;       /* this process, 0 .. world_size-1 */
    /* Replaces grads (n floats) with their mean over all ranks; returns 0 or a bertc_status. */
    int (*allreduce_mean)(struct grad_sync *sync, float *grads, size_t n);
    void *ctx; /* the implementation's communicator; NULL for a single process */
} grad_sync;

/* One process: world_size 1, rank 0, allreduce_mean a no-op. */
void grad_sync_single(grad_sync *sync);

#endif
