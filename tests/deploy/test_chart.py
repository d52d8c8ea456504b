"""The Helm chart deploy/helm/whale: lint, render, Kubernetes API schemas, and what every pod gets."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from .helm import CHART, EVERYTHING_VALUES, PRODUCTION_VALUES, Helm, Manifest, by_kind, containers, pod_spec
from .settings_env import registered_services

# The first test to need helm may build it (minutes on 2 cores): give these tests room.
pytestmark = pytest.mark.timeout(3600)

# Kubernetes versions whose API schemas every manifest must pass: the oldest we claim and the newest shipped.
KUBERNETES_VERSIONS = ("1.29.0", f"{kubernetes_validate.latest_version()}.0")

# The parts of the Prometheus Operator's ServiceMonitor CRD the chart uses (no API schema ships for CRDs).
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}}
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}

SERVICES = (
    "event-center", "dedupe", "indexer", "rule-engine", "todo", "executor", "adapters", "dispatcher", "console",
)  # fmt: skip


def validate_all(manifests: list[Manifest]) -> None:
    """Validate every manifest against the Kubernetes API schemas (strict: unknown fields fail)."""
    problems = []
    for manifest in manifests:
        name = f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"
        if manifest.get("kind") == "ServiceMonitor":
            try:
                jsonschema.validate(manifest, SERVICE_MONITOR_SCHEMA)
            except jsonschema.ValidationError as exc:
                problems.append(f"{name}: {exc.message}")
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{name} (Kubernetes {version}): {exc.message} at {list(exc.path)}")
    assert not problems, "\n".join(problems)


def test_helm_lint_passes_with_default_and_production_values(helm: Helm) -> None:
    """`helm lint --strict` finds nothing with the default values nor with values-production.yaml."""
    for args in ([], ["--values", str(PRODUCTION_VALUES)], ["--values", str(EVERYTHING_VALUES)]):
        proc = helm.run("lint", "--strict", str(CHART), *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_default_values_render_valid_kubernetes_manifests(default_manifests: list[Manifest]) -> None:
    """The default values render every service, the topic Job, and only schema-valid manifests."""
    validate_all(default_manifests)
    deployments = by_kind(default_manifests, "Deployment")
    assert sorted(deployments) == sorted(
        f"whale-{name}" for name in (*SERVICES[:5], "executor-default", "adapters", "dispatcher", "console")
    )
    assert "whale-topics" in by_kind(default_manifests, "Job")


def test_production_values_render_valid_kubernetes_manifests(production_manifests: list[Manifest]) -> None:
    """values-production.yaml renders schema-valid manifests, with HPAs, a ServiceMonitor, Ingresses
    to the two HTTP services and two pools."""
    validate_all(production_manifests)
    hpas = by_kind(production_manifests, "HorizontalPodAutoscaler")
    assert {"whale-event-center", "whale-indexer", "whale-adapters", "whale-executor-infra"} <= set(hpas)
    assert by_kind(production_manifests, "ServiceMonitor")
    ingresses = by_kind(production_manifests, "Ingress")
    assert sorted(ingresses) == ["whale-adapters", "whale-event-center"]
    for name, ingress in ingresses.items():
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        assert backend == {"name": name, "port": {"name": "http"}}
    assert {"whale-executor-default", "whale-executor-infra"} <= set(
        by_kind(production_manifests, "Deployment")
    )


def test_every_option_at_once_renders_valid_kubernetes_manifests(
    everything_manifests: list[Manifest],
) -> None:
    """Every option of the chart switched on (SASL, TLS, ConfigMaps, secretEnv, HPAs...) stays schema-valid."""
    manifests = everything_manifests
    validate_all(manifests)
    assert set(by_kind(manifests, "ConfigMap")) == {
        f"whale-{kind}" for kind in ("rules", "workflows", "actions", "schemas", "adapters")
    }


@pytest.mark.parametrize(
    "values", [[], [PRODUCTION_VALUES], [EVERYTHING_VALUES]], ids=["default", "production", "everything"]
)
def test_every_pod_runs_non_root_with_a_read_only_root_filesystem(helm: Helm, values: list[Path]) -> None:
    """Pods: non-root, seccomp RuntimeDefault, no API token; containers: read-only root, no escalation,
    all capabilities dropped, a writable emptyDir at /tmp, resources requested."""
    for manifest, container in containers(helm.render(values)):
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        pod = pod_spec(manifest)
        assert pod is not None
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True, where
        assert sc["allowPrivilegeEscalation"] is False, where
        assert sc["runAsNonRoot"] is True, where
        assert sc["capabilities"]["drop"] == ["ALL"], where
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], where
        assert container["resources"]["requests"], where


def test_services_are_probed_on_their_health_endpoints(default_manifests: list[Manifest]) -> None:
    """Each service container has liveness on /healthz and readiness on /readyz of its `http` port,
    and its Service targets that port."""
    services = by_kind(default_manifests, "Service")
    for manifest, container in containers(default_manifests):
        if manifest["kind"] != "Deployment":
            continue
        where = manifest["metadata"]["name"]
        assert [p["name"] for p in container["ports"]] == ["http"], where
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}, where
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}, where
        assert services[where]["spec"]["ports"][0]["targetPort"] == "http", where
        assert services[where]["spec"]["selector"] == manifest["spec"]["selector"]["matchLabels"], where


def test_each_container_runs_its_service_through_whale_run(production_manifests: list[Manifest]) -> None:
    """The single image runs `whale run <service>`; executor pools add `--pool NAME`."""
    commands = {
        m["metadata"]["name"]: [*c["command"], *c["args"]]
        for m, c in containers(production_manifests)
        if m["kind"] == "Deployment"
    }
    assert commands["whale-event-center"] == ["whale", "run", "event-center"]
    assert commands["whale-rule-engine"] == ["whale", "run", "rule-engine"]
    assert commands["whale-executor-default"] == ["whale", "run", "executor", "--pool", "default"]
    assert commands["whale-executor-infra"] == ["whale", "run", "executor", "--pool", "infra"]
    images = {c["image"] for _, c in containers(production_manifests)}
    assert images == {"registry.example.com/platform/whale:0.1.0"}


def test_topics_job_is_a_pre_install_hook_running_whale_topics_ensure(
    default_manifests: list[Manifest],
) -> None:
    """`whale topics ensure` runs as a pre-install/pre-upgrade hook Job, before the services start."""
    job = by_kind(default_manifests, "Job")["whale-topics"]
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert [*container["command"], *container["args"]] == ["whale", "topics", "ensure"]


def test_credentials_only_come_from_secrets(everything_manifests: list[Manifest]) -> None:
    """Passwords, usernames and tokens reach pods only through secretKeyRef or Secret volumes
    (secretFiles, the Kafka CA): never as plain env values, never in a ConfigMap."""
    manifests = everything_manifests
    secret_refs = set()
    for _manifest, container in containers(manifests):
        for env in container.get("env", []):
            if any(word in env["name"] for word in ("PASSWORD", "USERNAME", "TOKEN")) and not env[
                "name"
            ].endswith("_FILE"):
                assert "value" not in env, env
                secret_refs.add((env["name"], env["valueFrom"]["secretKeyRef"]["name"]))
    assert secret_refs >= {
        ("WHALE_KAFKA_SASL_USERNAME", "kafka-user"),
        ("WHALE_KAFKA_SASL_PASSWORD", "kafka-user"),
        ("WHALE_ES_USERNAME", "es-user"),
        ("WHALE_ES_PASSWORD", "es-user"),
        ("WHALE_ADAPTERS_ALERTMANAGER_TOKEN", "alertmanager"),
    }
    deployment = by_kind(manifests, "Deployment")["whale-executor-gpu-jobs"]
    pod = deployment["spec"]["template"]["spec"]
    secret_volumes = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    secret_mounts = {
        m["mountPath"]: (secret_volumes[m["name"]], m.get("subPath"))
        for m in pod["containers"][0]["volumeMounts"]
        if m["name"] in secret_volumes
    }
    assert secret_mounts == {
        "/etc/whale/kafka-ca": ("kafka-ca", None),
        "/run/secrets/whale-slack-webhook": ("slack-webhook", "url"),
        "/run/secrets/ssh": ("ssh-keys", None),
    }
    for config_map in by_kind(manifests, "ConfigMap").values():
        text = yaml.safe_dump(config_map["data"]).lower()
        assert "password" not in text and "kafka-user" not in text, config_map["metadata"]["name"]


def test_stateless_services_get_hpas_and_the_rule_engine_does_not(
    production_manifests: list[Manifest],
) -> None:
    """HPAs target their own Deployment, which then leaves `replicas` to the HPA; the rule engine
    (Faust, state rebuilt from changelogs on rebalance) is scaled by replicaCount only."""
    hpas = by_kind(production_manifests, "HorizontalPodAutoscaler")
    deployments = by_kind(production_manifests, "Deployment")
    assert "whale-rule-engine" not in hpas
    assert deployments["whale-rule-engine"]["spec"]["replicas"] == 2
    for name, hpa in hpas.items():
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in deployments[name]["spec"], name


def test_pod_disruption_budgets_select_their_component(production_manifests: list[Manifest]) -> None:
    """Each PDB selects exactly the pods of its Deployment; minAvailable wins when set."""
    deployments = by_kind(production_manifests, "Deployment")
    pdbs = by_kind(production_manifests, "PodDisruptionBudget")
    assert set(pdbs) == set(deployments)
    for name, pdb in pdbs.items():
        assert pdb["spec"]["selector"] == deployments[name]["spec"]["selector"], name
    assert pdbs["whale-event-center"]["spec"] == {
        "minAvailable": 2,
        "selector": deployments["whale-event-center"]["spec"]["selector"],
    }


def test_config_maps_are_mounted_where_their_readers_look(everything_manifests: list[Manifest]) -> None:
    """Rules go to the rule engine and the to-do stage, actions and workflows to every executor pool, schemas to the event
    center, the adapters' configuration to the adapters, each at /etc/whale/<kind>."""
    manifests = everything_manifests
    mounted: dict[str, set[str]] = {}
    for manifest, container in containers(manifests):
        volumes = {v["name"]: v for v in (pod_spec(manifest) or {})["volumes"]}
        for mount in container["volumeMounts"]:
            config_map = volumes[mount["name"]].get("configMap")
            if config_map:
                assert mount["mountPath"] == f"/etc/whale/{mount['name']}"
                mounted.setdefault(config_map["name"], set()).add(manifest["metadata"]["name"])
    assert mounted == {
        "whale-rules": {"whale-rule-engine", "whale-todo"},
        "whale-actions": {"whale-executor-default", "whale-executor-gpu-jobs"},
        "whale-workflows": {"whale-executor-default", "whale-executor-gpu-jobs"},
        "whale-schemas": {"whale-event-center"},
        "whale-adapters": {"whale-adapters"},
    }


def render_notes(helm: Helm, tmp_path: Path, sets: list[str]) -> str:
    """NOTES.txt as `helm install` would print it (rendered through a copy of the chart)."""
    chart = tmp_path / "whale"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "NOTES.txt").rename(chart / "notes.src")
    (chart / "templates" / "zz-notes.yaml").write_text(
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes.src") . | quote }}\n'
    )
    (notes,) = [m for m in helm.render(sets=sets, chart=chart) if m["metadata"]["name"] == "notes"]
    text: str = notes["data"]["notes"]
    return text


def test_notes_tell_the_user_what_to_do_next(helm: Helm, tmp_path: Path) -> None:
    """NOTES.txt names the Services to reach and warns about a missing tokens Secret."""
    notes = render_notes(helm, tmp_path, [])
    assert "port-forward svc/whale-event-center 8080:8080" in notes
    assert "eventCenter.tokensSecret is not set" in notes


def test_replicas_of_each_component_are_spread_over_nodes(production_manifests: list[Manifest]) -> None:
    """Each Deployment prefers spreading its own pods (not all of Whale's) over nodes."""
    for name, deployment in by_kind(production_manifests, "Deployment").items():
        (spread,) = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert spread["labelSelector"] == deployment["spec"]["selector"], name
        assert spread["whenUnsatisfiable"] == "ScheduleAnyway", name


def test_the_chart_runs_exactly_the_registered_services(
    default_manifests: list[Manifest], everything_manifests: list[Manifest]
) -> None:
    """Every `whale run <service>` in the chart is a registered `whale.services` entry point, and
    every registered service is deployed (a new service must be added to the chart); the chat
    adapter only when switched on, since it needs secrets."""

    def run(manifests: list[Manifest]) -> set[str]:
        return {c["args"][1] for m, c in containers(manifests) if c.get("args", [])[:1] == ["run"]}

    assert run(everything_manifests) == set(registered_services())
    assert run(default_manifests) == set(registered_services()) - {"chat"}


def test_extra_event_schemas_are_merged_with_the_image_s_own(
    helm: Helm, everything_manifests: list[Manifest]
) -> None:
    """With config.schemas, an init container copies the image's event schemas and then the
    ConfigMap's into one emptyDir, which the event center registers (WHALE_EVENT_CENTER_SCHEMAS_DIR)."""
    deployment = by_kind(everything_manifests, "Deployment")["whale-event-center"]
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    script = init["command"][-1]
    assert script.index("/app/schemas/events/") < script.index("/etc/whale/schemas/")
    (main,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert mounts[env["WHALE_EVENT_CENTER_SCHEMAS_DIR"]] == "schemas-merged"
    assert {m["name"]: m["mountPath"] for m in init["volumeMounts"]}["schemas-merged"] == "/merged"
    default = by_kind(helm.render(), "Deployment")["whale-event-center"]["spec"]["template"]["spec"]
    assert "initContainers" not in default
    (main,) = default["containers"]
    env = {e["name"]: e.get("value") for e in main["env"]}
    assert env["WHALE_EVENT_CENTER_SCHEMAS_DIR"] == "/app/schemas/events"


def test_notes_point_webhooks_at_the_adapters_ingress(helm: Helm, tmp_path: Path) -> None:
    """With an adapters Ingress, NOTES.txt gives the webhook and Alertmanager URLs on its host."""
    notes = render_notes(
        helm,
        tmp_path,
        [
            "adapters.ingress.enabled=true",
            "adapters.ingress.host=hooks.example.com",
            "adapters.ingress.tlsSecret=t",
        ],
    )
    assert "https://hooks.example.com/webhooks/<name>" in notes
    assert "https://hooks.example.com/alertmanager" in notes


def test_the_network_policy_admits_traffic_only_on_the_http_port(
    production_manifests: list[Manifest],
) -> None:
    """The NetworkPolicy selects every Whale pod and lets in only the `http` port, from the peers set."""
    (policy,) = by_kind(production_manifests, "NetworkPolicy").values()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert len(rule["from"]) == 3  # the two peers set, and the release's `helm test` pod
    assert rule["from"][-1]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "test"
    selector = policy["spec"]["podSelector"]["matchLabels"]
    for deployment in by_kind(production_manifests, "Deployment").values():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()


@pytest.mark.parametrize(
    "sets",
    [
        ["topics.ensure=false", "serviceAccount.create=false", "serviceAccount.name=ops"],
        [f"{key}.enabled=false" for key in ("eventCenter", "dedupe", "indexer", "ruleEngine", "todo")],
        ["executor.enabled=false", "adapters.enabled=false", "dispatcher.enabled=false"],
        ["kafka.securityProtocol=SSL", "kafka.tls.caSecret=ca", "fullnameOverride=ops-automation"],
    ],
    ids=["no-hook-own-account", "workers-only", "ingest-only", "ssl-and-name"],
)
def test_switching_parts_off_still_renders_valid_manifests(helm: Helm, sets: list[str]) -> None:
    """Disabling components, the topic hook or the ServiceAccount leaves a consistent, valid release."""
    manifests = helm.render(sets=sets)
    validate_all(manifests)
    accounts = {(pod_spec(m) or {}).get("serviceAccountName") for m in manifests if m["kind"] == "Deployment"}
    created = set(by_kind(manifests, "ServiceAccount"))
    assert accounts <= created | {"ops"}
    pdb_targets = {m["metadata"]["name"] for m in manifests if m["kind"] == "PodDisruptionBudget"}
    assert pdb_targets <= set(by_kind(manifests, "Deployment"))


def test_helm_test_checks_every_component_s_readiness(default_manifests: list[Manifest]) -> None:
    """`helm test` runs a pod that requests each component's Service on its readiness path."""
    deployments = by_kind(default_manifests, "Deployment")
    services = by_kind(default_manifests, "Service")
    (pod,) = by_kind(default_manifests, "Pod").values()
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    urls = pod["spec"]["containers"][0]["command"][3:]
    expected = []
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        port = services[name]["spec"]["ports"][0]["port"]
        expected.append(f"http://{name}:{port}{container['readinessProbe']['httpGet']['path']}")
    assert sorted(urls) == sorted(expected)


STATEFUL = ("whale-dedupe", "whale-rule-engine", "whale-todo", "whale-executor-default")
VIEWS = ("whale-event-center",)  # a local store that is a view: always an emptyDir, never a claim


def test_stateful_stages_keep_their_local_store_on_a_volume_of_its_own(
    default_manifests: list[Manifest],
) -> None:
    """WHALE_STATE_DIR points at a volume (an emptyDir by default: kept across container restarts,
    rebuilt from Kafka when the pod moves), never at the small /tmp; the event center's runs view
    too; stateless services get none."""
    for name, deployment in by_kind(default_manifests, "Deployment").items():
        spec = pod_spec(deployment) or {}
        (container,) = spec["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        if name in STATEFUL + VIEWS:
            assert env["WHALE_STATE_DIR"] == mounts["state"] == "/var/lib/whale/state"
            assert volumes["state"]["emptyDir"]["sizeLimit"] == "4Gi"
        else:
            assert "WHALE_STATE_DIR" not in env and "state" not in volumes


def test_stateful_stages_get_their_store_memory_and_the_rule_engine_its_standby_replicas(helm: Helm) -> None:
    """Memory per store comes from state.cacheMB / state.writeBufferMB; the rule engine's Faust
    standby replicas from ruleEngine.standbyReplicas."""
    manifests = helm.render(sets=["state.writeBufferMB=8", "ruleEngine.standbyReplicas=2"])
    for name, deployment in by_kind(manifests, "Deployment").items():
        (container,) = (pod_spec(deployment) or {})["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        if name in STATEFUL:
            assert env["WHALE_STATE_CACHE_MB"] == "32" and env["WHALE_STATE_WRITE_BUFFER_MB"] == "8"
        assert ("WHALE_RULE_ENGINE_STANDBY_REPLICAS" in env) == (name == "whale-rule-engine")
        if name == "whale-rule-engine":
            assert env["WHALE_RULE_ENGINE_STANDBY_REPLICAS"] == "2"


def test_persistence_gives_each_stateful_stage_a_claim_and_recreates_it_on_upgrade(helm: Helm) -> None:
    manifests = helm.render(sets=["state.persistence.enabled=true", "state.size=20Gi"])
    validate_all(manifests)
    claims = by_kind(manifests, "PersistentVolumeClaim")
    assert set(claims) == {f"{name}-state" for name in STATEFUL}
    assert all(c["spec"]["resources"]["requests"]["storage"] == "20Gi" for c in claims.values())
    deployments = by_kind(manifests, "Deployment")
    for name in STATEFUL:
        assert deployments[name]["spec"]["strategy"] == {"type": "Recreate"}
        volumes = {v["name"]: v for v in (pod_spec(deployments[name]) or {})["volumes"]}
        assert volumes["state"]["persistentVolumeClaim"]["claimName"] == f"{name}-state"
    for name in VIEWS:  # a view keeps its emptyDir (and may scale out)
        volumes = {v["name"]: v for v in (pod_spec(deployments[name]) or {})["volumes"]}
        assert "emptyDir" in volumes["state"] and "strategy" not in deployments[name]["spec"]


def test_persistence_refuses_replicas_that_would_share_one_claim(helm: Helm) -> None:
    message = helm.refuse(sets=["state.persistence.enabled=true", "dedupe.replicaCount=2"])
    assert "dedupe" in message and "replicaCount 1" in message
