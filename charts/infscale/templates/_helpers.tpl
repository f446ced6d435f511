{{- define "infscale.labels" -}}
app.kubernetes.io/name: infscale
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "infscale.selector" -}}
app.kubernetes.io/name: infscale
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
