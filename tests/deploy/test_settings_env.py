"""The environment variables the chart sets are exactly ones the services' Settings read.

A typo in a variable name (the chart's or a user's `env:` value) is silently ignored by
pydantic-settings, so these tests compare every name the chart renders with the names computed
from the Settings classes of the service each container runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from whale.settings import WhaleSettings

from .helm import EVERYTHING_VALUES, PRODUCTION_VALUES, Helm, Manifest, by_kind, containers
from .settings_env import allowed_env, config_env_refs, env_names, settings_classes

pytestmark = pytest.mark.timeout(3600)


class _Inner(BaseModel):
    depth: int = 1


class _Shared(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_SHARED_")
    url: str = "x"


class _Service(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DEMO_SVC_", env_nested_delimiter="__")
    shared: _Shared = Field(default_factory=_Shared)
    port: int = 1
    flag: bool = Field(default=False, validation_alias=AliasChoices("DEMO_SVC_FLAG", "DEMO_FLAG"))
    inner: _Inner | None = None


def test_env_names_follow_prefix_aliases_and_nested_settings() -> None:
    """env_names: prefix + field name, every alias of a field, a nested BaseSettings under its own
    prefix, a nested model under the delimiter."""
    assert env_names(_Service) == {
        "DEMO_SVC_SHARED",
        "DEMO_SHARED_URL",
        "DEMO_SVC_PORT",
        "DEMO_SVC_FLAG",
        "DEMO_FLAG",
        "DEMO_SVC_INNER",
        "DEMO_SVC_INNER__DEPTH",
    }


def test_env_names_of_whale_settings_are_the_documented_shared_variables() -> None:
    """WhaleSettings (and its nested Kafka security settings) read the WHALE_ variables the chart sets."""
    assert {
        "WHALE_KAFKA_BOOTSTRAP",
        "WHALE_ES_URL",
        "WHALE_ES_USERNAME",
        "WHALE_ES_PASSWORD",
        "WHALE_KAFKA_SECURITY_PROTOCOL",
        "WHALE_KAFKA_SASL_MECHANISM",
        "WHALE_KAFKA_SASL_USERNAME",
        "WHALE_KAFKA_SASL_PASSWORD",
        "WHALE_KAFKA_SSL_CA_LOCATION",
        "WHALE_LOG_LEVEL",
        "WHALE_LOG_FORMAT",
        "WHALE_CACHE_DIR",
    } <= env_names(WhaleSettings)


def test_a_service_with_settings_reads_more_than_the_shared_variables() -> None:
    """settings_classes finds the event center's Settings through its entry point (or package)."""
    classes = settings_classes("event-center")
    assert classes, "whale_event_center.settings defines no BaseSettings class"
    assert "WHALE_EVENT_CENTER_PORT" in allowed_env(["whale", "run", "event-center"])
    assert allowed_env(["whale", "topics", "ensure"]) == env_names(WhaleSettings)


def referenced_by_config(
    manifest: Manifest, container: Manifest, config_maps: dict[str, Manifest]
) -> set[str]:
    """Variables named by the configuration files (ConfigMaps) mounted into ``container``."""
    volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"]["volumes"]}
    names: set[str] = set()
    for mount in container.get("volumeMounts", []):
        config_map = volumes[mount["name"]].get("configMap")
        if config_map:
            for text in config_maps[config_map["name"]]["data"].values():
                for doc in yaml.safe_load_all(text):
                    names |= config_env_refs(doc)
    return names


def test_config_env_refs_finds_secret_references_and_env_keys() -> None:
    """`env:NAME` strings and `*_env` keys (a name or a mapping of names) are references."""
    doc = {
        "webhooks": [{"name": "shop", "secret_env": "SHOP_SECRET"}],
        "pollers": [{"header_env": {"Authorization": "INVENTORY_AUTH"}}],
        "auth": {"bearer": "env:TICKETS_TOKEN", "basic": "file:/run/secrets/x"},
        "text": "env: not a reference",
    }
    assert config_env_refs(doc) == {"SHOP_SECRET", "INVENTORY_AUTH", "TICKETS_TOKEN"}


@pytest.mark.parametrize(
    "values", [[], [PRODUCTION_VALUES], [EVERYTHING_VALUES]], ids=["default", "production", "everything"]
)
def test_every_variable_the_chart_sets_is_read_by_the_container_s_service(
    helm: Helm, values: list[Path]
) -> None:
    """For each container, every environment variable it gets is one its command's Settings read
    (WhaleSettings plus the service's own classes) or one its mounted configuration names
    (`secret_env`, `env:NAME`); Kafka and Elasticsearch are always set."""
    unknown: list[str] = []
    manifests = helm.render(values)
    config_maps = by_kind(manifests, "ConfigMap")
    for manifest, container in containers(manifests):
        command = [*container.get("command", []), *container.get("args", [])]
        if command[:1] != ["whale"]:
            assert "env" not in container, f"{command} is no Whale process and needs no settings"
            continue
        allowed = allowed_env(command) | referenced_by_config(manifest, container, config_maps)
        names = [env["name"] for env in container["env"]]
        assert len(names) == len(set(names)), f"duplicate variables in {manifest['metadata']['name']}"
        assert {"WHALE_KAFKA_BOOTSTRAP", "WHALE_ES_URL"} <= set(names)
        unknown += [
            f"{manifest['kind']}/{manifest['metadata']['name']} ({' '.join(command)}): {name}"
            for name in names
            if name.upper() not in allowed
        ]
    assert not unknown, "variables no Settings class reads:\n" + "\n".join(unknown)


def test_each_service_listens_on_all_interfaces_on_its_probed_port(default_manifests: list[Manifest]) -> None:
    """The services default to 127.0.0.1 and some to no health server at all, so the chart sets, in
    each Deployment, a *_PORT setting equal to the container's `http` port and a *_HOST setting to
    0.0.0.0 (the kubelet's probes and the Service reach the pod's IP)."""
    for manifest, container in containers(default_manifests):
        if manifest["kind"] != "Deployment":
            continue
        where = manifest["metadata"]["name"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
        assert [n for n, v in env.items() if n.endswith("_PORT") and v == str(port)], where
        assert [n for n, v in env.items() if n.endswith("_HOST") and v == "0.0.0.0"], where
