/* The op set: every computation the BERT forward/backward needs, as a table of function
 * pointers (a backend vtable, as in ggml). bert.c calls only through a bertc_backend, so a
 * CUDA backend can later implement the same table and the model code does not change.
 *
 * Letters used in the shape comments:
 *   B  batch (sequences)          T  sequence length (tokens per sequence)
 *   C  hidden size (channels)     NH attention heads, HS = C / NH head size
 *   F  intermediate (feed-forward) size
 *   L  layers                     V  vocabulary size, P max positions, TT token types
 *   K  number of labels           N  rows of a flattened activation (usually B*T)
 *   OC, IC  output / input features of a Linear layer
 *
 * Conventions:
 *   - Every float* / int32_t* argument points to backend ("device") memory from alloc().
 *   - Parameter gradients (dweight, dbias, dwte, ...) are always ACCUMULATED (+=), so gradient
 *     accumulation over micro-batches is free. Input gradients (dinp) are WRITTEN (=) unless
 *     the op says otherwise (matmul_backward has an accumulate flag for residual branches).
 *   - In-place use (out == inp, dinp == dout) is allowed where the comment says so.
 *   - keep/drop of dropout element i is a pure function of (seed, stream, i) (see
 *     dropout_keep below), so backward can recompute it and the result is the same for any
 *     thread count. An op with a `keep` argument may also keep its draw as bytes (1 kept,
 *     0 dropped) from forward to backward: the same mask, read instead of hashed again (a CPU
 *     without a 64-bit vector multiply pays ~2 ns per element for the hash, 0.2 for the byte).
 *     keep NULL: not kept (forward) / redrawn (backward). A backend may ignore a forward's keep
 *     and redraw in its backward (the GPU: the hash is cheap there), so the caller passes the
 *     same keep to both or NULL to both.
 */
#ifndef BERTC_BACKEND_OPS_H
#define BERTC_BACKEND_OPS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* nvcc compiles this header too (src/backend/cuda): the hash below runs in its kernels, the
 * very same code, so the CPU and the GPU drop the same elements. */
#ifdef __CUDACC__
#define OPS_HOSTDEV __host__ __device__
#else
#define OPS_HOSTDEV
#endif
#ifdef __cplusplus
extern "C" {
#endif

/* The counter-based hash behind every dropout mask, documented so that other programs can
 * reproduce bertc's masks: h = splitmix64_mix(seed ^ splitmix64_mix(stream * 0x9E3779B97F4A7C15
 * + index)), u = (h >> 40) * 2^-24 (24 random bits, in [0,1)); the element is dropped when
 * u < p and otherwise scaled by 1/(1-p) (inverted dropout, as torch). */
OPS_HOSTDEV static inline uint64_t ops_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* u >= p, asked of the integer h >> 40 as h >> 40 >= ceil(p * 2^24): the same answer (both sides
 * are exact in float), without the 64-bit integer to float conversion that AVX2 has no vector
 * instruction for (the dropout loops ran one element at a time there). A NaN p drops everything,
 * as u >= NaN is false. */
OPS_HOSTDEV static inline int64_t dropout_threshold(float p) {
    if (p > 0.0f && p < 1.0f) return (int64_t)ceilf(p * 16777216.0f);
    return p <= 0.0f ? 0 : (int64_t)1 << 24;
}
/* the 24 random bits u * 2^24 of element index */
OPS_HOSTDEV static inline int64_t dropout_bits(uint64_t seed, uint64_t stream, uint64_t index) {
    return (int64_t)(ops_mix64(seed ^ ops_mix64(stream * 0x9E3779B97F4A7C15ULL + index)) >> 40);
}
OPS_HOSTDEV static inline int dropout_keep(uint64_t seed, uint64_t stream, uint64_t index, float p) {
    return dropout_bits(seed, stream, index) >= dropout_threshold(p);
}

/* fp32 -> bf16, rounding to nearest, ties to even, as torch's c10::BFloat16: subnormals are
 * rounded like any other value (no flush to zero), overflow rounds to infinity, and every NaN
 * becomes the quiet NaN 0x7FC0. One definition for the CPU's to_bf16, the GPU's kernels and the
 * optimiser's bf16 weight copy, so that all of them round alike bit for bit. */
OPS_HOSTDEV static inline uint16_t ops_bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? (uint16_t)0x7FC0u : (uint16_t)rounded;
}

/* One row of crossentropy_forward, the same code on the CPU and the GPU: p (K) = softmax(z),
 * accumulated in double; returns the loss against label y with label smoothing eps,
 * (1 - eps) * nll - eps * mean(log p), or 0 when y is outside [0, K) (ignored, as torch's
 * ignore_index). */
OPS_HOSTDEV static inline float crossentropy_row(float *p, const float *z, int K, int y, float eps) {
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

typedef enum ops_act { OPS_ACT_GELU, OPS_ACT_GELU_NEW, OPS_ACT_RELU } ops_act;

/* The per-range scalars of one AdamW update (train/optim.c computes them, in torch's order).
 * grad_scale is gradient clipping's coefficient (1 when the norm is within bounds): the update
 * reads g * grad_scale, the very product a separate pass x *= s would have stored, so folding the
 * clip into the update saves a pass over the gradients and changes no bit. Every initialiser
 * must set it: left out, it is 0 and the update sees a zero gradient. */
typedef struct ops_adamw_scalars {
    float decay, one_minus_beta1, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size, grad_scale;
} ops_adamw_scalars;

/* One range of adamw_update_segments: its elements and its own decay and step. */
typedef struct ops_adamw_segment {
    size_t offset, numel;
    float decay, neg_step_size;
} ops_adamw_segment;
#define OPS_ADAMW_MAX_SEGMENTS 128

typedef struct bertc_backend {
    const char *name;

    /* ---- memory: trivial on the CPU, real on a GPU ---- */
    void *(*alloc)(size_t bytes);                   /* zeroed; NULL on failure */
    void (*free)(void *p);
    void (*zero)(void *p, size_t bytes);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* device to device */

    /* ---- embeddings: out[b,t] = wte[ids[b,t]] + wpe[t] + wtt[types[b,t]] ----
     * out (B,T,C); ids, types (B,T); wte (V,C); wpe (P,C) with T <= P; wtt (TT,C).
     * Ids and types must already be in range (bert.c checks them on the host). */
    void (*embeddings_forward)(float *out, const int32_t *ids, const int32_t *types,
                               const float *wte, const float *wpe, const float *wtt,
                               int B, int T, int C);
    /* Scatter-add of dout (B,T,C) into dwte, dwpe, dwtt. Rows of ids equal to pad_id get no
     * gradient, as nn.Embedding(padding_idx=pad_id) (pass -1 for none). */
    void (*embeddings_backward)(float *dwte, float *dwpe, float *dwtt, const float *dout,
                                const int32_t *ids, const int32_t *types, int B, int T, int C,
                                int pad_id);

    /* ---- layernorm over the last dim, biased variance (torch.nn.LayerNorm) ----
     * out, inp (N,C); mean, rstd (N) saved for backward; weight, bias (C). out != inp. */
    void (*layernorm_forward)(float *out, float *mean, float *rstd, const float *inp,
                              const float *weight, const float *bias, int N, int C, float eps);
    /* dinp (N,C) written; dweight, dbias (C) accumulated. dinp may alias dout. */
    void (*layernorm_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                               const float *inp, const float *weight, const float *mean,
                               const float *rstd, int N, int C);

    /* ---- Linear: out = inp @ weight^T + bias (weight in PyTorch (out, in) layout) ----
     * out (N,OC); inp (N,IC); weight (OC,IC); bias (OC) or NULL. */
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias,
                           int N, int IC, int OC);
    /* dinp (N,IC) written (or added to when accumulate != 0; skipped when NULL);
     * dweight (OC,IC) and dbias (OC) accumulated (dbias may be NULL). dout (N,OC). */
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int IC, int OC,
                            int accumulate);

    /* ---- self-attention core, Hugging Face eager semantics ----
     * The first Tq positions of each sequence attend to all T (Tq = T normally; Tq = 1 in the
     * last layer, where only [CLS]'s output reaches the loss).
     * q (B,Tq,C) with row stride ldq, ctx (B,Tq,C); k, v (B,T,C) with row stride ldkv; head h in
     * channels [h*HS, (h+1)*HS); mask (B,T) 1 = token, 0 = padding. The strides let q, k and v be
     * column blocks of one (B,T,3C) product (ldq = ldkv = 3C; bert.c computes the three
     * projections as one Linear); plain separate tensors have ldq = ldkv = C. scores = q k^T / sqrt(HS) + (1 - mask[key]) * torch.finfo(float32).min,
     * att = softmax(scores) (B,NH,Tq,T) saved for backward, then dropout(att) with p_drop
     * (stream `stream`, element index into att), ctx = dropout(att) @ v.
     * scratch: at least B*NH*Tq*T floats (holds the dropped probabilities when p_drop > 0).
     * keep: NULL, or B*NH*Tq*T bytes where a backend that stores the mask writes it when
     * p_drop > 0 (1 = kept), for attention_backward to read instead of recomputing each hash
     * (~2 ns an element on AVX2; 0.2 to read a byte). The same mask either way. */
    void (*attention_forward)(float *ctx, float *att, const float *q, const float *k,
                              const float *v, const int32_t *mask, float *scratch,
                              int B, int Tq, int T, int C, int NH, int ldq, int ldkv, float p_drop,
                              uint64_t seed, uint64_t stream, uint8_t *keep);
    /* dq (B,Tq,C) (row stride ldq), dk, dv (B,T,C) (row stride ldkv) written, only their C
     * columns; dctx (B,Tq,C); att as saved by forward. scratch: at least 2*B*NH*Tq*T floats.
     * keep: NULL (the mask is recomputed), or what this layer's forward wrote into it with the
     * same p_drop, seed and stream. */
    void (*attention_backward)(float *dq, float *dk, float *dv, const float *dctx,
                               const float *q, const float *k, const float *v, const float *att,
                               float *scratch, int B, int Tq, int T, int C, int NH, int ldq, int ldkv,
                               float p_drop, uint64_t seed, uint64_t stream, const uint8_t *keep);

    /* ---- activations: out (N), inp (N) ----
     * act_forward may run in place (out == inp is not allowed: backward needs inp).
     * act_backward: dinp = dout * act'(inp), dinp may alias dout. */
    void (*act_forward)(ops_act act, float *out, const float *inp, size_t N);
    void (*act_backward)(ops_act act, float *dinp, const float *dout, const float *inp, size_t N);
    /* out = tanh(inp) (in place allowed); backward from the output: dinp = dout * (1 - out^2). */
    void (*tanh_forward)(float *out, const float *inp, size_t N);
    void (*tanh_backward)(float *dinp, const float *dout, const float *out, size_t N);

    /* ---- dropout and residual ----
     * Inverted dropout of N elements, mask from (seed, stream, index): x *= keep / (1 - p).
     * In place. p == 0 is the identity. keep (N) or NULL: the draw kept for backward (p > 0). */
    void (*dropout_forward)(float *x, size_t N, float p, uint64_t seed, uint64_t stream, uint8_t *keep);
    /* dinp = dout * keep / (1 - p); dinp may alias dout. keep: forward's, or NULL (redrawn). */
    void (*dropout_backward)(float *dinp, const float *dout, size_t N, float p, uint64_t seed,
                             uint64_t stream, const uint8_t *keep);
    /* Fused "hidden dropout then residual": out = res + dropout(x), out (N), x and res (N).
     * x is clobbered (the dropped values); out may alias res. */
    void (*dropout_residual_forward)(float *out, float *x, const float *res, size_t N, float p,
                                     uint64_t seed, uint64_t stream);

    /* ---- pooler input: the first ([CLS]) token of each sequence ----
     * out (B,C) = inp[:, 0, :] with inp (B,T,C). */
    void (*first_token_forward)(float *out, const float *inp, int B, int T, int C);
    /* dinp (B,T,C) written: zero except dinp[:, 0, :] = dout (B,C). */
    void (*first_token_backward)(float *dinp, const float *dout, int B, int T, int C);

    /* ---- rows of a (rows, C) tensor picked by index: the masked-LM head's masked tokens ----
     * rows (n) in device memory, each in range. gather: out (n,C), out[i] = inp[rows[i]].
     * scatter: out[rows[i]] = inp (n,C)[i], written; the rows must be distinct and the other
     * rows of out are left as they are. One launch on a GPU instead of a copy per row. */
    void (*rows_gather)(float *out, const float *inp, const int32_t *rows, int n, int C);
    void (*rows_scatter)(float *out, const float *inp, const int32_t *rows, int n, int C);

    /* ---- softmax cross-entropy with label smoothing eps, as torch.nn.CrossEntropyLoss ----
     * logits, probs (B,K); labels (B), a label < 0 is ignored (torch's ignore_index);
     * losses (B): per-example loss (0 for ignored). Target distribution
     * q = (1-eps)*onehot(label) + eps/K. */
    void (*crossentropy_forward)(float *losses, float *probs, const float *logits,
                                 const int32_t *labels, int B, int K, float eps);
    /* dlogits (B,K) written: (probs - q) * dloss for valid rows, 0 for ignored ones. */
    void (*crossentropy_backward)(float *dlogits, const float *probs, const int32_t *labels,
                                  int B, int K, float eps, float dloss);

    /* ---- optimiser (train/optim.c), so parameters and moments never leave the device ----
     * AdamW on n elements, torch's operation order (see optim.c):
     *   g = g*grad_scale (rounded on its own, never fused into what follows);
     *   p = p*decay; m = fma(1-b1, g-m, m); v = fma((1-b2)*g, g, v*b2);
     *   p = p + neg_step_size * m / (sqrt(v)/bc2_sqrt + eps)
     * p16: NULL, or a bf16 mirror of p (n): each new p also written there rounded as to_bf16,
     * so a bf16 model's weight copy stays current without a rounding pass of its own. */
    void (*adamw_update)(float *p, float *m, float *v, const float *g, size_t n, ops_adamw_scalars s,
                         uint16_t *p16);
    /* adamw_update over nseg ranges [offset, offset + numel) of p, m, v, g (ascending, not
     * overlapping; nseg <= OPS_ADAMW_MAX_SEGMENTS; seg in host memory), each with its own decay
     * and neg_step_size (s's are not used), in one call: the same numbers as a call per range.
     * With weight decay, biases and LayerNorm weights alternate with decayed weights: ~170
     * ranges for bert-base, ~170 launches per step on a GPU. NULL where a call per range costs
     * nothing extra (the CPU). p16: NULL, or the mirror of p from the same base (the ranges'
     * offsets index it too), as adamw_update's. */
    void (*adamw_update_segments)(float *p, float *m, float *v, const float *g, const ops_adamw_segment *seg,
                                  int nseg, ops_adamw_scalars s, uint16_t *p16);
    /* Sum of x[i]^2 in double, returned to the host (the gradient norm's square). */
    double (*sum_squares)(const float *x, size_t n);
    /* x *= s over n elements (pretraining's head and encoder clipped together; tests). */
    void (*scale)(float *x, size_t n, float s);
    /* The first error the backend met since it started ("" when none): a GPU backend's ops
     * cannot return one, so callers ask after a step. NULL on the CPU (which has none). */
    const char *(*last_error)(void);
    /* ---- bf16 mixed precision (--precision bf16); NULL in a backend without it ----
     * to_bf16: dst (n) = src rounded to bf16, to nearest even (NaN stays NaN), as torch. */
    void (*to_bf16)(uint16_t *dst, const float *src, size_t n);
    /* matmul_forward / matmul_backward with bf16 products accumulated in fp32: weight16 is the
     * bf16 copy of weight (OC,IC). inp16 (N,IC) is inp rounded to bf16: forward fills it from inp
     * unless inp16_ready (an earlier forward filled it from the same inp), and backward reads it
     * as forward left it (so inp is rounded once per step). dout is rounded into scratch (N*OC
     * bf16), unless scratch_ready: a fused op before it (the *_bf16 ops below) left dout's
     * rounding there. out, dinp, dweight, dbias and the bias stay fp32; the rest as the fp32 ops. */
    void (*matmul_forward_bf16)(float *out, const float *inp, uint16_t *inp16, int inp16_ready,
                                const uint16_t *weight16, const float *bias, int N, int IC, int OC);
    void (*matmul_backward_bf16)(float *dinp, float *dweight, float *dbias, const float *dout,
                                 const uint16_t *inp16, const uint16_t *weight16, int N, int IC, int OC,
                                 int accumulate, uint16_t *scratch, int scratch_ready);
    /* bias_act_forward (below) for a bf16 model, whose activation output only feeds a bf16
     * product: pre (N,F) += bias (F) in place (kept for backward), out16 (N,F) = act(pre) rounded
     * to bf16; no fp32 output is written (nor allocated). = bias_act_forward + to_bf16, bit for
     * bit. NULL in a backend without it: bert.c composes the two. */
    void (*bias_act_forward_bf16)(ops_act act, uint16_t *out16, float *pre, const float *bias, int N, int F);
    /* attention_forward / attention_backward for a bf16 model with the attention's products on
     * bf16 tensor cores (operands rounded to bf16 inside the product, fp32 accumulation, as
     * PyTorch's autocast runs them); same arguments, softmax and dropout in fp32. NULL where the
     * backend keeps a bf16 model's attention in fp32 (the CPU): bert.c then calls the fp32 ops. */
    void (*attention_forward_bf16)(float *ctx, float *att, const float *q, const float *k, const float *v,
                                   const int32_t *mask, float *scratch, int B, int Tq, int T, int C, int NH,
                                   int ldq, int ldkv, float p_drop, uint64_t seed, uint64_t stream, uint8_t *keep);
    void (*attention_backward_bf16)(float *dq, float *dk, float *dv, const float *dctx, const float *q,
                                    const float *k, const float *v, const float *att, float *scratch, int B,
                                    int Tq, int T, int C, int NH, int ldq, int ldkv, float p_drop, uint64_t seed,
                                    uint64_t stream, const uint8_t *keep);
    /* ---- fused ops: one pass over memory where the unfused composition above takes several.
     * Each equals its composition up to float summation order (tests/test_ops.c checks). ---- */

    /* The end of a BERT sub-block, after a Linear whose bias was left out (matmul_forward with
     * bias NULL): res = inp_res + dropout(x + xbias), out = LayerNorm(res).
     * = matmul bias + dropout_residual_forward + layernorm_forward.
     * out, res (N,C) written (res saved for backward); x, inp_res (N,C) read (x is not
     * clobbered); xbias (C) or NULL; mean, rstd (N); weight, bias (C). Dropout element index is
     * n*C + c in (seed, stream), kept in keep (N,C) unless NULL (p > 0). out, res, x, inp_res
     * pairwise distinct. */
    void (*residual_layernorm_forward)(float *out, float *res, float *mean, float *rstd,
                                       const float *x, const float *xbias, const float *inp_res,
                                       const float *weight, const float *bias, int N, int C,
                                       float eps, float p, uint64_t seed, uint64_t stream, uint8_t *keep);
    /* Its backward: dres (N,C) = LayerNorm's input gradient (the residual branch's gradient),
     * written, may alias dout; dx (N,C) = dropout_backward(dres), written, or NULL when p == 0
     * (dres is then dx); dxbias (C) += column sums of dx (NULL: skipped); dweight, dbias (C)
     * accumulated. = layernorm_backward + dropout_backward + matmul_backward's dbias. keep:
     * forward's draw, or NULL (redrawn). */
    void (*residual_layernorm_backward)(float *dres, float *dx, float *dxbias, float *dweight,
                                        float *dbias, const float *dout, const float *res,
                                        const float *weight, const float *mean, const float *rstd,
                                        int N, int C, float p, uint64_t seed, uint64_t stream,
                                        const uint8_t *keep);
    /* The same two for a bf16 model, whose outputs feed bf16 products: also out16 (N,C), out
     * rounded to bf16 (the next Linear's inp16), and dx16 (N,C), the rounding of dx (of dres
     * when dx is NULL: the preceding Linear's dout, its scratch). = the op + to_bf16, bit for bit.
     * NULL in a backend without them: bert.c composes them. */
    void (*residual_layernorm_forward_bf16)(float *out, uint16_t *out16, float *res, float *mean, float *rstd,
                                            const float *x, const float *xbias, const float *inp_res,
                                            const float *weight, const float *bias, int N, int C, float eps,
                                            float p, uint64_t seed, uint64_t stream, uint8_t *keep);
    void (*residual_layernorm_backward_bf16)(float *dres, float *dx, uint16_t *dx16, float *dxbias,
                                             float *dweight, float *dbias, const float *dout, const float *res,
                                             const float *weight, const float *mean, const float *rstd, int N,
                                             int C, float p, uint64_t seed, uint64_t stream, const uint8_t *keep);
    /* Linear bias + activation, after a Linear whose bias was left out: pre (N,F) += bias (F)
     * in place (the pre-activation, saved for backward), out (N,F) = act(pre). out != pre. */
    void (*bias_act_forward)(ops_act act, float *out, float *pre, const float *bias, int N, int F);
    /* dinp (N,F) = dout * act'(pre), written, may alias dout; dbias (F) += column sums of dinp
     * (the preceding Linear's bias gradient). = act_backward + matmul_backward's dbias. */
    void (*act_bias_backward)(ops_act act, float *dinp, float *dbias, const float *dout,
                              const float *pre, int N, int F);
    /* The same with dinp16 (N,F), dinp rounded to bf16 (the preceding bf16 Linear's dout, its
     * scratch); NULL in a backend without it. */
    void (*act_bias_backward_bf16)(ops_act act, float *dinp, uint16_t *dinp16, float *dbias, const float *dout,
                                   const float *pre, int N, int F);
    /* Why this backend's bf16 products are emulated rather than run on bf16 hardware (the CPU's
     * fallback widens both operands to fp32 and is slower than fp32 itself), or NULL when they are
     * not; a NULL function means never. bertc prints it as a notice for --precision bf16. */
    const char *(*bf16_emulated)(void);
    /* 1: the ops with a `keep` argument store the dropout draw there in forward and read it in
     * backward, so the caller carves the bytes; 0: they ignore keep and redraw (the caller passes
     * NULL and carves nothing). Last, so an older commit's table (bench/fused_ops.c links one)
     * keeps every function at its offset. */
    int keeps_dropout_draw;
} bertc_backend;

/* The CPU backend (OpenBLAS sgemm + OpenMP loops). Always available. */
const bertc_backend *bertc_backend_cpu(void);
/* Whether the CPU backend asks for transparent huge pages for its large blocks (cpu_alloc): yes
 * unless BERTC_THP=0 or cpu_huge_pages_set(0). The setter overrides the environment for blocks
 * allocated after it (bench/step_time.c's thp-ab compares two models that way). */
int cpu_huge_pages_wanted(void);
void cpu_huge_pages_set(int on);

/* The backend called `name` ("cpu", or "cuda", "cuda:tf32", "cuda:bf16" where bertc was built
 * with CUDA and a device is present); NULL or "" means "cpu". On failure returns NULL and writes one line to why
 * (e.g. "--device cuda: no CUDA device found (cudaGetDeviceCount: ...)"). */
const bertc_backend *bertc_backend_by_name(const char *name, char *why, size_t why_size);
/* The CUDA backend (src/backend/cuda, the plug-in libbertc_cuda.so that bertc_backend_by_name
 * loads; only in builds with BERTC_CUDA): NULL, with the reason in
 * why, when no device can be used. math: how the matrix products run, "fp32" (NULL: the parity
 * mode), "tf32" or "bf16" (tensor cores, fp32 accumulation; one mode per process, the last asked). */
const bertc_backend *bertc_backend_cuda(const char *math, char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif
