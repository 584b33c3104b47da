{{/* Names and labels shared by every manifest of the chart. */}}
{{- define "atbb.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "atbb.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "atbb.instanceLabels" -}}
app.kubernetes.io/name: {{ include "atbb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The app's pods only: the migration Job's pod has component=migrate, so no Service sends it traffic. */}}
{{- define "atbb.selectorLabels" -}}
{{ include "atbb.instanceLabels" . }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "atbb.labels" -}}
{{ include "atbb.selectorLabels" . }}
app.kubernetes.io/version: {{ (.Values.image.tag | default .Chart.AppVersion) | toString | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "atbb.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/*
The checks values.schema.json cannot express, so `helm template` and `helm install` fail with one line
instead of rendering a chart that cannot work. `inv helm --values FILE` makes the same checks.
*/}}
{{- define "atbb.validate" -}}
{{- if not .Values.existingSecret -}}
{{- fail "existingSecret: name the Secret you created with the app's variables (kubectl create secret generic atbb-env --from-env-file=.env)" -}}
{{- end -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.stickySessions.enabled) -}}
{{- fail "replicaCount > 1 needs stickySessions.enabled=true: atBB keeps sessions and the firehose consumer per process (see the chart README)" -}}
{{- end -}}
{{- $underRoute := false -}}
{{- range .Values.probes.routePrefixes -}}
{{- if hasPrefix . $.Values.probes.path -}}{{- $underRoute = true -}}{{- end -}}
{{- end -}}
{{- if not $underRoute -}}
{{- fail (printf "probes.path %s is not under a route of the health service (%s)" .Values.probes.path (join ", " .Values.probes.routePrefixes)) -}}
{{- end -}}
{{- end -}}

{{/* The pod's security settings, shared by the app and the migration Job. */}}
{{- define "atbb.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "atbb.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}
