"""Keycloak on loopback for the OIDC tests: its distribution from Maven Central
(``org.keycloak:keycloak-quarkus-dist``, fetched once with ``mvn`` into the Whale cache dir), run
in dev mode with an in-memory database on the Temurin 25 JDK, with the realm ``whale`` imported
from ``whale-realm.json`` (client ``whale`` with a groups and an audience mapper; users alice in
whale-admins and sam in sre)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import httpx

VERSION = "26.4.7"
REALM = Path(__file__).with_name("whale-realm.json")
JAVA_HOME = Path(os.environ.get("WHALE_TEST_KEYCLOAK_JAVA_HOME", "/usr/lib/jvm/temurin-25-jdk-amd64"))
START_TIMEOUT = 600.0  # the first start builds Keycloak (about 90 s of Quarkus augmentation on 2 cores)


def missing() -> str | None:
    """Why Keycloak cannot run here (None: it can)."""
    if not (JAVA_HOME / "bin" / "java").exists():
        return f"no JDK >= 21 at {JAVA_HOME} (set WHALE_TEST_KEYCLOAK_JAVA_HOME)"
    if shutil.which("mvn") is None:
        return "mvn is not installed (it fetches the Keycloak distribution from Maven Central)"
    return None


def install(cache: Path) -> Path:
    """The unpacked distribution (fetched and unpacked on first use)."""
    base = cache / "keycloak"
    home = base / f"keycloak-{VERSION}"
    if (home / "bin" / "kc.sh").exists():
        return home
    archive = base / f"keycloak-quarkus-dist-{VERSION}.zip"
    if not archive.exists():
        base.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["mvn", "-q", "-B", "dependency:copy", f"-Dartifact=org.keycloak:keycloak-quarkus-dist:{VERSION}:zip",
             f"-DoutputDirectory={base}"],
            check=True, timeout=900,
        )  # fmt: skip
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(base)
    for script in (home / "bin").glob("*.sh"):
        script.chmod(0o755)
    return home


class Keycloak:
    def __init__(self, home: Path, port: int, log: Path) -> None:
        imports = home / "data" / "import"
        imports.mkdir(parents=True, exist_ok=True)
        shutil.copy(REALM, imports / REALM.name)
        env = {
            **os.environ,
            "JAVA_HOME": str(JAVA_HOME),
            "KC_BOOTSTRAP_ADMIN_USERNAME": "admin",
            "KC_BOOTSTRAP_ADMIN_PASSWORD": "admin-for-tests",
        }
        self.log = log
        self.issuer = f"http://127.0.0.1:{port}/realms/whale"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(home / "bin" / "kc.sh"), "start-dev", "--http-host", "127.0.0.1", f"--http-port={port}",
                 "--db=dev-mem", "--import-realm"],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        url = f"{self.issuer}/.well-known/openid-configuration"
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"Keycloak exited: {self.log.read_text()[-2000:]}"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(2)
        raise AssertionError(f"Keycloak did not start in {START_TIMEOUT} s: {self.log.read_text()[-2000:]}")

    def password_token(self, user: str, password: str) -> str:
        response = httpx.post(
            f"{self.issuer}/protocol/openid-connect/token",
            data={"grant_type": "password", "client_id": "whale", "username": user, "password": password,
                  "scope": "openid"},
            timeout=30,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
