"""The Dockerfile, linted by reading (no Docker engine here): the single image the chart runs."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib

import yaml

from whale.settings import WhaleSettings

from .helm import CHART, ROOT
from .settings_env import env_names

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def test_every_stage_starts_from_python_3_11_slim() -> None:
    """Build and runtime stages use the python:3.11-slim base the project targets."""
    bases = [args.split()[0] for word, args in instructions() if word == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases), bases


def test_the_image_runs_whale_as_a_non_root_user_matching_the_chart() -> None:
    """USER is a numeric non-root uid:gid, the one the chart's podSecurityContext runs as."""
    users = [args for word, args in final_stage() if word == "USER"]
    assert len(users) == 1
    uid, _, gid = users[0].partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    pod = yaml.safe_load((CHART / "values.yaml").read_text())["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (int(uid), int(gid))
    entrypoint = [json.loads(args) for word, args in final_stage() if word == "ENTRYPOINT"]
    assert entrypoint == [["whale"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "whale" in scripts


def test_the_image_is_read_only_root_filesystem_friendly() -> None:
    """Everything the process writes goes under /tmp: HOME, the cache and the working directory,
    with /tmp declared a volume; no bytecode written at run time."""
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))  # type: ignore[misc]
    assert env["HOME"] == "/tmp"
    assert env["WHALE_CACHE_DIR"].startswith("/tmp/")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    workdirs = [args for word, args in final_stage() if word == "WORKDIR"]
    assert workdirs[-1] == "/tmp"
    volumes = [json.loads(args) for word, args in final_stage() if word == "VOLUME"]
    assert volumes == [["/tmp"]]
    unknown = {name for name in env if name.startswith("WHALE_")} - env_names(WhaleSettings)
    assert not unknown, f"Dockerfile sets variables WhaleSettings does not read: {unknown}"


def test_copied_sources_exist_and_are_not_excluded_by_dockerignore() -> None:
    """Every COPY source from the build context exists and .dockerignore lets it through."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:
            negated = pattern.startswith("!")
            bare = pattern.lstrip("!").rstrip("/")
            if bare == "**" or fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                verdict = not negated
        return verdict

    sources = []
    for word, args in instructions():
        if word == "COPY" and not args.startswith("--from"):
            sources += args.split()[:-1]
    assert {"pyproject.toml", "README.md", "whale", "services", "schemas"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source), f"{source} is excluded by .dockerignore"
    assert ignored(".venv") and ignored("tests")
    assert (ROOT / "schemas" / "events").is_dir(), "the chart points the event center at /app/schemas/events"


def test_the_chart_s_app_version_is_the_package_version() -> None:
    """The image tag the chart defaults to (its appVersion) is the version pyproject.toml builds."""
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert chart["appVersion"] == version
