#!/usr/bin/env bash
# Builds the Kubernetes components (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kube-proxy, kubectl), CoreDNS and a static `pause` binary from the Go module proxy,
# into a cache outside the repository keyed by version:
#   ${CONURE_CACHE:-/var/cache/conure}/k8s/<K8S_VERSION>/bin
# The Go module and build caches live beside it, so a second run (or CI on the same machine)
# rebuilds nothing. A binary is skipped when it already carries the wanted version.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces the staging modules
# (k8s.io/api, k8s.io/client-go, ...) with ./staging/... paths. A wrapper module requires
# k8s.io/kubernetes and replaces each staging module with its published v0.<minor>.<patch>.
# Usage: scripts/k8s/build-binaries.sh   (prints the bin directory on its last line)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
K8S_VERSION="${K8S_VERSION:-v1.32.13}"
COREDNS_VERSION="${COREDNS_VERSION:-v1.11.4}"
CACHE="${CONURE_CACHE:-/var/cache/conure}"
root="$CACHE/k8s/$K8S_VERSION"
bin="$root/bin"
mkdir -p "$bin" "$root/wrapper" "$root/gomod" "$root/gocache"
export GOMODCACHE="$root/gomod" GOCACHE="$root/gocache" GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
log() { echo "[k8s-build $(date +%H:%M:%S)] $*" >&2; }
command -v go >/dev/null || { echo "go is required" >&2; exit 1; }

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
staging="v0.${K8S_VERSION#v1.}"

components=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
need=0
for c in "${components[@]}"; do
  [ -x "$bin/$c" ] && [ -f "$bin/.$c.version" ] && [ "$(cat "$bin/.$c.version")" = "$K8S_VERSION" ] || need=1
done

if [ $need = 1 ]; then
  cd "$root/wrapper"
  if [ ! -f go.mod ] || ! grep -q "k8s.io/kubernetes $K8S_VERSION" go.mod; then
    log "resolving k8s.io/kubernetes@$K8S_VERSION from the module proxy"
    gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",\?$/\1/p')"
    [ -f "$gomod" ] || { echo "could not download k8s.io/kubernetes@$K8S_VERSION" >&2; exit 1; }
    {
      echo "module conure.local/k8s-build"
      echo
      echo "go 1.23.0"
      echo
      echo "require k8s.io/kubernetes $K8S_VERSION"
      echo
      echo "replace ("
      # Every `k8s.io/x => ./staging/src/k8s.io/x` in kubernetes' go.mod becomes the published version.
      grep -oE 'k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$gomod" | awk '{print $1}' | sort -u | while read -r m; do
        case "$m" in
          k8s.io/sample-*) continue ;;                              # not published for this version
          k8s.io/endpointslice) v="v0.${minor}.12" ;;               # the proxy refuses v0.32.13
          *) v="$staging" ;;
        esac
        [ "$m" = k8s.io/endpointslice ] && [ "$minor" != 32 ] && v="$staging"
        echo "	$m => $m $v"
      done
      echo ")"
    } > go.mod
    rm -f go.sum
    log "wrapper go.mod: $(grep -c '=>' go.mod) staging replacements"
  fi
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for c in "${components[@]}"; do
    if [ -x "$bin/$c" ] && [ "$(cat "$bin/.$c.version" 2>/dev/null)" = "$K8S_VERSION" ]; then log "$c $K8S_VERSION cached"; continue; fi
    log "building $c $K8S_VERSION (cold: minutes on 2 cores)"
    t0=$(date +%s)
    # Progress: a dot every 15 s while the compiler works.
    ( while sleep 15; do echo -n . >&2; done ) & ticker=$!
    if ! go build -trimpath -ldflags "$ld" -o "$bin/$c.tmp" "k8s.io/kubernetes/cmd/$c"; then kill $ticker; exit 1; fi
    kill $ticker 2>/dev/null || true; echo >&2
    mv "$bin/$c.tmp" "$bin/$c"; echo "$K8S_VERSION" > "$bin/.$c.version"
    log "built $c in $(( $(date +%s) - t0 ))s"
  done
fi

# CoreDNS: cluster DNS. Built from its own module (no replace directives) with go install.
if [ "$(cat "$bin/.coredns.version" 2>/dev/null)" != "$COREDNS_VERSION" ]; then
  log "building coredns $COREDNS_VERSION"
  t0=$(date +%s)
  ( while sleep 15; do echo -n . >&2; done ) & ticker=$!
  if ! GOBIN="$root/gobin" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"; then kill $ticker; exit 1; fi
  kill $ticker 2>/dev/null || true; echo >&2
  mv "$root/gobin/coredns" "$bin/coredns"; echo "$COREDNS_VERSION" > "$bin/.coredns.version"
  log "built coredns in $(( $(date +%s) - t0 ))s"
else
  log "coredns $COREDNS_VERSION cached"
fi

# pause: the sandbox's init process. Sleeps until SIGTERM/SIGINT and reaps children.
if [ ! -x "$bin/pause" ] || [ "$here/pause/main.go" -nt "$bin/pause" ]; then
  log "building pause"
  (cd "$here/pause" && GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$bin/pause" .)
fi
log "binaries ready in $bin"
echo "$bin"
