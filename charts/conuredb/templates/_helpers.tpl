{{/*
Naming and topology helpers. The topology rules mirror src/planner/topology.ts
(planTopology); test/e2e/helm-chart.test.ts asserts both agree.
*/}}

{{/* Chart name for the app.kubernetes.io/name label. */}}
{{- define "conuredb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Resource-name prefix (planner: chartFullname): fullnameOverride; else "conure" for a release
named conure or conuredb; else "<release>-conure". At most 40 characters so that
"<fullname>-bootstrap" fits the 52-character StatefulSet name limit.
*/}}
{{- define "conuredb.fullname" -}}
{{- $name := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $name = .Values.fullnameOverride -}}
{{- else if or (eq .Release.Name "conure") (eq .Release.Name "conuredb") -}}
{{- $name = "conure" -}}
{{- else -}}
{{- $name = printf "%s-conure" .Release.Name -}}
{{- end -}}
{{- $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "conuredb.bootstrapName" -}}{{ include "conuredb.fullname" . }}-bootstrap{{- end -}}
{{- define "conuredb.votersName" -}}{{ include "conuredb.fullname" . }}{{- end -}}
{{- define "conuredb.arbiterName" -}}{{ include "conuredb.fullname" . }}-arbiter{{- end -}}
{{- define "conuredb.headlessName" -}}{{ include "conuredb.fullname" . }}-hs{{- end -}}
{{- define "conuredb.topologyName" -}}{{ include "conuredb.fullname" . }}-topology{{- end -}}
{{- define "conuredb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "conuredb.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{/* Number of arbiters (planner: arbiterCount). */}}
{{- define "conuredb.arbiterReplicas" -}}
{{- $voters := int .Values.voters.replicas -}}
{{- if eq .Values.arbiter.mode "always" -}}1
{{- else if and (eq .Values.arbiter.mode "auto") (eq (mod $voters 2) 0) -}}1
{{- else -}}0
{{- end -}}
{{- end -}}

{{/* Total raft membership, quorum (strict majority). */}}
{{- define "conuredb.memberCount" -}}{{ add (int .Values.voters.replicas) (int (include "conuredb.arbiterReplicas" .)) }}{{- end -}}
{{- define "conuredb.quorum" -}}{{ add (div (int (include "conuredb.memberCount" .)) 2) 1 }}{{- end -}}

{{/*
Refuses specs the planner refuses, with the planner's messages. The schema already rejects
bad types and out-of-range numbers; this covers the rules that span several values.
*/}}
{{- define "conuredb.validate" -}}
{{- $voters := int .Values.voters.replicas -}}
{{- if lt $voters 1 -}}
{{- fail (printf "voters.replicas must be a whole number >= 1 (it counts the bootstrap pod); got %d" $voters) -}}
{{- end -}}
{{- if gt $voters 15 -}}
{{- fail (printf "voters.replicas must be <= 15; got %d" $voters) -}}
{{- end -}}
{{- if not (has .Values.arbiter.mode (list "auto" "always" "never")) -}}
{{- fail (printf "arbiter.mode must be auto, always or never; got %q" .Values.arbiter.mode) -}}
{{- end -}}
{{- $members := int (include "conuredb.memberCount" .) -}}
{{- if and (eq (mod $members 2) 0) (eq .Values.arbiter.mode "never") (not .Values.unsafe.allowEvenMembers) -}}
{{- fail (printf "voters.replicas=%d with arbiter.mode=never gives an even membership of %d, which tolerates no more failures than %d members; use an odd voter count, arbiter.mode=auto, or set unsafe.allowEvenMembers=true" $voters $members (sub $members 1)) -}}
{{- end -}}
{{- $fullname := include "conuredb.fullname" . -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $fullname) -}}
{{- fail (printf "name %q must be a DNS label of at most 40 characters" $fullname) -}}
{{- end -}}
{{- end -}}

{{/* Warnings printed by NOTES.txt (planner: warnings). One per line. */}}
{{- define "conuredb.warnings" -}}
{{- $members := int (include "conuredb.memberCount" .) -}}
{{- if eq (mod $members 2) 0 }}
WARNING: even membership ({{ $members }} members, quorum {{ include "conuredb.quorum" . }}) tolerates no more failures than {{ sub $members 1 }} members
{{- end }}
{{- if and (eq (int .Values.voters.replicas) 1) (eq (int (include "conuredb.arbiterReplicas" .)) 0) }}
WARNING: a single member has no redundancy: losing its volume loses the data
{{- end }}
{{- end -}}

{{- define "conuredb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "conuredb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selects every pod of the release (headless service, PDB). */}}
{{- define "conuredb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "conuredb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "conuredb.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{- if .Values.image.digest -}}
{{ $repo }}@{{ .Values.image.digest }}
{{- else -}}
{{ $repo }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* DNS name of a pod through the headless service: <pod>.<hs>.<ns>.svc.<domain> */}}
{{- define "conuredb.podHost" -}}
{{- $ctx := index . 0 -}}{{- $pod := index . 1 -}}
{{ $pod }}.{{ include "conuredb.headlessName" $ctx }}.{{ $ctx.Release.Namespace }}.svc.{{ $ctx.Values.clusterDomain }}
{{- end -}}

{{/* Client service URL. */}}
{{- define "conuredb.clientUrl" -}}
http://{{ include "conuredb.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}:{{ .Values.service.httpPort }}
{{- end -}}

{{/* Bootstrap pod URL. */}}
{{- define "conuredb.bootstrapUrl" -}}
http://{{ include "conuredb.podHost" (list . (printf "%s-0" (include "conuredb.bootstrapName" .))) }}:{{ .Values.service.httpPort }}
{{- end -}}

{{/* Join seeds: join.seeds, or the bootstrap pod and the client service. */}}
{{- define "conuredb.joinSeeds" -}}
{{- if .Values.join.seeds -}}
{{ join "," .Values.join.seeds }}
{{- else -}}
{{ include "conuredb.bootstrapUrl" . }},{{ include "conuredb.clientUrl" . }}
{{- end -}}
{{- end -}}

{{/* conurectl endpoints for hooks and preStop: the client service, then the bootstrap pod. */}}
{{- define "conuredb.clusterEndpoints" -}}
{{ include "conuredb.clientUrl" . }},{{ include "conuredb.bootstrapUrl" . }}
{{- end -}}

{{/* Restricted security context of every ConureDB container. */}}
{{- define "conuredb.containerSecurityContext" -}}
runAsNonRoot: {{ .Values.security.runAsNonRoot }}
runAsUser: {{ .Values.security.runAsUser }}
runAsGroup: {{ .Values.security.runAsGroup }}
readOnlyRootFilesystem: {{ .Values.security.readOnlyRootFilesystem }}
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "conuredb.podSecurityContext" -}}
runAsNonRoot: {{ .Values.security.runAsNonRoot }}
runAsUser: {{ .Values.security.runAsUser }}
runAsGroup: {{ .Values.security.runAsGroup }}
fsGroup: {{ .Values.security.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/*
Peer authentication (peerAuth.*): the Secret holding the cluster secret (peerAuth.existingSecret,
else the chart's "<fullname>-peer"), and where every container that needs it finds the file.
*/}}
{{- define "conuredb.peerSecretName" -}}
{{- default (printf "%s-peer" (include "conuredb.fullname" .)) .Values.peerAuth.existingSecret -}}
{{- end -}}
{{- define "conuredb.peerSecretDir" -}}/etc/conure/peer{{- end -}}
{{- define "conuredb.peerSecretFile" -}}{{ include "conuredb.peerSecretDir" . }}/{{ .Values.peerAuth.secretKey }}{{- end -}}

{{/* CONURE_PEER_SECRET_FILE for conurectl (list item of a container's env), when peerAuth.enabled. */}}
{{- define "conuredb.peerSecretEnv" -}}
- name: CONURE_PEER_SECRET_FILE
  value: {{ include "conuredb.peerSecretFile" . | quote }}
{{- end -}}

{{/* The read-only mount of the cluster secret (list item of volumeMounts). */}}
{{- define "conuredb.peerSecretMount" -}}
- name: peer-secret
  mountPath: {{ include "conuredb.peerSecretDir" . }}
  readOnly: true
{{- end -}}

{{/*
The Secret volume (list item of volumes); argument (list <context> <optional>). Only the one
key, mode 0400 (256): the kubelet gives the file to the pod's fsGroup (group-readable), so the
non-root process reads it. Members mount it required: a member without the secret cannot join
its cluster. The pre-upgrade hook mounts it optional: on the upgrade that turns peerAuth on, the
hook runs before the chart's Secret exists, against members that still run without it.
*/}}
{{- define "conuredb.peerSecretVolume" -}}
{{- $ctx := index . 0 -}}
- name: peer-secret
  secret:
    secretName: {{ include "conuredb.peerSecretName" $ctx }}
    defaultMode: 256
    items:
      - key: {{ $ctx.Values.peerAuth.secretKey }}
        path: {{ $ctx.Values.peerAuth.secretKey }}
    {{- if index . 1 }}
    optional: true
    {{- end }}
{{- end -}}

{{/* The claim the backups go to (and a restore reads from by default). */}}
{{- define "conuredb.backupClaim" -}}
{{- (.Values.backup | default dict).existingClaim | default (printf "%s-backup" (include "conuredb.fullname" .)) -}}
{{- end -}}

{{/* The claim restore.fromBackup reads from. */}}
{{- define "conuredb.restoreClaim" -}}
{{- (.Values.restore | default dict).claim | default (include "conuredb.backupClaim" .) -}}
{{- end -}}
