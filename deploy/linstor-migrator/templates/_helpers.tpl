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

{{- define "linstor-migrator.claimName" -}}
{{- default (printf "%s-data" (include "linstor-migrator.fullname" .)) .Values.persistence.existingClaim }}
{{- end }}

{{/*
RBAC of the service itself, in two parts. Every rule names the code that needs it; keep them in step
with src/engine/steps/preflight.rs (`own_rules`, what preflight checks) and src/cluster/kube/.

"clusterRules": always cluster-wide (cluster-scoped resources, or discovery across all namespaces).
*/}}
{{- define "linstor-migrator.clusterRules" -}}
# Discovery lists LinstorControllers and Deployments in all namespaces (cluster/kube/reads.rs);
# waits watch the controller Deployment (cluster/kube/waits.rs).
- apiGroups: ["piraeus.linbit.com"]
  resources: ["linstorcontrollers"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch"]
# Discovery reads each controller's linstor.toml from its ConfigMap (cluster/controller.rs) to show
# its backend, and preflight refuses a migration when another controller already uses the k8s
# backend; a forbidden read would fail the whole discovery. `get` only: names come from the
# Deployments.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
# Preflight inventories the k8s backend: the internal.linstor.linbit.com CRDs and their objects
# (cluster/kube/inventory.rs). Read-only: the import itself runs as the controller's ServiceAccount.
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list"]
- apiGroups: ["internal.linstor.linbit.com"]
  resources: ["*"]
  verbs: ["get", "list"]
# Preflight checks its own rights and the controller ServiceAccount's (cluster/kube/authz.rs).
- apiGroups: ["authorization.k8s.io"]
  resources: ["selfsubjectaccessreviews", "subjectaccessreviews"]
  verbs: ["create"]
{{- end }}

{{/*
"namespacedRules": what a run does in a controller's namespace. One ClusterRole when
watchNamespaces is empty, else a Role in each listed namespace.
*/}}
{{- define "linstor-migrator.namespacedRules" -}}
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
# linstor.toml of the controller (watched for the operator's re-render; written only for a
# Deployment no LinstorController owns), and the target-config ConfigMap of the migration pod
# (created, then deleted).
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Stop and start: spec.replicas (and dbConnectionURL) of the LinstorController as a JSON merge
# patch; the scale subresource of an unowned controller Deployment and of the etcd StatefulSet
# (optional scale-down after a migration; its data is never deleted).
- apiGroups: ["piraeus.linbit.com"]
  resources: ["linstorcontrollers"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["patch"]
{{- if .Values.rbac.readSecrets }}
# Helm release Secrets (listed with the field selector type=helm.sh/release.v1; list cannot be
# narrowed further) and the REST API client certificate Secret of https controllers.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list"]
{{- end }}
{{- end }}

{{/*
The Lease that keeps two replicas of the service off the same controller
(cluster/kube/lease.rs); namespaced to the release namespace.
*/}}
{{- define "linstor-migrator.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update", "delete"]
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
