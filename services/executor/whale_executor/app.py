"""``whale run executor --pool NAME``: consume a pool's requests, run them, publish results."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

import structlog

from whale import compacted, topics
from whale.admin import ensure_topics
from whale.cloudevent import CloudEvent
from whale.consume_keyed import KeyedConsumer
from whale.consumer import Received
from whale.errors import ConfigError, WhaleError
from whale.health import HealthServer, serve_health
from whale.inventory import load_inventory
from whale.inventory_live import LiveInventory, topic_spec
from whale.logging import configure_logging
from whale.producer import EventProducer
from whale.runtime import run as run_service
from whale_executor import metrics, secrets
from whale_executor.actions.ssh import SshRuntime, bind_all
from whale_executor.approvals import Approvals
from whale_executor.catalog import Catalog, load_catalog
from whale_executor.errors import RequestInvalid
from whale_executor.intake import intake
from whale_executor.requests import loose_key, loose_target, parse_request
from whale_executor.results import FAILED, result_event, source_of
from whale_executor.runner import ActionRequests, Runner
from whale_executor.settings import Settings
from whale_executor.sshconn import Connections
from whale_executor.state import StateStore
from whale_executor.workflow.handler import Workflows

log = structlog.get_logger(__name__)
CATALOG_PUBLISHED = "whale.catalog.published"


class Executor:
    """One executor process of one pool (also usable in-process by tests and benchmarks)."""

    def __init__(self, settings: Settings, catalog: Catalog | None = None) -> None:
        self.settings = settings
        self.pool = settings.pool
        self.catalog = catalog or load_catalog(
            pool=settings.pool,
            dirs=settings.catalog_dirs,
            modules=settings.python_modules,
            use_entry_points=settings.entry_points,
            max_workflow_depth=settings.max_workflow_depth,
        )
        self.ssh = ssh_runtime(settings)
        bind_all(self.catalog.actions.values(), self.ssh)
        self.source = source_of(self.pool)
        self._tasks: list[asyncio.Task[None]] = []
        self._intakes: list[KeyedConsumer] = []
        self._producer: EventProducer | None = None
        self._store: StateStore | None = None
        self._health: HealthServer | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.ready = False

    async def _ready(self) -> bool:
        return self.ready and all(not task.done() for task in self._tasks)

    async def start(self, timeout: float = 60.0) -> None:
        """Ensure the pool's topic, rebuild state, join the groups, then publish the catalogue."""
        s = self.settings
        if s.port is not None:  # /healthz answers at once; /readyz once the catalogue is out
            self._health = await serve_health(
                s.host, s.port, {"pool": self._ready}, registry=metrics.registry()
            )
        specs = [topics.pool_topic_spec(self.pool)]
        if isinstance(self.ssh.inventory, LiveInventory):
            specs.append(topic_spec(self.ssh.inventory.topic))
        await asyncio.to_thread(ensure_topics, s.whale, specs)
        if isinstance(self.ssh.inventory, LiveInventory):
            await self.ssh.inventory.start(timeout)
        self._producer = producer = EventProducer(s.whale, client_id=f"whale-executor-{self.pool}")
        self._store = store = StateStore(s.whale, producer, pool=self.pool, source=self.source, state=s.state)
        await store.start(timeout)
        runner = Runner(pool=self.pool, concurrency=s.concurrency)
        self._actions = ActionRequests(
            catalog=self.catalog, store=store, runner=runner, producer=producer, pool=self.pool
        )
        self._workflows = Workflows(
            catalog=self.catalog,
            store=store,
            runner=runner,
            producer=producer,
            pool=self.pool,
            max_items=s.max_items,
            item_output_budget=s.items_output_budget,
            inventory=self.ssh.inventory,
        )
        group = f"whale-executor-{self.pool}"
        self._intakes.append(
            intake(
                s.whale,
                topic=topics.actions_topic(self.pool),
                group_id=group,
                producer=producer,
                handler=self.handle,
                pool=self.pool,
                max_pending=s.max_pending,
                session_timeout_ms=int(s.session_timeout * 1000),
                revoke_grace=s.revoke_grace,
            )
        )
        if s.approvals:  # approval decisions and cancel requests
            self._intakes.append(
                intake(
                    s.whale,
                    topic=topics.EVENTS,
                    group_id=f"{group}-approvals",
                    producer=producer,
                    handler=Approvals(store).handle,
                    pool=self.pool,
                    session_timeout_ms=int(s.session_timeout * 1000),
                    revoke_grace=s.revoke_grace,
                    auto_offset_reset="latest",
                )
            )
        self._tasks = [asyncio.create_task(c.run()) for c in self._intakes]
        self._sweeper = asyncio.create_task(self.sweep_forever())
        waits = [asyncio.create_task(i.assigned.wait()) for i in self._intakes]
        _, pending = await asyncio.wait(waits, timeout=timeout)
        for w in pending:
            w.cancel()
        if pending:
            log.warning("partitions_not_assigned_yet", pool=self.pool)
        await self.publish_catalog()
        self.ready = True
        log.info(
            "executor_ready",
            pool=self.pool,
            actions=len(self.catalog.actions),
            workflows=len(self.catalog.workflows),
        )

    async def publish_catalog(self) -> None:
        assert self._producer is not None
        event = CloudEvent.create(
            type=CATALOG_PUBLISHED, source=self.source, data=self.catalog.describe(), subject=self.pool
        )
        await compacted.put(self._producer, topics.CATALOG, self.pool, event)

    async def sweep_forever(self) -> None:
        """Every ``sweep_interval``, tombstone the run records older than ``state_retention``."""
        assert self._store is not None
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                swept = await self._store.sweep(retention=self.settings.state_retention)
            except WhaleError as exc:  # Kafka unavailable: the next sweep tries again
                log.warning("state_sweep_failed", pool=self.pool, error=str(exc))
                continue
            if swept:
                metrics.SWEPT.labels(pool=self.pool).inc(swept)
                log.info("state_swept", pool=self.pool, records=swept)

    async def handle(self, received: Received) -> None:
        """One request: parse it (a malformed one becomes a failed result), then run it."""
        event = received.event
        try:
            req = parse_request(event)
        except RequestInvalid as exc:
            assert self._producer is not None
            result = result_event(
                event,
                type=FAILED,
                pool=self.pool,
                request_id=event.id,
                idempotency_key=loose_key(event),
                target=loose_target(event),
                error=exc.as_error(),
            )
            await self._producer.send(topics.RESULTS, result)
            return
        if req.target.kind == "workflow":
            await self._workflows.handle(event, req)
        else:
            await self._actions.handle(event, req)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        for consumer in self._intakes:
            consumer.stop()
        for task in self._tasks:
            with contextlib.suppress(Exception):
                await task
        if self._health is not None:
            self._health.close()
            await self._health.wait_closed()
        if self._store is not None:
            await self._store.stop()
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
        await self.ssh.connections.close()
        if isinstance(self.ssh.inventory, LiveInventory):
            await self.ssh.inventory.stop()


def ssh_runtime(settings: Settings) -> SshRuntime:
    """The inventory (a bad file stops the executor, naming it; plus the live ``whale.inventory``
    topic unless ``INVENTORY_TOPIC`` is empty, followed from :meth:`Executor.start`) and the SSH connections."""
    inventory = load_inventory(settings.inventory)
    if settings.inventory_topic:
        inventory = LiveInventory(settings.whale, inventory, topic=settings.inventory_topic)
    return SshRuntime(
        inventory=inventory,
        connections=Connections(
            lookup=inventory.get,
            known_hosts=settings.ssh_known_hosts,
            trust_on_first_use=settings.ssh_trust_on_first_use,
            per_host=settings.ssh_per_host,
            connect_timeout=settings.ssh_connect_timeout,
            reuse=settings.ssh_reuse,
            idle=settings.ssh_idle,
        ),
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="whale run executor", description=__doc__)
    parser.add_argument("--pool", help="executor pool (default: WHALE_EXECUTOR_POOL or 'default')")
    parser.add_argument(
        "--catalog-dir", action="append", type=Path, default=[], help="directory of action/workflow YAML"
    )
    parser.add_argument("--module", action="append", default=[], help="module with Python actions")
    parser.add_argument("--concurrency", type=int, help="actions running at the same time")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(argv or []))
    overrides: dict[str, object] = {}
    if args.pool:
        overrides["pool"] = args.pool
    if args.concurrency:
        overrides["concurrency"] = args.concurrency
    settings = Settings(**overrides)  # type: ignore[arg-type]
    if args.catalog_dir:
        settings.catalog_dirs = [*settings.catalog_dirs, *args.catalog_dir]
    if args.module:
        settings.python_modules = [*settings.python_modules, *args.module]
    try:
        topics.actions_topic(settings.pool)  # rejects a bad pool name before anything starts
    except ValueError as exc:
        raise ConfigError(str(exc), field="pool") from None
    configure_logging(settings.whale, service="executor", scrub=secrets.scrub)

    async def serve(stop: asyncio.Event) -> None:
        executor = Executor(settings)
        await executor.start()
        try:
            await stop.wait()
        finally:
            await executor.stop()

    return run_service(serve, settings.whale.event_loop)
