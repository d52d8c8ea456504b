#!/usr/bin/env sh
# Install Debian's Chromium that the console's browser tests drive headless through Playwright
# (Playwright's own browser download is not used), once per machine.
#
#   deploy/tools/install-chromium.sh
#
# Prints the path of the browser on stdout. When it is missing and we are root, runs
# `apt-get update && apt-get install -y chromium`. Otherwise says what to install and fails.
# WHALE_CHROMIUM names another browser binary.
set -eu

for candidate in "${WHALE_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
    if [ -n "$candidate" ] && [ -x "$candidate" ]; then
        echo "$candidate"
        exit 0
    fi
done
if [ -n "${WHALE_CHROMIUM:-}" ]; then
    echo "install-chromium: error: WHALE_CHROMIUM=$WHALE_CHROMIUM is not an executable" >&2
    exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium: error: chromium not found; install it (Debian/Ubuntu: sudo apt-get install -y chromium) or set WHALE_CHROMIUM" >&2
    exit 1
fi
echo "install-chromium: installing chromium with apt-get (first run only)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
/usr/bin/chromium --version 2>&1 | head -1 >&2 || true
echo /usr/bin/chromium
