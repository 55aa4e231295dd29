# shellcheck shell=bash
# Helpers of tests/deploy.sh part 5 (the chart on the loopback control plane), sourced by it; they
# use its log, fail, WORK, NS and HELM.
#
#   install_monitoring_crds   the Prometheus Operator CRDs (ServiceMonitor, PrometheusRule) from
#                             the prometheus-operator Go module (the Go module proxy has it)
#   validate_renders NAME...  every object of $WORK/NAME.yaml through the API server's own
#                             validation (dry run, strict field validation): the built-in types'
#                             OpenAPI schemas and the CRDs' structural schemas
#   plain_controller NS       a LINSTOR controller Deployment (no operator) with its linstor.toml
#   service_lists EXPECTED... runs the binary as the installed Deployment would (its args and
#                             environment), outside the cluster (KWOK runs no containers) with a
#                             token of the release's ServiceAccount, and checks that
#                             /api/v1/controllers lists exactly EXPECTED (namespace/name)

PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}

install_monitoring_crds() {
  local dir crd
  dir=$(GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') ||
    fail "go mod download of prometheus-operator $PROMETHEUS_OPERATOR_VERSION failed"
  for crd in servicemonitors prometheusrules; do
    # server-side: the CRDs are too large for the last-applied annotation of a client-side apply
    kubectl apply --server-side -f "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$crd.yaml" >/dev/null
    kubectl wait --for=condition=Established --timeout=60s "crd/$crd.monitoring.coreos.com" >/dev/null
  done
  log "Prometheus Operator CRDs of $PROMETHEUS_OPERATOR_VERSION installed (ServiceMonitor, PrometheusRule)"
}

validate_renders() {
  local name count total=0
  for name in "$@"; do
    kubectl create --dry-run=server --validate=strict -f "$WORK/$name.yaml" -o name \
      >"$WORK/validated" 2>"$WORK/validate.err" ||
      fail "the API server rejects objects of the $name render: $(cat "$WORK/validate.err")"
    [[ -s $WORK/validate.err ]] && fail "warnings for the $name render: $(cat "$WORK/validate.err")"
    count=$(wc -l <"$WORK/validated")
    total=$((total + count))
  done
  log "the API server validates all $total objects of $# renders ($*): no error, no unknown field"
}

plain_controller() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ConfigMap
metadata: {name: linstor-controller-config, namespace: $1}
data:
  linstor.toml: |
    [db]
    connection_url = "etcd://etcd.$1.svc:2379"
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: linstor-controller, namespace: $1}
spec:
  replicas: 1
  selector: {matchLabels: {app: linstor-controller}}
  template:
    metadata: {labels: {app: linstor-controller}}
    spec:
      containers:
        - name: linstor-controller
          image: quay.io/piraeusdatastore/piraeus-server:v1.32.3
          volumeMounts: [{name: config, mountPath: /etc/linstor}]
      volumes: [{name: config, configMap: {name: linstor-controller-config}}]
EOF
}

# The binary the service runs from: part 4's release build, or a debug build.
service_binary() {
  if [[ -z ${BIN:-} ]]; then
    cargo build --locked --quiet --bin linstor-migrator >&2
    BIN=${CARGO_TARGET_DIR:-target}/debug/linstor-migrator
  fi
}

# service_lists [--caller TOKEN [--denied TOKEN]] EXPECTED...: see the top. With --caller,
# requests carry that bearer token (auth.mode=kubernetes), and the --denied one must get 403;
# otherwise they carry the release's API token.
service_lists() {
  local caller="" denied="" pid port base deadline sa listed expected code scrape
  if [[ $1 == --caller ]]; then caller=$2; shift 2; fi
  if [[ $1 == --denied ]]; then denied=$2; shift 2; fi
  service_binary
  sa=$(kubectl -n "$NS" get deploy lm-linstor-migrator -o jsonpath='{.spec.template.spec.serviceAccountName}')
  kubectl config view --raw --minify -o json >"$WORK/admin.json"
  # a kubeconfig with nothing but the API server, its CA and the ServiceAccount's token
  python3 - "$WORK/admin.json" "$(kubectl -n "$NS" create token "$sa" --duration=1h)" >"$WORK/sa.kubeconfig" <<'PY'
import json, sys
admin, token = json.load(open(sys.argv[1])), sys.argv[2]
cluster = admin["clusters"][0]["cluster"]
print(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "sa",
                  "clusters": [{"name": "c", "cluster": {"server": cluster["server"],
                                "certificate-authority-data": cluster["certificate-authority-data"]}}],
                  "users": [{"name": "sa", "user": {"token": token}}],
                  "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}]}))
PY
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base=http://127.0.0.1:$port
  rm -rf "$WORK/service-data"
  # the container's args and environment, as a command line (values from Secrets resolved)
  kubectl -n "$NS" get deploy lm-linstor-migrator -o json >"$WORK/deployment.json"
  python3 - "$WORK/deployment.json" "$BIN" "$port" "$WORK/service-data" "$WORK/sa.kubeconfig" \
    >"$WORK/service.sh" <<'PY' ||
import base64, json, os, shlex, subprocess, sys
deploy = json.load(open(sys.argv[1]))
binary, port, data, kubeconfig = sys.argv[2:]
c = deploy["spec"]["template"]["spec"]["containers"][0]
args = []
for a in c["args"]:
    if a.startswith("--listen="):
        a = f"--listen=127.0.0.1:{port}"
    elif a.startswith("--data-dir="):
        a = f"--data-dir={data}"
    args.append(a)
# nothing from the test's own environment, but where kubectl and the kubeconfig are
env = {"PATH": os.environ["PATH"], "KUBECONFIG": kubeconfig}
for e in c.get("env", []):
    if "value" in e:
        env[e["name"]] = e["value"]
    elif "secretKeyRef" in e.get("valueFrom", {}):
        ref = e["valueFrom"]["secretKeyRef"]
        value = subprocess.run(
            ["kubectl", "-n", deploy["metadata"]["namespace"], "get", "secret", ref["name"],
             "-o", f"jsonpath={{.data.{ref['key']}}}"], capture_output=True, text=True, check=True).stdout
        env[e["name"]] = base64.b64decode(value).decode()
    elif "fieldRef" in e.get("valueFrom", {}):
        env[e["name"]] = "linstor-migrator-local"
words = ["exec", "env", "-i"] + [f"{k}={v}" for k, v in env.items()] + [binary] + args
print(" ".join(shlex.quote(w) for w in words))
PY
    fail "cannot turn the Deployment into a command line"
  bash "$WORK/service.sh" >"$WORK/service.log" 2>&1 &
  pid=$!
  deadline=$((SECONDS + 60))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "$base/readyz") == 200 ]]; do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$WORK/service.log" >&2; fail "the service exited"; }
    ((SECONDS < deadline)) || { kill "$pid"; tail -20 "$WORK/service.log" >&2; fail "the service never became ready"; }
    sleep 0.2
  done
  if [[ -z $caller ]]; then caller=$(token | base64 -d); fi
  listed=$(curl -fsS -H "Authorization: Bearer $caller" "$base/api/v1/controllers" |
    python3 -c 'import json, sys; print(" ".join(sorted(c["namespace"] + "/" + c["name"] for c in json.load(sys.stdin))))') ||
    { kill "$pid"; tail -20 "$WORK/service.log" >&2; fail "GET /api/v1/controllers failed"; }
  if [[ -n $denied ]]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $denied" "$base/api/v1/controllers")
    [[ $code == 403 ]] || { kill "$pid"; fail "a caller without the rights got $code, not 403"; }
  fi
  # what the ServiceMonitor scrapes with: the metrics token from the release's Secret
  scrape=$(kubectl -n "$NS" get secret lm-linstor-migrator-metrics-token -o jsonpath='{.data.token}' | base64 -d) ||
    { kill "$pid"; fail "no metrics token Secret"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $scrape" "$base/metrics")
  [[ $code == 200 ]] || { kill "$pid"; fail "/metrics with the ServiceMonitor's token gave $code, not 200"; }
  code=$(curl -s -o /dev/null -w '%{http_code}' "$base/metrics")
  [[ $code == 401 ]] || { kill "$pid"; fail "/metrics without a token gave $code, not 401"; }
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  expected=$(printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//')
  [[ $listed == "$expected" ]] || fail "the service as $NS/$sa lists [$listed], expected [$expected]"
  log "the service, run as $NS/$sa with the installed args and environment, is ready and lists [$listed]${denied:+; a caller without the right gets 403}; /metrics answers the metrics token"
}
