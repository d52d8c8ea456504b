"""Fetch artifacts from Maven Central with ``mvn``: a small pom per component, copy-dependencies.

The poms are templates shipped in this package. No repository address appears anywhere: Maven's
default repository is Maven Central, and a user's ``~/.m2/settings.xml`` (mirrors, proxies) applies.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from string import Template

from whale.errors import InfraError
from whale.infra.java import Java

DEPENDENCY_PLUGIN_VERSION = "3.8.1"
SLF4J_VERSION = "2.0.16"
LOG4J_VERSION = "2.24.3"
COMPLETE_MARKER = ".whale-complete"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MVN_TIMEOUT = 1800.0

_NETWORK_HINTS = (
    "UnknownHostException",
    "Unknown host",
    "Connection refused",
    "Connect timed out",
    "connect timed out",
    "Read timed out",
    "Network is unreachable",
    "No route to host",
    "Could not transfer",
    "transfer failed",
    "PKIX path building failed",
    "offline mode",
)


def render_pom(name: str, **values: str) -> str:
    """The pom template ``<name>-pom.xml`` of this package with ``values`` filled in."""
    text = resources.files("whale.infra").joinpath(f"{name}-pom.xml").read_text(encoding="utf-8")
    return Template(text).substitute(**values)


def kafka_pom(kafka_version: str) -> str:
    """The pom whose runtime dependencies are a Kafka broker with log4j2 logging."""
    return render_pom(
        "kafka", kafka_version=kafka_version, slf4j_version=SLF4J_VERSION, log4j_version=LOG4J_VERSION
    )


def elasticsearch_pom(es_version: str) -> str:
    """The pom whose only dependency is the Elasticsearch distribution zip."""
    return render_pom("elasticsearch", es_version=es_version)


def find_maven() -> str:
    """The ``mvn`` executable on ``PATH``; InfraError if Maven is not installed."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError(
            "Maven (`mvn`) is required to download Kafka and Elasticsearch but was not found on PATH; "
            "install Maven 3.6+"
        )
    return mvn


def explain_failure(what: str, returncode: int, output: str) -> str:
    """One line that says why ``mvn`` could not fetch ``what``, from its output."""
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    errors = [line.removeprefix("[ERROR]").strip() for line in lines if line.startswith("[ERROR]")]
    errors = [line for line in errors if line] or [line for line in lines if line]
    first = errors[0].removesuffix("-> [Help 1]").strip() if errors else f"exit code {returncode}"
    first = re.sub(r"^Failed to execute goal( on project [^:]+)?: ", "", first)
    first = re.sub(r"^Could not resolve dependencies for project \S+: ", "", first)
    if any(hint in output for hint in _NETWORK_HINTS):
        cause = ": ".join(first.split(": ")[-2:])
        return (
            f"Maven could not download {what} from Maven Central: is the network (or the proxy/mirror "
            f"in ~/.m2/settings.xml) reachable? ({_shorten(cause)})"
        )
    if "was not found in" in output or "Could not find artifact" in output:
        return f"Maven could not resolve {what}: {_shorten(first)}"
    return f"Maven failed to fetch {what} (exit code {returncode}): {_shorten(first)}"


def _shorten(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def copy_dependencies(pom: str, out_dir: Path, *, java: Java, what: str) -> None:
    """Write ``pom`` next to ``out_dir`` and let Maven copy its runtime dependencies into ``out_dir``."""
    mvn = find_maven()
    pom_path = out_dir.parent / "pom.xml"
    pom_path.write_text(pom, encoding="utf-8")
    cmd = [
        mvn,
        "-B",
        "-q",
        "-U",
        "-Dstyle.color=never",
        "-f",
        str(pom_path),
        f"org.apache.maven.plugins:maven-dependency-plugin:{DEPENDENCY_PLUGIN_VERSION}:copy-dependencies",
        f"-DoutputDirectory={out_dir}",
        "-DincludeScope=runtime",
    ]
    env = {**os.environ, "JAVA_HOME": str(java.home)}
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=env,
            cwd=out_dir.parent,
            timeout=MVN_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise InfraError(f"Maven did not finish fetching {what} within {MVN_TIMEOUT:.0f}s") from exc
    except OSError as exc:
        raise InfraError(f"cannot run Maven ({mvn}): {exc}") from exc
    if proc.returncode != 0:
        raise InfraError(explain_failure(what, proc.returncode, proc.stdout + proc.stderr))


def install_once(dest: Path, build: Callable[[Path], None]) -> Path:
    """Make ``dest`` with ``build(tmp_dir)`` unless it is complete already; never leaves half a ``dest``.

    ``build`` fills a temporary sibling directory that is renamed to ``dest`` only when it succeeded.
    """
    if (dest / COMPLETE_MARKER).is_file():
        return dest
    tmp = dest.with_name(f"{dest.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        (tmp / COMPLETE_MARKER).write_text("", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
