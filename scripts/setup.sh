#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: node modules, Debian packages (etcd client and
# server as test peers), helm through `go install`, schemathesis from PyPI. Safe to run
# repeatedly; each step is skipped when already satisfied. Usage: scripts/setup.sh [node|all]
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

log() { echo "[setup] $*" >&2; }

# 1. node_modules, reinstalled when package-lock.json changed since the last install.
stamp=node_modules/.conure-lock-stamp
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
  log "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi
[ "$what" = node ] && exit 0

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_updated=0
apt_install() {
  if [ $apt_updated = 0 ]; then log "apt-get update"; $SUDO apt-get update -qq >/dev/null; apt_updated=1; fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 2. etcd's real tools: etcdctl (compatibility e2e) and etcd (reference peer for e2e and bench).
command -v etcdctl >/dev/null || apt_install etcd-client
# Debian's sqlite3 shell: the Time Service's backup command (VACUUM INTO) and its tests.
command -v sqlite3 >/dev/null || apt_install sqlite3
if ! command -v etcd >/dev/null && [ ! -x /usr/bin/etcd ]; then
  apt_install etcd-server
  # The Debian package starts a system etcd on :2379; we only want the binary. Only the daemon
  # the package just started is stopped: etcds that tests or a local Kubernetes run stay up.
  if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then $SUDO systemctl stop etcd || true; fi
  pkill -x etcd 2>/dev/null || true
fi

# 3. helm, pinned, built with the Go toolchain and cached in ~/go/bin.
HELM_VERSION=v3.16.4
GOBIN="${GOBIN:-$(go env GOPATH 2>/dev/null || echo "$HOME/go")/bin}"
# A go-installed helm reports only "v3.16"; the exact module version is in its build info.
if ! go version -m "$GOBIN/helm" 2>/dev/null | grep -qE "^\s+mod\s+helm.sh/helm/v3\s+${HELM_VERSION}\s"; then
  log "go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION} (a few minutes on 2 cores)"
  GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
fi
# 4. schemathesis, pinned, in a venv outside the repository: test/e2e/openapi-fuzz fuzzes every
# /openapi.json with it. Reinstalled only when the venv lacks this exact version.
SCHEMATHESIS_VERSION=4.32.5
ST_VENV="${CONURE_CACHE:-/var/cache/conure}/venv-schemathesis"
if [ "$("$ST_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "$SCHEMATHESIS_VERSION" ]; then
  python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
  log "pip install schemathesis==${SCHEMATHESIS_VERSION} into $ST_VENV"
  mkdir -p "$(dirname "$ST_VENV")"
  python3 -m venv "$ST_VENV"
  "$ST_VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}"
fi
log "ready: $(etcdctl version 2>/dev/null | head -1), helm ${HELM_VERSION} at $GOBIN/helm, schemathesis ${SCHEMATHESIS_VERSION} at $ST_VENV"
