#!/bin/sh
# Prometheus and Alertmanager for the alert tests (tests/integration/alerts): Debian's packages.
# Installs `prometheus` and `prometheus-alertmanager` with apt when a binary is missing and we are root;
# prints the two binaries' paths (one a line) on success. The packages' post-install may try to start
# their services; without systemd that fails harmlessly: the tests run the binaries themselves.
set -eu

PROMETHEUS="${WHALE_PROMETHEUS:-/usr/bin/prometheus}"
ALERTMANAGER="${WHALE_ALERTMANAGER:-/usr/bin/prometheus-alertmanager}"

if [ ! -x "$PROMETHEUS" ] || [ ! -x "$ALERTMANAGER" ]; then
    if [ "$(id -u)" != "0" ]; then
        echo "prometheus/prometheus-alertmanager missing and not root: run as root" \
             "or apt-get install -y prometheus prometheus-alertmanager" >&2
        exit 3
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "prometheus/prometheus-alertmanager missing and no apt-get on this system" >&2
        exit 3
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y --no-install-recommends prometheus prometheus-alertmanager >&2 || true
    for binary in "$PROMETHEUS" "$ALERTMANAGER"; do
        if [ ! -x "$binary" ]; then
            echo "apt-get install did not provide $binary" >&2
            exit 1
        fi
    done
fi
echo "$PROMETHEUS"
echo "$ALERTMANAGER"
