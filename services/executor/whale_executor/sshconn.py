"""SSH connections to inventory hosts: credentials by secret reference, strict host keys, reuse, limits.

- **Host keys**: checked against one known_hosts file (``WHALE_EXECUTOR_SSH_KNOWN_HOSTS``). A host
  with no entry is refused unless trust on first use is enabled (``SSH_TRUST_ON_FIRST_USE``); then
  the key it presents is accepted once and appended to the file, and checked strictly from then on.
- **Credentials**: the host's ``key`` (and ``passphrase``, ``certificate``) secret references from the
  inventory, resolved at connect time; nothing else (no agent, no ~/.ssh/config, no passwords).
- **Reuse**: one connection per (host, user), shared by the sessions of every action on that host
  (``SSH_REUSE=false`` opens one per action). A connection found closed is opened again; one left
  unused for ``SSH_IDLE`` seconds is closed.
- **Jump hosts**: a host with ``via: NAME`` is reached through a connection of its own to that
  inventory host (host key and key checked the same way), closed with it.
- **Limit**: at most ``SSH_PER_HOST`` sessions at once per host; further actions wait their turn.
- **Failures**: refused connections, timeouts and dropped connections are retryable; an unknown or
  changed host key, a refused login and an unusable key are not (retrying cannot fix them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncssh
import structlog

from whale.inventory import Host
from whale_executor import secrets
from whale_executor.errors import ActionFailed, SecretError

log = structlog.get_logger(__name__)


class Connections:
    """The executor's SSH connections, keyed by (host, user), and the per-host session slots."""

    def __init__(
        self,
        *,
        known_hosts: Path,
        trust_on_first_use: bool = False,
        per_host: int = 4,
        connect_timeout: float = 10.0,
        reuse: bool = True,
        idle: float = 60.0,
        lookup: Callable[[str], Host] | None = None,
    ) -> None:
        self.known_hosts = known_hosts
        self.trust_on_first_use = trust_on_first_use
        self.per_host = per_host
        self.connect_timeout = connect_timeout
        self.reuse = reuse
        self.idle = idle
        self.lookup = lookup  # inventory names of jump hosts (``via``) to hosts
        self._watchers: set[asyncio.Task[None]] = set()
        self._conns: dict[tuple[str, str], asyncssh.SSHClientConnection] = {}
        self._connecting: dict[tuple[str, str], asyncio.Lock] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._in_use: dict[tuple[str, str], int] = {}
        self._expiry: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._file_lock = asyncio.Lock()
        self.opened = 0  # connections opened so far (reuse is visible in tests and benchmarks)

    def slot(self, host: Host) -> asyncio.Semaphore:
        """The semaphore bounding the sessions open at once on ``host``."""
        return self._slots.setdefault(host.name, asyncio.Semaphore(self.per_host))

    @contextlib.asynccontextmanager
    async def connection(
        self,
        host: Host,
        *,
        stale: asyncssh.SSHClientConnection | None = None,
        deadline: float | None = None,
    ) -> AsyncIterator[asyncssh.SSHClientConnection]:
        """A connection to ``host`` (pooled unless reuse is off); the pooled one is replaced if it is
        closed or is ``stale`` (a session could not be opened on it). Opening one gives up at
        ``connect_timeout`` or at ``deadline`` (``time.monotonic()``), whichever comes first."""
        limit = self.connect_timeout
        if deadline is not None:
            limit = max(min(limit, deadline - time.monotonic()), 0.001)
        if not self.reuse:
            single = await self._open(host, limit)
            try:
                yield single
            finally:
                single.close()
            return
        key = (host.name, host.user)
        async with self._connecting.setdefault(key, asyncio.Lock()):
            conn = self._conns.get(key)
            if conn is not None and (conn is stale or conn.is_closed()):
                conn.close()
                conn = None
            if conn is None:
                conn = self._conns[key] = await self._open(host, limit)
            self._in_use[key] = self._in_use.get(key, 0) + 1
            if (timer := self._expiry.pop(key, None)) is not None:
                timer.cancel()
        try:
            yield conn
        finally:
            self._in_use[key] -= 1
            if not self._in_use[key] and self._conns.get(key) is conn:
                loop = asyncio.get_running_loop()
                self._expiry[key] = loop.call_later(self.idle, self._expire, key, conn)

    def _expire(self, key: tuple[str, str], conn: asyncssh.SSHClientConnection) -> None:
        """Close a pooled connection nobody used for ``idle`` seconds (thousands of hosts, few busy)."""
        self._expiry.pop(key, None)
        if self._conns.get(key) is conn and not self._in_use.get(key):
            del self._conns[key]
            conn.close()

    @property
    def pooled(self) -> int:
        """Connections open in the pool now."""
        return len(self._conns)

    async def close(self) -> None:
        for timer in self._expiry.values():
            timer.cancel()
        self._expiry.clear()
        conns = list(self._conns.values())
        self._conns.clear()
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.wait_closed()

    async def _open(self, host: Host, limit: float) -> asyncssh.SSHClientConnection:
        keys = client_keys(host)
        known = await asyncio.to_thread(self._known_hosts_for, host)
        tunnel = await self._jump(host, limit)
        try:
            conn = await asyncio.wait_for(
                asyncssh.connect(
                    host.address,
                    port=host.port,
                    username=host.user,
                    client_keys=keys,
                    known_hosts=known,
                    agent_path=None,
                    config=None,
                    password=None,
                    kbdint_auth=False,
                    gss_auth=False,
                    host_based_auth=False,
                    connect_timeout=limit,
                    tunnel=tunnel,
                ),
                timeout=limit + 1,
            )
        except BaseException as exc:
            if tunnel is not None:
                tunnel.close()
            raise connect_error(exc, host, self.known_hosts) from None
        if tunnel is not None:  # the jump connection belongs to this one: it goes when this one goes
            watcher = asyncio.create_task(_close_after(conn, tunnel))
            self._watchers.add(watcher)
            watcher.add_done_callback(self._watchers.discard)
        self.opened += 1
        if known is None:  # trust on first use: record what the host presented
            await self._record(host, conn)
        log.info("ssh_connected", host=host.name, address=host.address, port=host.port, user=host.user)
        return conn

    async def _jump(self, host: Host, limit: float) -> asyncssh.SSHClientConnection | None:
        """A connection of its own to ``host``'s jump host (itself maybe behind another), or None."""
        if host.via is None:
            return None
        if self.lookup is None:
            raise ActionFailed(
                f"{host.name}: jump host {host.via!r} but no inventory to find it", retryable=False
            )
        try:
            bastion = self.lookup(host.via)
        except LookupError as exc:
            raise ActionFailed(f"{host.name}: jump host: {exc}", retryable=False) from None
        return await self._open(bastion, limit)

    def _known_hosts_for(self, host: Host) -> asyncssh.SSHKnownHosts | None:
        """The trusted keys, or None to accept (and then record) the first key: TOFU for a new host."""
        try:
            text = self.known_hosts.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            raise ActionFailed(
                f"cannot read the known_hosts file {self.known_hosts}: {exc.strerror}", retryable=False
            ) from None
        try:
            trusted = asyncssh.import_known_hosts(text)
        except (ValueError, asyncssh.KeyImportError) as exc:
            raise ActionFailed(
                f"known_hosts file {self.known_hosts} is malformed: {exc}", retryable=False
            ) from None
        keys, cas, *_ = trusted.match(host.address, host.address, host.port if host.port != 22 else None)
        if not keys and not cas and self.trust_on_first_use:
            return None
        return trusted

    async def _record(self, host: Host, conn: asyncssh.SSHClientConnection) -> None:
        key = conn.get_server_host_key()
        if key is None:
            return
        pattern = host.address if host.port == 22 else f"[{host.address}]:{host.port}"
        algorithm, blob = key.export_public_key("openssh").decode("ascii").split()[:2]
        line = f"{pattern} {algorithm} {blob}\n"
        async with self._file_lock:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            with self.known_hosts.open("a", encoding="utf-8") as out:
                out.write(line)
        log.warning(
            "ssh_host_key_trusted_on_first_use",
            host=host.name,
            address=pattern,
            fingerprint=key.get_fingerprint(),
            known_hosts=str(self.known_hosts),
        )


async def _close_after(conn: asyncssh.SSHClientConnection, tunnel: asyncssh.SSHClientConnection) -> None:
    try:
        await conn.wait_closed()
    finally:
        tunnel.close()


def client_keys(host: Host) -> list[asyncssh.SSHKey] | list[tuple[asyncssh.SSHKey, asyncssh.SSHCertificate]]:
    """The private key (and certificate) named by the host's secret references."""
    if host.key is None:
        raise ActionFailed(
            f"inventory host {host.name!r} has no 'key' (a secret reference to its private key)",
            retryable=False,
        )
    try:
        passphrase = secrets.resolve(host.passphrase) if host.passphrase else None
        key = asyncssh.import_private_key(_pem(secrets.resolve(host.key)), passphrase)
        if host.certificate:
            cert = asyncssh.import_certificate(_pem(secrets.resolve(host.certificate)))
            return [(key, cert)]
    except SecretError as exc:
        raise ActionFailed(f"host {host.name}: {exc.message}", retryable=exc.retryable) from None
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        raise ActionFailed(
            f"host {host.name}: the key {host.key} cannot be used: {exc}", retryable=False
        ) from None
    return [key]


def _pem(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


def connect_error(exc: BaseException, host: Host, known_hosts: Path) -> BaseException:
    """``exc`` (raised while connecting) as an :class:`ActionFailed` that says if a retry can help."""
    where = f"{host.name} ({host.user}@{host.address}:{host.port})"
    if isinstance(exc, ActionFailed | asyncio.CancelledError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return ActionFailed(
            f"{where}: host key not trusted ({exc.reason}); it is not in {known_hosts} or does not match"
            " the key recorded there",
            retryable=False,
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return ActionFailed(f"{where}: login refused for the configured key ({exc.reason})", retryable=False)
    if isinstance(exc, asyncssh.KeyExchangeFailed | asyncssh.ProtocolNotSupported):
        return ActionFailed(f"{where}: SSH negotiation failed ({exc.reason})", retryable=False)
    if isinstance(exc, TimeoutError):
        return ActionFailed(f"{where}: connection timed out", retryable=True)
    if isinstance(exc, asyncssh.Error):
        return ActionFailed(f"{where}: connection failed ({exc.reason})", retryable=True)
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        return ActionFailed(f"{where}: cannot connect: {reason}", retryable=True)
    return ActionFailed(f"{where}: cannot connect: {type(exc).__name__}: {exc}", retryable=True)
