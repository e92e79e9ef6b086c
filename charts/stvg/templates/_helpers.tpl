{{/*
Helpers of the stvg chart. Object names are `<fullname>-<component>`; every object carries the
standard app.kubernetes.io labels. The Ray pod shape here is mirrored by infra/k8s/rayjob.py
(`stvg submit`); tests/charts checks that both render the same RayJob spec.
*/}}

{{- define "stvg.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" }}
{{- end }}

{{- define "stvg.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "stvg.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels; call with (dict "root" $ "component" "rewards"). */}}
{{- define "stvg.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stvg.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Labels of every object; call with (dict "root" $ "component" "rewards"). */}}
{{- define "stvg.labels" -}}
{{ include "stvg.selectorLabels" . }}
helm.sh/chart: {{ include "stvg.chart" .root }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "stvg.jobName" -}}
{{- default (include "stvg.fullname" .) .Values.train.jobName }}
{{- end }}

{{- define "stvg.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (printf "%s-train" (include "stvg.fullname" .)) .Values.serviceAccount.name }}
{{- else }}
{{- .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference; call with (dict "root" $ "image" .Values.rewards.image). */}}
{{- define "stvg.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{- define "stvg.rewardsUrl" -}}
{{- if .Values.rewards.enabled }}
{{- printf "http://%s-rewards.%s.svc:%d" (include "stvg.fullname" .) .Release.Namespace (int .Values.rewards.port) }}
{{- end }}
{{- end }}

{{- define "stvg.mlflowUri" -}}
{{- if .Values.mlflow.enabled }}
{{- printf "http://%s-mlflow.%s.svc:%d" (include "stvg.fullname" .) .Release.Namespace (int .Values.mlflow.port) }}
{{- else }}
{{- .Values.mlflow.externalUri }}
{{- end }}
{{- end }}

{{- define "stvg.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ int .Values.securityContext.runAsUser }}
runAsGroup: {{ int .Values.securityContext.runAsGroup }}
fsGroup: {{ int .Values.securityContext.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "stvg.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .Values.securityContext.readOnlyRootFilesystem }}
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end }}

{{/* The run config as YAML text: runConfigYaml when set, else runConfig. */}}
{{- define "stvg.runConfigText" -}}
{{- if .Values.train.runConfigYaml }}
{{- .Values.train.runConfigYaml }}
{{- else }}
{{- toYaml .Values.train.runConfig }}
{{- end }}
{{- end }}

{{/* rayStartParams `resources`: a JSON object double-quoted for the shell `ray start` runs in. */}}
{{- define "stvg.rayResources" -}}
{{- printf "\"{\\\"%s\\\": %d}\"" .name (int .units) | squote }}
{{- end }}

{{- define "stvg.objectStoreBytes" -}}
{{- div (mul (int .) 1073741824 8) 10 | toString | quote }}
{{- end }}

{{/* env + envFrom of a Ray pod (order mirrored by infra/k8s/rayjob.py pod_env); the group's own env last.
Call with (dict "root" $ "group" .Values.train.learner). */}}
{{- define "stvg.rayEnv" -}}
{{- $group := .group }}
{{- with .root }}
{{- $env := list }}
{{- $mlflow := include "stvg.mlflowUri" . }}
{{- if $mlflow }}{{ $env = append $env (dict "name" "MLFLOW_TRACKING_URI" "value" $mlflow) }}{{ end }}
{{- if .Values.s3.endpointUrl }}
{{- $env = append $env (dict "name" "AWS_ENDPOINT_URL" "value" .Values.s3.endpointUrl) }}
{{- $env = append $env (dict "name" "MLFLOW_S3_ENDPOINT_URL" "value" .Values.s3.endpointUrl) }}
{{- end }}
{{- if .Values.s3.region }}{{ $env = append $env (dict "name" "AWS_REGION" "value" .Values.s3.region) }}{{ end }}
{{- $rewards := include "stvg.rewardsUrl" . }}
{{- if $rewards }}{{ $env = append $env (dict "name" "STVG_REWARD_URL" "value" $rewards) }}{{ end }}
{{- if .Values.rewards.token.existingSecret }}
{{- $ref := dict "name" .Values.rewards.token.existingSecret "key" .Values.rewards.token.key }}
{{- $env = append $env (dict "name" "STVG_REWARD_TOKEN" "valueFrom" (dict "secretKeyRef" $ref)) }}
{{- end }}
{{- range $name := keys .Values.train.env | sortAlpha }}
{{- $env = append $env (dict "name" $name "value" (toString (get $.root.Values.train.env $name))) }}
{{- end }}
{{- range $name := keys ($group.env | default dict) | sortAlpha }}
{{- $env = append $env (dict "name" $name "value" (toString (get $group.env $name))) }}
{{- end }}
{{- $from := list }}
{{- if .Values.s3.existingSecret }}{{ $from = append $from (dict "secretRef" (dict "name" .Values.s3.existingSecret)) }}{{ end }}
{{- range .Values.train.extraEnvFromSecrets }}{{ $from = append $from (dict "secretRef" (dict "name" .)) }}{{ end }}
{{- if $env }}
env:
  {{- toYaml $env | nindent 2 }}
{{- end }}
{{- if $from }}
envFrom:
  {{- toYaml $from | nindent 2 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The run's overrides the chart adds before train.overrides: where checkpoints go, which paths every
node shares. Mirrored by infra/k8s/rayjob.py (stvg submit puts both in the run config instead). */}}
{{- define "stvg.chartOverrides" -}}
{{- $out := list }}
{{- with .Values.train.checkpointUri }}{{ $out = append $out (printf "checkpoint.uri=%s" .) }}{{ end }}
{{- $paths := list }}
{{- range .Values.train.sharedVolumes }}{{ $paths = append $paths .mountPath }}{{ end }}
{{- if $paths }}{{ $out = append $out (printf "cluster.shared_paths=[%s]" (join "," $paths)) }}{{ end }}
{{- toJson $out }}
{{- end }}

{{/*
Pod template of a Ray node. Call with
(dict "root" $ "component" "ray-learner" "container" "ray-worker" "group" .Values.train.learner "gpus" 1 "automount" false).
*/}}
{{- define "stvg.rayPod" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
metadata:
  labels:
    {{- include "stvg.selectorLabels" (dict "root" $root "component" .component) | nindent 4 }}
  {{- if $v.train.doNotDisrupt }}
  annotations:
    karpenter.sh/do-not-disrupt: "true"
  {{- end }}
spec:
  {{- with include "stvg.serviceAccountName" $root }}
  serviceAccountName: {{ . }}
  {{- end }}
  automountServiceAccountToken: {{ .automount }}
  securityContext:
    {{- include "stvg.podSecurityContext" $root | nindent 4 }}
  {{- with $v.imagePullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with .group.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .group.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .container }}
      image: {{ include "stvg.image" (dict "root" $root "image" $v.image) }}
      imagePullPolicy: {{ $v.image.pullPolicy }}
      workingDir: /home/stvg
      {{- $amounts := dict "cpu" (toString .group.cpu) "memory" (toString .group.memory) }}
      {{- if .gpus }}{{ $_ := set $amounts $v.train.gpuResource (int .gpus) }}{{ end }}
      resources:
        requests:
          {{- toYaml (merge (dict "ephemeral-storage" (toString .group.ephemeralStorage)) $amounts) | nindent 10 }}
        limits:
          {{- toYaml $amounts | nindent 10 }}
      securityContext:
        {{- include "stvg.containerSecurityContext" $root | nindent 8 }}
      {{- if eq .container "ray-head" }}
      ports:
        - name: gcs-server
          containerPort: 6379
        - name: dashboard
          containerPort: 8265
        - name: client
          containerPort: 10001
      {{- end }}
      {{- with include "stvg.rayEnv" (dict "root" $root "group" .group) | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      volumeMounts:
        - name: run-config
          mountPath: /etc/stvg
          readOnly: true
        - name: dshm
          mountPath: /dev/shm
        - name: tmp
          mountPath: /tmp
        - name: home
          mountPath: /home/stvg
        {{- range $v.train.sharedVolumes }}
        - name: {{ .name }}
          mountPath: {{ .mountPath }}
          readOnly: {{ .readOnly | default false }}
        {{- end }}
        {{- with .group.volumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    - name: run-config
      configMap:
        name: {{ include "stvg.fullname" $root }}-run-config
    - name: dshm
      emptyDir:
        medium: Memory
        sizeLimit: {{ printf "%dGi" (int .group.shmGiB) }}
    - name: tmp
      emptyDir: {}
    - name: home
      emptyDir: {}
    {{- range $v.train.sharedVolumes }}
    - name: {{ .name }}
      persistentVolumeClaim:
        claimName: {{ .claimName }}
        readOnly: {{ .readOnly | default false }}
    {{- end }}
    {{- with .group.volumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* A Ray worker group; call with (dict "root" $ "name" "learner" "resource" "stvg_learner"). */}}
{{- define "stvg.workerGroup" -}}
{{- $group := get .root.Values.train .name }}
{{- $units := $group.slots | int }}
{{- if not $units }}{{ $units = max 1 (int $group.gpusPerWorker) }}{{ end }}
- groupName: {{ .name }}
  replicas: {{ int $group.replicas }}
  minReplicas: {{ int $group.minReplicas }}
  maxReplicas: {{ int $group.maxReplicas }}
  rayStartParams:
    object-store-memory: {{ include "stvg.objectStoreBytes" $group.shmGiB }}
    resources: {{ include "stvg.rayResources" (dict "name" .resource "units" $units) }}
  template:
    {{- include "stvg.rayPod" (dict "root" .root "component" (printf "ray-%s" .name) "container" "ray-worker" "group" $group "gpus" (int $group.gpusPerWorker) "automount" false) | trim | nindent 4 }}
{{- end }}

{{/* NetworkPolicy peers and rules (templates/networkpolicy-*.yaml). Selector of every Ray pod of
this namespace, the chart's or `stvg submit`'s (both label them app.kubernetes.io/name=stvg): the
clients of the reward servers and MLflow. */}}
{{- define "stvg.anyRayPodSelector" -}}
matchExpressions:
  - key: app.kubernetes.io/name
    operator: In
    values: {{ list (include "stvg.name" .) "stvg" | uniq | toJson }}
  - key: app.kubernetes.io/component
    operator: In
    values: ["ray-head", "ray-learner", "ray-rollout"]
{{- end }}

{{/* Selector of this release's RayJob pods; call with (dict "root" $ "components" (list "ray-head" ...)). */}}
{{- define "stvg.releaseRayPodSelector" -}}
matchLabels:
  app.kubernetes.io/name: {{ include "stvg.name" .root }}
  app.kubernetes.io/instance: {{ .root.Release.Name }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: {{ toJson .components }}
{{- end }}

{{/* Peers of the given namespaces (by their kubernetes.io/metadata.name label) and CIDRs, as a YAML list. */}}
{{- define "stvg.externalPeers" -}}
{{- range .namespaces }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ . }}
{{- end }}
{{- range .cidrs }}
- ipBlock:
    cidr: {{ . }}
{{- end }}
{{- end }}

{{/* Egress rules every policy has when networkPolicy.egress.restrict is true: DNS anywhere, then
networkPolicy.egress.extraRules; a YAML list. */}}
{{- define "stvg.baseEgressRules" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- with .Values.networkPolicy.egress.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Cross-field rules the schema cannot express; fails the render naming the value to change. */}}
{{- define "stvg.validateConfig" -}}
{{- $v := .Values }}
{{- if $v.train.enabled }}
  {{- $job := include "stvg.jobName" . }}
  {{- if or (gt (len $job) 47) (not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $job)) }}
    {{- fail (printf "train.jobName: RayJob name %q must be a DNS-1035 label of at most 47 characters (KubeRay's limit); set train.jobName or use a shorter release name" $job) }}
  {{- end }}
  {{- if and (eq $v.train.rayAuth "token") (not (semverCompare ">=2.52.0-0" $v.train.rayVersion)) }}
    {{- fail (printf "train.rayAuth=token needs Ray >= 2.52.0 in the image, but train.rayVersion=%s; use a newer image (or train.rayAuth=disabled, which lets anyone who reaches the head run code)" $v.train.rayVersion) }}
  {{- end }}
  {{- range $name := list "learner" "rollout" }}
    {{- $g := get $v.train $name }}
    {{- if not (and (le (int $g.minReplicas) (int $g.replicas)) (le (int $g.replicas) (int $g.maxReplicas))) }}
      {{- fail (printf "train.%s: need minReplicas <= replicas <= maxReplicas, got %d <= %d <= %d" $name (int $g.minReplicas) (int $g.replicas) (int $g.maxReplicas)) }}
    {{- end }}
    {{- if and (not $v.train.autoscaling.enabled) (ne (int $g.minReplicas) (int $g.maxReplicas)) }}
      {{- fail (printf "train.%s.minReplicas/maxReplicas differ (%d/%d) but train.autoscaling.enabled is false: set both to replicas or enable autoscaling" $name (int $g.minReplicas) (int $g.maxReplicas)) }}
    {{- end }}
  {{- end }}
  {{- range $name := list "head" "learner" "rollout" }}
    {{- $g := get $v.train $name }}
    {{- $mem := toString $g.memory }}
    {{- if regexMatch "^[0-9]+Gi$" $mem }}
      {{- if ge (int $g.shmGiB) (int (trimSuffix "Gi" $mem)) }}
        {{- fail (printf "train.%s.shmGiB=%d must be smaller than train.%s.memory=%s: /dev/shm counts against the pod memory limit" $name (int $g.shmGiB) $name $mem) }}
      {{- end }}
    {{- end }}
  {{- end }}
  {{- $ckpt := $v.train.checkpointUri }}
  {{- if not $ckpt }}
    {{- fail "train.checkpointUri: name where checkpoints go, e.g. s3://my-bucket/stvg/runs (or a folder on a train.sharedVolumes claim): learner pods write their shards there, and a pod's own disk vanishes with it" }}
  {{- end }}
  {{- if not (hasPrefix "s3://" $ckpt) }}
    {{- $onShared := false }}
    {{- range $v.train.sharedVolumes }}
      {{- if and (not .readOnly) (or (eq $ckpt .mountPath) (hasPrefix (printf "%s/" (trimSuffix "/" .mountPath)) $ckpt)) }}{{ $onShared = true }}{{ end }}
    {{- end }}
    {{- if not $onShared }}
      {{- fail (printf "train.checkpointUri=%q must be s3://bucket/prefix or a folder under a writable train.sharedVolumes mountPath: every learner pod writes there" $ckpt) }}
    {{- end }}
  {{- end }}
  {{- $rc := fromYaml (include "stvg.runConfigText" .) }}
  {{- if hasKey $rc "Error" }}
    {{- fail (printf "train.runConfigYaml is not valid YAML: %s" (get $rc "Error")) }}
  {{- end }}
  {{- range $pair := list (list "learner" "stvg_learner") (list "rollout" "stvg_rollout") }}
    {{- $section := index $pair 0 }}
    {{- $resource := index $pair 1 }}
    {{- $asked := dig $section "resources_per_worker" $resource 0 $rc | float64 }}
    {{- if le $asked 0.0 }}
      {{- fail (printf "train.runConfig: %s.resources_per_worker.%s must be set (e.g. 1) so %s workers land on the %s group" $section $resource $section $section) }}
    {{- end }}
    {{- $g := get $v.train $section }}
    {{- $slots := int $g.slots }}
    {{- if not $slots }}{{ $slots = max 1 (int $g.gpusPerWorker) }}{{ end }}
    {{- $supply := mul (int $g.maxReplicas) $slots }}
    {{- $workers := dig $section "num_workers" 1 $rc | int }}
    {{- if gt (mulf $workers $asked) (float64 $supply) }}
      {{- fail (printf "train.%s: the run config asks for %d %s workers x %g %s but the group provides %d (maxReplicas %d x %d per pod); raise train.%s.replicas/maxReplicas or gpusPerWorker/slots" $section $workers $section $asked $resource $supply (int $g.maxReplicas) $slots $section) }}
    {{- end }}
  {{- end }}
  {{- if $v.kueue.enabled }}
    {{- if not $v.kueue.queueName }}
      {{- fail "kueue.queueName: name the Kueue LocalQueue (kueue.enabled is true)" }}
    {{- end }}
    {{- if not $v.train.shutdownAfterJobFinishes }}
      {{- fail "train.shutdownAfterJobFinishes must be true when kueue.enabled: Kueue rejects RayJobs that keep their cluster" }}
    {{- end }}
  {{- else if $v.kueue.priorityClass }}
    {{- fail "kueue.priorityClass is set but kueue.enabled is false: priorities apply to Kueue-managed jobs only" }}
  {{- end }}
{{- end }}
{{- if and $v.rewards.enabled $v.rewards.autoscaling.enabled }}
  {{- if gt (int $v.rewards.autoscaling.minReplicas) (int $v.rewards.autoscaling.maxReplicas) }}
    {{- fail (printf "rewards.autoscaling.minReplicas=%d exceeds maxReplicas=%d" (int $v.rewards.autoscaling.minReplicas) (int $v.rewards.autoscaling.maxReplicas)) }}
  {{- end }}
{{- end }}
{{- if and $v.rewards.enabled $v.rewards.pdb.enabled }}
  {{- $floor := ternary $v.rewards.autoscaling.minReplicas $v.rewards.replicas $v.rewards.autoscaling.enabled | int }}
  {{- if ge (int $v.rewards.pdb.minAvailable) $floor }}
    {{- fail (printf "rewards.pdb.minAvailable=%d must be below the replica floor (%d), or no node could ever be drained" (int $v.rewards.pdb.minAvailable) $floor) }}
  {{- end }}
{{- end }}
{{- if $v.mlflow.enabled }}
  {{- if not $v.mlflow.backendStore.existingSecret }}
    {{- fail "mlflow.backendStore.existingSecret: name the Secret holding the Postgres URI (mlflow.enabled is true)" }}
  {{- end }}
  {{- if not $v.mlflow.artifactsDestination }}
    {{- fail "mlflow.artifactsDestination: set the artifact store, e.g. s3://bucket/mlflow (mlflow.enabled is true)" }}
  {{- end }}
  {{- if $v.mlflow.externalUri }}
    {{- fail "mlflow.externalUri is set but mlflow.enabled is true: use one or the other" }}
  {{- end }}
{{- end }}
{{- if and $v.rbac.create (not $v.rbac.rules) }}
  {{- fail "rbac.rules: rbac.create is true but no rules are given (the chart's pods need none)" }}
{{- end }}
{{- if and (not $v.serviceAccount.create) (not $v.serviceAccount.name) $v.rbac.create }}
  {{- fail "serviceAccount.name: rbac.create needs a ServiceAccount to bind (create one or name an existing one)" }}
{{- end }}
{{- end }}
