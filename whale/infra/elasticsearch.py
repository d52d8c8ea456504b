"""One Elasticsearch node for local development, fetched from Maven Central.

Layout: the distribution in ``<cache_dir>/elasticsearch-<version>``; configuration, data, logs and
temporary files of the node in ``<data_dir>/elasticsearch``. The integ-test distribution has no bundled
JDK, so ``ES_JAVA_HOME`` points at the Java 17+ runtime that was found.

Elasticsearch refuses to run as root. As root, the node runs as an unprivileged system user (created
once, ``InfraSettings.es_user``) that owns the node directory. That user must be able to enter every
parent directory of the distribution and of the node directory. When it cannot (the default cache dir
is under ``/root``, mode 700), both live in ``InfraSettings.es_root_dir`` (``/var/lib/whale``) instead
and ``<data_dir>/elasticsearch`` links there; no permission of an existing directory is changed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pwd
import shutil
import stat
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from whale.errors import InfraError
from whale.infra import maven, process
from whale.infra.java import Java
from whale.infra.settings import InfraSettings

NAME = "elasticsearch"
CAP_DAC_READ_SEARCH = 2
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def dist_root(cache_dir: Path, version: str) -> Path:
    """The directory that holds the unpacked distribution of Elasticsearch ``version``."""
    return cache_dir / f"elasticsearch-{version}"


def extract(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into ``dest`` keeping the Unix modes stored in the zip (``bin/`` scripts)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            target = Path(zf.extract(info, dest))
            mode = (info.external_attr >> 16) & 0o777
            if mode and not stat.S_ISLNK(info.external_attr >> 16):
                target.chmod(mode)


def install(root: Path, version: str, java: Java) -> Path:
    """The home of Elasticsearch ``version`` (in ``root``), fetched with Maven and unpacked on first use."""

    def build(tmp: Path) -> None:
        download = tmp / "download"
        maven.copy_dependencies(
            maven.elasticsearch_pom(version), download, java=java, what=f"Elasticsearch {version}"
        )
        archives = sorted(download.glob("*.zip"))
        if not archives:
            raise InfraError(f"Maven fetched no zip for Elasticsearch {version} into {download}")
        extract(archives[0], tmp)
        shutil.rmtree(download)
        (tmp / "pom.xml").unlink(missing_ok=True)

    es_home = maven.install_once(root, build) / f"elasticsearch-{version}"
    if not (es_home / "bin" / "elasticsearch").is_file():
        raise InfraError(f"{es_home} is not an Elasticsearch distribution; delete {root} and retry")
    return es_home


def elasticsearch_yml(infra: InfraSettings, node_dir: Path) -> str:
    """``elasticsearch.yml`` of a single-node, security-less node bound to ``infra.host`` only."""
    settings: dict[str, str | int | bool] = {
        "cluster.name": "whale-local",
        "node.name": "whale-local-1",
        "network.host": infra.host,
        "http.port": infra.es_port,
        "transport.port": infra.es_transport_port,
        "discovery.type": "single-node",
        "path.data": str(node_dir / "data"),
        "path.logs": str(node_dir / "logs"),
        # Local development stack on a loopback address only: no TLS, no users.
        "xpack.security.enabled": False,
        # A fullish developer disk must not turn indices read-only: act only when < 256mb are free.
        "cluster.routing.allocation.disk.watermark.low": "1gb",
        "cluster.routing.allocation.disk.watermark.high": "512mb",
        "cluster.routing.allocation.disk.watermark.flood_stage": "256mb",
        # Tests clean up with wildcards (``DELETE whale-test-*``).
        "action.destructive_requires_name": False,
    }
    lines = ["# Written by whale infra at every start; edit InfraSettings (WHALE_INFRA_*) instead."]
    lines += [f"{key}: {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account that runs the node when this process is root."""

    user: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Layout:
    """Where the distribution (``dist_root``) and the node (``node_dir``) live, and who runs the node."""

    dist_root: Path
    node_dir: Path
    who: RunAs | None


def unsearchable_parent(path: Path, uid: int, gids: set[int]) -> Path | None:
    """The first existing directory above ``path`` that ``uid`` (member of ``gids``) may not enter."""
    for parent in reversed(path.absolute().parents):
        try:
            st = parent.stat()
        except FileNotFoundError:
            return None
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return parent
    return None


def ensure_user(name: str) -> pwd.struct_passwd:
    """The system account ``name``, created (no home, no login shell) if it does not exist."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise InfraError(f"Elasticsearch cannot run as root and `useradd` is missing to create user {name!r}")
    cmd = [
        useradd,
        "--system",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
    ]
    proc = subprocess.run([*cmd, "--user-group", name], capture_output=True, text=True, check=False)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise InfraError(f"cannot create user {name!r} for Elasticsearch: {proc.stderr.strip()}") from None


def locate(cache_dir: Path, data_dir: Path, infra: InfraSettings, java: Java) -> Layout:
    """The node's layout: in the cache and data dirs, unless root's ES user cannot enter them."""
    root = dist_root(cache_dir, infra.es_version)
    node_dir = data_dir / NAME
    if os.geteuid() != 0:
        return Layout(root, node_dir, None)
    account = ensure_user(infra.es_user)
    who = RunAs(account.pw_name, account.pw_uid, account.pw_gid)
    gids = {account.pw_gid, *os.getgrouplist(account.pw_name, account.pw_gid)}

    def blocked(*paths: Path) -> Path | None:
        return next((p for p in (unsearchable_parent(path, who.uid, gids) for path in paths) if p), None)

    if blocked(root / "x", node_dir / "x") is not None:
        key = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
        root = dist_root(infra.es_root_dir, infra.es_version)
        node_dir = infra.es_root_dir / "nodes" / key
    where = blocked(root / "x", node_dir / "x", java.executable)
    if where is not None:
        raise InfraError(
            f"Elasticsearch must run as user {who.user!r} (not root), which cannot enter {where}; "
            "make it enterable, or set WHALE_INFRA_ES_ROOT_DIR or JAVA_HOME to a place it can enter"
        )
    return Layout(root, node_dir, who)


def launcher(es_home: Path, who: RunAs | None) -> list[str]:
    """The command that starts the node in the foreground, as ``who`` if this process is root."""
    command = [str(es_home / "bin" / "elasticsearch")]
    if who is None:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        return [setpriv, f"--reuid={who.uid}", f"--regid={who.gid}", "--init-groups", "--", *command]
    runuser = shutil.which("runuser")
    if runuser is not None:
        return [runuser, "-u", who.user, "--", *command]
    raise InfraError("Elasticsearch cannot run as root and neither `setpriv` nor `runuser` is installed")


def prepare(layout: Layout, es_home: Path, infra: InfraSettings, data_dir: Path) -> Path:
    """Create the node's directories and configuration (a copy of the distribution's) in ``node_dir``."""
    node_dir, who = layout.node_dir, layout.who
    config = node_dir / "config"
    if not (config / "jvm.options").is_file():
        shutil.rmtree(config, ignore_errors=True)
        shutil.copytree(es_home / "config", config)
    (config / "elasticsearch.yml").write_text(elasticsearch_yml(infra, node_dir), encoding="utf-8")
    for sub in ("data", "logs", "tmp"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    (node_dir / "elasticsearch.out").touch()
    link = data_dir / NAME
    if link != node_dir and not link.exists() and not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(node_dir, target_is_directory=True)
    if who is not None:
        for root, dirs, files in os.walk(node_dir):
            for name in [*dirs, *files]:
                os.lchown(Path(root) / name, who.uid, who.gid)
        os.lchown(node_dir, who.uid, who.gid)
    return config


def start(
    layout: Layout, es_home: Path, infra: InfraSettings, java: Java, data_dir: Path
) -> tuple[subprocess.Popen[bytes], process.ProcessRecord]:
    """Start the node detached from this process; it is not ready yet (see :func:`wait_ready`)."""
    config = prepare(layout, es_home, infra, data_dir)
    env = {key: value for key, value in os.environ.items() if key not in ("JAVA_HOME", "ES_HOME")}
    env.update(
        ES_JAVA_HOME=str(java.home),
        ES_PATH_CONF=str(config),
        ES_JAVA_OPTS=f"-Xms{infra.es_heap} -Xmx{infra.es_heap}",
        ES_TMPDIR=str(layout.node_dir / "tmp"),
    )
    if layout.who is not None:
        env.update(HOME=str(layout.node_dir), USER=layout.who.user, LOGNAME=layout.who.user)
    return process.spawn(
        launcher(es_home, layout.who),
        log=layout.node_dir / "elasticsearch.out",
        env=env,
        cwd=layout.node_dir,
        address=infra.es_url(),
        version=infra.es_version,
    )


def health(url: str, auth: tuple[str, str] | None = None, timeout: float = 5.0) -> str | None:
    """The cluster health status (``green``/``yellow``/``red``) at ``url``, None if it does not answer."""
    request = urllib.request.Request(f"{url.rstrip('/')}/_cluster/health?timeout=1s")  # noqa: S310
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except (OSError, ValueError):
        return None
    status = body.get("status") if isinstance(body, dict) else None
    return status if isinstance(status, str) else None


def wait_ready(proc: subprocess.Popen[bytes], record: process.ProcessRecord, timeout: float) -> None:
    """Block until the node reports yellow or green health; InfraError with its log if it exits or hangs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InfraError(
                f"Elasticsearch exited with code {proc.returncode} during start-up; "
                f"last lines of {record.log}:\n" + process.tail(Path(record.log))
            )
        if health(record.address, timeout=2.0) in ("yellow", "green"):
            return
        time.sleep(0.5)
    raise InfraError(
        f"Elasticsearch did not become healthy on {record.address} within {timeout:.0f}s; "
        f"last lines of {record.log}:\n" + process.tail(Path(record.log))
    )
