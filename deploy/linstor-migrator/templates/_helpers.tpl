{{/*
Names, labels and the RBAC rule sets shared by the templates.
*/}}

{{- define "linstor-migrator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-<chart>, or the release name when it already contains the chart name.
Truncated to 63 characters (the DNS label limit of some name fields).
*/}}
{{- define "linstor-migrator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "linstor-migrator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "linstor-migrator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "linstor-migrator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "linstor-migrator.labels" -}}
helm.sh/chart: {{ include "linstor-migrator.chart" . }}
{{ include "linstor-migrator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "linstor-migrator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "linstor-migrator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "linstor-migrator.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* The Secret holding the API token for auth.mode=token. */}}
{{- define "linstor-migrator.tokenSecretName" -}}
{{- default (printf "%s-token" (include "linstor-migrator.fullname" .)) .Values.auth.token.existingSecret }}
{{- end }}

{{- define "linstor-migrator.tokenSecretKey" -}}
{{- if .Values.auth.token.existingSecret }}
{{- .Values.auth.token.existingSecretKey }}
{{- else -}}
token
{{- end }}
{{- end }}

{{- /*
"true" when /metrics needs a token (neither metrics.public nor auth.mode=none): the chart then
gives the service a metrics token and the ServiceMonitor scrapes with it.
*/}}
{{- define "linstor-migrator.metricsToken" -}}
{{- if not (or .Values.metrics.public (eq .Values.auth.mode "none")) -}}
true
{{- end }}
{{- end }}

{{- define "linstor-migrator.metricsTokenSecretName" -}}
{{- default (printf "%s-metrics-token" (include "linstor-migrator.fullname" .)) .Values.metrics.token.existingSecret }}
{{- end }}

{{- define "linstor-migrator.metricsTokenSecretKey" -}}
{{- if .Values.metrics.token.existingSecret }}
{{- .Values.metrics.token.existingSecretKey }}
{{- else -}}
token
{{- end }}
{{- end }}

{{- define "linstor-migrator.claimName" -}}
{{- default (printf "%s-data" (include "linstor-migrator.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
The namespaces the service manages, comma-separated: watchNamespaces, or the release namespace
when that is empty; empty itself with rbac.clusterWide (every namespace). The Deployment passes it
as LINSTOR_MIGRATOR_NAMESPACES and rbac.yaml makes a Role in each.
*/}}
{{- define "linstor-migrator.managedNamespaces" -}}
{{- if .Values.rbac.clusterWide }}
{{- if .Values.watchNamespaces }}
{{- fail "rbac.clusterWide manages every namespace: leave watchNamespaces empty, or set rbac.clusterWide=false to manage only the listed namespaces" }}
{{- end }}
{{- else }}
{{- join "," (default (list .Release.Namespace) .Values.watchNamespaces) }}
{{- end }}
{{- end }}

{{/*
RBAC of the service itself, in two parts. Every rule names the code that needs it; keep them in step
with src/engine/steps/preflight.rs (`own_rules`, what preflight checks) and src/cluster/kube/.

"clusterRules": what is cluster-scoped by nature, so always in a ClusterRole.
*/}}
{{- define "linstor-migrator.clusterRules" -}}
# Preflight inventories the k8s backend: the internal.linstor.linbit.com CRDs and their objects,
# all cluster-scoped (cluster/kube/inventory.rs). The data verification reads every object, a
# backend that held data is emptied before an import (never left to the tool's truncate, which
# fails half-way on large tables), and the delta import writes single rows
# (cluster/kube/backend_objects.rs). The CRDs themselves are made by linstor-database, which runs
# as the controller's ServiceAccount: this service never creates or deletes a CRD.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["internal.linstor.linbit.com"]
  resources: ["*"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Preflight checks its own rights and the controller ServiceAccount's (cluster/kube/authz.rs).
- apiGroups: ["authorization.k8s.io"]
  resources: ["selfsubjectaccessreviews", "subjectaccessreviews"]
  verbs: ["create"]
{{- end }}

{{/*
"namespacedRules": what the service reads and does in a controller's namespace. A Role in each
managed namespace (linstor-migrator.managedNamespaces), or with rbac.clusterWide one ClusterRole.
*/}}
{{- define "linstor-migrator.namespacedRules" -}}
# Discovery lists LinstorControllers and Deployments in each managed namespace
# (cluster/kube/reads.rs, LINSTOR_MIGRATOR_NAMESPACES); waits watch the controller Deployment
# (cluster/kube/waits.rs). Stop, start and the switch patch spec.replicas and dbConnectionURL of
# the LinstorController (a JSON merge patch).
- apiGroups: ["piraeus.linbit.com"]
  resources: ["linstorcontrollers"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch"]
# The upgrade plan (read-only) reads the Piraeus v1 satellite sets and CSI driver of a controller's
# namespace (cluster/kube/upgrade_reads.rs).
- apiGroups: ["piraeus.linbit.com"]
  resources: ["linstorsatellitesets", "linstorcsidrivers"]
  verbs: ["get", "list"]
# The etcd StatefulSet: preflight records its replicas, and a rollback waits for them to be ready
# again before it starts the controller (engine/steps/preflight.rs, engine/rollback.rs); the
# upgrade plan looks for it.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch"]
# The scale subresource of an unowned controller Deployment and of the etcd StatefulSet
# (optional scale-down after a migration; its data is never deleted).
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["patch"]
# The migration pod: create, wait for it (watch), find controller pods (list), delete it
# (cluster/kube/writes.rs, waits.rs).
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch", "create", "delete"]
# linstor-database export-db/import-db run in the migration pod over a websocket (kube-rs). API
# servers before 1.35 authorize a websocket exec as `get`; 1.35+ also require `create`
# (AuthorizePodWebsocketUpgradeCreatePermission), as SPDY always did.
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["get", "create"]
# linstor.toml of the controller (read by discovery, watched for the operator's re-render, written
# only for a Deployment no LinstorController owns), and the target-config ConfigMap of the
# migration pod (created, then deleted).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# The per-controller Lease, in the controller's namespace, that keeps every other instance (another
# replica, or the CLI on a laptop) off a controller while a run drives it (cluster/kube/lease.rs).
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update", "delete"]
{{- if .Values.rbac.readSecrets }}
# Helm release Secrets (listed with the field selector type=helm.sh/release.v1; list cannot be
# narrowed further) and the REST API client certificate Secret of https controllers.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list"]
{{- end }}
{{- end }}

{{/*
The rights of the LINSTOR `k8s` database backend (REFERENCE.md §2, piraeus-operator#521), for the
controller's ServiceAccount. Kept equal to `k8s_backend_rules` in src/engine/steps/preflight.rs.
*/}}
{{- define "linstor-migrator.k8sBackendRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["internal.linstor.linbit.com"]
  resources: ["*"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
{{- end }}

{{- define "linstor-migrator.serviceAccountSubject" -}}
- kind: ServiceAccount
  name: {{ include "linstor-migrator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}
