#!/usr/bin/env bash
# Debian packages the local Kubernetes needs (test/k8s), installed only when missing:
# containerd + runc (runtime), CNI plugins (bridge, host-local, loopback), iptables and
# conntrack (kube-proxy), busybox-static (the test image's /bin/sh), openssl (certificates),
# curl, etcd-server (the default store). Idempotent.
set -euo pipefail
log() { echo "[k8s-setup] $*" >&2; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
missing=()
need() { local test="$1" pkg="$2"; eval "$test" >/dev/null 2>&1 || missing+=("$pkg"); }
need 'command -v containerd' containerd
need 'command -v containerd-shim-runc-v2' containerd
need 'command -v runc' runc
need 'test -x /usr/lib/cni/bridge -a -x /usr/lib/cni/host-local -a -x /usr/lib/cni/loopback' containernetworking-plugins
need 'command -v iptables' iptables
need 'command -v conntrack' conntrack
need 'test -x /bin/busybox' busybox-static
need 'command -v openssl' openssl
need 'command -v curl' curl
need 'command -v file' file
need 'command -v ip' iproute2
need 'test -x /usr/bin/etcd' etcd-server
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  log "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's packages may start system services; the harness runs its own.
  if command -v systemctl >/dev/null; then $SUDO systemctl stop containerd etcd 2>/dev/null || true; fi
fi
