#!/usr/bin/env bash
# Builds (once) and caches the binaries of the loopback test control plane:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   etcd                                                       (go.etcd.io/etcd/server/v3, or Debian's etcd-server)
#   kwok                                                       (sigs.k8s.io/kwok controller, patched: kwok-*.patch)
#   helm                                                       (helm.sh/helm/v3)
#
# Everything lands in $HOME/.cache/linstor-migrator/cluster/<key>/bin, where <key> contains every
# version and the Go version, so bumping a version builds into a fresh directory.  A binary that
# already exists there is not rebuilt, so a second run is a cheap no-op.
#
# KWOK's default stages and CRD manifests are copied to <key>/share/kwok/{stages,crds}.
#
# Usage: tests/cluster/build.sh            (progress on stderr, the bin dir on stdout)
#        BIN=$(tests/cluster/build.sh)
#
# Overridable through the environment: K8S_VERSION, KWOK_VERSION, HELM_VERSION, ETCD_SOURCE
# (go|debian), ETCD_VERSION (used when ETCD_SOURCE=go), KWOK_PATCH (1|0), CLUSTER_CACHE (the cache
# root).  Concurrent runs for the same key wait for each other (flock), so parallel test processes
# can all call it.
#
# Only the Go module proxy is used for downloads (plus apt for Debian's etcd-server).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.19.5}
# etcd: "go" (built from go.etcd.io/etcd/server/v3 at ETCD_VERSION) or "debian" (bookworm's
# etcd-server 3.4.23, which lacks RequestWatchProgress: see README.md, "etcd", for why that hurts).
ETCD_SOURCE=${ETCD_SOURCE:-go}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CLUSTER_CACHE=${CLUSTER_CACHE:-$HOME/.cache/linstor-migrator/cluster}
# KWOK_PATCH=1 (default) applies kwok-v0.8.0.patch (exit codes and stdin EOF for exec; see README).
KWOK_PATCH=${KWOK_PATCH:-1}
# Bump when this script changes how something is built, so caches made by older versions are not reused.
BUILD_REV=2

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

GO_VERSION=$(go env GOVERSION)
etcd_key=$ETCD_SOURCE
if [[ $ETCD_SOURCE == go ]]; then etcd_key=etcd-$ETCD_VERSION; fi
kwok_key=kwok-$KWOK_VERSION
if [[ $KWOK_PATCH == 1 ]]; then kwok_key=$kwok_key-patched; fi
KEY="r${BUILD_REV}_k8s-${K8S_VERSION}_${etcd_key}_${kwok_key}_helm-${HELM_VERSION}_${GO_VERSION}"
BIN="$CLUSTER_CACHE/$KEY/bin"
mkdir -p "$BIN"
if [[ $KWOK_PATCH == 1 && ! -f "$HERE/kwok-$KWOK_VERSION.patch" ]]; then
  log "no $HERE/kwok-$KWOK_VERSION.patch: write one or set KWOK_PATCH=0"
  exit 1
fi

# One build per key at a time; a second caller waits and then finds everything cached.
exec 9>"$CLUSTER_CACHE/$KEY/.lock"
flock 9

# Go settings shared by every build: resolve missing requirements from the proxy, strip paths and
# symbols (smaller binaries, faster links), no VCS stamping (the wrapper modules are not repos).
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0
LDFLAGS='-s -w'

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lm-cluster-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# missing NAME... -> succeeds if at least one of the named binaries is not yet in $BIN.
missing() {
  local name
  for name in "$@"; do
    [[ -f "$BIN/$name" && -x "$BIN/$name" ]] || return 0
  done
  return 1
}

# gomod_of MODULE@VERSION -> path of that module's go.mod in the module cache (downloads it).
gomod_of() {
  go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])'
}

# build_wrapped DIR LDFLAGS PKG... : go build the packages of the wrapper module in DIR into $BIN.
# Binaries are built into a scratch dir first and then moved, so an interrupted build never leaves
# a half-written binary behind that a later run would take as cached.
build_wrapped() {
  local dir=$1 ldflags=$2
  shift 2
  local out="$WORK/out"
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -ldflags="$ldflags" -o "$out/" "$@")
  mv "$out"/* "$BIN/"
}

# --- Kubernetes control plane ------------------------------------------------------------------
# `go install k8s.io/kubernetes/cmd/...@vX` is refused because k/k's go.mod replaces every
# k8s.io/<staging> module with ./staging/src/k8s.io/<staging>.  A wrapper module requires
# k8s.io/kubernetes vX and replaces each staging module with its published v0.<minor>.<patch>.
build_kubernetes() {
  local k8s_mod staging_version dir
  log "kubernetes $K8S_VERSION: resolving go.mod"
  k8s_mod=$(gomod_of "k8s.io/kubernetes@$K8S_VERSION")
  staging_version="v0.${K8S_VERSION#v1.}"
  dir="$WORK/k8s"
  mkdir -p "$dir"
  {
    echo "module lm-cluster-build/k8s"
    echo
    echo "go 1.24.0"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    # Lines like "	k8s.io/api => ./staging/src/k8s.io/api" in k/k's replace block.
    awk -v v="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$k8s_mod"
    echo ")"
  } >"$dir/go.mod"
  log "kubernetes: $(grep -c ' => ' "$dir/go.mod") staging modules pinned to $staging_version"
  # Without these -X flags the binaries report version v0.0.0-master+$Format:%H$ (k/k's build
  # scripts normally inject them).
  local minor=${K8S_VERSION#v1.}
  minor=${minor%%.*}
  local ldflags="$LDFLAGS" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=0000000000000000000000000000000000000000"
  done
  log "kubernetes: go build kube-apiserver kube-controller-manager kube-scheduler (slow: ~7 min on 2 cores)"
  build_wrapped "$dir" "$ldflags" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler
}

# --- etcd ----------------------------------------------------------------------------------------
# ETCD_SOURCE=debian: link Debian's /usr/bin/etcd (installing etcd-server if needed, root only).
# ETCD_SOURCE=go: etcd's server module replaces its sibling modules (api, client, pkg, ...) with
# ../ paths, so it too is built through a wrapper module that pins them to the same version.
build_etcd() {
  if [[ $ETCD_SOURCE == debian ]]; then
    if [[ ! -x /usr/bin/etcd ]]; then
      log "etcd: installing Debian etcd-server"
      apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >&2
    fi
    ln -sf /usr/bin/etcd "$BIN/etcd"
    return
  fi
  local etcd_mod dir
  log "etcd $ETCD_VERSION: resolving go.mod"
  etcd_mod=$(gomod_of "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
  dir="$WORK/etcd"
  mkdir -p "$dir"
  {
    echo "module lm-cluster-build/etcd"
    echo
    echo "go 1.24.0"
    echo
    echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
    echo
    echo "replace ("
    # Lines like "	go.etcd.io/etcd/api/v3 => ../api" (relative paths only).
    awk -v v="$ETCD_VERSION" '$2 == "=>" && $3 ~ /^\.\.?\// { printf "\t%s => %s %s\n", $1, $1, v }' "$etcd_mod"
    echo ")"
  } >"$dir/go.mod"
  log "etcd: go build go.etcd.io/etcd/server/v3"
  # The main package is the module root; go build would name the binary "server", hence -o .../etcd.
  mkdir -p "$WORK/etcd-out"
  (cd "$dir" && go build -trimpath -ldflags="$LDFLAGS" -o "$WORK/etcd-out/etcd" go.etcd.io/etcd/server/v3)
  mv "$WORK/etcd-out/etcd" "$BIN/etcd"
}

# --- plain `go install` modules (no replace directives) ---------------------------------------
# go_install NAME PKG@VERSION
go_install() {
  local name=$1 pkg=$2
  log "$name: go install $pkg"
  GOBIN="$WORK/gobin" go install -trimpath -ldflags="$LDFLAGS" "$pkg"
  mv "$WORK/gobin/$name" "$BIN/$name"
}

# --- KWOK data files ---------------------------------------------------------------------------
# The kwok controller binary has no built-in stages (kwokctl normally writes them into its config),
# and with --enable-crds its Exec/ClusterExec/... CRDs must be installed by whoever starts it.  Copy
# the default stages (the ones kwokctl uses) and the CRDs from the module source next to the bins.
copy_kwok_data() {
  local src share
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  share="$CLUSTER_CACHE/$KEY/share/kwok"
  rm -rf "$share.tmp"
  mkdir -p "$share.tmp/stages" "$share.tmp/crds"
  # Same set as kwokctl's defaults: node-initialize, node-heartbeat-with-lease, pod/fast.
  cp "$src/kustomize/stage/node/fast/node-initialize.yaml" \
    "$src/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
    "$src/kustomize/stage/pod/fast/pod-ready.yaml" \
    "$src/kustomize/stage/pod/fast/pod-complete.yaml" \
    "$src/kustomize/stage/pod/fast/pod-delete.yaml" \
    "$share.tmp/stages/"
  cp "$src"/kustomize/crd/bases/*.yaml "$share.tmp/crds/"
  chmod -R u+w "$share.tmp"
  rm -rf "$share"
  mv "$share.tmp" "$share"
}

# --- kwok (patched) -------------------------------------------------------------------------------
# kwok v0.8.0 has two exec bugs that matter for these tests (README.md, "KWOK exec"); the patch fixes
# them.  The module source is copied out of the module cache, patched, and built through a wrapper
# module that replaces sigs.k8s.io/kwok with the local copy (dependencies still come from the proxy).
build_kwok_patched() {
  local src dir
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
  dir="$WORK/kwok"
  mkdir -p "$dir"
  cp -r "$src" "$dir/kwok-src"
  chmod -R u+w "$dir/kwok-src"
  log "kwok: applying kwok-$KWOK_VERSION.patch"
  patch -d "$dir/kwok-src" -p1 --quiet <"$HERE/kwok-$KWOK_VERSION.patch"
  {
    echo "module lm-cluster-build/kwok"
    echo
    echo "go $(awk '$1 == "go" { print $2; exit }' "$src/go.mod")"
    echo
    echo "require sigs.k8s.io/kwok $KWOK_VERSION"
    echo
    echo "replace sigs.k8s.io/kwok => ./kwok-src"
  } >"$dir/go.mod"
  log "kwok: go build sigs.k8s.io/kwok/cmd/kwok (patched)"
  build_wrapped "$dir" "$LDFLAGS" sigs.k8s.io/kwok/cmd/kwok
}

start=$SECONDS
log "cache dir $BIN"
if missing kube-apiserver kube-controller-manager kube-scheduler; then build_kubernetes; fi
if missing etcd; then build_etcd; fi
if missing kwok; then
  if [[ $KWOK_PATCH == 1 ]]; then
    build_kwok_patched
  else
    go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  fi
fi
if [[ ! -d "$CLUSTER_CACHE/$KEY/share/kwok" ]]; then
  log "kwok: copying default stages and CRDs"
  copy_kwok_data
fi
if missing helm; then go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; fi
log "done in $((SECONDS - start))s"
echo "$BIN"
