{{/* The release's base name, at most 63 characters. */}}
{{- define "tracekeeper.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tracekeeper.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "tracekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "tracekeeper.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "collector") */}}
{{- define "tracekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tracekeeper.labels" -}}
{{ include "tracekeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{/* HTTPS when the listeners serve TLS. */}}
{{- define "tracekeeper.scheme" -}}
{{- if .Values.serving.tls.existingSecret -}}HTTPS{{- else -}}HTTP{{- end -}}
{{- end -}}

{{/* Flags of the serving layer (TLS, auth), files from their Secrets. */}}
{{- define "tracekeeper.servingArgs" -}}
{{- with .Values.serving.tls }}
{{- if .existingSecret }}
- --tls-cert=/etc/tracekeeper/serving-tls/{{ .certKey }}
- --tls-key=/etc/tracekeeper/serving-tls/{{ .keyKey }}
{{- if .clientCaKey }}
- --tls-client-ca=/etc/tracekeeper/serving-tls/{{ .clientCaKey }}
{{- end }}
{{- end }}
{{- end }}
{{- if .Values.serving.auth.existingSecret }}
- --auth-tokens-file=/etc/tracekeeper/auth/{{ .Values.serving.auth.key }}
{{- end }}
{{- end -}}

{{- define "tracekeeper.kafkaArgs" -}}
{{- with .Values.kafka }}
- --kafka-brokers={{ .brokers }}
- --kafka-security-protocol={{ .securityProtocol }}
{{- if .sasl.mechanism }}
- --kafka-sasl-mechanism={{ .sasl.mechanism }}
- --kafka-sasl-username={{ .sasl.username }}
{{- end }}
{{- if .sasl.existingSecret }}
- --kafka-sasl-password-file=/etc/tracekeeper/kafka-sasl/{{ .sasl.passwordKey }}
{{- end }}
{{- if .tls.existingSecret }}
- --kafka-tls-ca=/etc/tracekeeper/kafka-tls/{{ .tls.caKey }}
{{- if .tls.certKey }}
- --kafka-tls-cert=/etc/tracekeeper/kafka-tls/{{ .tls.certKey }}
- --kafka-tls-key=/etc/tracekeeper/kafka-tls/{{ .tls.keyKey }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "tracekeeper.cqlArgs" -}}
{{- with .Values.cql }}
- --cql-nodes={{ .nodes }}
- --keyspace={{ .keyspace }}
{{- if .username }}
- --cql-username={{ .username }}
{{- end }}
{{- if .existingSecret }}
- --cql-password-file=/etc/tracekeeper/cql-password/{{ .passwordKey }}
{{- end }}
{{- if .localDatacenter }}
- --cql-local-datacenter={{ .localDatacenter }}
{{- end }}
{{- if .tls.existingSecret }}
- --cql-tls-ca=/etc/tracekeeper/cql-tls/{{ .tls.caKey }}
{{- if .tls.certKey }}
- --cql-tls-cert=/etc/tracekeeper/cql-tls/{{ .tls.certKey }}
- --cql-tls-key=/etc/tracekeeper/cql-tls/{{ .tls.keyKey }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
The Secrets a role reads, as (name, secret) pairs: (dict "root" $ "needs" (list "serving" "kafka" "cql")).
*/}}
{{- define "tracekeeper.secretMounts" -}}
{{- $v := .root.Values -}}
{{- $mounts := list -}}
{{- if has "serving" .needs -}}
{{- if $v.serving.tls.existingSecret }}{{ $mounts = append $mounts (list "serving-tls" $v.serving.tls.existingSecret) }}{{ end -}}
{{- if $v.serving.auth.existingSecret }}{{ $mounts = append $mounts (list "auth" $v.serving.auth.existingSecret) }}{{ end -}}
{{- end -}}
{{- if has "kafka" .needs -}}
{{- if $v.kafka.sasl.existingSecret }}{{ $mounts = append $mounts (list "kafka-sasl" $v.kafka.sasl.existingSecret) }}{{ end -}}
{{- if $v.kafka.tls.existingSecret }}{{ $mounts = append $mounts (list "kafka-tls" $v.kafka.tls.existingSecret) }}{{ end -}}
{{- end -}}
{{- if has "cql" .needs -}}
{{- if $v.cql.existingSecret }}{{ $mounts = append $mounts (list "cql-password" $v.cql.existingSecret) }}{{ end -}}
{{- if $v.cql.tls.existingSecret }}{{ $mounts = append $mounts (list "cql-tls" $v.cql.tls.existingSecret) }}{{ end -}}
{{- end -}}
{{- toJson $mounts -}}
{{- end -}}

{{- define "tracekeeper.volumeMounts" -}}
{{- range (include "tracekeeper.secretMounts" . | fromJsonArray) }}
- name: {{ index . 0 }}
  mountPath: /etc/tracekeeper/{{ index . 0 }}
  readOnly: true
{{- end }}
{{- end -}}

{{- define "tracekeeper.volumes" -}}
{{- range (include "tracekeeper.secretMounts" . | fromJsonArray) }}
- name: {{ index . 0 }}
  secret:
    secretName: {{ index . 1 }}
    defaultMode: 0440
{{- end }}
{{- end -}}

{{/*
One role's Deployment, Service and PodDisruptionBudget:
(dict "root" $ "component" "query" "values" .Values.query "args" (list ...)
      "ports" (list (list "query" 16686)) "readyPort" "query" "needs" (list "serving" "cql"))
*/}}
{{- define "tracekeeper.role" -}}
{{- $root := .root -}}
{{- $name := printf "%s-%s" (include "tracekeeper.fullname" $root) .component -}}
{{- $labels := dict "root" $root "component" .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "tracekeeper.labels" $labels | nindent 4 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ .values.replicas }}
  {{- end }}
  selector:
    matchLabels:
      {{- include "tracekeeper.selectorLabels" $labels | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "tracekeeper.selectorLabels" $labels | nindent 8 }}
      {{- with $root.Values.podAnnotations }}
      annotations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    spec:
      serviceAccountName: {{ include "tracekeeper.serviceAccountName" $root }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: {{ .component }}
          image: {{ include "tracekeeper.image" $root }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args:
            {{- toYaml .args | nindent 12 }}
            {{- with .values.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- range .ports }}
            - name: {{ index . 0 }}
              containerPort: {{ index . 1 }}
              protocol: TCP
            {{- end }}
          {{- include "tracekeeper.probes" (dict "root" $root "port" .readyPort "delay" 30) | nindent 10 }}
          resources:
            {{- toYaml .values.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          {{- with include "tracekeeper.volumeMounts" (dict "root" $root "needs" .needs) }}
          volumeMounts:
            {{- . | trim | nindent 12 }}
          {{- end }}
      {{- with include "tracekeeper.volumes" (dict "root" $root "needs" .needs) }}
      volumes:
        {{- . | trim | nindent 8 }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "tracekeeper.labels" $labels | nindent 4 }}
spec:
  type: {{ (.values.service).type | default "ClusterIP" }}
  selector:
    {{- include "tracekeeper.selectorLabels" $labels | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ index . 0 }}
      port: {{ index . 1 }}
      targetPort: {{ index . 0 }}
      protocol: TCP
    {{- end }}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ $name }}
  labels:
    {{- include "tracekeeper.labels" $labels | nindent 4 }}
spec:
  {{- toYaml .values.podDisruptionBudget | nindent 2 }}
  selector:
    matchLabels:
      {{- include "tracekeeper.selectorLabels" $labels | nindent 6 }}
{{- end -}}

{{/*
Readiness and liveness on /ready. Under mutual TLS the kubelet has no client
certificate to present, so the probes only open the port.
*/}}
{{- define "tracekeeper.probes" -}}
{{- $tls := .root.Values.serving.tls -}}
{{- range $probe := list "readinessProbe" "livenessProbe" }}
{{ $probe }}:
  {{- if and $tls.existingSecret $tls.clientCaKey }}
  tcpSocket:
    port: {{ $.port }}
  {{- else }}
  httpGet:
    path: /ready
    port: {{ $.port }}
    scheme: {{ include "tracekeeper.scheme" $.root }}
  {{- end }}
  {{- if eq $probe "readinessProbe" }}
  periodSeconds: 5
  failureThreshold: 3
  {{- else }}
  initialDelaySeconds: {{ $.delay }}
  periodSeconds: 10
  failureThreshold: 6
  {{- end }}
{{- end }}
{{- end -}}
