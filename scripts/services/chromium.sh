#!/usr/bin/env bash
# scripts/services/chromium.sh - Debian's Chromium for the dashboard's browser
# tests (tests/integration/web/test_web_browser.py, Playwright with
# executable_path=/usr/bin/chromium: never a browser download).
#
# Usage:
#   chromium.sh setup    install it (apt, as root) unless it is there; idempotent
#   chromium.sh status   exit 0 if /usr/bin/chromium runs headless, else 3
#
# As root Chromium needs --no-sandbox; the tests also switch off its background
# networking (this machine's closed network refuses those connections).
set -euo pipefail
BIN=/usr/bin/chromium

works() {
    [ -x "$BIN" ] || return 1
    local profile rc=0
    profile=$(mktemp -d /tmp/xqute-chromium-check.XXXXXX)
    "$BIN" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --dump-dom about:blank >/dev/null 2>&1 || rc=$?
    rm -rf "$profile"
    return $rc
}

case "${1:-status}" in
    setup|start)
        if [ ! -x "$BIN" ]; then
            export DEBIAN_FRONTEND=noninteractive
            apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium \
                >/tmp/xqute-chromium-apt.log 2>&1 || {
                apt-get -o DPkg::Lock::Timeout=600 update >/dev/null 2>&1 || true
                apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium \
                    >/tmp/xqute-chromium-apt.log 2>&1 || { tail -20 /tmp/xqute-chromium-apt.log >&2; exit 1; }
            }
        fi
        works || { echo "$BIN does not start headless" >&2; exit 1; }
        echo "chromium: $("$BIN" --version 2>/dev/null)"
        ;;
    status)
        if works; then echo "chromium: $("$BIN" --version 2>/dev/null)"; else
            echo "chromium: not installed or not working ($BIN)" >&2; exit 3; fi
        ;;
    *) echo "usage: $0 setup|status" >&2; exit 2 ;;
esac
