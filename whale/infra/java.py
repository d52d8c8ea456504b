"""Find a Java 17+ runtime: ``JAVA_HOME`` first, then ``java`` on ``PATH``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from whale.errors import InfraError

MIN_JAVA = 17


@dataclass(frozen=True)
class Java:
    """A Java runtime: its home (for ``JAVA_HOME`` / ``ES_JAVA_HOME``), binary and major version."""

    home: Path
    executable: Path
    major: int


def parse_major(version: str) -> int:
    """The feature release of a ``java.version`` string: ``1.8.0_392`` is 8, ``17.0.15`` is 17."""
    match = re.match(r"(\d+)(?:\.(\d+))?", version.strip())
    if not match:
        raise InfraError(f"cannot read the Java version from {version!r}")
    first = int(match.group(1))
    if first == 1 and match.group(2) is not None:
        return int(match.group(2))
    return first


def parse_properties(output: str) -> dict[str, str]:
    """The ``key = value`` lines that ``java -XshowSettings:properties -version`` prints."""
    props: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key and " " not in key:
            props.setdefault(key, value.strip())
    return props


def candidate() -> Path | None:
    """The ``java`` binary to use: ``$JAVA_HOME/bin/java`` if it exists, else ``java`` on ``PATH``."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return Path(home) / "bin" / "java"
    found = shutil.which("java")
    return Path(found) if found else None


def check(executable: Path, output: str) -> Java:
    """Turn the properties that ``executable`` printed into a :class:`Java`, or explain why not."""
    props = parse_properties(output)
    if "java.version" not in props:
        raise InfraError(f"{executable} did not report a version; is it a Java runtime?")
    major = parse_major(props["java.version"])
    home = Path(props.get("java.home", str(executable.resolve().parent.parent)))
    if major < MIN_JAVA:
        raise InfraError(
            f"Java {MIN_JAVA}+ is required but {executable} is Java {major} ({home}); "
            f"install JDK {MIN_JAVA} or newer and set JAVA_HOME to it"
        )
    return Java(home=home, executable=home / "bin" / "java", major=major)


def find_java() -> Java:
    """The Java 17+ runtime that runs Kafka, Elasticsearch and Maven; InfraError if there is none."""
    executable = candidate()
    if executable is None:
        raise InfraError(
            f"Java {MIN_JAVA}+ is required but no `java` was found (install JDK {MIN_JAVA}+ or set JAVA_HOME)"
        )
    try:
        proc = subprocess.run(
            [str(executable), "-XshowSettings:properties", "-version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfraError(f"cannot run {executable}: {exc}") from exc
    return check(executable, proc.stdout + proc.stderr)
