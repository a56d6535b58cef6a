/* The training report: one self-contained HTML page (inline CSS and SVG, no JavaScript, nothing
 * fetched) drawn from a run folder's metrics.jsonl and summary.json. */
#ifndef BERTC_REPORT_HTML_H
#define BERTC_REPORT_HTML_H

#include "bertc.h"

/* Reads run_dir/metrics.jsonl and run_dir/summary.json and writes run_dir/report.html atomically.
 * The page holds: training loss per step (epoch boundaries marked), per-epoch train/val loss,
 * per-epoch train (running) and val accuracy with the best epoch marked, the learning-rate schedule,
 * the validation confusion matrix with per-class precision/recall/F1, the final figures and the
 * hyperparameters. Each chart is an <svg id="chart-..."> (chart-step-loss, chart-epoch-loss,
 * chart-epoch-accuracy, chart-lr, chart-confusion). A run without a validation set gets a page
 * without the validation parts, saying so. Malformed input gives BERTC_EFORMAT naming the file and
 * line; report.html is then left as it was. */
int report_write_html(const char *run_dir, bertc_error *err);

#endif
