"""Running helm against the chart in deploy/helm/whale, for the deployment checks.

helm is the version pinned in deploy/tools/install-helm.sh, built once from the Go module proxy into
the Whale cache directory (or the binary named by ``WHALE_HELM``).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "whale"
PRODUCTION_VALUES = ROOT / "deploy" / "helm" / "values-production.yaml"
INSTALL_SCRIPT = ROOT / "deploy" / "tools" / "install-helm.sh"
EVERYTHING_VALUES = Path(__file__).with_name("values-everything.yaml")

Manifest = dict[str, Any]


def pinned_version() -> str:
    """The helm version install-helm.sh installs (its ``HELM_VERSION`` default)."""
    match = re.search(r'HELM_VERSION="\$\{HELM_VERSION:-(v[0-9.]+)\}"', INSTALL_SCRIPT.read_text())
    assert match, f"no HELM_VERSION default in {INSTALL_SCRIPT}"
    return match.group(1)


def install_helm() -> Path:
    """The helm binary: ``$WHALE_HELM``, else the pinned version, built by install-helm.sh if missing."""
    explicit = os.environ.get("WHALE_HELM")
    if explicit:
        return Path(explicit)
    proc = subprocess.run(
        ["sh", str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{INSTALL_SCRIPT} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return Path(proc.stdout.strip().splitlines()[-1])


class Helm:
    """``helm lint`` / ``helm template`` on the Whale chart."""

    def __init__(self, binary: Path, chart: Path = CHART) -> None:
        self.binary = binary
        self.chart = chart

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": "/tmp/whale-helm/cache",
            "HELM_CONFIG_HOME": "/tmp/whale-helm/config",
        }
        return subprocess.run(
            [str(self.binary), *args], capture_output=True, text=True, timeout=120, check=False, env=env
        )

    def template_args(
        self, values: Sequence[Path] = (), sets: Sequence[str] = (), chart: Path | None = None
    ) -> list[str]:
        args = ["template", "whale", str(chart or self.chart), "--namespace", "whale"]
        for path in values:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        return args

    def render(
        self, values: Sequence[Path] = (), sets: Sequence[str] = (), chart: Path | None = None
    ) -> list[Manifest]:
        """Every manifest ``helm template`` renders (hooks included); fails with helm's message."""
        proc = self.run(*self.template_args(values, sets, chart))
        assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
        return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]

    def refuse(self, values: Sequence[Path] = (), sets: Sequence[str] = ()) -> str:
        """helm's error message for values the chart must refuse (fails if it renders)."""
        proc = self.run(*self.template_args(values, sets))
        assert proc.returncode != 0, f"helm template accepted the values: {values} {sets}"
        return proc.stderr


def pod_spec(manifest: Manifest) -> Manifest | None:
    """The pod spec of a workload manifest (Deployment, StatefulSet, Job, Pod), else None."""
    if manifest["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
        spec: Manifest = manifest["spec"]["template"]["spec"]
        return spec
    if manifest["kind"] == "Pod":
        pod: Manifest = manifest["spec"]
        return pod
    return None


def containers(manifests: Sequence[Manifest]) -> Iterator[tuple[Manifest, Manifest]]:
    """(workload manifest, container) for every container and init container rendered."""
    for manifest in manifests:
        spec = pod_spec(manifest)
        if spec is None:
            continue
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            yield manifest, container


def by_kind(manifests: Sequence[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}
