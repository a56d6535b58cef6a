/* OUT/sweep.html: the trials as a table (best first) and a scatter plot of training against
 * validation accuracy with the objective's constraints drawn as lines; one self-contained page
 * (inline CSS and SVG, no JavaScript), in the style of the training report (src/report/html.c). */
#include "sweep/sweep.h"

#include <cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"
#include "util/fs.h"

typedef struct row {
    cJSON *j;          /* the trial's last line in trials.jsonl */
    int trial;
    const char *status;
    sweep_result res;
} row;

static void esc(FILE *f, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static double jnum(const cJSON *j, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, k);
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) ? v->valuedouble : NAN;
}

static void cell_num(FILE *f, double v) {
    if (isnan(v)) fputs("<td>-</td>", f);
    else fprintf(f, "<td>%.4f</td>", v);
}

/* Reads trials.jsonl keeping the last line of each trial. */
static int read_rows(const char *path, row **out, int *n_out, bertc_error *err) {
    char *text = NULL;
    size_t n = 0;
    int rc = fs_read_all(path, &text, &n, (size_t)64 << 20, err);
    if (rc) return rc;
    row *rows = NULL;
    int nr = 0;
    size_t lineno = 0;
    for (char *p = text, *nl; p && *p && !rc; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        lineno++;
        if (!*p) continue;
        cJSON *j = cJSON_Parse(p);
        double id = jnum(j, "trial");
        const char *status = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "status"));
        if (!cJSON_IsObject(j) || isnan(id) || id < 0 || id > 1e6 || !status) {
            cJSON_Delete(j);
            rc = bertc_errorf(err, BERTC_EFORMAT, "%s: line %zu: not a trial record", path, lineno);
            break;
        }
        int k = 0;
        while (k < nr && rows[k].trial != (int)id) k++;
        if (k == nr) {
            row *nrows = realloc(rows, (size_t)(nr + 1) * sizeof *nrows);
            if (!nrows) {
                cJSON_Delete(j);
                rc = bertc_errorf(err, BERTC_ENOMEM, "out of memory");
                break;
            }
            rows = nrows;
            rows[nr++].j = NULL;
        }
        cJSON_Delete(rows[k].j);
        rows[k].j = j;
        rows[k].trial = (int)id;
        rows[k].status = status;
        rows[k].res.ok = !strcmp(status, "done") || !strcmp(status, "paused") || !strcmp(status, "stopped");
        for (int m = 0; m < SWEEP_N_METRICS; m++) rows[k].res.m[m] = jnum(j, sweep_metric_name((sweep_metric)m));
    }
    free(text);
    if (rc) {
        for (int i = 0; i < nr; i++) cJSON_Delete(rows[i].j);
        free(rows);
        return rc;
    }
    *out = rows;
    *n_out = nr;
    return 0;
}

static const char *const CSS =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#1f2937;padding:0 16px}"
    "h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #e5e7eb;padding:4px 8px;text-align:right}th{background:#f9fafb}"
    "td.l,th.l{text-align:left}tr.win td{background:#ecfdf5;font-weight:600}tr.infeasible td{color:#9a3412}"
    "tr.failed td,tr.stopped td{color:#6b7280}.note{color:#6b7280;font-size:13px}svg text{font-size:11px;fill:#374151}";

/* Plot: x = train accuracy, y = validation accuracy. */
static void scatter(FILE *f, const row *rows, int n, const sweep_objective *obj, int winner) {
    const double W = 560, H = 420, L = 60, R = W - 20, T = 20, B = H - 50;
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (!rows[i].res.ok) continue;
        double x = rows[i].res.m[SWEEP_TRAIN_ACCURACY], y = rows[i].res.m[SWEEP_VAL_ACCURACY];
        if (isnan(x) || isnan(y)) continue;
        lo = fmin(lo, fmin(x, y));
        hi = fmax(hi, fmax(x, y));
    }
    for (int c = 0; c < obj->n; c++)
        if (obj->c[c].metric == SWEEP_TRAIN_ACCURACY || obj->c[c].metric == SWEEP_VAL_ACCURACY) {
            lo = fmin(lo, obj->c[c].bound);
            hi = fmax(hi, obj->c[c].bound);
        }
    if (!(lo <= hi)) {
        fputs("<p class=\"note\">No trial has both accuracies to plot.</p>\n", f);
        return;
    }
    double pad = fmax(0.02, (hi - lo) * 0.08);
    lo = fmax(0, lo - pad);
    hi = fmin(1, hi + pad);
    if (hi - lo < 0.05) hi = fmin(1, lo + 0.05), lo = hi - 0.05;
#define PX(v) (L + ((v) - lo) / (hi - lo) * (R - L))
#define PY(v) (B - ((v) - lo) / (hi - lo) * (B - T))
    fprintf(f, "<svg id=\"chart-trials\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", W, H, W, H);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#fff\" stroke=\"#d1d5db\"/>\n", L, T, R - L, B - T);
    double step = (hi - lo) > 0.3 ? 0.1 : (hi - lo) > 0.12 ? 0.05 : 0.02;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) {
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f3f4f6\"/>", PX(v), T, PX(v), B);
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#f3f4f6\"/>", L, PY(v), R, PY(v));
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.2f</text>", PX(v), B + 15, v);
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n", L - 5, PY(v) + 4, v);
    }
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">training accuracy (eval mode, best epoch)</text>\n", (L + R) / 2, H - 12);
    fprintf(f, "<text transform=\"translate(14 %.1f) rotate(-90)\" text-anchor=\"middle\">validation accuracy</text>\n", (T + B) / 2);
    /* y = x: no gap */
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#9ca3af\" stroke-dasharray=\"2 3\"/>\n", PX(lo), PY(lo), PX(hi), PY(hi));
    fprintf(f, "<clipPath id=\"plot\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/></clipPath><g clip-path=\"url(#plot)\">\n",
            L, T, R - L, B - T);
    for (int c = 0; c < obj->n; c++) {
        const sweep_constraint *k = &obj->c[c];
        char label[96];
        snprintf(label, sizeof label, "%s %s %g", sweep_metric_name(k->metric), sweep_op_name(k->op), k->bound);
        double x1, y1, x2, y2;
        if (k->metric == SWEEP_TRAIN_ACCURACY) x1 = x2 = k->bound, y1 = lo, y2 = hi;
        else if (k->metric == SWEEP_VAL_ACCURACY) y1 = y2 = k->bound, x1 = lo, x2 = hi;
        else if (k->metric == SWEEP_GAP) x1 = lo, y1 = lo - k->bound, x2 = hi, y2 = hi - k->bound; /* val = train - gap */
        else continue;
        fprintf(f, "<line class=\"constraint\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dc2626\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>",
                PX(x1), PY(y1), PX(x2), PY(y2));
        double tx = k->metric == SWEEP_TRAIN_ACCURACY ? PX(x1) + 4 : L + 6, ty = k->metric == SWEEP_TRAIN_ACCURACY ? T + 14 : PY(y1) - 4;
        if (k->metric == SWEEP_GAP) tx = PX(hi) - 140, ty = PY(hi - k->bound) + 14;
        const char *anchor = "start";
        if (k->metric == SWEEP_TRAIN_ACCURACY && tx > (L + R) / 2) tx -= 8, anchor = "end"; /* keep it inside the plot */
        fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" style=\"fill:#dc2626\">", tx, ty, anchor);
        esc(f, label);
        fputs("</text>\n", f);
    }
    fputs("</g>\n", f);
    for (int i = 0; i < n; i++) {
        const row *r = &rows[i];
        double x = r->res.m[SWEEP_TRAIN_ACCURACY], y = r->res.m[SWEEP_VAL_ACCURACY];
        if (!r->res.ok || isnan(x) || isnan(y)) continue;
        int done = !strcmp(r->status, "done"), ok = sweep_feasible(obj, &r->res);
        const char *color = !done ? "#9ca3af" : ok ? "#16a34a" : "#ea580c";
        fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%d\" fill=\"%s\" fill-opacity=\"0.8\"%s><title>trial-%03d (%s): train %.4f, val %.4f</title></circle>\n",
                PX(x), PY(y), i == winner ? 7 : 5, color, i == winner ? " stroke=\"#111827\" stroke-width=\"2\"" : "", r->trial,
                r->status, x, y);
    }
    fputs("</svg>\n<p class=\"note\">Green: meets the constraints; orange: does not; grey: stopped early by successive "
          "halving (figures at that epoch). Red dashed: the constraints; grey dotted: no gap (train = val). The winner is ringed.</p>\n", f);
#undef PX
#undef PY
}

int sweep_write_html(const char *out_dir, const sweep_objective *obj, bertc_error *err) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/trials.jsonl", out_dir);
    row *rows = NULL;
    int n = 0;
    int rc = read_rows(path, &rows, &n, err);
    if (rc) return rc;
    /* rank: finished trials by the objective, then the stopped ones, then failures */
    sweep_result *res = malloc((size_t)(n ? n : 1) * sizeof *res);
    int *order = malloc((size_t)(n ? n : 1) * sizeof *order);
    if (!res || !order) {
        free(res);
        free(order);
        for (int i = 0; i < n; i++) cJSON_Delete(rows[i].j);
        free(rows);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) res[i] = rows[i].res;
    sweep_rank(obj, res, n, order);
    /* stopped (halving) trials after the finished ones, still among themselves by the objective */
    int *final = malloc((size_t)(n ? n : 1) * sizeof *final), k = 0;
    for (int pass = 0; pass < 3 && final; pass++)
        for (int i = 0; i < n; i++) {
            const row *r = &rows[order[i]];
            int cls = !strcmp(r->status, "done") ? 0 : r->res.ok ? 1 : 2;
            if (cls == pass) final[k++] = order[i];
        }
    int winner = n > 0 && final && !strcmp(rows[final[0]].status, "done") ? final[0] : -1;

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f || !final) {
        if (f) fclose(f);
        free(buf);
        free(final);
        free(res);
        free(order);
        for (int i = 0; i < n; i++) cJSON_Delete(rows[i].j);
        free(rows);
        return bertc_errorf(err, BERTC_ENOMEM, "out of memory");
    }
    char ob[512];
    sweep_objective_format(obj, ob, sizeof ob);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>bertc sweep</title><style>%s</style></head><body>\n", CSS);
    fputs("<h1>bertc sweep</h1>\n<p>Objective: <code>", f);
    esc(f, ob);
    int feasible = 0;
    for (int i = 0; i < n; i++) feasible += !strcmp(rows[i].status, "done") && sweep_feasible(obj, &rows[i].res);
    fprintf(f, "</code>. %d trial%s, %d meeting the constraints.", n, n == 1 ? "" : "s", feasible);
    if (winner >= 0) fprintf(f, " Best: <b>trial-%03d</b> (recipe in <code>best.conf</code>).", rows[winner].trial);
    fputs("</p>\n<h2>Training vs validation accuracy</h2>\n", f);
    scatter(f, rows, n, obj, winner);
    fputs("<h2>Trials, best first</h2>\n<table id=\"trials\"><tr><th>rank</th><th class=\"l\">trial</th><th class=\"l\">status</th><th>epochs run</th>", f);
    /* parameter columns from the first row's params */
    const cJSON *p0 = n ? cJSON_GetObjectItemCaseSensitive(rows[0].j, "params") : NULL, *pv;
    cJSON_ArrayForEach(pv, p0) {
        fputs("<th class=\"l\">", f);
        esc(f, pv->string);
        fputs("</th>", f);
    }
    /* With --seeds the figures are means; each seed's val / train accuracy gets a column. */
    int per_seed = n && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(rows[0].j, "seeds"));
    fprintf(f, "<th>val acc%s</th><th>train acc%s</th><th>gap</th><th>val loss</th><th>train loss</th>%s<th class=\"l\">constraints</th></tr>\n",
            per_seed ? " (mean)" : "", per_seed ? " (mean)" : "", per_seed ? "<th class=\"l\">per seed: val / train acc</th>" : "");
    for (int i = 0; i < k; i++) {
        const row *r = &rows[final[i]];
        int done = !strcmp(r->status, "done"), ok = sweep_feasible(obj, &r->res);
        const char *cls = final[i] == winner ? "win" : !r->res.ok ? "failed" : !done ? "stopped" : ok ? "" : "infeasible";
        fprintf(f, "<tr class=\"%s\"><td>%d</td><td class=\"l\">trial-%03d</td><td class=\"l\">", cls, i + 1, r->trial);
        esc(f, r->status);
        fprintf(f, "</td><td>%.0f</td>", jnum(r->j, "epochs_run"));
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(r->j, "params");
        cJSON_ArrayForEach(pv, p0) {
            fputs("<td class=\"l\">", f);
            esc(f, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, pv->string)));
            fputs("</td>", f);
        }
        static const sweep_metric cols[] = {SWEEP_VAL_ACCURACY, SWEEP_TRAIN_ACCURACY, SWEEP_GAP, SWEEP_VAL_LOSS, SWEEP_TRAIN_LOSS};
        for (int m = 0; m < 5; m++) cell_num(f, r->res.ok ? r->res.m[cols[m]] : NAN);
        if (per_seed) {
            fputs("<td class=\"l\">", f);
            const cJSON *x;
            int first = 1;
            cJSON_ArrayForEach(x, cJSON_GetObjectItemCaseSensitive(r->j, "seeds")) {
                double v = jnum(x, "val_accuracy"), t = jnum(x, "train_accuracy");
                fprintf(f, "%s%.0f: ", first ? "" : "; ", jnum(x, "seed"));
                if (isnan(v) || isnan(t)) fputs("-", f);
                else fprintf(f, "%.4f / %.4f", v, t);
                first = 0;
            }
            fputs("</td>", f);
        }
        fputs("<td class=\"l\">", f);
        if (!r->res.ok) esc(f, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r->j, "error")));
        else if (obj->n == 0) fputs("-", f);
        else if (ok) fputs("met", f);
        else fprintf(f, "violated by %.4f", sweep_violation(obj, &r->res));
        fputs("</td></tr>\n", f);
    }
    fputs("</table>\n<p class=\"note\">Each trial's run (model, metrics, report.html) is in its folder trial-NNN/; "
          "every result, per rung under successive halving, is in trials.jsonl.</p>\n</body></html>\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/sweep.html", out_dir);
    rc = fs_write_atomic(path, buf, len, err);
    free(buf);
    free(final);
    free(res);
    free(order);
    for (int i = 0; i < n; i++) cJSON_Delete(rows[i].j);
    free(rows);
    return rc;
}
