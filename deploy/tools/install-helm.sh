#!/usr/bin/env sh
# Install the helm CLI that the chart checks use, from the Go module proxy, once per machine.
#
#   deploy/tools/install-helm.sh [DEST_DIR]
#
# Builds helm.sh/helm/v3/cmd/helm@$HELM_VERSION with `go install` into
# DEST_DIR (default: ${WHALE_CACHE_DIR:-$HOME/.cache/whale}/helm/$HELM_VERSION) and prints the
# path of the binary on stdout. A binary already there is reused, so only the first run compiles
# (a few minutes on 2 cores). Needs Go >= 1.24 on PATH (or GO=/path/to/go).
set -eu

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
GO="${GO:-go}"
DEST="${1:-${WHALE_CACHE_DIR:-$HOME/.cache/whale}/helm/$HELM_VERSION}"

if [ -x "$DEST/helm" ]; then
    echo "$DEST/helm"
    exit 0
fi
if ! command -v "$GO" >/dev/null 2>&1 && [ "$GO" = go ] && [ -x /usr/local/go/bin/go ]; then
    GO=/usr/local/go/bin/go
fi
if ! command -v "$GO" >/dev/null 2>&1; then
    echo "install-helm: error: '$GO' not found; install Go (https://go.dev/dl/) or put helm $HELM_VERSION at $DEST/helm" >&2
    exit 1
fi
mkdir -p "$DEST"
echo "install-helm: building helm $HELM_VERSION with $("$GO" version) into $DEST (first run only)" >&2
GOBIN="$DEST" GOFLAGS="${GOFLAGS:-} -trimpath" "$GO" install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
"$DEST/helm" version --short >&2
echo "$DEST/helm"
