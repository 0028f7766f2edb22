{{/* Names, labels and the pod template shared by the three services. */}}

{{- define "revenge-scrobble.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "revenge-scrobble.name" -}}
{{- printf "%s-%s" (include "revenge-scrobble.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "revenge-scrobble.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "revenge-scrobble.labels" -}}
{{ include "revenge-scrobble.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "revenge-scrobble.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" .root.Values.image.repositoryPrefix .image $tag -}}
{{- end -}}

{{/* A variable from the operator's Secret. */}}
{{- define "revenge-scrobble.secretEnv" -}}
- name: {{ .key }}
  valueFrom:
    secretKeyRef:
      name: {{ .root.Values.secret.name }}
      key: {{ .key }}
      optional: {{ .optional }}
{{- end -}}

{{/* Environment of a component: the ConfigMap, then the secrets it needs. */}}
{{- define "revenge-scrobble.env" -}}
{{- $root := .root -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secret.name }}
      key: DATABASE_URL
{{- if has .component (list "dispatcher" "gateway") }}
{{ include "revenge-scrobble.secretEnv" (dict "root" $root "key" "TOKEN_ENCRYPTION_KEY" "optional" false) }}
{{- range list "TRAKT_CLIENT_ID" "TRAKT_CLIENT_SECRET" "LASTFM_API_KEY" "LASTFM_API_SECRET" "LIBREFM_API_KEY" "LIBREFM_API_SECRET" "LISTENBRAINZ_TOKEN" "SIMKL_CLIENT_ID" "SIMKL_CLIENT_SECRET" "ANILIST_CLIENT_ID" "ANILIST_CLIENT_SECRET" }}
{{ include "revenge-scrobble.secretEnv" (dict "root" $root "key" . "optional" true) }}
{{- end }}
{{- end }}
{{- if eq .component "gateway" }}
{{ include "revenge-scrobble.secretEnv" (dict "root" $root "key" "GATEWAY_JWT_SECRET" "optional" (not (empty $root.Values.config.gatewayJwksUrl))) }}
{{- end }}
{{- end -}}

{{/*
The Deployment of one component. Arguments: root, component, values (its block of
values.yaml), port (where /healthz and /readyz answer), portName, portEnv (the variable
that sets the port), command.
*/}}
{{- define "revenge-scrobble.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "revenge-scrobble.name" . }}
  labels:
    {{- include "revenge-scrobble.labels" . | nindent 4 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ $v.replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "revenge-scrobble.selectorLabels" . | nindent 6 }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "revenge-scrobble.labels" . | nindent 8 }}
      annotations:
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- if $root.Values.metrics.podAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ .port | quote }}
        prometheus.io/path: /metrics
        {{- end }}
    spec:
      automountServiceAccountToken: false
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "revenge-scrobble.image" (dict "root" $root "image" .component) }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: [{{ .command | quote }}]
          ports:
            - name: {{ .portName }}
              containerPort: {{ .port }}
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {{ include "revenge-scrobble.fullname" $root }}
          env:
            - name: {{ .portEnv }}
              value: {{ .port | quote }}
            {{- include "revenge-scrobble.env" . | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: {{ .portName }}
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 3
          livenessProbe:
            httpGet:
              path: /healthz
              port: {{ .portName }}
            periodSeconds: 20
            timeoutSeconds: 5
            failureThreshold: 3
          startupProbe:
            httpGet:
              path: /healthz
              port: {{ .portName }}
            periodSeconds: 5
            failureThreshold: 24
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{- define "revenge-scrobble.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "revenge-scrobble.name" . }}
  labels:
    {{- include "revenge-scrobble.labels" . | nindent 4 }}
spec:
  {{- toYaml .values.podDisruptionBudget | nindent 2 }}
  selector:
    matchLabels:
      {{- include "revenge-scrobble.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "revenge-scrobble.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "revenge-scrobble.name" . }}
  labels:
    {{- include "revenge-scrobble.labels" . | nindent 4 }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "revenge-scrobble.selectorLabels" . | nindent 4 }}
  ports:
    - name: {{ .portName }}
      port: {{ .port }}
      targetPort: {{ .portName }}
      protocol: TCP
{{- end -}}
