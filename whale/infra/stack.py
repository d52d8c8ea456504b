"""``up``/``down``/``status`` of the local stack: one Kafka broker and one Elasticsearch node.

``up`` is idempotent: it starts only what is not running, and reports what it started and what it
found. ``down`` stops only processes that ``up`` started (recorded in ``<data_dir>/state.json``).
A component whose address the user set explicitly (``WHALE_KAFKA_BOOTSTRAP``, ``WHALE_ES_URL``) to anything
but the local stack's own address is the user's own cluster: nothing is started or stopped for it, ``up``
only checks that it answers. (Setting it to the local stack's address, as the test suite does for its own
stack on other ports, keeps the component local.)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from whale.errors import InfraError
from whale.infra import elasticsearch, kafka, process
from whale.infra.java import Java, find_java
from whale.infra.settings import InfraSettings
from whale.settings import WhaleSettings

COMPONENTS = (kafka.NAME, elasticsearch.NAME)
State = Literal["started", "running", "external", "stopped", "not running", "unreachable", "port taken"]
STARTED: State = "started"  # by this very call
RUNNING: State = "running"  # started earlier by whale and still running
EXTERNAL: State = "external"  # the user's own cluster (address set explicitly), reachable
STOPPED: State = "stopped"  # by this very call
NOT_RUNNING: State = "not running"
UNREACHABLE: State = "unreachable"  # the user's own cluster does not answer
PORT_TAKEN: State = "port taken"  # not running, and something else holds one of its ports
_SETTING = {kafka.NAME: "kafka_bootstrap", elasticsearch.NAME: "es_url"}
_ENV = {kafka.NAME: "WHALE_KAFKA_BOOTSTRAP", elasticsearch.NAME: "WHALE_ES_URL"}
_TITLE = {kafka.NAME: "Kafka", elasticsearch.NAME: "Elasticsearch"}

Progress = Callable[[str], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ComponentStatus:
    """One component: where it is and what state it is in (``started`` means by this very call)."""

    name: str
    address: str
    state: State
    pid: int | None = None
    version: str | None = None
    detail: str = ""

    @property
    def usable(self) -> bool:
        """Whether clients can use this component now."""
        return self.state in (STARTED, RUNNING, EXTERNAL)

    def line(self) -> str:
        """One human-readable line: name, address, state and details."""
        extra = [
            f"pid {self.pid}" if self.pid else "",
            f"{_TITLE[self.name]} {self.version}" if self.version else "",
        ]
        extra.append(self.detail)
        details = ", ".join(part for part in extra if part)
        return f"{self.name:<14} {self.address:<24} {self.state}" + (f" ({details})" if details else "")


@dataclass(frozen=True)
class StackStatus:
    """The outcome of ``up``/``down``/``status``; ``settings`` point at the stack's addresses."""

    components: tuple[ComponentStatus, ...]
    settings: WhaleSettings

    @property
    def started(self) -> tuple[str, ...]:
        """Names of the components this call started (what a caller should ``down`` later)."""
        return tuple(c.name for c in self.components if c.state == STARTED)

    @property
    def usable(self) -> bool:
        """Whether every component can be used now."""
        return all(c.usable for c in self.components)

    def __getitem__(self, name: str) -> ComponentStatus:
        for component in self.components:
            if component.name == name:
                return component
        raise KeyError(name)

    def describe(self) -> str:
        """One line per component, for people."""
        return "\n".join(c.line() for c in self.components)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view, for scripts."""
        return {c.name: {k: v for k, v in vars(c).items() if k != "name"} for c in self.components}


def external_components(settings: WhaleSettings, infra: InfraSettings | None = None) -> set[str]:
    """The components whose address the user set explicitly to another place than the local stack's."""
    infra = infra or InfraSettings()
    return {
        name
        for name, field in _SETTING.items()
        if field in settings.model_fields_set and _address_of(settings, name) != local_address(name, infra)
    }


def local_address(name: str, infra: InfraSettings) -> str:
    """The address of component ``name`` of the local stack."""
    return infra.kafka_bootstrap() if name == kafka.NAME else infra.es_url()


def ports(name: str, infra: InfraSettings) -> tuple[int, ...]:
    """The TCP ports component ``name`` listens on."""
    if name == kafka.NAME:
        return (infra.kafka_port, infra.kafka_controller_port)
    return (infra.es_port, infra.es_transport_port)


def port_taken_message(name: str, port: int, owner: str | None) -> str:
    """Why ``name`` cannot start: something that this stack did not start holds ``port``."""
    who = owner or "another process"
    return (
        f"cannot start {_TITLE[name]}: port {port} is already in use by {who}, not by this stack's {_TITLE[name]}; "
        f"stop it, or set {_ENV[name]} to use it, or choose other ports with WHALE_INFRA_*_PORT"
    )


def _address_of(settings: WhaleSettings, name: str) -> str:
    value = getattr(settings, _SETTING[name])
    return str(value)


def check_external(settings: WhaleSettings, name: str) -> str | None:
    """None if the user's own cluster for ``name`` answers, else why not."""
    if name == kafka.NAME:
        return kafka.answers(settings.kafka_config(), timeout=10.0)
    auth = (settings.es_username, settings.es_password or "") if settings.es_username else None
    status = elasticsearch.health(settings.es_url, auth=auth, timeout=10.0)
    return None if status is not None else "no cluster health answer"


def _external_status(settings: WhaleSettings, name: str) -> ComponentStatus:
    problem = check_external(settings, name)
    state = EXTERNAL if problem is None else UNREACHABLE
    return ComponentStatus(name, _address_of(settings, name), state, detail=problem or f"set by {_ENV[name]}")


def _pointing_at_stack(settings: WhaleSettings, infra: InfraSettings) -> WhaleSettings:
    update = {
        _SETTING[name]: local_address(name, infra)
        for name in COMPONENTS
        if name not in external_components(settings, infra)
        and _address_of(settings, name) != local_address(name, infra)
    }
    return settings.model_copy(update=update) if update else settings


def _running(name: str, record: process.ProcessRecord, infra: InfraSettings) -> ComponentStatus:
    wanted = infra.kafka_version if name == kafka.NAME else infra.es_version
    detail = (
        "" if record.version == wanted else f"configured {wanted}: run `whale infra down` and `up` to switch"
    )
    return ComponentStatus(name, record.address, RUNNING, record.pid, record.version, detail)


def up(
    settings: WhaleSettings, infra: InfraSettings | None = None, *, progress: Progress | None = None
) -> StackStatus:
    """Start what is not running (fetching it first if needed) and wait until it answers.

    Returns which components this call started and which it found running or external. On failure
    nothing that this call started is left running, and InfraError says what went wrong.
    """
    infra = infra or InfraSettings()
    say = progress or log.info
    data_dir = infra.resolved_data_dir(settings)
    external = external_components(settings, infra)
    results: dict[str, ComponentStatus] = {}
    with process.locked(data_dir):
        state = process.StateFile(data_dir)
        records = state.read()
        missing: list[str] = []
        for name in COMPONENTS:
            record = records.get(name)
            if name in external:
                results[name] = _external_status(settings, name)
                if not results[name].usable:
                    raise InfraError(
                        f"{_TITLE[name]} at {results[name].address} (from {_ENV[name]}) is not reachable: "
                        f"{results[name].detail}"
                    )
            elif record is not None and process.is_alive(record):
                results[name] = _running(name, record, infra)
            else:
                if record is not None:
                    state.remove(name)
                for port in ports(name, infra):
                    if process.port_in_use(infra.host, port):
                        raise InfraError(port_taken_message(name, port, process.port_owner(port)))
                missing.append(name)
        if missing:
            for name, record in _start(missing, settings, infra, data_dir, state, say).items():
                results[name] = ComponentStatus(name, record.address, STARTED, record.pid, record.version)
    return StackStatus(tuple(results[n] for n in COMPONENTS), _pointing_at_stack(settings, infra))


def _start(
    names: list[str],
    settings: WhaleSettings,
    infra: InfraSettings,
    data_dir: Path,
    state: process.StateFile,
    say: Progress,
) -> dict[str, process.ProcessRecord]:
    """Fetch, start and wait for ``names`` in parallel; roll every one of them back if any fails.

    The first failure (or Ctrl-C) stops what was launched at once, which ends the other waits too.
    """
    java = find_java()
    guard = threading.Lock()
    aborted = threading.Event()
    launched: dict[str, process.ProcessRecord] = {}

    def launch(name: str) -> None:
        proc, record = _spawn(name, settings.cache_dir.expanduser().absolute(), infra, data_dir, java, say)
        with guard:
            if aborted.is_set():
                process.stop_group(record, infra.stop_timeout)
                raise InfraError(f"{_TITLE[name]} start abandoned")
            launched[name] = record
            state.put(name, record)
        say(f"waiting for {_TITLE[name]} on {record.address} (pid {record.pid}, log {record.log})")
        if name == kafka.NAME:
            kafka.wait_ready(proc, record, infra.start_timeout)
        else:
            elasticsearch.wait_ready(proc, record, infra.start_timeout)
        say(f"{_TITLE[name]} {record.version} is up on {record.address}")

    pool = ThreadPoolExecutor(max_workers=len(names), thread_name_prefix="whale-infra")
    try:
        futures = [pool.submit(launch, name) for name in names]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failures = [e for e in (f.exception() for f in done) if e is not None]
        if failures:
            raise failures[0]
    except BaseException:
        with guard:
            aborted.set()
            for name, record in launched.items():
                say(f"stopping {_TITLE[name]} (pid {record.pid}) after the failed start")
                process.stop_group(record, infra.stop_timeout)
                state.remove(name)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return launched


def _spawn(
    name: str, cache_dir: Path, infra: InfraSettings, data_dir: Path, java: Java, say: Progress
) -> tuple[Any, process.ProcessRecord]:
    if name == kafka.NAME:
        if not kafka.home(cache_dir, infra.kafka_version).exists():
            say(f"fetching Apache Kafka {infra.kafka_version} with Maven into {cache_dir}")
        libs = kafka.install(cache_dir, infra.kafka_version, java)
        return kafka.start(data_dir / kafka.NAME, infra, libs, java)
    layout = elasticsearch.locate(cache_dir, data_dir, infra, java)
    if not layout.dist_root.exists():
        say(f"fetching Elasticsearch {infra.es_version} with Maven into {layout.dist_root.parent}")
    es_home = elasticsearch.install(layout.dist_root, infra.es_version, java)
    return elasticsearch.start(layout, es_home, infra, java, data_dir)


def status(settings: WhaleSettings, infra: InfraSettings | None = None) -> StackStatus:
    """The state of each component, without changing anything."""
    infra = infra or InfraSettings()
    data_dir = infra.resolved_data_dir(settings)
    records = process.StateFile(data_dir).read()
    external = external_components(settings, infra)
    results: list[ComponentStatus] = []
    for name in COMPONENTS:
        record = records.get(name)
        if name in external:
            results.append(_external_status(settings, name))
        elif record is not None and process.is_alive(record):
            results.append(_running(name, record, infra))
        else:
            taken = [p for p in ports(name, infra) if process.port_in_use(infra.host, p)]
            owner = process.port_owner(taken[0]) if taken else None
            detail = f"port {taken[0]} used by {owner or 'a process whale did not start'}" if taken else ""
            address = local_address(name, infra)
            results.append(
                ComponentStatus(name, address, PORT_TAKEN if taken else NOT_RUNNING, detail=detail)
            )
    return StackStatus(tuple(results), _pointing_at_stack(settings, infra))


def down(
    settings: WhaleSettings,
    infra: InfraSettings | None = None,
    components: Iterable[str] | None = None,
    *,
    progress: Progress | None = None,
) -> StackStatus:
    """Stop the components (all by default) that ``up`` started; never the user's own clusters.

    Each process group gets SIGTERM, then SIGKILL after ``InfraSettings.stop_timeout`` seconds.
    """
    infra = infra or InfraSettings()
    say = progress or log.info
    wanted = set(COMPONENTS if components is None else components)
    unknown = wanted - set(COMPONENTS)
    if unknown:
        raise InfraError(
            f"unknown component(s) {', '.join(sorted(unknown))}; choose from {', '.join(COMPONENTS)}"
        )
    data_dir = infra.resolved_data_dir(settings)
    external = external_components(settings, infra)
    results: dict[str, ComponentStatus] = {}
    with process.locked(data_dir):
        state = process.StateFile(data_dir)
        records = state.read()
        to_stop = {
            n: r for n, r in records.items() if n in wanted and n not in external and process.is_alive(r)
        }

        def stop(name: str) -> None:
            record = to_stop[name]
            say(f"stopping {_TITLE[name]} (pid {record.pid})")
            process.stop_group(record, infra.stop_timeout)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="whale-infra") as pool:
            list(pool.map(stop, to_stop))
        for name in COMPONENTS:
            if name in external:
                results[name] = ComponentStatus(
                    name, _address_of(settings, name), EXTERNAL, detail="left alone"
                )
            elif name in to_stop:
                record = to_stop[name]
                results[name] = ComponentStatus(name, record.address, STOPPED, record.pid, record.version)
            elif name not in wanted and name in records and process.is_alive(records[name]):
                results[name] = _running(name, records[name], infra)
            else:
                results[name] = ComponentStatus(name, local_address(name, infra), NOT_RUNNING)
            if name in wanted and name not in external:
                state.remove(name)
    return StackStatus(tuple(results[n] for n in COMPONENTS), _pointing_at_stack(settings, infra))
