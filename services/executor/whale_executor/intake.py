"""The executor's request intake: the shared loop's per-key ordered variant, configured for a pool.

Requests of different keys run concurrently, requests of one key (the idempotency key) in order;
the committed offset is the lowest one still in progress; ``max_pending`` requests in progress pause
the partitions; a rebalance gives the revoked partitions' requests ``revoke_grace`` seconds before
cancelling them, lost partitions are cancelled at once (:mod:`whale.consume_keyed`). A request that
fails is retried (forever while the error is retryable) and dead-lettered after three attempts.
Requests are decoded light (:func:`whale.light_event.decode_model`: the event ``from_kafka`` would
give, without pydantic's validation when the record is the usual binary-mode JSON one).
"""

from __future__ import annotations

from whale.consume_keyed import KeyedConsumer
from whale.consumer import Handler
from whale.light_event import decode_model
from whale.producer import EventProducer
from whale.settings import WhaleSettings
from whale_executor import metrics

MAX_ATTEMPTS = 3  # a request failing with a non-retryable error is dead-lettered after this many tries


def intake(
    settings: WhaleSettings,
    *,
    topic: str,
    group_id: str,
    producer: EventProducer,
    handler: Handler,
    pool: str,
    max_pending: int = 1000,
    session_timeout_ms: int = 10_000,
    auto_offset_reset: str = "earliest",
    revoke_grace: float = 20.0,
) -> KeyedConsumer:
    """The consumer of ``topic`` in ``group_id`` handing requests to ``handler``; the pool's
    ``whale_executor_in_flight`` gauge follows the requests in progress."""
    return KeyedConsumer(
        settings,
        group_id=group_id,
        topics=[topic],
        producer=producer,
        handler=handler,
        max_pending=max_pending,
        max_attempts=MAX_ATTEMPTS,
        session_timeout_ms=session_timeout_ms,
        auto_offset_reset=auto_offset_reset,
        revoke_grace=revoke_grace,
        on_in_flight=metrics.IN_FLIGHT.labels(pool=pool).set,
        decode=decode_model,
    )
