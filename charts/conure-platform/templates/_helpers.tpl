{{/* Naming, store and validation helpers of the conure-platform chart. */}}

{{- define "platform.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* fullnameOverride; else the release name when it contains the chart name; else "<release>-conure-platform". */}}
{{- define "platform.fullname" -}}
{{- $name := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $name = .Values.fullnameOverride -}}
{{- else if contains (include "platform.name" .) .Release.Name -}}
{{- $name = .Release.Name -}}
{{- else -}}
{{- $name = printf "%s-%s" .Release.Name (include "platform.name" .) -}}
{{- end -}}
{{- $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "platform.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "platform.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "platform.selectorLabels" -}}
app.kubernetes.io/name: {{ include "platform.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: control-plane
{{- end -}}

{{- define "platform.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "platform.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "platform.secretName" -}}
{{- default (printf "%s-admin" (include "platform.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "platform.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{- if .Values.image.digest -}}
{{ $repo }}@{{ .Values.image.digest }}
{{- else -}}
{{ $repo }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{- define "platform.serviceHost" -}}
{{ include "platform.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/*
PLATFORM_STORE_ENDPOINTS, comma-separated etcd v3 endpoints:
- embedded store: the ConureDB chart's client service (ready voters only) on its etcd gRPC port,
  named as that chart names it ("conuredb.fullname" with the dependency's values);
- otherwise store.endpoints.
*/}}
{{- define "platform.storeEndpoints" -}}
{{- if .Values.store.embedded.enabled -}}
{{- $db := .Values.conuredb -}}
http://{{ include "platform.storeFullname" . }}.{{ .Release.Namespace }}.svc.{{ $db.clusterDomain }}:{{ $db.service.etcdPort }}
{{- else -}}
{{- join "," .Values.store.endpoints -}}
{{- end -}}
{{- end -}}

{{/* Name prefix of the embedded store's objects: charts/conuredb's own naming helper on its values. */}}
{{- define "platform.storeFullname" -}}
{{- include "conuredb.fullname" (dict "Values" .Values.conuredb "Release" .Release) -}}
{{- end -}}

{{/* Whether to render the ValidatingAdmissionPolicy (rbac.admissionPolicy: auto|true|false). */}}
{{- define "platform.admissionPolicy" -}}
{{- $mode := toString .Values.rbac.admissionPolicy -}}
{{- if and .Values.rbac.create (or (eq $mode "true") (and (eq $mode "auto") (.Capabilities.APIVersions.Has "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"))) -}}true{{- end -}}
{{- end -}}

{{- define "platform.validate" -}}
{{- if .Values.store.embedded.enabled -}}
{{- if .Values.store.endpoints -}}
{{- fail "store.endpoints is set while store.embedded.enabled=true: choose one; for an external store pass --set store.embedded.enabled=false --set store.endpoints={http://host:2379,...}" -}}
{{- end -}}
{{- else if not .Values.store.endpoints -}}
{{- fail "store.endpoints is required when store.embedded.enabled=false: pass --set store.endpoints={http://host:2379,...} (the etcd v3 endpoints of a ConureDB or etcd cluster)" -}}
{{- end -}}
{{- range .Values.store.endpoints -}}
{{- if not (regexMatch "^(https?://)?[A-Za-z0-9.-]+:[0-9]+$" .) -}}
{{- fail (printf "store.endpoints: %q is not host:port or http(s)://host:port" .) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.auth.adminToken .Values.auth.existingSecret -}}
{{- fail "auth.adminToken and auth.existingSecret are both set: the token comes from one Secret; drop one" -}}
{{- end -}}
{{- if and .Values.auth.adminToken (lt (len (toString .Values.auth.adminToken)) 16) -}}
{{- fail "auth.adminToken must be at least 16 characters" -}}
{{- end -}}
{{- end -}}

{{/* The image tenant instances run (PLATFORM_K8S_IMAGE): instances.image, else the platform's own image. */}}
{{- define "platform.instanceImage" -}}
{{- $i := .Values.instances.image -}}
{{- if $i.repository -}}
{{- $repo := $i.repository -}}
{{- if $i.registry }}{{ $repo = printf "%s/%s" $i.registry $repo }}{{ end -}}
{{ $repo }}:{{ default .Chart.AppVersion $i.tag }}
{{- else -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{ $repo }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}
