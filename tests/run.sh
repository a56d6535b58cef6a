#!/bin/sh
# Runs each test program given as an argument from the repository root and prints one
# closing line, "N passed, N failed", counting test programs.
pass=0; fail=0; failed=""
for t in "$@"; do
    echo "== $t"
    if $t; then pass=$((pass + 1)); else fail=$((fail + 1)); failed="$failed $t"; fi
done
[ -n "$failed" ] && echo "failed:$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
