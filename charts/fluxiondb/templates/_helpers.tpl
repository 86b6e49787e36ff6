{{/*
Naming, sizing and validation helpers of the fluxiondb chart. The sizing rule is the platform's
(src/platform/engines/fluxion.ts, fluxionResources); test/e2e/helm-fluxiondb.test.ts renders
this chart for many RAM sizes and asserts both agree.
*/}}

{{- define "fluxiondb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Resource-name prefix: fullnameOverride; else the release name when it already contains the chart
name; else "<release>-fluxiondb". At most 52 characters (the StatefulSet name limit).
*/}}
{{- define "fluxiondb.fullname" -}}
{{- $name := "" -}}
{{- if .Values.fullnameOverride -}}
{{- $name = .Values.fullnameOverride -}}
{{- else if contains (include "fluxiondb.name" .) .Release.Name -}}
{{- $name = .Release.Name -}}
{{- else -}}
{{- $name = printf "%s-%s" .Release.Name (include "fluxiondb.name" .) -}}
{{- end -}}
{{- $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}

{{- define "fluxiondb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "fluxiondb.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "fluxiondb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fluxiondb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fluxiondb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "fluxiondb.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "fluxiondb.secretName" -}}
{{- default (include "fluxiondb.fullname" .) .Values.secret.name -}}
{{- end -}}

{{- define "fluxiondb.claimName" -}}
{{- default (printf "%s-data" (include "fluxiondb.fullname" .)) .Values.persistence.existingClaim -}}
{{- end -}}

{{- define "fluxiondb.image" -}}
{{- $repo := .Values.image.repository -}}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry $repo }}{{ end -}}
{{- if .Values.image.digest -}}
{{ $repo }}@{{ .Values.image.digest }}
{{- else -}}
{{ $repo }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Service host inside the cluster. */}}
{{- define "fluxiondb.serviceHost" -}}
{{ include "fluxiondb.fullname" . }}.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end -}}

{{/* The port fluxiond listens on inside the pod (a fixed unprivileged port; the Service maps service.port to it). */}}
{{- define "fluxiondb.containerPort" -}}8080{{- end -}}

{{/*
Bytes of a whole-number quantity ("512Mi", "2Gi", "1G", "268435456"): the forms the platform
writes (src/platform/engines/quantity.ts formatBytes never writes fractions). Fails on others.
Argument: (list <quantity> <value name>).
*/}}
{{- define "fluxiondb.bytes" -}}
{{- $q := toString (index . 0) -}}
{{- $what := index . 1 -}}
{{- if not (regexMatch "^[0-9]+(Ki|Mi|Gi|Ti|k|M|G|T)?$" $q) -}}
{{- fail (printf "%s %q is not a whole-number quantity: use e.g. 512Mi, 2Gi or 1G (units Ki Mi Gi Ti k M G T)" $what $q) -}}
{{- end -}}
{{- $digits := regexFind "^[0-9]+" $q -}}
{{- $unit := trimPrefix $digits $q -}}
{{- $factor := dict "none" 1 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 -}}
{{- mul (int64 $digits) (get $factor (default "none" $unit)) -}}
{{- end -}}

{{/*
Canonical spelling of a byte count in the family of the unit it came from (binary: the largest
of Ti Gi Mi Ki that divides it; decimal: of T G M k), as formatBytes does.
Argument: (list <bytes> <"binary"|"decimal">).
*/}}
{{- define "fluxiondb.formatBytes" -}}
{{- $bytes := int64 (index . 0) -}}
{{- $units := list (list "Ti" 1099511627776) (list "Gi" 1073741824) (list "Mi" 1048576) (list "Ki" 1024) -}}
{{- if eq (index . 1) "decimal" -}}
{{- $units = list (list "T" 1000000000000) (list "G" 1000000000) (list "M" 1000000) (list "k" 1000) -}}
{{- end -}}
{{- $out := toString $bytes -}}
{{- range $u := $units -}}
{{- if and (eq $out (toString $bytes)) (gt $bytes 0) (eq (mod $bytes (index $u 1)) 0) -}}
{{- $out = printf "%d%s" (div $bytes (index $u 1)) (index $u 0) -}}
{{- end -}}
{{- end -}}
{{- $out -}}
{{- end -}}

{{/*
The platform's sizing rule (fluxionResources in src/platform/engines/fluxion.ts) for sizing.ram,
as a YAML dict: memory, storage, cpuRequest, cpuLimit.
  storage     = 2 x ram
  cpu request = clamp(ceil(250m x ram / 1Gi), 250m, 4000m)
  cpu limit   = min(4 x request, 8000m)
*/}}
{{- define "fluxiondb.sizing" -}}
{{- $ram := toString .Values.sizing.ram -}}
{{- $bytes := int64 (include "fluxiondb.bytes" (list $ram "sizing.ram")) -}}
{{- if or (lt $bytes 268435456) (gt $bytes 68719476736) -}}
{{- fail (printf "sizing.ram must be between 256Mi and 64Gi; got %q" $ram) -}}
{{- end -}}
{{- $family := ternary "decimal" "binary" (regexMatch "[kMGT]$" $ram) -}}
{{- $proportional := div (add (mul $bytes 250) 1073741823) 1073741824 -}}
{{- $request := min 4000 (max 250 $proportional) -}}
{{- $limit := min 8000 (mul 4 $request) -}}
memory: {{ include "fluxiondb.formatBytes" (list $bytes $family) | quote }}
storage: {{ include "fluxiondb.formatBytes" (list (mul 2 $bytes) $family) | quote }}
cpuRequest: {{ printf "%dm" $request | quote }}
cpuLimit: {{ printf "%dm" $limit | quote }}
{{- end -}}

{{/* Container resources: derived from sizing.ram when set, otherwise .Values.resources. */}}
{{- define "fluxiondb.resources" -}}
{{- if .Values.sizing.ram -}}
{{- $s := include "fluxiondb.sizing" . | fromYaml -}}
requests:
  memory: {{ $s.memory | quote }}
  cpu: {{ $s.cpuRequest | quote }}
limits:
  memory: {{ $s.memory | quote }}
  cpu: {{ $s.cpuLimit | quote }}
{{- else -}}
{{- toYaml .Values.resources -}}
{{- end -}}
{{- end -}}

{{/* Size of the data claim: 2 x sizing.ram when set, otherwise persistence.size. */}}
{{- define "fluxiondb.storage" -}}
{{- if .Values.sizing.ram -}}
{{- (include "fluxiondb.sizing" . | fromYaml).storage -}}
{{- else -}}
{{- .Values.persistence.size -}}
{{- end -}}
{{- end -}}

{{/* fluxiond's --max-memory: the container's memory limit (the platform passes --max-memory=<ram>). */}}
{{- define "fluxiondb.maxMemory" -}}
{{- $r := include "fluxiondb.resources" . | fromYaml -}}
{{- dig "limits" "memory" "" $r -}}
{{- end -}}

{{/*
Refusals, with messages that say what to pass. values.schema.json refuses most of these too;
these cover `helm --skip-schema-validation` and rules the schema cannot express.
*/}}
{{- define "fluxiondb.validate" -}}
{{- if ne (int .Values.replicaCount) 1 -}}
{{- fail (printf "replicaCount must be 1 (got %v): Fluxion keeps its data in one process's memory plus its write-ahead log and scales vertically only; change sizing.ram (or resources and persistence.size) instead" .Values.replicaCount) -}}
{{- end -}}
{{- if .Values.secret.create -}}
{{- $key := toString .Values.secret.secretKey -}}
{{- if eq $key "" -}}
{{- fail "secret.secretKey is required when secret.create=true: pass the master API key with --set secret.secretKey=<16 to 256 printable ASCII characters>, or use an existing Secret with --set secret.create=false --set secret.name=<secret>" -}}
{{- end -}}
{{- if or (lt (len $key) 16) (gt (len $key) 256) -}}
{{- fail (printf "secret.secretKey must be 16 to 256 characters; got %d" (len $key)) -}}
{{- end -}}
{{- if not (regexMatch "^[!-~]+$" $key) -}}
{{- fail "secret.secretKey must be printable ASCII without whitespace" -}}
{{- end -}}
{{- else if not .Values.secret.name -}}
{{- fail "secret.name is required when secret.create=false: pass --set secret.name=<existing Secret> whose key secret.dataKey (default secret-key) holds the master API key" -}}
{{- end -}}
{{- range .Values.persistence.accessModes -}}
{{- if ne . "ReadWriteOnce" -}}
{{- fail (printf "persistence.accessModes must be [ReadWriteOnce]; got %s: fluxiond is the only writer of its data directory" .) -}}
{{- end -}}
{{- end -}}
{{- if .Values.sizing.ram -}}
{{- $_ := include "fluxiondb.sizing" . -}}
{{- end -}}
{{- $maxMemory := include "fluxiondb.maxMemory" . -}}
{{- if and $maxMemory (not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$" $maxMemory)) -}}
{{- fail (printf "resources.limits.memory %q cannot be fluxiond's --max-memory: use a size such as 512Mi, 2Gi or 1G" $maxMemory) -}}
{{- end -}}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" (include "fluxiondb.fullname" .)) -}}
{{- fail (printf "name %q must be a DNS label of at most 52 characters" (include "fluxiondb.fullname" .)) -}}
{{- end -}}
{{- end -}}
