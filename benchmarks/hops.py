"""Where an end-to-end event's time goes: the hops of ``bench_e2e``, from Kafka record timestamps.

A tap reads, from their current ends, every topic an event passes on its way from ``POST /events``
to its action's result: ``whale.ingest`` (the event center's write), ``whale.events`` (dedupe's),
the pool's action topic (the rule engine's request) and ``whale.results`` (the executor's
``whale.action.succeeded``). Each record's CreateTime (set by the producing client when it hands the
record to its Kafka client, all processes on one machine so one clock) is kept by the chain's
correlation id (``ce_correlationid``, else ``ce_id``: the id of the event that was POSTed). With the
sender's clock (POST sent, 202 read) and the tap's (result read), each event's latency splits into:

- ``event center: POST -> ingest record``: HTTP, parsing, validation, up to the produce call;
- ``event center: ingest record -> 202``: the acks=all round trip (plus linger) and the response;
- ``dedupe: ingest -> whale.events``: fetch wake-up, dedupe, produce;
- ``rule engine: whale.events -> action request``: fetch, match, produce of the request;
- ``executor: action request -> result record``: fetch, state writes, the no-op action, result;
- ``result record -> read``: the result's acks round trip and the reader's fetch.

The end-to-end latency (202 -> result read) is the last four minus the second. The executor's hop
splits further by its run-state records on ``whale.executor.state`` (keyed ``<pool>/<idempotency
key>``, the request's Kafka key): request -> "started" written, "started" -> "finished" written (the
started record's acks round trip and the action), "finished" -> result written (its acks round trip).
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from whale.settings import WhaleSettings
from whale.tail import topic_partitions

HOPS = (
    "event center: POST -> ingest record",
    "event center: ingest record -> 202",
    "dedupe: ingest -> whale.events",
    "rule engine: whale.events -> action request",
    "executor: action request -> result record",
    "result record -> read",
)
EXECUTOR_HOPS = (
    "executor: request -> started written",
    "executor: started -> finished written",
    "executor: finished -> result written",
)


class Tap:
    """Reads the topics of ``sources`` from their ends in a thread; per topic, correlation id -> first
    CreateTime (epoch seconds) of the records whose ``ce_source`` starts with the topic's prefix in
    ``sources``; and when the first ``ce_type`` ``done`` record of ``results`` was read."""

    def __init__(
        self,
        settings: WhaleSettings,
        sources: dict[str, str],
        *,
        results: str,
        done: str,
        requests: str = "",
        state: tuple[str, str] | None = None,
    ) -> None:
        """``requests``: the pool's topic, whose records' keys map run-state keys to chains;
        ``state``: the run-state topic and the pool's key prefix (``<pool>/``), read when given."""
        topics = list(sources) + ([state[0]] if state else [])
        self.created: dict[str, dict[str, float]] = {t: {} for t in topics}
        self.states: dict[str, list[float]] = {}  # chain -> CreateTimes of its run-state records
        self._chains: dict[bytes, str] = {}  # run-state key -> chain
        self._requests = requests
        self._state_topic, self._prefix = (state[0], state[1].encode()) if state else ("", b"")
        self.seen: dict[str, float] = {}  # correlation id -> when its result was read
        self._results = results
        self._done = done.encode()
        self._sources = {t: s.encode() for t, s in sources.items()}
        self._stop = threading.Event()
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"whale-tap-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
            }
        )
        self._consumer.assign(
            [_at_end(self._consumer, t, p) for t in topics for p in topic_partitions(self._consumer, t)]
        )
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        consumer = self._consumer
        while not self._stop.is_set():
            batch: Any = consumer.consume(1000, 0) or consumer.consume(1, 0.1)  # never wait for a full batch
            now = time.time()
            for msg in batch:
                if msg.error() is not None:
                    continue
                topic = msg.topic()
                kind, stamp = msg.timestamp()
                if topic == self._state_topic:
                    chain = self._chains.get(msg.key() or b"")
                    if chain is not None and kind and stamp > 0:
                        self.states.setdefault(chain, []).append(stamp / 1000)
                    continue
                headers = dict(msg.headers() or ())
                if not headers.get("ce_source", b"").startswith(self._sources[topic]):
                    continue
                chain = (headers.get("ce_correlationid") or headers.get("ce_id") or b"").decode()
                if topic == self._requests and msg.key():
                    self._chains[self._prefix + msg.key()] = chain
                if kind and stamp > 0:
                    self.created[topic].setdefault(chain, stamp / 1000)
                if topic == self._results and headers.get("ce_type") == self._done:
                    self.seen.setdefault(chain, now)
        consumer.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def hops(
        self, ids: Sequence[str], sent: dict[str, float], acked: dict[str, float], topics: Sequence[str]
    ) -> dict[str, list[float]]:
        """hop name -> its milliseconds for each of ``ids`` seen on every topic (``topics`` in the
        order ingest, events, action requests, results)."""
        ingest, events, actions, results = (self.created[t] for t in topics)
        out: dict[str, list[float]] = {h: [] for h in (*HOPS, *EXECUTOR_HOPS)}
        for i in ids:
            if i not in self.seen or not all(i in c for c in (ingest, events, actions, results)):
                continue
            stamps = (sent[i], ingest[i], acked[i])
            points = (ingest[i], events[i], actions[i], results[i], self.seen[i])
            values = [stamps[1] - stamps[0], stamps[2] - stamps[1]]
            values += [b - a for a, b in itertools.pairwise(points)]
            for hop, value in zip(HOPS, values, strict=True):
                out[hop].append(value * 1000)
            states = self.states.get(i, [])
            if len(states) == 2:  # started, finished: a plain run (a redelivered one has more)
                run = (actions[i], *states, results[i])
                for hop, (a, b) in zip(EXECUTOR_HOPS, itertools.pairwise(run), strict=True):
                    out[hop].append((b - a) * 1000)
        return out


def _at_end(consumer: Consumer, topic: str, partition: int) -> TopicPartition:
    end = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    return TopicPartition(topic, partition, int(end))
