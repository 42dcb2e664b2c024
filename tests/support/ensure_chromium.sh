#!/usr/bin/env bash
# `make test` runs the browser tests, so it needs Debian's Chromium (Playwright never downloads a
# browser here). Present: nothing to do. Missing: install it the way .ci/run does (apt-get, with
# sudo when not root), or stop with one clear line. Never let the suite pass by skipping them.
# RECAGENTS_CHROMIUM names another binary (the browser tests read the same variable).
set -uo pipefail
CHROMIUM="${RECAGENTS_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0

stop() {
    echo "make test: Chromium is missing at $CHROMIUM and $1; install it (sudo apt-get install -y chromium) or set RECAGENTS_CHROMIUM to a Chromium binary, then run make test again." >&2
    exit 1
}

command -v apt-get >/dev/null 2>&1 || stop "this machine has no apt-get to install it"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        stop "installing it needs root (no password-less sudo here)"
    fi
fi
echo "make test: Chromium is missing at $CHROMIUM; installing it with apt-get (the browser tests need it)" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || stop "apt-get update failed"
$SUDO apt-get install -y -qq chromium >&2 || stop "apt-get install -y chromium failed"
[ -x "$CHROMIUM" ] || stop "apt-get installed chromium elsewhere"
exit 0
