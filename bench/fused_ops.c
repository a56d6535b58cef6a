/* The fused CPU ops against the op sequences they replace, on one layer of a given shape
 * (default: MiniLM at batch 16 x 128 tokens), each timed as the best of REPS runs (the best is
 * what survives a machine shared with other work), in wall time and in the process's CPU time
 * (with one thread the CPU time leaves out the time the thread waited for a core, so it is the
 * steadier figure on a loaded machine; with more threads it includes their spinning).
 *
 * Built by scripts/bench-fused.sh, which links a second CPU backend compiled from an older
 * ops_cpu.c (default: the commit before the fusions) as bertc_backend_cpu_base, so both columns
 * run the same sequence of calls through their own backend:
 *   base: matmul with bias + dropout_residual_forward + layernorm_forward, ... (the old bert.c)
 *   new:  matmul without bias + residual_layernorm_forward, ...          (the new bert.c)
 * The matrix products are in both columns (the bias moved out of them), so the difference is
 * what the fusions save; each row says which ops it times.
 *
 * Usage: fused_ops [B T C NH F REPS]   (threads: OMP_NUM_THREADS) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <omp.h>

#include "backend/ops.h"

const bertc_backend *bertc_backend_cpu_base(void);

static float *buf(size_t n, uint64_t seed, float scale) {
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "fused_ops: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = scale * ((float)(seed >> 40) / 8388608.0f - 1.0f);
    }
    return p;
}

static double cpu_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    int B = 16, T = 128, C = 384, NH = 12, F = 1536, REPS = 20;
    if (argc == 7) {
        B = atoi(argv[1]), T = atoi(argv[2]), C = atoi(argv[3]), NH = atoi(argv[4]), F = atoi(argv[5]);
        REPS = atoi(argv[6]);
    } else if (argc != 1) {
        fprintf(stderr, "usage: fused_ops [B T C NH F REPS]\n");
        return 2;
    }
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0 || C % NH || F <= 0 || REPS <= 0) {
        fprintf(stderr, "fused_ops: bad sizes\n");
        return 2;
    }
    const bertc_backend *be[2] = {bertc_backend_cpu_base(), bertc_backend_cpu()};
    int N = B * T;
    size_t NC = (size_t)N * C, NF = (size_t)N * F, NA = (size_t)B * NH * T * T;
    float p = 0.1f, eps = 1e-12f;
    uint64_t seed = 7;
    float *x = buf(NC, 1, 1.0f), *res_in = buf(NC, 2, 1.0f), *ctx = buf(NC, 3, 1.0f), *proj = buf(NC, 4, 1.0f);
    float *w_cc = buf((size_t)C * C, 5, 0.05f), *w_fc = buf((size_t)F * C, 6, 0.05f), *bias_c = buf(C, 7, 0.1f);
    float *bias_f = buf(F, 8, 0.1f), *lnw = buf(C, 9, 1.0f), *lnb = buf(C, 10, 0.1f);
    float *res = buf(NC, 11, 1.0f), *out = buf(NC, 12, 1.0f), *mean = buf(N, 13, 0.0f), *rstd = buf(N, 14, 1.0f);
    float *fpre = buf(NF, 15, 1.0f), *fact = buf(NF, 16, 1.0f), *g_ff = buf(NF, 17, 1.0f), *g_x = buf(NC, 18, 1.0f);
    float *g_ff2 = buf(NF, 36, 0.0f); /* out of place, so repeated runs see the same inputs */
    float *g_res = buf(NC, 19, 1.0f), *g_proj = buf(NC, 20, 1.0f), *g_ctx = buf(NC, 21, 1.0f);
    float *dw_cc = buf((size_t)C * C, 22, 0.0f), *dw_fc = buf((size_t)F * C, 23, 0.0f), *db_c = buf(C, 24, 0.0f);
    float *db_f = buf(F, 25, 0.0f), *dlnw = buf(C, 26, 0.0f), *dlnb = buf(C, 27, 0.0f);
    float *q = buf(NC, 28, 1.0f), *k = buf(NC, 29, 1.0f), *v = buf(NC, 30, 1.0f), *att = buf(NA, 31, 0.0f);
    float *scratch = buf(2 * NA, 32, 0.0f), *dq = buf(NC, 33, 0.0f), *dk = buf(NC, 34, 0.0f), *dv = buf(NC, 35, 0.0f);
    int32_t *mask = malloc((size_t)N * sizeof(int32_t));
    for (int i = 0; i < N; i++) mask[i] = (i % T) < T - (i / T) % 8; /* a little padding */
    /* attention dropout's draw, kept from forward to backward where the backend does (since the
     * sixteenth session). An older commit's attention ops have no such last argument: calling
     * them with it is not portable C, but on x86-64 (System V) the extra register is ignored,
     * and this tool only ever compares builds on one such machine. */
    uint8_t *keep = malloc(NA), *hkeep = malloc(NC); /* hkeep: the hidden dropout's draw, kept likewise */
    if (!keep || !hkeep) return 1;
    be[1]->attention_forward(ctx, att, q, k, v, mask, scratch, B, T, T, C, NH, C, C, p, seed, 2, keep);
    /* LayerNorm statistics that backward can use */
    be[1]->residual_layernorm_forward(out, res, mean, rstd, x, bias_c, res_in, lnw, lnb, N, C, eps, p, seed, 1, hkeep);

    printf("fused ops, B %d T %d C %d NH %d F %d, %d threads, best of %d (ms)\n", B, T, C, NH, F,
           omp_get_max_threads(), REPS);
    printf("%-58s %8s %8s %6s | %8s %8s %6s\n", "what (base ops -> new ops)", "wall:base", "new", "saved", "cpu:base",
           "new", "saved");
    double total[2] = {0, 0}, total_cpu[2] = {0, 0};
    for (int g = 0; g < 7; g++) {
        const char *name = "";
        double best[2] = {1e30, 1e30}, best_cpu[2] = {1e30, 1e30};
        for (int r = 0; r < REPS; r++)
            for (int which = 0; which < 2; which++) {
                const bertc_backend *o = be[which];
                int fused = which == 1;
                double t0 = omp_get_wtime(), c0 = cpu_seconds();
                switch (g) {
                case 0:
                    name = "attn out: matmul+bias, dropout_residual, LN -> fused";
                    o->matmul_forward(proj, ctx, w_cc, fused ? NULL : bias_c, N, C, C);
                    if (fused) {
                        o->residual_layernorm_forward(out, res, mean, rstd, proj, bias_c, res_in, lnw, lnb, N, C,
                                                      eps, p, seed, 1, hkeep);
                    } else {
                        o->dropout_residual_forward(res, proj, res_in, NC, p, seed, 1);
                        o->layernorm_forward(out, mean, rstd, res, lnw, lnb, N, C, eps);
                    }
                    break;
                case 1:
                    name = "ffn in: matmul+bias, gelu -> matmul, bias_act";
                    o->matmul_forward(fpre, x, w_fc, fused ? NULL : bias_f, N, C, F);
                    if (fused) o->bias_act_forward(OPS_ACT_GELU, fact, fpre, bias_f, N, F);
                    else o->act_forward(OPS_ACT_GELU, fact, fpre, NF);
                    break;
                case 2:
                    name = "attention forward (unchanged: control)";
                    o->attention_forward(ctx, att, q, k, v, mask, scratch, B, T, T, C, NH, C, C, p, seed, 2, keep);
                    break;
                case 3:
                    name = "LN bwd, dropout bwd, matmul bwd+dbias -> fused";
                    if (fused) {
                        o->residual_layernorm_backward(g_res, g_proj, db_c, dlnw, dlnb, g_x, res, lnw, mean, rstd, N, C,
                                                       p, seed, 1, hkeep);
                        o->matmul_backward(g_ctx, dw_cc, NULL, g_proj, ctx, w_cc, N, C, C, 0);
                    } else {
                        o->layernorm_backward(g_res, dlnw, dlnb, g_x, res, lnw, mean, rstd, N, C);
                        o->dropout_backward(g_proj, g_res, NC, p, seed, 1, NULL);
                        o->matmul_backward(g_ctx, dw_cc, db_c, g_proj, ctx, w_cc, N, C, C, 0);
                    }
                    break;
                case 4:
                    name = "gelu bwd, matmul bwd+dbias -> act_bias bwd, matmul";
                    if (fused) {
                        o->act_bias_backward(OPS_ACT_GELU, g_ff2, db_f, g_ff, fpre, N, F);
                        o->matmul_backward(g_res, dw_fc, NULL, g_ff2, x, w_fc, N, C, F, 1);
                    } else {
                        o->act_backward(OPS_ACT_GELU, g_ff2, g_ff, fpre, NF);
                        o->matmul_backward(g_res, dw_fc, db_f, g_ff2, x, w_fc, N, C, F, 1);
                    }
                    break;
                case 5:
                    name = "attention backward (dropout in the softmax-bwd pass)";
                    o->attention_backward(dq, dk, dv, g_ctx, q, k, v, att, scratch, B, T, T, C, NH, C, C, p, seed, 2, keep);
                    break;
                case 6:
                    name = "elementwise only: dropout_res+LN fwd, LN+dropout bwd";
                    if (fused) {
                        o->residual_layernorm_forward(out, res, mean, rstd, proj, bias_c, res_in, lnw, lnb, N, C,
                                                      eps, p, seed, 1, hkeep);
                        o->residual_layernorm_backward(g_res, g_proj, db_c, dlnw, dlnb, g_x, res, lnw, mean, rstd, N, C,
                                                       p, seed, 1, hkeep);
                    } else {
                        o->dropout_residual_forward(res, proj, res_in, NC, p, seed, 1);
                        o->layernorm_forward(out, mean, rstd, res, lnw, lnb, N, C, eps);
                        o->layernorm_backward(g_res, dlnw, dlnb, g_x, res, lnw, mean, rstd, N, C);
                        o->dropout_backward(g_proj, g_res, NC, p, seed, 1, NULL);
                    }
                    break;
                }
                double t = omp_get_wtime() - t0, tc = cpu_seconds() - c0;
                if (t < best[which]) best[which] = t;
                if (tc < best_cpu[which]) best_cpu[which] = tc;
            }
        for (int i = 0; i < 2 && g < 6; i++) {
            total[i] += best[i];
            total_cpu[i] += best_cpu[i];
        }
        printf("%-58s %8.2f %8.2f %5.1f%% | %8.2f %8.2f %5.1f%%\n", name, best[0] * 1e3, best[1] * 1e3,
               100.0 * (1.0 - best[1] / best[0]), best_cpu[0] * 1e3, best_cpu[1] * 1e3,
               100.0 * (1.0 - best_cpu[1] / best_cpu[0]));
    }
    printf("%-58s %8.2f %8.2f %5.1f%% | %8.2f %8.2f %5.1f%%\n", "sum of rows 1-6", total[0] * 1e3, total[1] * 1e3,
           100.0 * (1.0 - total[1] / total[0]), total_cpu[0] * 1e3, total_cpu[1] * 1e3,
           100.0 * (1.0 - total_cpu[1] / total_cpu[0]));
    return 0;
}
