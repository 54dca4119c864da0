{{/* Names and labels shared by every object of the release. */}}

{{- define "agentrun.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "agentrun.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agentrun.selectorLabels" -}}
app.kubernetes.io/name: {{ include "agentrun.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "agentrun.labels" -}}
{{ include "agentrun.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "agentrun.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "agentrun.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* "repository:tag" of images.<name>; the tag defaults to the chart's appVersion. toString: helm's --set
turns an all-digit tag (a short commit hash) into an integer, which %s would print as %!s(int64=...). */}}
{{- define "agentrun.image" -}}
{{- $image := index .root.Values.images .name -}}
{{- $tag := toString (default "" $image.tag) -}}
{{- printf "%s:%s" $image.repository (default .root.Chart.AppVersion $tag) -}}
{{- end -}}

{{/* The namespaced permissions the operator needs wherever it reconciles runs (Role or ClusterRole). */}}
{{- define "agentrun.namespacedRules" -}}
# The runs: watched, annotated by kopf (progress, finalizer), status written by the operator.
- apiGroups: [agentrun.dev]
  resources: [agenttrainingruns]
  verbs: [get, list, watch, patch]
- apiGroups: [agentrun.dev]
  resources: [agenttrainingruns/status]
  verbs: [get, patch]
# Events for every phase transition and failure.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create]
# blockOwnerDeletion on the children's owner references: the OwnerReferencesPermissionEnforcement
# admission plugin (on in OpenShift) asks for update of the owner's finalizers.
- apiGroups: [agentrun.dev]
  resources: [agenttrainingruns/finalizers]
  verbs: [update]
# Children, watched by label (the operator's index of them): Jobs and the claim are created once; the
# rest is server-side applied (patch; create for apply's first write) until it matches the spec.
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps, serviceaccounts]
  verbs: [list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [create, delete]
# Each run's own ServiceAccount, Role and RoleBinding (the Role grants only what the operator holds above).
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [list, watch, create, patch, delete]
{{- end -}}

{{/* kopf watches CustomResourceDefinitions to discover the resources it serves (read-only). */}}
{{- define "agentrun.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}
