/* One row of the softmax cross-entropy forward, shared by the CPU and CUDA backends (backend/ops.h
 * crossentropy_forward): p (K) = softmax(z), accumulated in double; returns the loss against label
 * y with label smoothing eps, (1 - eps) * nll - eps * mean(log p), or 0 when y is outside [0, K)
 * (ignored, as torch's ignore_index). Compiled for the device too under nvcc. */
#ifndef BERTC_BACKEND_CROSSENTROPY_ROW_H
#define BERTC_BACKEND_CROSSENTROPY_ROW_H
#include <math.h>

#ifdef __CUDACC__
#define BERTC_HOST_DEVICE __host__ __device__
#else
#define BERTC_HOST_DEVICE
#endif

static inline BERTC_HOST_DEVICE float crossentropy_row(float *p, const float *z, int K, int y, float eps) {
    float maxv = -INFINITY;
    for (int j = 0; j < K; j++)
        if (z[j] > maxv) maxv = z[j];
    double sum = 0.0;
    for (int j = 0; j < K; j++) sum += exp((double)z[j] - maxv);
    double logsum = log(sum) + maxv, sum_logp = 0.0;
    for (int j = 0; j < K; j++) {
        double lp = (double)z[j] - logsum;
        p[j] = (float)exp(lp);
        sum_logp += lp;
    }
    if (y < 0 || y >= K) return 0.0f;
    double nll = -((double)z[y] - logsum);
    return (float)((1.0 - eps) * nll - eps * sum_logp / K);
}

#endif
