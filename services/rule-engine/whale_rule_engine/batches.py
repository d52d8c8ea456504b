"""Batches of a Faust stream whose outputs are sent without awaiting each, acknowledged together.

How faust-streaming (0.15) commits: a stream *acks* an event (``Stream.ack``: the consumer adds its
offset to the partition's acked set); the consumer's commit loop (every ``broker_commit_interval``)
commits, per partition, only the end of the run of consecutive acked offsets after the last commit
(``Consumer._new_offset``), and flushes Faust's own producer first (``Consumer._commit_offsets``).
``stream.events()`` acks an event when the ``async for`` body returns for it (the generator's
``finally`` after its ``yield``). ``stream.take_events(n, within)`` sets ``enable_acks = False`` on
the stream, buffers up to ``n`` events (or what came ``within`` seconds), yields them as a list and
acks them all in its ``finally``, i.e. only when the ``async for`` body for that list has returned
and the generator is asked for the next list (or closed). So an agent that processes a batch, issues
its sends and awaits their acknowledgements *in the body* never lets an offset be committed before
the outputs of its event are durable (``acks=all``), and a crash before that replays the batch:
at-least-once, as with the former one-event-at-a-time loop, with one round trip per batch instead
of per event. Sends to Faust topics (the repartition topic, the table's changelog) are enqueued by
Faust's producer and flushed by the commit itself.

One hole remains in that: when the body is left by an exception or a cancellation (a worker
stopped while a send is still pending), ``take_events``' ``finally`` acks the batch all the same,
and the shutdown commit would commit it. :func:`hold` closes it: the body takes one more reference
on each message (``Message.incref``; Faust acks a message when its last reference is acked) and
:func:`release` gives it back only once the batch has settled, so a batch left early stays
unacknowledged and is read again.

Per-key order: the events of a batch are handled one after the other in partition order, and each
send is started here as a task; asyncio starts tasks in the order they were created (FIFO ready
queue), and a task's first step runs :meth:`whale.producer.EventProducer.send` up to the enqueue,
so the producer (idempotent, ordered per partition) receives the records in the order they were
issued.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from faust.streams import _current_event

Sends = list["asyncio.Future[Any]"]
"""The sends one event issued, in order, not yet acknowledged."""


def issue(sends: Sends, send: Awaitable[Any]) -> None:
    """Start ``send`` now (enqueued in issue order) and keep it to await with its batch."""
    sends.append(asyncio.ensure_future(send))


def hold(events: Sequence[Any]) -> list[Any]:
    """Take a reference on the message of each of ``events`` (see above); returns the messages."""
    messages = [event.message for event in events]
    for message in messages:
        message.incref()
    return messages


def release(messages: Sequence[Any]) -> None:
    """Give back the references :func:`hold` took, once every output of the batch is durable."""
    for message in messages:
        message.decref()


def make_current(event: Any) -> None:
    """Make ``event`` Faust's current event in this task, as ``events()`` does for its body: a table
    reads and writes the partition of the current event (its changelog partition, its RocksDB). The
    body of ``take_events`` runs in the agent's task, which Faust's buffering task does not set it
    in. Only the context variable is set: ``Stream.current_event`` belongs to the buffering task,
    which reads it to know which event it buffered."""
    _current_event.set(weakref.ref(event) if event is not None else None)


def first_failure(outcomes: Sequence[Any]) -> BaseException | None:
    """The first exception among one event's send outcomes, if any."""
    return next((o for o in outcomes if isinstance(o, BaseException)), None)


async def settle(
    batch: Sequence[tuple[Any, Sends]], on_failure: Callable[[Any, BaseException], Awaitable[None]]
) -> None:
    """Await every send of ``batch`` (pairs of an event and its sends) together; each event with a
    send Kafka refused is handed to ``on_failure`` (the dead letter, which retries until it is
    written), so every event of the batch is done or dead-lettered when this returns."""
    outcomes = await asyncio.gather(*(asyncio.gather(*sends, return_exceptions=True) for _, sends in batch))
    failed = [
        (event, exc) for (event, _), got in zip(batch, outcomes, strict=True) if (exc := first_failure(got))
    ]
    if failed:
        await asyncio.gather(*(on_failure(event, exc) for event, exc in failed))
