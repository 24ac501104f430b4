{{- define "trackrec.labels" -}}
app.kubernetes.io/part-of: trackrec
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pod-level security: Pod Security "restricted". */}}
{{- define "trackrec.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "trackrec.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* host:port of the online store; the password is ${REDIS_PASSWORD}, read from the Secret at run time. */}}
{{- define "trackrec.redisConnection" -}}
{{- if .Values.redis.enabled -}}
{{ printf "redis.%s.svc.cluster.local:6379,password=${REDIS_PASSWORD}" .Release.Namespace }}
{{- else -}}
{{ printf "%s:%v,password=${REDIS_PASSWORD}%s" (required "redis.external.host is required when redis.enabled is false" .Values.redis.external.host) .Values.redis.external.port (ternary ",ssl=true" "" .Values.redis.external.ssl) }}
{{- end -}}
{{- end -}}

{{/* The feature store every writer opens (trackrec.features.store.StoreConfig, YAML): the publish stage
through the overrides and the features Job; pipeline.config's features.store wins where it sets a key. */}}
{{- define "trackrec.featureStore" -}}
{{- $store := dict
      "online" "redis"
      "redis" (include "trackrec.redisConnection" .)
      "offline" (printf "s3://%s/features" .Values.s3.bucket)
      "registry" (printf "s3://%s/features/registry.db" .Values.s3.bucket)
      "s3_endpoint" (.Values.s3.endpoint | default nil) -}}
{{- $configured := dig "features" "store" (dict) .Values.pipeline.config -}}
{{- mergeOverwrite $store (deepCopy $configured) | toYaml -}}
{{- end -}}

{{- define "trackrec.s3Env" -}}
{{- if not .Values.s3.workloadIdentity.enabled }}
- name: AWS_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ .Values.s3.existingSecret }}, key: AWS_ACCESS_KEY_ID}}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ .Values.s3.existingSecret }}, key: AWS_SECRET_ACCESS_KEY}}
{{- end }}
{{- with .Values.s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
- name: FEAST_S3_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Where pipeline runs execute: the profile namespace of a multi-user Kubeflow, else standalone
KFP's own namespace (where it runs every workflow). */}}
{{- define "trackrec.runNamespace" -}}
{{ .Values.kfp.namespace | default .Values.kfp.apiNamespace }}
{{- end -}}

{{/* Where the register Job runs: in multi-user Kubeflow the profile namespace, which kubeflow/manifests'
NetworkPolicy ml-pipeline admits (namespaces labelled app.kubernetes.io/part-of=kubeflow-profile); else
the release's. */}}
{{- define "trackrec.registerNamespace" -}}
{{ .Values.kfp.namespace | default .Release.Namespace }}
{{- end -}}

{{/* host:port of the online store, without options: what a run may reach. */}}
{{- define "trackrec.redisAddress" -}}
{{ include "trackrec.redisConnection" . | splitList "," | first }}
{{- end -}}

{{/* Egress to DNS: every pod that names a host needs it. */}}
{{- define "trackrec.egressDNS" -}}
- to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: {{ .Values.egress.dns.namespace }}}
      podSelector:
        matchLabels: {{ .Values.egress.dns.podLabels | toJson }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end -}}

{{/* Egress rules for a list of {cidr | namespace (+ podLabels)}, ports. */}}
{{- define "trackrec.egressTo" -}}
{{- range . }}
- to:
    {{- if .cidr }}
    - ipBlock: {cidr: {{ .cidr }}}
    {{- else }}
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: {{ .namespace }}}
      {{- with .podLabels }}
      podSelector:
        matchLabels: {{ . | toJson }}
      {{- end }}
    {{- end }}
  ports:
    {{- range .ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- end -}}

{{/* Egress to the in-cluster Redis, or to the external one's addresses. */}}
{{- define "trackrec.egressRedis" -}}
{{- if .Values.redis.enabled }}
- to:
    - namespaceSelector:
        matchLabels: {kubernetes.io/metadata.name: {{ .Release.Namespace }}}
      podSelector:
        matchLabels: {app.kubernetes.io/name: redis}
  ports:
    - {port: 6379, protocol: TCP}
{{- else }}
{{- include "trackrec.egressTo" .Values.egress.redis }}
{{- end }}
{{- end -}}
