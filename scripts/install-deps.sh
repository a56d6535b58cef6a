#!/bin/sh
# Installs the Debian packages bertc builds and tests with (needs root or sudo).
set -e
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
# chromium is for tests only: tests/test_report_chromium.sh renders the HTML report with it (skipped without it).
# valgrind is for tests only: make test-valgrind (tests/valgrind_e2e.sh).
PKGS="build-essential pkg-config libutf8proc-dev libarchive-dev libcjson-dev libopenblas-dev libcmocka-dev chromium valgrind"
missing=$(for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || echo "$p"; done)
if [ -n "$missing" ]; then
    $SUDO apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
