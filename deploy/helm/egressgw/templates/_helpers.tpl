{{/* Names: <release>-<chart> shortened, or the release name when it already holds the chart's. */}}
{{- define "egressgw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* A component's name: <fullname>-<component>. Call with (list $ "controller"). */}}
{{- define "egressgw.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "egressgw.fullname" $root) (index . 1) -}}
{{- end -}}

{{/* Labels of a component's objects. Call with (list $ "controller"). */}}
{{- define "egressgw.labels" -}}
{{- $root := index . 0 -}}
{{ include "egressgw.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: egressgw
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
{{- end -}}

{{/* Selector labels of a component. Call with (list $ "controller"). */}}
{{- define "egressgw.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: egressgw
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* <repository>/<imageName>:<tag>; a component's own imageRepository / imageTag win over
common's (as in kube-egress-gateway's chart), the tag defaults to the chart's appVersion.
Call with (list $ .Values.<component>). */}}
{{- define "egressgw.image" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- $repository := $component.imageRepository | default $root.Values.common.imageRepository -}}
{{- $tag := $component.imageTag | default $root.Values.common.imageTag | default $root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" $repository $component.imageName (toString $tag) -}}
{{- end -}}

{{- define "egressgw.cloudConfigSecret" -}}
{{- .Values.config.existingSecret | default (include "egressgw.componentName" (list . "azure-cloud-config")) -}}
{{- end -}}

{{/* Whether the processes connect with TLS: asked for, or implied by what is given. */}}
{{- define "egressgw.temporalTls" -}}
{{- $t := .Values.temporal -}}
{{- if or $t.tls.enabled $t.tls.caSecret.name $t.tls.clientSecret.name $t.tls.serverName $t.apiKeySecret.name -}}
true
{{- end -}}
{{- end -}}

{{/* The flags of the Temporal connection, as container args. */}}
{{- define "egressgw.temporalArgs" -}}
{{- $t := .Values.temporal -}}
- --temporal-address={{ $t.address }}
- --temporal-namespace={{ $t.namespace }}
{{- if include "egressgw.temporalTls" . }}
- --temporal-tls
{{- end }}
{{- with $t.tls.serverName }}
- --temporal-tls-server-name={{ . }}
{{- end }}
{{- if $t.tls.caSecret.name }}
- --temporal-tls-ca-file=/etc/egressgw/temporal/ca.crt
{{- end }}
{{- if $t.tls.clientSecret.name }}
- --temporal-tls-cert-file=/etc/egressgw/temporal/tls.crt
- --temporal-tls-key-file=/etc/egressgw/temporal/tls.key
{{- end }}
{{- end -}}

{{/* The API key from its Secret, as the environment Temporal's tools read. */}}
{{- define "egressgw.temporalEnv" -}}
{{- with .Values.temporal.apiKeySecret }}
{{- if .name }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .key }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "egressgw.temporalMounts" -}}
{{- if or .Values.temporal.tls.caSecret.name .Values.temporal.tls.clientSecret.name }}
- name: temporal-tls
  mountPath: /etc/egressgw/temporal
  readOnly: true
{{- end }}
{{- end -}}

{{/* One projected volume for the CA and the client pair, so the files keep fixed names. */}}
{{- define "egressgw.temporalVolumes" -}}
{{- $tls := .Values.temporal.tls -}}
{{- if or $tls.caSecret.name $tls.clientSecret.name }}
- name: temporal-tls
  projected:
    defaultMode: 0440
    sources:
      {{- if $tls.caSecret.name }}
      - secret:
          name: {{ $tls.caSecret.name }}
          items:
            - key: {{ $tls.caSecret.key }}
              path: ca.crt
      {{- end }}
      {{- if $tls.clientSecret.name }}
      - secret:
          name: {{ $tls.clientSecret.name }}
          items:
            - key: {{ $tls.clientSecret.certKey }}
              path: tls.crt
            - key: {{ $tls.clientSecret.keyKey }}
              path: tls.key
      {{- end }}
{{- end }}
{{- end -}}

{{/* Env every component gets: its node and namespace through the downward API. */}}
{{- define "egressgw.podEnv" -}}
- name: MY_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: MY_POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: PYTHONUNBUFFERED
  value: "1"
{{- end -}}


{{/* A component's pod annotations: the fixed ones given (a dict), the Prometheus scrape
annotations (metrics.scrapeAnnotations), then the user's podAnnotations, which win: a key set
twice would make a manifest the API server refuses. Renders nothing when there are none. */}}
{{- define "egressgw.podAnnotations" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
{{- $annotations := deepCopy (index . 2) -}}
{{- if and $root.Values.metrics.enabled $root.Values.metrics.scrapeAnnotations -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString $values.metricsBindPort) -}}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- with $values.podAnnotations -}}
{{- $annotations = mergeOverwrite $annotations (deepCopy .) -}}
{{- end -}}
{{- with $annotations -}}
{{- toYaml . -}}
{{- end -}}
{{- end -}}

{{/* The --metrics-address argument: the component's port, or off. */}}
{{- define "egressgw.metricsArg" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
{{- if $root.Values.metrics.enabled -}}
- --metrics-address=:{{ $values.metricsBindPort }}
{{- else -}}
- --metrics-address=off
{{- end -}}
{{- end -}}

{{/* The container port Prometheus scrapes. */}}
{{- define "egressgw.metricsPort" -}}
{{- $root := index . 0 -}}
{{- $values := index . 1 -}}
{{- if $root.Values.metrics.enabled -}}
- name: metrics
  containerPort: {{ $values.metricsBindPort }}
  protocol: TCP
{{- end -}}
{{- end -}}
