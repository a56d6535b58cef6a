/* bertc bench internals shared with the tests. The measurements themselves are
 * bertc_bench() (include/bertc.h); the formula behind every GFLOP/s figure is here. */
#ifndef BERTC_BENCH_BENCH_H
#define BERTC_BENCH_BENCH_H

#include "bertc.h"
#include "model/config.h"

/* The built-in shapes ("bert-base": bert-base-uncased's config.json; "minilm":
 * all-MiniLM-L6-v2's), two labels, dropout 0.1 as their config.json. Fills c (nothing to free). */
int bench_shape_config(const char *name, bert_config *c, bertc_error *err);

/* Model FLOPs of one pass over B sequences of T tokens (docs/PERFORMANCE.md, "Benchmark"):
 *   forward = 2*B*T*L*(4*C*C + 2*C*F)   the encoder's Linear layers (weights only: Q, K, V, O, FFN up, down)
 *           + 4*B*T*T*C*L               attention: Q K^T and P V, each T*T*C multiply-adds per sequence and layer
 *           + 2*B*(C*C + C*K)           pooler and classifier (once per sequence)
 *   training step = 3 * forward         (backward = 2 * forward: products for the input and the weight gradients)
 * It counts the dense model's work, as PyTorch computes it, whatever bertc skips (bertc's last layer works on
 * [CLS] only), so model GFLOP/s of both tools compare like throughput. Embeddings, LayerNorm, softmax, GELU,
 * dropout and the optimiser are not counted. */
double bench_model_flop(const bert_config *c, int B, int T, int train);

#endif
