{{/* The chart's name (nameOverride wins). */}}
{{- define "modelstudio-controller.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The objects' name: the release name when it already holds the chart's name (the release
"modelstudio-controller" gives deploy/'s names), else <release>-<chart>; 63 characters at most.
*/}}
{{- define "modelstudio-controller.fullname" -}}
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

{{- define "modelstudio-controller.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects the pods: stable across upgrades. */}}
{{- define "modelstudio-controller.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelstudio-controller.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "modelstudio-controller.labels" -}}
helm.sh/chart: {{ include "modelstudio-controller.chart" . }}
{{ include "modelstudio-controller.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelstudio-controller
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "modelstudio-controller.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelstudio-controller.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount to run as when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "modelstudio-controller.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where the default API key's Secret is mounted. */}}
{{- define "modelstudio-controller.credentialsDir" -}}
/etc/modelstudio/credentials
{{- end }}
