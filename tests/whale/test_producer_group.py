"""Concurrent sends are acknowledged together: the delivery reports one poll serves resolve every
waiting send with one wake-up of their event loop (group commit), without a broker."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import whale.producer as producer_module
from whale.binding import KafkaMessage
from whale.errors import DeliveryError
from whale.producer import Delivered, EventProducer
from whale.settings import WhaleSettings


class BatchingProducer:
    """Queues produce() calls; a poll() after ``release`` is set reports all of them at once."""

    def __init__(self, conf: dict[str, Any]) -> None:
        self.queued: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.fail_keys: set[bytes] = set()

    def produce(self, topic: str, *, value: Any, key: Any, headers: Any, on_delivery: Any) -> None:
        with self.lock:
            self.queued.append((topic, (key, on_delivery)))

    def poll(self, timeout: float) -> int:
        if not self.release.wait(timeout):
            return 0
        with self.lock:
            queued, self.queued = self.queued, []
        for n, (topic, (key, callback)) in enumerate(queued):
            callback(_Error() if key in self.fail_keys else None, _Message(topic, n))
        return len(queued)

    def flush(self, timeout: float) -> int:
        return 0

    def __len__(self) -> int:
        return 0


class _Message:
    def __init__(self, topic: str, offset: int) -> None:
        self._topic, self._offset = topic, offset

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset


class _Error:
    def code(self) -> int:
        return -1

    def str(self) -> str:
        return "broker down"

    def retriable(self) -> bool:
        return True


@pytest.fixture
def producer(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(producer_module, "Producer", BatchingProducer)
    monkeypatch.setattr(producer_module, "topic_max_bytes", lambda settings, topic: None)
    made = EventProducer(WhaleSettings())
    yield made
    made.close(timeout=1)


async def test_the_sends_in_flight_are_resolved_together_with_one_wake_up(producer: EventProducer) -> None:
    loop = asyncio.get_running_loop()
    wake_ups: list[Any] = []
    original = loop.call_soon_threadsafe

    def counting(callback: Any, *args: Any, **kwargs: Any) -> Any:
        wake_ups.append(callback)
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
    try:
        sends = [
            asyncio.ensure_future(producer.send_message("t", KafkaMessage(f"k{n}".encode(), b"v", ())))
            for n in range(50)
        ]
        await asyncio.sleep(0.05)  # every send is produced, none acknowledged yet
        assert producer.in_flight == 50 and not any(s.done() for s in sends)
        producer._producer.release.set()  # type: ignore[attr-defined]
        done = await asyncio.gather(*sends)
    finally:
        loop.call_soon_threadsafe = original  # type: ignore[method-assign]
    assert [d.offset for d in done] == list(range(50))
    assert all(isinstance(d, Delivered) for d in done)
    assert len([w for w in wake_ups if w is producer_module._resolve_all]) == 1
    assert producer.in_flight == 0


async def test_a_failed_delivery_fails_only_its_own_send(producer: EventProducer) -> None:
    producer._producer.fail_keys = {b"bad"}  # type: ignore[attr-defined]
    good = asyncio.ensure_future(producer.send_message("t", KafkaMessage(b"good", b"v", ())))
    bad = asyncio.ensure_future(producer.send_message("t", KafkaMessage(b"bad", b"v", ())))
    await asyncio.sleep(0.01)
    producer._producer.release.set()  # type: ignore[attr-defined]
    assert isinstance(await good, Delivered)
    with pytest.raises(DeliveryError, match="broker down"):
        await bad
