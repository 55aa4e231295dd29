#!/usr/bin/env bash
# Builds (once) and caches the binaries of the loopback test control plane:
#   kube-apiserver, kube-controller-manager, kube-scheduler  (k8s.io/kubernetes)
#   etcd                                                       (Debian etcd-server, or built from go.etcd.io/etcd)
#   kwok                                                       (sigs.k8s.io/kwok, the KWOK controller)
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
# (debian|go), ETCD_VERSION (used when ETCD_SOURCE=go), CLUSTER_CACHE (the cache root).
#
# Only the Go module proxy is used for downloads (plus apt for Debian's etcd-server).
set -euo pipefail

K8S_VERSION=${K8S_VERSION:-v1.34.4}
KWOK_VERSION=${KWOK_VERSION:-v0.8.0}
HELM_VERSION=${HELM_VERSION:-v3.19.5}
# etcd: "debian" (bookworm's etcd-server 3.4.23) or "go" (built from go.etcd.io/etcd/server/v3);
# see README.md ("etcd") for the compatibility findings.
ETCD_SOURCE=${ETCD_SOURCE:-debian}
ETCD_VERSION=${ETCD_VERSION:-v3.6.5}
CLUSTER_CACHE=${CLUSTER_CACHE:-$HOME/.cache/linstor-migrator/cluster}

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

GO_VERSION=$(go env GOVERSION)
etcd_key=$ETCD_SOURCE
if [[ $ETCD_SOURCE == go ]]; then etcd_key=etcd-$ETCD_VERSION; fi
KEY="k8s-${K8S_VERSION}_${etcd_key}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_${GO_VERSION}"
BIN="$CLUSTER_CACHE/$KEY/bin"
mkdir -p "$BIN"

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
    [[ -x "$BIN/$name" ]] || return 0
  done
  return 1
}

# gomod_of MODULE@VERSION -> path of that module's go.mod in the module cache (downloads it).
gomod_of() {
  go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])'
}

# build_wrapped DIR PKG... : go build the packages of the wrapper module in DIR into $BIN.
# Binaries are built into a scratch dir first and then moved, so an interrupted build never leaves
# a half-written binary behind that a later run would take as cached.
build_wrapped() {
  local dir=$1
  shift
  local out="$WORK/out"
  mkdir -p "$out"
  (cd "$dir" && go build -trimpath -ldflags="$LDFLAGS" -o "$out/" "$@")
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
  log "kubernetes: go build kube-apiserver kube-controller-manager kube-scheduler (slow: ~tens of minutes on 2 cores)"
  build_wrapped "$dir" \
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
  build_wrapped "$dir" go.etcd.io/etcd/server/v3
  # The main package is the module root, so go build names the binary after its last element "v3".
  mv "$BIN/v3" "$BIN/etcd"
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

start=$SECONDS
log "cache dir $BIN"
if missing kube-apiserver kube-controller-manager kube-scheduler; then build_kubernetes; fi
if missing etcd; then build_etcd; fi
if missing kwok; then go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"; fi
if [[ ! -d "$CLUSTER_CACHE/$KEY/share/kwok" ]]; then
  log "kwok: copying default stages and CRDs"
  copy_kwok_data
fi
if missing helm; then go_install helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"; fi
log "done in $((SECONDS - start))s"
echo "$BIN"
