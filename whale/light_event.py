"""CloudEvent records read light: attributes from the binary-mode headers, data from orjson, no
pydantic model. The rule engine reads ``whale.events`` so (the event center validated each event
before it wrote it), the executor its action requests (:func:`decode_model`).

:func:`decode` takes the fast path only when it decides exactly as :func:`whale.binding.from_kafka`
would: binary mode, a JSON (or absent) content type, the required attributes present and non-empty,
``specversion`` 1.0, an RFC 3339 ``time``, no ``dataschema``, lower-case extension names, data that orjson parses (it
refuses unpaired surrogates, NaN and infinities), with fewer brackets than the nesting limit and no
integer orjson would read as a float. Anything else goes through ``from_kafka`` itself, which
accepts it (then read into the same light form) or raises the precise :class:`BindingError` the
dead letter carries. Not re-checked on the fast path: control characters in attribute texts and the
``source`` URI grammar (the edges refuse them; the full model is built where one is needed, see
:meth:`LightEvent.full`). :func:`decode_model` checks those too, so the model it returns without
pydantic's validation is the one ``from_kafka`` would return.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from whale.binding import (
    CONTENT_TYPE,
    HEADER_PREFIX,
    STRUCTURED_PREFIX,
    KafkaMessage,
    from_kafka,
    is_json_content,
)
from whale.cloudevent import (
    CONTEXT_ATTRIBUTES,
    EXTENSION_NAME,
    RESERVED,
    SPEC_VERSION,
    URI_REFERENCE,
    CloudEvent,
    format_time,
    parse_time,
    validate_event,
)
from whale.event_data import MAX_NESTING, text_problem

_REQUIRED = ("id", "source", "type")
_TEXTS = ("id", "source", "type", "subject", "datacontenttype")  # the model checks their characters
_OPTIONAL = ("datacontenttype", "dataschema", "subject", "time")
_LONG_NUMBER = re.compile(rb"\d{19}")  # may exceed 64 bits: orjson would read a float


@dataclass(slots=True)
class LightEvent:
    """One event as plain values: context attributes (``time`` as its RFC 3339 text), extensions
    and data, with the full :class:`CloudEvent` built only on demand (:meth:`full`)."""

    id: str
    source: str
    type: str
    specversion: str = SPEC_VERSION
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: str | None = None
    data: Any = None
    extensions: dict[str, str | int | bool] = field(default_factory=dict)
    _model: CloudEvent | None = field(default=None, compare=False, repr=False)

    def context(self) -> dict[str, Any]:
        """What rules match and templates render on, as :func:`whale.rules.paths.event_context`
        builds it: extensions at top level, then the attributes (absent optional ones left out)."""
        ctx: dict[str, Any] = dict(self.extensions)
        ctx.update(id=self.id, source=self.source, type=self.type, specversion=self.specversion)
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                ctx[name] = value
        ctx["data"] = self.data
        return ctx

    def to_structured(self) -> dict[str, Any]:
        """The structured-mode JSON form, as :meth:`CloudEvent.to_structured` writes it."""
        out: dict[str, Any] = {"specversion": self.specversion, "id": self.id, "source": self.source}
        out["type"] = self.type
        for name in _OPTIONAL:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        if isinstance(self.data, bytes):
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        elif self.data is not None:
            out["data"] = self.data
        return out

    def full(self) -> CloudEvent:
        """The validated model (built once), for what needs it: notices, dry-run records, enrichment."""
        if self._model is None:
            attrs: dict[str, Any] = {"id": self.id, "source": self.source, "type": self.type}
            attrs["specversion"] = self.specversion
            for name in _OPTIONAL:
                value = getattr(self, name)
                if value is not None:
                    attrs[name] = value
            self._model = validate_event({**attrs, "data": self.data, "extensions": dict(self.extensions)})
        return self._model

    @classmethod
    def of(cls, event: CloudEvent) -> LightEvent:
        """The light form of a validated model (it keeps the model)."""
        return cls(
            id=event.id,
            source=event.source,
            type=event.type,
            specversion=event.specversion,
            datacontenttype=event.datacontenttype,
            dataschema=event.dataschema,
            subject=event.subject,
            time=format_time(event.time) if event.time is not None else None,
            data=event.data,
            extensions=dict(event.extensions),
            _model=event,
        )

    @classmethod
    def from_structured(cls, doc: Mapping[str, Any]) -> LightEvent:
        """Read back what :meth:`to_structured` wrote (Whale's own records: not validated again)."""
        attrs: dict[str, Any] = {}
        ext: dict[str, str | int | bool] = {}
        for name, value in doc.items():
            if name == "data_base64":
                attrs["data"] = base64.b64decode(value)
            elif name in CONTEXT_ATTRIBUTES or name == "data":
                attrs[name] = value
            else:
                ext[name] = value
        return cls(**attrs, extensions=ext)


def model(event: CloudEvent | LightEvent) -> CloudEvent:
    """The validated model of either form."""
    return event if isinstance(event, CloudEvent) else event.full()


def decode(message: KafkaMessage) -> LightEvent:
    """The event of a ``whale.events`` record (see the module doc); raises :class:`BindingError`
    with the reason for a record that is not a valid CloudEvent."""
    light = _fast(message)
    return light if light is not None else LightEvent.of(from_kafka(message))


def decode_model(message: KafkaMessage) -> CloudEvent:
    """The :class:`CloudEvent` of a record, equal to what :func:`whale.binding.from_kafka` returns
    (and raising the same :class:`BindingError`), built without pydantic's validation when the fast
    path decides: its checks plus the ones it leaves to the edges (control characters in attribute
    texts, the ``source`` URI grammar). For a consumer whose records are mostly Whale's own."""
    fields = _fields(message)
    if fields is None or not _texts_fine(fields):
        return from_kafka(message)
    return CloudEvent.model_construct(**fields)


def _texts_fine(fields: dict[str, Any]) -> bool:
    """What the model checks of attribute texts beyond :func:`_fields`'s (header values decoded as
    UTF-8 hold no unpaired surrogate, so only control characters and the source's grammar)."""
    texts = [fields[name] for name in _TEXTS if name in fields]
    texts += fields["extensions"].values()
    return all(text_problem(t) is None for t in texts) and bool(URI_REFERENCE.match(fields["source"]))


def _fast(message: KafkaMessage) -> LightEvent | None:
    """The light event, or None when ``from_kafka`` must decide."""
    fields = _fields(message)
    if fields is None:
        return None
    if "time" in fields:
        fields["time"] = fields["time"].text
    return LightEvent(**fields)


def _fields(message: KafkaMessage) -> dict[str, Any] | None:
    """The event's attributes (``time`` parsed), ``data`` and ``extensions`` as ``from_kafka``
    would give them to the model, or None when ``from_kafka`` must decide."""
    attrs: dict[str, Any] = {}
    ext: dict[str, str | int | bool] = {}
    content_type: str | None = None
    for name, raw in message.headers:
        lowered = name.lower()
        if lowered == CONTENT_TYPE:
            content_type = raw.decode("utf-8", "replace")
            continue
        if not lowered.startswith(HEADER_PREFIX):
            continue
        attr = lowered[len(HEADER_PREFIX) :]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None
        if attr in CONTEXT_ATTRIBUTES:
            attrs[attr] = text
        elif attr in RESERVED or not EXTENSION_NAME.match(attr):
            return None
        else:
            ext[attr] = text
    if attrs.get("specversion") != SPEC_VERSION or not all(attrs.get(name) for name in _REQUIRED):
        return None
    if content_type is not None and (
        content_type.lower().startswith(STRUCTURED_PREFIX) or not is_json_content(content_type)
    ):
        return None  # structured mode, or data kept as bytes
    if "dataschema" in attrs:
        return None  # rare: the model checks it is an absolute URI
    if attrs.get("subject") == "":
        del attrs["subject"]  # written by older Whale versions: an empty subject is no subject
    if "time" in attrs:
        try:
            attrs["time"] = parse_time(attrs["time"])
        except ValueError:
            return None
    data = None
    value = message.value
    if value is not None:
        if content_type is None or value.count(b"{") + value.count(b"[") >= MAX_NESTING:
            return None
        if _LONG_NUMBER.search(value):
            return None
        try:
            data = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    if content_type is not None:
        attrs["datacontenttype"] = content_type
    attrs["data"] = data
    attrs["extensions"] = ext
    return attrs
