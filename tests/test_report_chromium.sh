#!/bin/sh
# The training report as a browser sees it: a tiny real run (bertc train on the random fixture model,
# one label needing HTML escaping) writes report.html; `bertc report` rebuilds it and fails cleanly on
# a folder that is not a run. Then, where chromium is installed, headless Chromium parses the page
# (--dump-dom) and the rendered DOM must hold the five charts with their lines, points and cells, and a
# screenshot must be a real picture, not a blank page. Without chromium that part prints
# "skipped: chromium not installed" and the script still passes.
# Run from the repository root: sh tests/test_report_chromium.sh [./bertc]
BERTC=${1:-./bertc}
T=$(mktemp -d /tmp/bertc-report-XXXXXX)
trap '[ -n "$KEEP" ] && cp "$T/report.png" "$KEEP"; rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
finish() {
    echo "test_report_chromium: $pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}
# has FILE TEXT N: FILE holds TEXT at least N times (fixed string).
has() { [ "$(grep -o -F -- "$2" "$1" | wc -l)" -ge "$3" ]; }

# A tiny run: the random fixture model with a 100-word vocabulary, 3 epochs.
mkdir -p "$T/model"
cp tests/fixtures/bert/tiny/config.json tests/fixtures/bert/tiny/model.safetensors "$T/model/"
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\ngood\nbad\n'; i=7; while [ $i -lt 100 ]; do echo "w$i"; i=$((i + 1)); done; } >"$T/model/vocab.txt"
i=0
while [ $i -lt 48 ]; do
    if [ $((i % 2)) -eq 0 ]; then echo '{"text":"w9 w10 good w11","label":"yes"}'; else echo '{"text":"w12 bad w13","label":"a<b&\"c\""}'; fi
    i=$((i + 1))
done >"$T/train.jsonl"
head -8 "$T/train.jsonl" >"$T/val.jsonl"
if "$BERTC" train --model "$T/model" --train "$T/train.jsonl" --val "$T/val.jsonl" --out "$T/run" --epochs 3 \
    --batch-size 8 --lr 1e-3 --max-length 16 --threads 1 --quiet >"$T/out" 2>"$T/err"; then ok; else bad "train failed: $(cat "$T/err")"; fi
grep -qx "report: $T/run/report.html" "$T/out" && ok || bad "train did not print the report line: $(cat "$T/out")"
[ -s "$T/run/report.html" ] && ok || bad "train did not write report.html"

# bertc report: rebuilds the page; --help; errors are one line and a non-zero exit.
rm -f "$T/run/report.html"
"$BERTC" report "$T/run" >"$T/out" 2>"$T/err" && [ -s "$T/run/report.html" ] && ok || bad "bertc report failed: $(cat "$T/err")"
"$BERTC" report --help | grep -q '^usage: bertc report DIR' && ok || bad "bertc report --help"
"$BERTC" report >/dev/null 2>"$T/err"; [ $? -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok || bad "bertc report without DIR"
"$BERTC" report --bogus x >/dev/null 2>"$T/err"; [ $? -eq 2 ] && ok || bad "bertc report unknown option"
"$BERTC" report "$T/model" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q '^bertc report: .*metrics.jsonl' "$T/err" && ok || bad "bertc report on a non-run: $(cat "$T/err")"
cp -r "$T/run" "$T/broken" && printf '{"type":"step",\n' >>"$T/broken/metrics.jsonl"
"$BERTC" report "$T/broken" >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q 'metrics.jsonl: line [0-9]*: not valid JSON' "$T/err" && ok || bad "bertc report on a bad line: $(cat "$T/err")"

# The page as Chromium parses and draws it.
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
    echo "skipped: chromium not installed"
    finish
fi
chrome() { timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$T/profile" "$@" 2>>"$T/chromium.log"; }
chrome --dump-dom "file://$T/run/report.html" >"$T/dom.html"
for id in chart-step-loss chart-epoch-loss chart-epoch-accuracy chart-lr chart-confusion; do
    has "$T/dom.html" "<svg id=\"$id\"" 1 && ok || bad "rendered DOM lacks the $id chart"
done
[ "$(grep -o '<svg' "$T/dom.html" | wc -l)" -eq 5 ] && [ "$(grep -o '</svg>' "$T/dom.html" | wc -l)" -eq 5 ] && ok || bad "want 5 closed <svg> in the DOM"
# Lines: step loss, two per-epoch charts with train and val, the learning rate; points on the
# per-epoch curves; a 2x2 grid of cells; the label still one text, not markup.
has "$T/dom.html" "<polyline" 6 && ok || bad "too few polylines in the DOM"
has "$T/dom.html" '<circle class="point"' 12 && ok || bad "too few epoch points in the DOM"
has "$T/dom.html" '<rect class="cell"' 4 && ok || bad "confusion cells missing from the DOM"
has "$T/dom.html" '<line class="best-marker"' 2 && ok || bad "best-epoch markers missing from the DOM"
has "$T/dom.html" 'a&lt;b&amp;"c"' 2 && ok || bad "escaped label missing from the DOM"
grep -q '<b&' "$T/dom.html" && bad "label parsed as markup" || ok
chrome --screenshot="$T/report.png" --window-size=1200,2400 "file://$T/run/report.html" >/dev/null
size=$(wc -c <"$T/report.png" 2>/dev/null || echo 0)
# A blank 1200x2400 page compresses to a few kB; charts, text and the shaded grid take far more.
[ "$size" -gt 40000 ] && ok || bad "screenshot is $size bytes (blank page?): $(tail -n 3 "$T/chromium.log")"
finish
