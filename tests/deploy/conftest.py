"""Fixtures of the deployment checks: helm (installed once per machine) and the rendered chart."""

from __future__ import annotations

import pytest

from .helm import EVERYTHING_VALUES, PRODUCTION_VALUES, Helm, Manifest, install_helm


@pytest.fixture(scope="session")
def helm() -> Helm:
    """helm at the pinned version; the first run on a machine builds it (a few minutes)."""
    try:
        return Helm(install_helm())
    except RuntimeError as exc:
        pytest.fail(f"could not install helm for the chart checks: {exc}")


@pytest.fixture(scope="session")
def default_manifests(helm: Helm) -> list[Manifest]:
    """The chart rendered with its default values."""
    return helm.render()


@pytest.fixture(scope="session")
def production_manifests(helm: Helm) -> list[Manifest]:
    """The chart rendered with deploy/helm/values-production.yaml."""
    return helm.render([PRODUCTION_VALUES])


@pytest.fixture(scope="session")
def everything_manifests(helm: Helm) -> list[Manifest]:
    """The chart rendered with tests/deploy/values-everything.yaml (every option on)."""
    return helm.render([EVERYTHING_VALUES])
