#!/usr/bin/env bash
# Starts a real Kubernetes control plane on 127.0.0.1 with KWOK-simulated nodes.
#
# Usage: tests/cluster/start.sh DIR
#
# Components (each on a free loopback port, logs in DIR/logs/<name>.log, pid in DIR/run/<name>.pid):
#   etcd, kube-apiserver (Node,RBAC; client-cert auth; ServiceAccount tokens/TokenRequest),
#   kube-controller-manager (all default controllers), kube-scheduler, kwok (the KWOK controller:
#   node heartbeats, pod status, and the kubelet API for exec/logs served by local processes).
# Then creates $KWOK_NODES fake nodes (default 3) managed by kwok and waits until the API server is
# ready, every node is Ready and the ServiceAccount "default" exists in namespace "default".
#
# Results in DIR:
#   kubeconfig   admin (system:masters) client-cert kubeconfig
#   env          shell exports: KUBECONFIG, CLUSTER_API_SERVER, CLUSTER_BIN, CLUSTER_DIR,
#                CLUSTER_CA_CERT, CLUSTER_ETCD_URL, CLUSTER_*_PID, ..., and with the
#                kube-fault-proxy (when built: target/debug/kube-fault-proxy) CLUSTER_FAULT_PROXY
#                (plain HTTP in front of the API server) and CLUSTER_FAULT_PROXY_CONTROL
#   pki/         CA, serving and client certificates, ServiceAccount signing key pair
#
# Environment: CLUSTER_BIN (bin dir; default: output of build.sh), KWOK_NODES (default 3),
#   KWOK_ENABLE_CRDS (default Exec,ClusterExec,Logs,ClusterLogs), KUBECTL (default kubectl),
#   CLUSTER_START_TIMEOUT (seconds per wait, default 120),
#   KWOK_VOLUME_GATE (a label KEY=VALUE, default unset: pods with that label stay Pending until
#   they carry the annotation kwok.e2e.linstor-migrator.io/volumes=mounted; KWOK has no kubelet
#   that mounts volumes before starting containers, so a test that writes them sets it).
# Always: a pod annotated kwok.e2e.linstor-migrator.io/start-delay=<Go duration> becomes Ready
#   that long after KWOK first sees it Pending, one annotated .../stop-delay=<duration> is gone
#   that long after its deletion (a controller that takes its time to start or shut down);
#   without the annotations KWOK acts at once, as by default.
#
# On failure it stops whatever it started (via stop.sh) and prints the tail of the logs.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DIR" >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
KWOK_NODES=${KWOK_NODES:-3}
KWOK_ENABLE_CRDS=${KWOK_ENABLE_CRDS:-Exec,ClusterExec,Logs,ClusterLogs}
KUBECTL=${KUBECTL:-kubectl}
KWOK_VOLUME_GATE=${KWOK_VOLUME_GATE:-}
TIMEOUT=${CLUSTER_START_TIMEOUT:-120}
SERVICE_CIDR=10.96.0.0/16
SERVICE_IP=10.96.0.1 # first IP of SERVICE_CIDR: the "kubernetes" Service, must be in the serving cert

# Everything is on 127.0.0.1: never go through an HTTP(S)_PROXY from the environment.
curl() { command curl --noproxy '*' "$@"; }
log() { printf '[start %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ -z ${CLUSTER_BIN:-} ]]; then
  CLUSTER_BIN=$("$HERE/build.sh")
fi
SHARE="$(dirname "$CLUSTER_BIN")/share/kwok"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [[ -f "$CLUSTER_BIN/$b" && -x "$CLUSTER_BIN/$b" ]] || { log "missing $CLUSTER_BIN/$b (run build.sh)"; exit 1; }
done
[[ -d $SHARE/stages && -d $SHARE/crds ]] || { log "missing $SHARE (run build.sh)"; exit 1; }

if [[ -e $DIR/run ]] && compgen -G "$DIR/run/*.pid" >/dev/null; then
  log "$DIR/run has pid files: already started? run stop.sh $DIR first"
  exit 1
fi

if [[ -d $DIR/etcd/member ]]; then
  log "$DIR holds etcd data of an earlier run: use a new DIR (or stop.sh $DIR --purge first)"
  exit 1
fi

PKI="$DIR/pki"
LOGS="$DIR/logs"
RUN="$DIR/run"
mkdir -p "$PKI" "$LOGS" "$RUN" "$DIR/etcd" "$DIR/kwok/home"

on_error() {
  local rc=$?
  log "FAILED (exit $rc); last log lines:"
  local f
  for f in "$LOGS"/*.log; do
    [[ -e $f ]] || continue
    printf -- '--- %s\n' "$f" >&2
    tail -n 15 "$f" >&2
  done
  "$HERE/stop.sh" "$DIR" >&2 || true
  exit "$rc"
}
trap on_error ERR

# free_port: asks the kernel for a free TCP port on 127.0.0.1 (bind to port 0, read it, close).
# There is a small window before the component binds it; good enough for tests.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_for DESCRIPTION COMMAND...: retries COMMAND (quietly) every 0.5s until it succeeds or
# $TIMEOUT seconds passed.
wait_for() {
  local what=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
  log "$what: ok"
}

# launch NAME COMMAND...: starts COMMAND in the background (stdin /dev/null, output to
# logs/NAME.log) and records its pid in run/NAME.pid.
launch() {
  local name=$1
  shift
  "$@" </dev/null >"$LOGS/$name.log" 2>&1 &
  echo "$!" >"$RUN/$name.pid"
  log "started $name (pid $!)"
}

# alive NAME: the recorded process still runs (used while waiting, to fail fast on a crash).
alive() { kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

# ready NAME COMMAND...: like wait_for, but gives up at once if the component died.
ready() {
  local name=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@" >/dev/null 2>&1; do
    if ! alive "$name"; then
      log "$name exited; see $LOGS/$name.log"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "timed out after ${TIMEOUT}s waiting for $name"
      return 1
    fi
    sleep 0.5
  done
  log "$name ready"
}

start_all=$SECONDS

# --- ports ---------------------------------------------------------------------------------------
ETCD_PORT=$(free_port)
ETCD_PEER_PORT=$(free_port)
API_PORT=$(free_port)
KCM_PORT=$(free_port)
SCHED_PORT=$(free_port)
KWOK_PORT=$(free_port)
API_URL="https://127.0.0.1:$API_PORT"

# --- PKI -----------------------------------------------------------------------------------------
# One CA signs everything: the API server's serving cert, the client certs (admin, controller
# manager, scheduler, API server -> kubelet), and kwok's kubelet serving cert.  Separately an RSA
# key pair signs/verifies ServiceAccount tokens.
log "generating PKI in $PKI"
openssl_quiet() { openssl "$@" 2>/dev/null; }
openssl_quiet req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=linstor-migrator-test-ca" \
  -keyout "$PKI/ca.key" -out "$PKI/ca.crt"

# cert NAME SUBJECT [SAN]: key + cert signed by the CA; SAN given => serving cert, else client cert.
cert() {
  local name=$1 subj=$2 san=${3:-}
  local ext="$PKI/$name.ext"
  if [[ -n $san ]]; then
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' "$san" >"$ext"
  else
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$ext"
  fi
  openssl_quiet req -newkey rsa:2048 -nodes -subj "$subj" -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
  openssl_quiet x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -extfile "$ext" -out "$PKI/$name.crt"
  rm -f "$PKI/$name.csr" "$ext"
}
cert apiserver "/CN=kube-apiserver" \
  "IP:127.0.0.1,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
cert admin "/O=system:masters/CN=kubernetes-admin"
cert controller-manager "/CN=system:kube-controller-manager"
cert scheduler "/CN=system:kube-scheduler"
cert front-proxy-client "/CN=front-proxy-client"
cert kwok-serving "/CN=kwok-controller" "IP:127.0.0.1,DNS:localhost"
openssl_quiet genrsa -out "$PKI/sa.key" 2048
openssl_quiet rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
chmod 600 "$PKI"/*.key

# kubeconfig FILE CERTNAME: a self-contained kubeconfig (certificates embedded) for $API_URL using
# the client cert pki/CERTNAME.{crt,key}.
kubeconfig() {
  local file=$1 name=$2
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: $API_URL
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 <"$PKI/$name.crt")
    client-key-data: $(base64 -w0 <"$PKI/$name.key")
contexts:
- name: test
  context:
    cluster: test
    user: $name
current-context: test
EOF
}
kubeconfig "$DIR/kubeconfig" admin
kubeconfig "$DIR/controller-manager.kubeconfig" controller-manager
kubeconfig "$DIR/scheduler.kubeconfig" scheduler
export KUBECONFIG="$DIR/kubeconfig"

# --- etcd ----------------------------------------------------------------------------------------
# etcd reads every ETCD_* environment variable as a flag (ETCD_VERSION, ETCD_SOURCE, ... from the
# caller would be misread or warned about), so it gets a clean environment.
launch etcd env -i PATH="$PATH" HOME="$HOME" "$CLUSTER_BIN/etcd" \
  --name=node0 \
  --data-dir="$DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="node0=http://127.0.0.1:$ETCD_PEER_PORT" \
  --auto-compaction-retention=1 \
  --quota-backend-bytes=8589934592 \
  --unsafe-no-fsync=true \
  --logger=zap
ready etcd curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver ------------------------------------------------------------------------------
# --endpoint-reconciler-type=none: the "kubernetes" Endpoints would have to carry 127.0.0.1, which
# endpoint validation rejects (loopback), so the reconciler would only log errors.
# --requestheader-*/--proxy-client-*: not needed to work, but without them the controller manager
# and scheduler log "missing content for CA bundle ... requestheader-client-ca-file" errors.
launch kube-apiserver "$CLUSTER_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --cert-dir="$DIR/apiserver-certs" \
  --tls-cert-file="$PKI/apiserver.crt" \
  --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --authorization-mode=Node,RBAC \
  --service-account-key-file="$PKI/sa.pub" \
  --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --kubelet-preferred-address-types=InternalIP \
  --endpoint-reconciler-type=none \
  --requestheader-client-ca-file="$PKI/ca.crt" \
  --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User \
  --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$PKI/front-proxy-client.crt" \
  --proxy-client-key-file="$PKI/front-proxy-client.key" \
  --allow-privileged=true \
  --profiling=false
api_ready() {
  curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$API_URL/readyz"
}
ready kube-apiserver api_ready

# --- kube-controller-manager and kube-scheduler -------------------------------------------------
# Both serve their health endpoints on a loopback port with self-signed certs written to cert-dir
# (the default cert-dir is /var/run/kubernetes, so it has to be set).
launch kube-controller-manager "$CLUSTER_BIN/kube-controller-manager" \
  --kubeconfig="$DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --cert-dir="$DIR/controller-manager-certs" \
  --leader-elect=false \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" \
  --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" \
  --cluster-signing-key-file="$PKI/ca.key" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --controllers='*'
launch kube-scheduler "$CLUSTER_BIN/kube-scheduler" \
  --kubeconfig="$DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$SCHED_PORT" \
  --cert-dir="$DIR/scheduler-certs" \
  --leader-elect=false
ready kube-controller-manager curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
ready kube-scheduler curl -fsSk "https://127.0.0.1:$SCHED_PORT/healthz"

# --- kwok ----------------------------------------------------------------------------------------
# The kwok binary has no built-in stages: its --config gets kwokctl's default set (copied from the
# module by build.sh).  --enable-crds makes it watch Exec/ClusterExec/... objects; their CRDs must
# exist first.  kwok also reads ~/.kwok/kwok.yaml if present, so HOME points into DIR.
# --node-ip/--node-port are written into each node's status (InternalIP, kubeletEndpoint); the API
# server connects there (TLS, verified against our CA) for exec/logs/port-forward.
log "installing KWOK CRDs"
"$KUBECTL" apply -f "$SHARE/crds" >"$LOGS/kwok-crds.log" 2>&1
"$KUBECTL" wait --for=condition=Established --timeout="${TIMEOUT}s" crd --all >>"$LOGS/kwok-crds.log" 2>&1
: >"$DIR/kwok/kwok.yaml"
for f in "$SHARE"/stages/*.yaml; do
  { echo "---"; cat "$f"; } >>"$DIR/kwok/kwok.yaml"
done
# The volume gate: one more condition on the pod-ready stage (a jq query, like the others).
if [[ -n $KWOK_VOLUME_GATE ]]; then
  [[ $KWOK_VOLUME_GATE == *=* ]] || { log "KWOK_VOLUME_GATE must be KEY=VALUE"; exit 2; }
  python3 - "$DIR/kwok/kwok.yaml" "${KWOK_VOLUME_GATE%%=*}" "${KWOK_VOLUME_GATE#*=}" <<'PY'
import json, sys
path, key, value = sys.argv[1:]
query = ('if .metadata.labels[%s] == %s then (.metadata.annotations["kwok.e2e.linstor-migrator.io/volumes"] // "pending") '
         'else "mounted" end') % (json.dumps(key), json.dumps(value))
gate = "    - key: %s\n      operator: 'In'\n      values:\n      - 'mounted'\n" % json.dumps(query)
text = open(path).read()
head, sep, tail = text.partition("  name: pod-ready\n")
assert sep, "no pod-ready stage"
anchor = "    matchExpressions:\n"
i = tail.index(anchor) + len(anchor)
open(path, "w").write(head + sep + tail[:i] + gate + tail[i:])
PY
  log "pods labelled $KWOK_VOLUME_GATE wait for their volumes"
fi
# Start and stop delays from pod annotations: a delay (durationFrom, a jq query) on the pod-ready
# and pod-delete stages; a missing annotation is no delay.
python3 - "$DIR/kwok/kwok.yaml" <<'PY'
import sys
path = sys.argv[1]
text = open(path).read()
for stage, annotation in (("pod-ready", "start-delay"), ("pod-delete", "stop-delay")):
    head, sep, tail = text.partition("  name: %s\n" % stage)
    assert sep, "no %s stage" % stage
    anchor = "spec:\n"
    i = tail.index(anchor) + len(anchor)
    delay = ("  delay:\n    durationFrom:\n      jq:\n        expression: "
             "'.metadata.annotations[\"kwok.e2e.linstor-migrator.io/%s\"]'\n") % annotation
    text = head + sep + tail[:i] + delay + tail[i:]
open(path, "w").write(text)
PY
launch kwok env HOME="$DIR/kwok/home" "$CLUSTER_BIN/kwok" \
  --kubeconfig="$DIR/kubeconfig" \
  --config="$DIR/kwok/kwok.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=127.0.0.1 \
  --node-port="$KWOK_PORT" \
  --server-address="127.0.0.1:$KWOK_PORT" \
  --tls-cert-file="$PKI/kwok-serving.crt" \
  --tls-private-key-file="$PKI/kwok-serving.key" \
  --node-lease-duration-seconds=40 \
  --enable-crds="$KWOK_ENABLE_CRDS"
ready kwok curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"

# --- fake nodes ----------------------------------------------------------------------------------
# No taint: every node is fake, so ordinary pods (without tolerations) land on them.
nodes_yaml="$DIR/nodes.yaml"
: >"$nodes_yaml"
for i in $(seq 0 $((KWOK_NODES - 1))); do
  cat >>"$nodes_yaml" <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/role: agent
    node-role.kubernetes.io/agent: ""
    type: kwok
EOF
done
"$KUBECTL" apply -f "$nodes_yaml" >"$LOGS/nodes.log" 2>&1
wait_for "$KWOK_NODES nodes Ready" "$KUBECTL" wait --for=condition=Ready --timeout=5s node --all
wait_for "serviceaccount default/default" "$KUBECTL" -n default get serviceaccount default

# --- the fault-injecting proxy (the cluster suite's service reaches the API server through it) ---
# Started when its binary is there (tests/cluster/e2e builds it first; KUBE_FAULT_PROXY_BIN
# overrides where it is, empty: none); plain HTTP on loopback in front of the API server's TLS.
FAULT_PROXY_BIN=${KUBE_FAULT_PROXY_BIN-$HERE/../../target/debug/kube-fault-proxy}
FAULT_PROXY_ENV=""
if [[ -x $FAULT_PROXY_BIN ]]; then
  PROXY_PORT=$(free_port)
  PROXY_CONTROL_PORT=$(free_port)
  launch kube-fault-proxy "$FAULT_PROXY_BIN" --listen "127.0.0.1:$PROXY_PORT" \
    --control "127.0.0.1:$PROXY_CONTROL_PORT" --upstream "$API_URL" --ca "$PKI/ca.crt"
  ready kube-fault-proxy curl -fsS "http://127.0.0.1:$PROXY_CONTROL_PORT/stats"
  FAULT_PROXY_ENV="export CLUSTER_FAULT_PROXY=http://127.0.0.1:$PROXY_PORT
export CLUSTER_FAULT_PROXY_CONTROL=http://127.0.0.1:$PROXY_CONTROL_PORT"
else
  log "no $FAULT_PROXY_BIN: no fault-injecting proxy (cargo build -p linstor-standins --bins)"
fi

# --- env -----------------------------------------------------------------------------------------
cat >"$DIR/env" <<EOF
# Written by tests/cluster/start.sh; source it.
export CLUSTER_DIR=$DIR
export CLUSTER_BIN=$CLUSTER_BIN
export KUBECONFIG=$DIR/kubeconfig
export CLUSTER_API_SERVER=$API_URL
export CLUSTER_CA_CERT=$PKI/ca.crt
export CLUSTER_KWOK_CRDS=$SHARE/crds
export CLUSTER_ETCD_URL=http://127.0.0.1:$ETCD_PORT
export CLUSTER_KWOK_PORT=$KWOK_PORT
export CLUSTER_ETCD_PID=$(cat "$RUN/etcd.pid")
export CLUSTER_KUBE_APISERVER_PID=$(cat "$RUN/kube-apiserver.pid")
export CLUSTER_KUBE_CONTROLLER_MANAGER_PID=$(cat "$RUN/kube-controller-manager.pid")
export CLUSTER_KUBE_SCHEDULER_PID=$(cat "$RUN/kube-scheduler.pid")
export CLUSTER_KWOK_PID=$(cat "$RUN/kwok.pid")
$FAULT_PROXY_ENV
EOF
trap - ERR
log "control plane up in $((SECONDS - start_all))s: $API_URL (source $DIR/env)"
