"""Batches of a Faust stream whose outputs are sent without awaiting each, acknowledged together.

How faust-streaming (0.15) commits: a stream *acks* an event (``Event.ack`` -> ``Message.ack``:
when the message's last reference is acked, the consumer adds its offset to the partition's acked
set); the consumer's commit loop (every ``broker_commit_interval``) commits, per partition, only
the end of the run of consecutive acked offsets after the last commit (``Consumer._new_offset``),
and flushes Faust's own producer first (``Consumer._commit_offsets``). ``stream.events()`` acks an
event when the ``async for`` body returns for it (the iterator's ``finally`` after its ``yield``),
also when the body is left by an exception or a cancellation. ``stream.take_events(n, within)``
acks a batch the same way after the body for the batch, but its buffering loop wakes every
``within`` seconds even when idle and holds a lone event for ``within`` (measured on an idle
worker: 5.9 % of a core with a 5 ms ``within``, 0.85 % with this module), so it is not used.

The agents iterate ``events()`` (which also makes each event Faust's current event, so a table
writes to its partition) and :class:`Pending` takes one more reference on each event's message
(``Message.incref``) before handling it: the iterator's ack then leaves the message unacked, and
only :meth:`Pending.settle` gives the last reference back (``Event.ack``), after every output of
the event is acknowledged by Kafka (acks=all) or its dead letter is written. A batch is settled
when ``limit`` events are pending or no further event waits in the stream's buffer, so a burst
shares one round trip per batch and a lone event waits for nothing but its own sends. Should the
buffer be emptied under the agent (a rebalance clears the queues, then waits for every unacked
message), a timer settles what is pending ``linger`` seconds after the agent last handled an
event. A crash, an exception or a cancellation before the settle leaves the batch unacked: it is
read again (at-least-once, as with the former one-event-at-a-time loop). Sends to Faust topics
(the repartition topic, the table's changelog) are enqueued by Faust's producer and flushed by the
commit itself.

Per-key order: events are handled one after the other in partition order, and each send is
started here as a task; asyncio starts tasks in the order they were created (FIFO ready queue),
and a task's first step runs :meth:`whale.producer.EventProducer.send` up to the enqueue, so the
producer (idempotent, ordered per partition) receives the records in the order they were issued.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

Sends = list["asyncio.Future[Any]"]
"""The sends one event issued, in order, not yet acknowledged."""


def issue(sends: Sends, send: Awaitable[Any]) -> None:
    """Start ``send`` now (enqueued in issue order) and keep it to await with its batch."""
    sends.append(asyncio.ensure_future(send))


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


class Pending:
    """The events an agent handled whose sends are not yet acknowledged (see the module doc)."""

    def __init__(
        self,
        limit: int,
        on_failure: Callable[[Any, BaseException], Awaitable[None]],
        linger: float = 0.01,
        before: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.limit = limit
        self.linger = linger
        self.on_failure = on_failure
        # the agent's deferred work for the events held so far (the rule engine renders a batch in
        # one thread hop), run by settle() before it awaits the sends: it must take that work
        # before its first await, so the work it does is exactly that of the batch being settled
        self.before = before
        self.events: list[tuple[Any, Sends]] = []
        self.busy = False  # an event is being handled: its sends are not all issued yet
        self._timer: asyncio.TimerHandle | None = None
        self._settling: set[asyncio.Task[None]] = set()

    def hold(self, event: Any) -> Sends:
        """Keep ``event`` unacked until :meth:`settle`; returns the list its sends go into."""
        event.message.incref()
        self.busy = True
        sends: Sends = []
        self.events.append((event, sends))
        return sends

    def due(self, stream: Any) -> bool:
        """Call once the event is handled: a full batch, or nothing more waiting in ``stream``'s
        buffer. When not due, the timer settles the batch should the agent not come back."""
        self.busy = False
        queue = getattr(stream.channel, "queue", None)
        if len(self.events) >= self.limit or queue is None or queue.empty():
            return True
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._late)
        return False

    async def settle(self) -> None:
        """Await every pending send; dead-letter the events with a refused one; then ack them all."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self.events = self.events, []
        if self.before is not None:
            await self.before()
        await settle([(event.message, sends) for event, sends in batch], self.on_failure)
        for event, _ in batch:
            event.ack()

    def _late(self) -> None:
        self._timer = None
        if self.busy:  # the agent is handling an event: it settles when that one is done
            return
        if self.events:
            task = asyncio.ensure_future(self.settle())
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)
