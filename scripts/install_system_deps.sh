#!/bin/sh
# System packages the test suite needs (speech fixtures are synthesised with espeak-ng and sox;
# the Kubernetes manifests are rendered with kubectl's kustomize, the alert rules checked by promtool;
# the console's browser tests drive Debian's chromium through Playwright).
# Installs them only when missing and only as root; otherwise says what to run and carries on.
set -eu

PACKAGES="espeak-ng sox libsox-fmt-all chromium"
missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done
# Any kustomize will do (a newer kubectl or kustomize already on the PATH is used as it is).
if ! command -v kustomize >/dev/null 2>&1 && ! command -v kubectl >/dev/null 2>&1; then
    missing="$missing kubernetes-client"
fi
if ! command -v promtool >/dev/null 2>&1; then
    missing="$missing prometheus"
fi

if [ -z "$missing" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_system_deps: no apt-get here; install the equivalents of:$missing" >&2
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install_system_deps: missing:$missing -- run: sudo apt-get install -y$missing" >&2
    exit 0
fi
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
