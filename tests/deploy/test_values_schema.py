"""values.schema.json: wrong values fail at `helm template`/`helm install` time with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from .helm import CHART, PRODUCTION_VALUES, Helm

pytestmark = pytest.mark.timeout(3600)

SCHEMA_ERROR = "values don't meet the specifications of the schema(s)"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values.yaml"
    path.write_text(text)
    return path


def test_schema_is_valid_draft_2020_12_and_accepts_the_shipped_values() -> None:
    """The schema itself is valid, and values.yaml / values-production.yaml satisfy it."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(defaults)
    production = yaml.safe_load(PRODUCTION_VALUES.read_text())
    merged = {**defaults, **{k: v for k, v in production.items() if not isinstance(v, dict)}}
    for key, value in production.items():
        if isinstance(value, dict):
            merged[key] = {**defaults.get(key, {}), **value}
    jsonschema.Draft202012Validator(schema).validate(merged)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["kafka.bootstrap=null"], "at '/kafka': missing property 'bootstrap'"),
        (["kafka.bootstrap="], "at '/kafka/bootstrap': minLength: got 0, want 1"),
        (["kafka.bootstrap=kafka"], "at '/kafka/bootstrap': 'kafka' does not match pattern"),
        (["elasticsearch.url=null"], "at '/elasticsearch': missing property 'url'"),
        (["elasticsearch.url=elasticsearch:9200"], "at '/elasticsearch/url'"),
        (["kafka.securityProtocol=SASL_SSL"], "at '/kafka/sasl/existingSecret': minLength: got 0, want 1"),
        (["kafka.securityProtocol=TLS"], "at '/kafka/securityProtocol'"),
        (
            ["executor.pools[0].name=Billing_Team"],
            "at '/executor/pools/0/name': 'Billing_Team' does not match",
        ),
        (["eventCenter.replicas=3"], "at '/eventCenter': additional properties 'replicas' not allowed"),
        (
            ["ruleEngine.autoscaling.enabled=true"],
            "at '/ruleEngine': additional properties 'autoscaling' not allowed",
        ),
        (["indexer.env.KAFKA_BOOTSTRAP=x"], "at '/indexer/env'"),
        (["securityContext.readOnlyRootFilesystem=false"], "at '/securityContext/readOnlyRootFilesystem'"),
        (["podSecurityContext.runAsNonRoot=false"], "at '/podSecurityContext/runAsNonRoot'"),
        (["logging.level=verbose"], "at '/logging/level'"),
        (["adapters.ingress.enabled=true"], "at '/adapters/ingress/host': minLength: got 0, want 1"),
        (["eventCenter.devMode=true"], "at '/eventCenter/devMode'"),
        (["eventCenter.env.WHALE_DEV_MODE=true"], "at '/eventCenter/env'"),
        (["dispatcher.env.WHALE_AUTH_DEV_MODE=true"], "at '/dispatcher/env'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_wrong_values_are_refused_with_the_schema_message(helm: Helm, sets: list[str], message: str) -> None:
    """Each wrong value is refused by `helm template`, naming the value's path and what is wrong."""
    error = helm.refuse(sets=sets)
    assert SCHEMA_ERROR in error and message in error, error


def test_a_missing_kafka_bootstrap_is_refused(helm: Helm, tmp_path: Path) -> None:
    """A values file that empties the Kafka section is refused: bootstrap is required."""
    error = helm.refuse(values=[write(tmp_path, "kafka:\n  bootstrap: null\n")])
    assert SCHEMA_ERROR in error and "at '/kafka': missing property 'bootstrap'" in error, error


def test_an_executor_pool_without_a_name_is_refused(helm: Helm, tmp_path: Path) -> None:
    """A pool without a name is refused, naming the pool's index."""
    error = helm.refuse(values=[write(tmp_path, "executor:\n  pools:\n    - replicaCount: 2\n")])
    assert SCHEMA_ERROR in error and "at '/executor/pools/0': missing property 'name'" in error, error


def test_no_executor_pool_at_all_is_refused(helm: Helm, tmp_path: Path) -> None:
    """An empty pool list is refused: with executors enabled there is at least one pool."""
    error = helm.refuse(values=[write(tmp_path, "executor:\n  pools: []\n")])
    assert "at '/executor/pools': minItems: got 0, want 1" in error, error


def test_two_pools_with_one_name_are_refused(helm: Helm, tmp_path: Path) -> None:
    """Pool names are unique (each names a Deployment and a topic)."""
    error = helm.refuse(values=[write(tmp_path, "executor:\n  pools:\n    - name: ops\n    - name: ops\n")])
    assert 'the pool name "ops" is used twice' in error, error
