{{/* Names, labels and the pieces every Whale pod shares. */}}

{{- define "whale.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "whale.fullname" -}}
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

{{- define "whale.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "whale.labels" -}}
helm.sh/chart: {{ include "whale.chart" . }}
{{ include "whale.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: whale
{{- end }}

{{- define "whale.selectorLabels" -}}
app.kubernetes.io/name: {{ include "whale.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "whale.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "whale.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "whale.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
The environment every Whale process reads through whale.settings.WhaleSettings: Kafka, Elasticsearch,
logging, cache. Credentials only ever come from existing Secrets (secretKeyRef).
*/}}
{{- define "whale.sharedEnv" -}}
{{- $k := .Values.kafka -}}
{{- $es := .Values.elasticsearch -}}
- name: WHALE_KAFKA_BOOTSTRAP
  value: {{ $k.bootstrap | quote }}
- name: WHALE_KAFKA_SECURITY_PROTOCOL
  value: {{ $k.securityProtocol | quote }}
{{- if hasPrefix "SASL_" $k.securityProtocol }}
- name: WHALE_KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: WHALE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.usernameKey }}
- name: WHALE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.existingSecret }}
      key: {{ $k.sasl.passwordKey }}
{{- end }}
{{- if $k.tls.caSecret }}
- name: WHALE_KAFKA_SSL_CA_LOCATION
  value: {{ printf "/etc/whale/kafka-ca/%s" $k.tls.caKey | quote }}
{{- end }}
- name: WHALE_ES_URL
  value: {{ $es.url | quote }}
{{- if $es.existingSecret }}
- name: WHALE_ES_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $es.existingSecret }}
      key: {{ $es.usernameKey }}
- name: WHALE_ES_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $es.existingSecret }}
      key: {{ $es.passwordKey }}
{{- end }}
- name: WHALE_LOG_LEVEL
  value: {{ .Values.logging.level | quote }}
- name: WHALE_LOG_FORMAT
  value: {{ .Values.logging.format | quote }}
- name: WHALE_CACHE_DIR
  value: /tmp/whale-cache
{{- end }}

{{/* Volumes every pod has: a writable /tmp, and the Kafka CA when configured. */}}
{{- define "whale.sharedVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: {{ .Values.kafka.tls.caKey }}
{{- end }}
{{- end }}

{{- define "whale.sharedMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/whale/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* An environment value as a string; whole numbers never in exponent form (1e+06). */}}
{{- define "whale.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) }}
{{- int64 . }}
{{- else }}
{{- toString . }}
{{- end }}
{{- end }}

{{/* The files of a config kind (file name -> content) as YAML: .Values.config.<kind>, or for
"adapters" the adapters' configuration (.Values.adapters.config) as adapters.yaml. */}}
{{- define "whale.configFiles" -}}
{{- if eq .kind "adapters" }}
{{- if not (empty .root.Values.adapters.config) }}
{{- dict "adapters.yaml" (toYaml .root.Values.adapters.config) | toYaml }}
{{- end }}
{{- else }}
{{- get .root.Values.config .kind | default dict | toYaml }}
{{- end }}
{{- end }}
