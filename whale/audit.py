"""Audit events: every change made through an API is published as ``whale.audit.<object>.<action>``
on ``whale.events`` (through the normal producer, so it is indexed and searchable like any event)
with the actor, the action, the object and its state before and after, secrets redacted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import structlog

from whale import topics
from whale.authz import Identity
from whale.cloudevent import CloudEvent

log = structlog.get_logger(__name__)
SOURCE = "whale/audit"
REDACTED = "***"
SECRET_KEY = re.compile(r"(secret|token|password|passwd|sha256|hmac|api[_-]?key|authorization|cookie)", re.I)


def redact(value: Any) -> Any:
    """``value`` with every mapping entry whose key names a secret replaced by ``***``."""
    if isinstance(value, Mapping):
        return {
            str(k): (REDACTED if SECRET_KEY.search(str(k)) and v not in (None, "") else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def audit_event(
    identity: Identity,
    obj: str,
    action: str,
    object_id: str,
    before: Any = None,
    after: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> CloudEvent:
    kind = f"whale.audit.{obj}.{action}"
    if kind not in topics.AUDIT_TYPES:
        raise ValueError(f"{kind!r} is not an audit type (add it to whale.topics.AUDIT_TYPES and schemas/)")
    data = {
        "actor": identity.actor(),
        "action": action,
        "object": {"kind": obj, "id": object_id},
        "before": redact(before),
        "after": redact(after),
        **redact(dict(extra or {})),
    }
    return CloudEvent.create(type=kind, source=SOURCE, subject=f"{obj}/{object_id}", data=data)


async def record(
    producer: Any,
    identity: Identity,
    obj: str,
    action: str,
    object_id: str,
    before: Any = None,
    after: Any = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Publish the audit event of a change that was just made (acknowledged by Kafka); ``extra``
    adds fields of that action (e.g. ``rolled_back_from``)."""
    event = audit_event(identity, obj, action, object_id, before, after, extra)
    await producer.send(topics.EVENTS, event, key=f"{obj}/{object_id}")
    log.info("audit", type=event.type, actor=identity.name, object_id=object_id)
