#!/bin/sh
# Installs the Debian packages bertc builds and tests with (needs root or sudo).
set -e
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
# chromium is for tests only: tests/test_report_chromium.sh renders the HTML report with it (skipped without it).
# libdnnl-dev (oneDNN) runs the bf16 matrix products; libblis-dev only builds `make gemm-bench`.
# valgrind is for tests only: make test-valgrind (tests/valgrind_e2e.sh).
PKGS="build-essential pkg-config libutf8proc-dev libarchive-dev libcjson-dev libopenblas-dev libcmocka-dev chromium valgrind"
PKGS="$PKGS libdnnl-dev libblis-dev"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
