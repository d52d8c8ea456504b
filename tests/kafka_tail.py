"""Reading what services write, for tests: threads over :func:`whale.tail.tail_consumer`."""

from __future__ import annotations

import threading
from typing import Any

from whale.binding import KafkaMessage, from_kafka, headers_from
from whale.cloudevent import CloudEvent
from whale.settings import WhaleSettings
from whale.tail import tail_consumer


def plain(msg: Any) -> KafkaMessage:
    """The plain message of a confluent-kafka message."""
    return KafkaMessage(msg.key(), msg.value(), headers_from(msg.headers()))


def event_of(msg: Any) -> CloudEvent | None:
    """The CloudEvent a message carries, or None for a message that is not one (others' poison)."""
    try:
        return from_kafka(plain(msg))
    except Exception:
        return None


class TailThread:
    """Reads ``topic`` from its end in a background thread, handing each readable message to
    :meth:`take`; :meth:`close` stops the thread (which closes the consumer)."""

    def __init__(self, settings: WhaleSettings, topic: str) -> None:
        self._consumer = tail_consumer(settings, topic)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def take(self, msg: Any) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            msg: Any = self._consumer.poll(0.1)
            if msg is not None and msg.error() is None:
                self.take(msg)
        self._consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
