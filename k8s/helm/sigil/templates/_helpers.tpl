{{/* The chart name. */}}
{{- define "sigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The full name every resource starts with: <release>-sigil unless the
release name already holds the chart name. Kept to 47 characters so a
"-edge-token-http"-long suffix still fits DNS's 63. */}}
{{- define "sigil.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 47 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 47 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sigil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "sigil.labels" -}}
helm.sh/chart: {{ include "sigil.chart" . }}
{{ include "sigil.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sigil
{{- end }}

{{- define "sigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of one component: call with (dict "root" $ "component" "issuer"). */}}
{{- define "sigil.componentLabels" -}}
{{ include "sigil.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "sigil.componentSelectorLabels" -}}
{{ include "sigil.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The services of the chart, in one place: values key, component name,
binary, health name and gRPC port. Read with fromYamlArray. */}}
{{- define "sigil.services" -}}
- key: issuer
  component: issuer
  binary: sigil-issuer
  health: sigil.v1.IssuerService
  port: {{ .Values.ports.issuer }}
- key: validator
  component: validator
  binary: sigil-validator
  health: sigil.v1.ValidatorService
  port: {{ .Values.ports.validator }}
- key: edgeToken
  component: edge-token
  binary: sigil-edge-token
  health: sigil.v1.EdgeTokenService
  port: {{ .Values.ports.edgeToken }}
{{- end }}

{{/* The components that are enabled, as a list of names. */}}
{{- define "sigil.enabledComponents" -}}
{{- $enabled := list }}
{{- range (include "sigil.services" . | fromYamlArray) }}
{{- if (index $.Values .key).enabled }}
{{- $enabled = append $enabled .component }}
{{- end }}
{{- end }}
{{- toJson $enabled }}
{{- end }}

{{/* The image of one service: (dict "root" $ "service" $values). */}}
{{- define "sigil.image" -}}
{{- $repository := .service.image.repository | default .root.Values.image.repository }}
{{- $tag := .service.image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion }}
{{- printf "%s:%s" $repository $tag }}
{{- end }}

{{- define "sigil.secretName" -}}
{{- .Values.secret.existingSecret | default (printf "%s-secret" (include "sigil.fullname" .)) }}
{{- end }}

{{/* Whether a Redis password goes into SIGIL_REDIS_URL: never when the
whole URL comes from redis.urlSecret. */}}
{{- define "sigil.redisAuth" -}}
{{- if and .Values.redis.auth.enabled (not .Values.redis.urlSecret.name) }}true{{ end }}
{{- end }}

{{/* The volume of the CA for a TLS Redis (redis.ca), if any; fails when
both a Secret and a ConfigMap are named. */}}
{{- define "sigil.redisCaVolume" -}}
{{- $ca := .Values.redis.ca }}
{{- if and $ca.secretName $ca.configMapName }}
{{- fail "redis.ca takes a secretName or a configMapName, not both" }}
{{- else if $ca.secretName }}
{{- toYaml (dict "name" "redis-ca" "secret" (dict "secretName" $ca.secretName)) }}
{{- else if $ca.configMapName }}
{{- toYaml (dict "name" "redis-ca" "configMap" (dict "name" $ca.configMapName)) }}
{{- end }}
{{- end }}

{{/* Redis host and port: the bundled Service or the external host. Fails
at render time when neither is configured: the services are separate
processes and cannot share sessions without Redis. */}}
{{- define "sigil.redisHostPort" -}}
{{- if .Values.redis.bundled.enabled }}
{{- printf "%s-redis:6379" (include "sigil.fullname" .) }}
{{- else if .Values.redis.external.host }}
{{- printf "%s:%v" .Values.redis.external.host .Values.redis.external.port }}
{{- else }}
{{- fail "Sigil needs Redis: set redis.external.host (or redis.urlSecret.name), or redis.bundled.enabled=true to try it out" }}
{{- end }}
{{- end }}

{{/* SIGIL_REDIS_URL. The password is not in the manifest: Kubernetes
expands $(SIGIL_REDIS_PASSWORD) from the Secret-backed variable defined
just before it. */}}
{{- define "sigil.redisUrl" -}}
{{- $userinfo := "" }}
{{- $username := ternary "" .Values.redis.external.username .Values.redis.bundled.enabled }}
{{- if include "sigil.redisAuth" . }}
{{- $userinfo = printf "%s:$(SIGIL_REDIS_PASSWORD)@" $username }}
{{- else if $username }}
{{- $userinfo = printf "%s@" $username }}
{{- end }}
{{- $db := ternary 0 .Values.redis.external.db .Values.redis.bundled.enabled }}
{{- printf "redis://%s%s/%v" $userinfo (include "sigil.redisHostPort" .) $db }}
{{- end }}
