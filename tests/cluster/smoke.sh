#!/usr/bin/env bash
# Smoke check of the loopback control plane: build (cached), start, exercise, stop.
#
# Usage: tests/cluster/smoke.sh            (KEEP=1 keeps the cluster and its temp dir for poking)
#
# Checks, in order:
#   1. a Deployment (1 replica, image debian:bookworm) gets a Running pod on a kwok node
#      (controller-manager: deployment/replicaset controllers; scheduler; kwok pod stages);
#   2. a KWOK ClusterExec makes `kubectl exec` run a LOCAL process: output, workDir and envs arrive,
#      and a non-zero exit code is passed through (`sh -c 'exit 3'` => kubectl exits 3);
#   3. `kubectl cp pod:FILE LOCAL` works (kubectl runs `tar cf - FILE` "in the pod", i.e. local tar);
#   4. a token from `kubectl create token` authenticates as the ServiceAccount and is subject to
#      RBAC (403 before a RoleBinding, 200 after);
#   5. scaling the Deployment to 0 deletes the pod (kwok's pod-delete stage finalizes it).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KUBECTL=${KUBECTL:-/usr/bin/kubectl}
export KUBECTL

# Everything is on 127.0.0.1: never go through an HTTP(S)_PROXY from the environment.
curl() { command curl --noproxy '*' "$@"; }
log() { printf '[smoke %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() {
  log "FAIL: $*"
  exit 1
}

# retry SECONDS COMMAND...: run COMMAND every 0.5s until it succeeds or SECONDS passed.
retry() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

CLUSTER_BIN=$("$HERE/build.sh")
export CLUSTER_BIN
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lm-cluster-smoke.XXXXXX")
cleanup() {
  local rc=$?
  if [[ ${KEEP:-} == 1 ]]; then
    log "KEEP=1: cluster left running; source $WORK/env, stop with: $HERE/stop.sh $WORK --purge"
  else
    "$HERE/stop.sh" "$WORK" --purge || true
  fi
  if [[ $rc -eq 0 ]]; then log "PASS"; else log "FAILED (exit $rc)"; fi
}
trap cleanup EXIT

t0=$SECONDS
"$HERE/start.sh" "$WORK"
log "start.sh took $((SECONDS - t0))s"
# shellcheck source=/dev/null
source "$WORK/env"
k() { "$KUBECTL" "$@"; }

# --- 1. Deployment -> Running pod on a kwok node -------------------------------------------------
log "1. deployment"
k create deployment smoke --image=debian:bookworm --replicas=1 -- sleep infinity >/dev/null
k rollout status deployment/smoke --timeout=60s >/dev/null || fail "deployment not available"
POD=$(k get pod -l app=smoke -o jsonpath='{.items[0].metadata.name}')
phase=$(k get pod "$POD" -o jsonpath='{.status.phase}')
node=$(k get pod "$POD" -o jsonpath='{.spec.nodeName}')
[[ $phase == Running ]] || fail "pod $POD phase $phase"
[[ $node == kwok-node-* ]] || fail "pod $POD on node '$node'"
log "pod $POD Running on $node"
# The container name kubectl create deployment derives from the image: "debian".
CONTAINER=$(k get pod "$POD" -o jsonpath='{.spec.containers[0].name}')

# --- 2. exec via KWOK ClusterExec ----------------------------------------------------------------
log "2. exec"
EXEC_ROOT="$WORK/exec-root"
mkdir -p "$EXEC_ROOT"
echo "payload from the fake pod" >"$EXEC_ROOT/data.txt"
k apply -f - >/dev/null <<EOF
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterExec
metadata:
  name: smoke-local
spec:
  selector:
    matchNamespaces:
    - default
  execs:
  - containers:
    - $CONTAINER
    local:
      workDir: $EXEC_ROOT
      envs:
      - name: SMOKE_ENV
        value: from-kwok
EOF
# kwok learns about the ClusterExec through a watch: retry until it is in effect.
exec_hello() { [[ $(k exec "$POD" -c "$CONTAINER" -- /bin/echo hello 2>/dev/null) == hello ]]; }
retry 20 exec_hello || fail "kubectl exec -- /bin/echo hello: $(k exec "$POD" -c "$CONTAINER" -- /bin/echo hello 2>&1)"
log "exec echo: ok"
# shellcheck disable=SC2016 # expanded by the sh "in the pod"
out=$(k exec "$POD" -c "$CONTAINER" -- sh -c 'echo "$SMOKE_ENV $(pwd) $(cat data.txt)"')
[[ $out == "from-kwok $EXEC_ROOT payload from the fake pod" ]] || fail "env/workDir: got '$out'"
log "exec envs + workDir: ok"
set +e
k exec "$POD" -c "$CONTAINER" -- sh -c 'echo to-stderr >&2; exit 3' 2>"$WORK/exit3.err"
rc=$?
set -e
if [[ $rc -eq 3 ]]; then
  log "exec exit code 3: ok"
else
  fail "exec 'exit 3' gave exit code $rc, stderr: $(cat "$WORK/exit3.err")"
fi
# stdin: `kubectl exec -i` with input; `cat` only ends when the end of stdin reaches it.
out=$(printf 'line1\nline2\n' | timeout 20 "$KUBECTL" exec -i "$POD" -c "$CONTAINER" -- cat) ||
  fail "exec -i -- cat did not finish (stdin EOF not passed on?)"
[[ $out == $'line1\nline2' ]] || fail "exec -i: got '$out'"
log "exec -i (stdin + EOF): ok"

# --- 3. kubectl cp out of the "pod" --------------------------------------------------------------
log "3. kubectl cp"
k cp -c "$CONTAINER" "default/$POD:$EXEC_ROOT/data.txt" "$WORK/copied.txt" >/dev/null 2>"$WORK/cp.err" ||
  fail "kubectl cp: $(cat "$WORK/cp.err")"
cmp -s "$EXEC_ROOT/data.txt" "$WORK/copied.txt" || fail "kubectl cp: content differs"
log "kubectl cp: ok"

# --- 4. ServiceAccount token + RBAC --------------------------------------------------------------
log "4. serviceaccount token"
k create serviceaccount smoke-sa >/dev/null
TOKEN=$(k create token smoke-sa --duration=10m)
http() { curl -s -o /dev/null -w '%{http_code}' --cacert "$CLUSTER_CA_CERT" -H "Authorization: Bearer $TOKEN" "$CLUSTER_API_SERVER$1"; }
who=$(curl -fsS --cacert "$CLUSTER_CA_CERT" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -X POST -d '{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}' \
  "$CLUSTER_API_SERVER/apis/authentication.k8s.io/v1/selfsubjectreviews")
user=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["status"]["userInfo"]["username"])' <<<"$who")
[[ $user == system:serviceaccount:default:smoke-sa ]] || fail "whoami: $who"
code=$(http /api/v1/namespaces/default/pods)
[[ $code == 403 ]] || fail "expected 403 listing pods without RBAC, got $code"
log "token authenticates; forbidden request: 403"
k create role smoke-pod-reader --verb=get,list --resource=pods >/dev/null
k create rolebinding smoke-pod-reader --role=smoke-pod-reader --serviceaccount=default:smoke-sa >/dev/null
list_ok() { [[ $(http /api/v1/namespaces/default/pods) == 200 ]]; }
retry 10 list_ok || fail "still not allowed after RoleBinding"
code=$(http /api/v1/namespaces/kube-system/pods)
[[ $code == 403 ]] || fail "expected 403 in kube-system, got $code"
log "after RoleBinding: 200 in default, 403 in kube-system"

# --- 5. scale to 0 -------------------------------------------------------------------------------
log "5. scale to 0"
k scale deployment/smoke --replicas=0 >/dev/null
k wait --for=delete "pod/$POD" --timeout=60s >/dev/null || fail "pod $POD not deleted"
[[ -z $(k get pod -l app=smoke -o name) ]] || fail "pods left after scale to 0"
log "pod gone"
log "all checks passed in $((SECONDS - t0))s"
