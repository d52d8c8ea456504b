"""Whale installed from its wheel works outside the checkout: no run-time path into the source tree.

The wheel is built from a copy of the checkout and installed, without its dependencies, into a fresh
virtual environment; the dependencies come from this test run's environment through a path entry
(plain ``sys.path`` lines, so the checkout's editable install is not activated there). Every command
runs from an empty directory, so nothing is found relative to the current directory either.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from whale.processes import SERVICES

ROOT = Path(__file__).resolve().parents[2]
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv holding only the built whale wheel (dependencies borrowed)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIP)
    dist = base / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            dist,
            source,
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("whale-*.whl")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", purelib, wheel],
        check=True,
        capture_output=True,
    )
    (Path(purelib) / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _run(python: Path, cwd: Path, *args: str) -> str:
    proc = subprocess.run([python, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_installed_whale_answers_help_and_lists_every_service(installed: Path, tmp_path: Path) -> None:
    assert "run" in _run(installed, tmp_path, "-m", "whale", "--help")
    listed = set(_run(installed, tmp_path, "-m", "whale", "run", "--list").split())
    assert set(SERVICES) <= listed
    probe = "import importlib; from whale.processes import SERVICES as S; [importlib.import_module(s.package + m) for s in S.values() for m in ('.app', '.settings', '.metrics')]"
    _run(installed, tmp_path, "-c", probe)  # every service's package is in the wheel, importable from it


def test_the_installed_whale_carries_its_event_schemas_and_scenarios(installed: Path, tmp_path: Path) -> None:
    probe = (
        "import json, whale, whale_event_center.settings as s; from whale import resources as r;"
        "print(json.dumps([whale.__file__, str(s.default_schemas_dir()), str(r.scenarios_dir())]))"
    )
    module, schemas, scenarios = json.loads(_run(installed, tmp_path, "-c", probe))
    prefix = installed.parent.parent
    for path in (module, schemas, scenarios):
        assert Path(path).resolve().is_relative_to(prefix), f"{path} is not inside the installed venv"
    assert sorted(p.name for p in Path(schemas).glob("*.json")) == sorted(
        p.name for p in (ROOT / "schemas" / "events").glob("*.json")
    )
    assert {p.name for p in (Path(scenarios) / "rules").glob("*.yaml")} == {
        p.name for p in (ROOT / "examples" / "scenarios" / "rules").glob("*.yaml")
    }
    assert (Path(scenarios) / "payloads" / "disk-alert.json").is_file()
