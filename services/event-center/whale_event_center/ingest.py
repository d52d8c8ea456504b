"""The CloudEvents HTTP binding: turn one ``POST /events`` request into events or precise problems.

Modes: structured (``application/cloudevents+json``), batch (``application/cloudevents-batch+json``)
and binary (``ce-*`` headers, the body is the data). Every problem names the attribute (or JSON
pointer into data) and says why.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote

from whale.binding import is_json_content
from whale.cloudevent import CONTEXT_ATTRIBUTES, CloudEvent, edge_problems, validate_event
from whale.errors import EventError
from whale.event_data import MAX_DEPTH, text_problem
from whale.safe_json import safe_text
from whale_event_center.errors import EventCenterError, InvalidEvent, Problem, TooLarge, UnsupportedMediaType

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*\s*(;.*)?$")
Mode = Literal["structured", "binary", "batch"]


@dataclass(slots=True)
class Item:
    """One event of a request: parsed, or rejected with an error (``id``/``source`` when known)."""

    index: int
    event: CloudEvent | None = None
    error: EventCenterError | None = None
    id: str | None = None
    source: str | None = None


def mode_of(content_type: str | None, headers: Mapping[str, str]) -> Mode:
    base = (content_type or "").split(";", 1)[0].strip().lower()
    if base == BATCH:
        return "batch"
    if base.startswith("application/cloudevents"):
        return "structured"
    if "ce-specversion" in {k.lower() for k in headers}:
        return "binary"
    if base in ("", "application/json") and not any(k.lower().startswith("ce-") for k in headers):
        raise InvalidEvent(
            "not a CloudEvent: use Content-Type application/cloudevents+json (structured), "
            "application/cloudevents-batch+json (batch) or ce-* headers (binary)",
            field="specversion",
        )
    raise InvalidEvent("binary mode requires the ce-specversion header", field="specversion")


def parse(
    content_type: str | None, headers: Mapping[str, str], body: bytes, max_event_bytes: int
) -> tuple[Mode, list[Item]]:
    """The request's events; a whole-request problem raises, per-event problems go in the items."""
    mode = mode_of(content_type, headers)
    if mode == "binary":
        if len(body) > max_event_bytes:
            raise TooLarge(f"event data is {len(body)} bytes, the limit is {max_event_bytes}", field="data")
        return mode, [_item(0, lambda: from_binary(headers, content_type, body))]
    if mode == "structured" and len(body) > max_event_bytes:
        raise TooLarge(f"event is {len(body)} bytes, the limit is {max_event_bytes}", field="")
    doc = _json_body(body, content_type)
    if mode == "structured":
        if not is_json_content(content_type):
            raise UnsupportedMediaType(
                f"structured mode supports JSON only, not {content_type}", field="content-type"
            )
        return mode, [_item(0, lambda: from_structured(doc), doc)]
    if not isinstance(doc, list):
        raise InvalidEvent("a batch must be a JSON array of structured CloudEvents", field="")
    _check_batch(doc)
    items: list[Item] = []
    small = len(body) <= max_event_bytes  # then no element can be larger: skip measuring each
    for index, element in enumerate(doc):
        size = (
            0
            if small
            else len(
                json.dumps(element, separators=(",", ":"), ensure_ascii=False).encode(errors="surrogatepass")
            )
        )
        if size > max_event_bytes:
            error = TooLarge(f"event is {size} bytes, the limit is {max_event_bytes}", field="")
            items.append(Item(index, error=error, **_ids(element)))
        else:
            items.append(_item(index, lambda e=element: from_structured(e), element))
    return mode, items


def _check_batch(doc: list[Any]) -> None:
    """A batch is rejected whole when it holds a non-object or its events do not share one
    specversion (CloudEvents JSON batch format); other problems are per event."""
    for index, element in enumerate(doc):
        if not isinstance(element, dict):
            raise InvalidEvent(
                f"batch element {index} is not a JSON object; the whole batch is refused",
                [{"field": f"[{index}]", "message": "a batch holds structured CloudEvents (JSON objects)"}],
            )
    versions = {repr(element.get("specversion")) for element in doc}
    if len(versions) > 1:
        raise InvalidEvent(
            "the events of a batch must share one specversion; the whole batch is refused "
            f"(found {', '.join(sorted(versions))})",
            field="specversion",
        )


def _ids(doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        return {"id": None, "source": None}
    ids = {k: doc.get(k) for k in ("id", "source")}
    # echoed in the answer: only text any JSON encoder can write
    return {
        k: v if isinstance(v, str) and text_problem(v, controls=False) is None else None
        for k, v in ids.items()
    }


def _item(index: int, build: Any, doc: Any = None) -> Item:
    try:
        event: CloudEvent = build()
    except EventCenterError as exc:
        return Item(index, error=exc, **_ids(doc))
    return Item(index, event=event, id=event.id, source=event.source)


def _json_body(body: bytes, content_type: str | None) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise InvalidEvent("the body is not UTF-8", field="") from None
    except RecursionError:
        raise InvalidEvent(_too_deep(), field="data") from None
    except json.JSONDecodeError as exc:
        raise InvalidEvent(
            f"the body is not valid JSON ({content_type}): {exc.msg} at line {exc.lineno} column {exc.colno}",
            field="",
        ) from None


def _too_deep() -> str:
    return f"the JSON is nested too deeply (data may be nested at most {MAX_DEPTH} levels)"


def header_text(value: str) -> str:
    """An HTTP header value: servers hand them over as Latin-1; valid UTF-8 bytes (as the Go SDK
    sends them) are read as UTF-8, then percent-escapes are decoded (CloudEvents HTTP binding)."""
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        value = value.encode("latin-1").decode("utf-8")
    return unquote(value, errors="strict") if "%" in value else value


def extra_problems(event: CloudEvent) -> list[Problem]:
    """CloudEvents 1.0 rules the shared model leaves to the edge."""
    problems: list[Problem] = [_plain(p) for p in edge_problems(event)]
    if event.subject is not None and not event.subject:
        problems.append({"field": "subject", "message": "subject must be a non-empty string when present"})
    if event.datacontenttype is not None and not MEDIA_TYPE.match(event.datacontenttype):
        problems.append(
            {"field": "datacontenttype", "message": "datacontenttype must be an RFC 2046 media type"}
        )
    return problems


def _checked(build: Any) -> CloudEvent:
    try:
        event: CloudEvent = build()
    except EventError as exc:
        raise InvalidEvent(safe_text(exc.message), [_plain(p) for p in exc.problems]) from None
    problems = extra_problems(event)
    if problems:
        raise InvalidEvent("invalid CloudEvent: " + "; ".join(p["message"] for p in problems), problems)
    return event


def _plain(problem: Mapping[str, str]) -> Problem:
    return {
        "field": safe_text(problem.get("field", "")),
        "message": safe_text(problem.get("message", "invalid")),
    }


def from_structured(doc: Any) -> CloudEvent:
    if isinstance(doc, dict) and "data" in doc and doc.get("datacontenttype") is None:
        doc = {**doc, "datacontenttype": "application/json"}  # JSON data: say so (no model copy after)
    return _checked(lambda: CloudEvent.from_structured(doc))


def from_binary(headers: Mapping[str, str], content_type: str | None, body: bytes) -> CloudEvent:
    attrs: dict[str, Any] = {}
    ext: dict[str, Any] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if not lowered.startswith("ce-"):
            continue
        attr = lowered[3:]
        try:
            text = header_text(value)
        except UnicodeDecodeError:
            raise InvalidEvent(f"header {name} has a percent-escape that is not UTF-8", field=attr) from None
        if attr in CONTEXT_ATTRIBUTES:
            attrs[attr] = text
        else:
            ext[attr] = text
    if content_type:
        attrs["datacontenttype"] = content_type
    if body:
        if is_json_content(content_type):
            try:
                attrs["data"] = json.loads(body)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidEvent(
                    f"data is declared {content_type or 'JSON'} but is not valid JSON: {exc}",
                    [{"field": "data", "pointer": "/", "message": f"not valid JSON: {exc}"}],
                ) from None
            except RecursionError:
                raise InvalidEvent(_too_deep(), field="data") from None
            if content_type is None:
                attrs["datacontenttype"] = "application/json"
        else:
            attrs["data"] = body
    return _checked(lambda: validate_event({**attrs, "extensions": ext}))
