{{/*
The table of Whale components: for each enabled one, the `whale run` service it starts, its values,
and the settings (environment variables of that service's Settings class) the chart sets for it.
tests/deploy checks every variable name rendered here against the services' pydantic Settings.

Fields: name (resource suffix), service (`whale run <service>`), args (after the service name),
values (the component's values), env (NAME -> value the chart sets; the component's `env` values
override them), readyPath (readiness probe path, default /readyz), stateless (may get an HPA), mounts (config kinds mounted from ConfigMaps),
tokens (event center: mount the tokens Secret), state (keeps a local store under WHALE_STATE_DIR),
viewOnly (its store is a view rebuilt in seconds, never worth a PersistentVolumeClaim: always an emptyDir).
*/}}
{{- define "whale.components" -}}
{{- $v := .Values -}}
{{- $schemasDir := ternary "/etc/whale/schemas" "/app/schemas/events" (not (empty $v.config.schemas)) -}}
components:
{{- if $v.eventCenter.enabled }}
{{- $env := dict "WHALE_EVENT_CENTER_HOST" "0.0.0.0" "WHALE_EVENT_CENTER_PORT" $v.eventCenter.port "WHALE_EVENT_CENTER_SCHEMAS_DIR" $schemasDir }}
{{- if $v.eventCenter.tokensSecret }}
{{- $_ := set $env "WHALE_EVENT_CENTER_TOKENS_FILE" (printf "/etc/whale/tokens/%s" $v.eventCenter.tokensKey) }}
{{- end }}
  - name: event-center
    service: event-center
    args: []
    values: {{ toJson $v.eventCenter }}
    env: {{ toJson $env }}
    stateless: true
    mounts: [schemas]
    tokens: {{ not (empty $v.eventCenter.tokensSecret) }}
    state: true
    viewOnly: true
{{- end }}
{{- if $v.dedupe.enabled }}
  - name: dedupe
    service: dedupe
    args: []
    values: {{ toJson $v.dedupe }}
    env: {{ toJson (dict "WHALE_DEDUPE_HOST" "0.0.0.0" "WHALE_DEDUPE_PORT" $v.dedupe.port) }}
    stateless: true
    mounts: []
    tokens: false
    state: true
{{- end }}
{{- if $v.indexer.enabled }}
  - name: indexer
    service: indexer
    args: []
    values: {{ toJson $v.indexer }}
    env: {{ toJson (dict "WHALE_INDEXER_HOST" "0.0.0.0" "WHALE_INDEXER_PORT" $v.indexer.port) }}
    stateless: true
    mounts: []
    tokens: false
{{- end }}
{{- if $v.ruleEngine.enabled }}
{{- $env := dict "WHALE_RULE_ENGINE_HOST" "0.0.0.0" "WHALE_RULE_ENGINE_PORT" $v.ruleEngine.port }}
{{- $_ := set $env "WHALE_RULE_ENGINE_STANDBY_REPLICAS" $v.ruleEngine.standbyReplicas }}
{{- if not (empty $v.config.rules) }}
{{- $_ := set $env "WHALE_RULES_DIR" "/etc/whale/rules" }}
{{- end }}
  - name: rule-engine
    service: rule-engine
    args: []
    values: {{ toJson $v.ruleEngine }}
    env: {{ toJson $env }}
    stateless: false
    mounts: [rules]
    tokens: false
    state: true
{{- end }}
{{- if $v.todo.enabled }}
{{- $env := dict "WHALE_TODO_HOST" "0.0.0.0" "WHALE_TODO_PORT" $v.todo.port }}
{{- if not (empty $v.config.rules) }}
{{- $_ := set $env "WHALE_RULES_DIR" "/etc/whale/rules" }}
{{- end }}
  - name: todo
    service: todo
    args: []
    values: {{ toJson $v.todo }}
    env: {{ toJson $env }}
    stateless: false
    mounts: [rules]
    tokens: false
    state: true
{{- end }}
{{- if $v.executor.enabled }}
{{- $seen := dict }}
{{- range $pool := $v.executor.pools }}
{{- if hasKey $seen $pool.name }}
{{- fail (printf "executor.pools: the pool name %q is used twice; every pool needs its own name" $pool.name) }}
{{- end }}
{{- $_ := set $seen $pool.name true }}
{{- $values := mustMergeOverwrite (deepCopy $v.executor.defaults) (deepCopy $pool) }}
{{- $dirs := list }}
{{- if not (empty $v.config.actions) }}{{ $dirs = append $dirs "/etc/whale/actions" }}{{ end }}
{{- if not (empty $v.config.workflows) }}{{ $dirs = append $dirs "/etc/whale/workflows" }}{{ end }}
{{- $env := dict "WHALE_EXECUTOR_HOST" "0.0.0.0" "WHALE_EXECUTOR_PORT" $values.port }}
{{- if $dirs }}
{{- $_ := set $env "WHALE_EXECUTOR_CATALOG_DIRS" (toJson $dirs) }}
{{- end }}
  - name: {{ printf "executor-%s" $pool.name }}
    service: executor
    args: ["--pool", {{ $pool.name | quote }}]
    values: {{ toJson $values }}
    env: {{ toJson $env }}
    stateless: true
    mounts: [actions, workflows]
    tokens: false
    state: true
{{- end }}
{{- end }}
{{- if $v.adapters.enabled }}
{{- $env := dict "WHALE_ADAPTERS_HOST" "0.0.0.0" "WHALE_ADAPTERS_PORT" $v.adapters.port }}
{{- if not (empty $v.adapters.config) }}
{{- $_ := set $env "WHALE_ADAPTERS_CONFIG" "/etc/whale/adapters/adapters.yaml" }}
{{- end }}
  - name: adapters
    service: adapters
    args: []
    values: {{ toJson $v.adapters }}
    env: {{ toJson $env }}
    stateless: true
    mounts: [adapters]
    tokens: false
{{- end }}
{{- if $v.dispatcher.enabled }}
  - name: dispatcher
    service: dispatcher
    args: []
    values: {{ toJson $v.dispatcher }}
    env: {{ toJson (dict "WHALE_DISPATCHER_HOST" "0.0.0.0" "WHALE_DISPATCHER_PORT" $v.dispatcher.port) }}
    stateless: true
    mounts: []
    tokens: false
{{- end }}
{{- if $v.console.enabled }}
{{- $api := printf "http://%s-event-center:%v" (include "whale.fullname" .) $v.eventCenter.port }}
  - name: console
    service: console
    args: []
    values: {{ toJson $v.console }}
    env: {{ toJson (dict "WHALE_CONSOLE_HOST" "0.0.0.0" "WHALE_CONSOLE_PORT" $v.console.port "WHALE_CONSOLE_API_URL" $api "WHALE_CONSOLE_SECURE_COOKIE" (toString $v.console.secureCookie)) }}
    stateless: true
    mounts: []
    tokens: false
{{- end }}
{{- if $v.chat.enabled }}
  - name: chat
    service: chat
    args: []
    values: {{ toJson $v.chat }}
    env: {{ toJson (dict "WHALE_CHAT_HOST" "0.0.0.0" "WHALE_CHAT_PORT" $v.chat.port) }}
    stateless: true
    mounts: []
    tokens: false
{{- end }}
{{- end }}
