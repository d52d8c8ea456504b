"""Dispatcher readiness (``/readyz``): the subscriptions view caught up, and every subscription's
consumer subscribed and joined its group (or paused); a crashed consumer is not ready."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import httpx
import pytest
from whale_dispatcher.app import Dispatcher, build_app
from whale_dispatcher.settings import Settings
from whale_dispatcher.worker import Worker

from whale import consumer as consumer_module
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale.subscriptions import Subscription
from whale.testing import FakeProducer


class FakeConsumer:
    """Stands in for confluent_kafka.Consumer: joins its group (no partitions) on a consume call once
    ``may_join`` is set; revokes on close; raises from consume when ``fail`` is set."""

    def __init__(self, config: dict[str, Any], may_join: threading.Event, fail: bool) -> None:
        self.group = config["group.id"]
        self._may_join = may_join
        self._fail = fail
        self._on_assign: Callable[[Any, list[Any]], None] | None = None
        self._on_revoke: Callable[[Any, list[Any]], None] | None = None
        self.joined = False
        self.consumed = 0
        self.closed = False

    def subscribe(
        self,
        topics: list[str],
        on_assign: Callable[[Any, list[Any]], None] | None = None,
        on_revoke: Callable[[Any, list[Any]], None] | None = None,
    ) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        self.consumed += 1
        if self._fail:
            raise RuntimeError("broker connection lost")
        if self._may_join.is_set() and not self.joined and self._on_assign is not None:
            self.joined = True
            self._on_assign(self, [])  # a member with no partition still gets an (empty) assignment
        time.sleep(0.01)
        return []

    def revoke(self) -> None:
        self.joined = False
        if self._on_revoke is not None:
            self._on_revoke(self, [])

    def close(self) -> None:
        self.closed = True
        if self.joined:
            self.revoke()


class Consumers:
    """The fake consumers the workers created (by group), and the switches they obey."""

    def __init__(self) -> None:
        self.may_join = threading.Event()
        self.fail = False
        self.made: dict[str, FakeConsumer] = {}

    def __call__(self, config: dict[str, Any]) -> FakeConsumer:
        consumer = FakeConsumer(config, self.may_join, self.fail)
        self.made[consumer.group] = consumer
        return consumer


@pytest.fixture
def consumers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Consumers]:
    made = Consumers()
    monkeypatch.setattr(consumer_module, "Consumer", made)  # the shared consume loop creates it
    yield made


def _sub(sub_id: str = "s1", **extra: Any) -> Subscription:
    return Subscription.model_validate({"id": sub_id, "endpoint": "http://receiver.test/hook", **extra})


def _worker(sub: Subscription, client: httpx.AsyncClient) -> Worker:
    return Worker(WhaleSettings(), sub, producer=cast(EventProducer, FakeProducer()), client=client)


async def _until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_a_worker_is_ready_once_its_consumer_joined_even_with_no_partition_and_not_after_a_revoke(
    consumers: Consumers,
) -> None:
    async with httpx.AsyncClient() as client:
        worker = _worker(_sub(), client)
        assert not worker.ready  # not running yet
        task = asyncio.create_task(worker.run())
        consumer = await _wait_made(consumers, worker.group)
        await _until(lambda: consumer.consumed > 2)
        assert not worker.ready  # subscribed and polling, but not in the group yet
        consumers.may_join.set()
        await _until(lambda: worker.ready)
        consumer.revoke()  # a rebalance started
        assert not worker.ready
        worker.stop()
        await task
        assert consumer.closed and not worker.ready


async def test_a_paused_worker_is_ready_once_subscribed_although_it_never_polls(consumers: Consumers) -> None:
    async with httpx.AsyncClient() as client:
        worker = _worker(_sub(paused=True), client)
        task = asyncio.create_task(worker.run())
        consumer = await _wait_made(consumers, worker.group)
        await _until(lambda: worker.ready)
        assert consumer.consumed == 0 and not consumer.joined
        worker.stop()
        await task


async def test_a_worker_whose_consumer_crashed_is_not_ready(consumers: Consumers) -> None:
    consumers.may_join.set()
    consumers.fail = True
    async with httpx.AsyncClient() as client:
        worker = _worker(_sub(), client)
        with pytest.raises(RuntimeError, match="broker connection lost"):
            await worker.run()
        assert consumers.made[worker.group].closed
        assert not worker.ready


async def test_readyz_waits_for_the_subscriptions_view_then_for_every_worker_to_join(
    consumers: Consumers,
) -> None:
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(Settings(), cast(EventProducer, FakeProducer()), client)
        transport = httpx.ASGITransport(app=build_app(dispatcher))
        async with httpx.AsyncClient(transport=transport, base_url="http://dispatcher") as http:
            try:
                assert (await http.get("/healthz")).status_code == 200  # alive from the start
                response = await http.get("/readyz")
                assert response.status_code == 503
                assert response.json() == {
                    "status": "not ready",
                    "checks": {"subscriptions": False},
                    "waiting": ["subscriptions view"],
                }

                dispatcher.apply("s1", _sub("s1").to_record())
                dispatcher.apply("s2", _sub("s2", paused=True).to_record())
                dispatcher.caught_up = True
                await _until(lambda: dispatcher.workers["s2"].ready)
                response = await http.get("/readyz")
                assert response.status_code == 503
                assert response.json()["waiting"] == ["subscription s1"]

                consumers.may_join.set()
                await _until(lambda: dispatcher.workers["s1"].ready)
                response = await http.get("/readyz")
                assert (response.status_code, response.json()) == (
                    200,
                    {"status": "ready", "checks": {"subscriptions": True}},
                )
            finally:
                await dispatcher.close()


async def test_readyz_is_503_while_a_subscriptions_consumer_keeps_crashing(consumers: Consumers) -> None:
    consumers.may_join.set()
    consumers.fail = True
    async with httpx.AsyncClient() as client:
        dispatcher = Dispatcher(Settings(), cast(EventProducer, FakeProducer()), client)
        dispatcher.caught_up = True
        transport = httpx.ASGITransport(app=build_app(dispatcher))
        async with httpx.AsyncClient(transport=transport, base_url="http://dispatcher") as http:
            try:
                dispatcher.apply("s1", _sub("s1").to_record())
                await _wait_made(consumers, dispatcher.workers["s1"].group)
                await _until(lambda: consumers.made[dispatcher.workers["s1"].group].closed)
                response = await http.get("/readyz")
                assert response.status_code == 503
                assert response.json()["waiting"] == ["subscription s1"]
            finally:
                await dispatcher.close()


async def _wait_made(consumers: Consumers, group: str) -> FakeConsumer:
    await _until(lambda: group in consumers.made)
    return consumers.made[group]
