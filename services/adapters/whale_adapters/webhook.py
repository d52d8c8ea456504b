"""The generic JSON webhook: HMAC verification, then a declarative mapping to one CloudEvent."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Any

from whale.cloudevent import CloudEvent
from whale.errors import EventError
from whale.rules.templating import TemplateError, render
from whale_adapters.config import WebhookConfig
from whale_adapters.errors import PayloadError, SignatureError
from whale_adapters.jsonpath import JsonPath, Missing, compile_path
from whale_adapters.lifecycle import AlertBook, Step, change_fields, lifecycle_extensions
from whale_adapters.validation import parse_body


def sign(secret: bytes, body: bytes, algorithm: str = "sha256") -> str:
    """The hex HMAC of ``body`` (what a sender puts in the signature header, after the prefix)."""
    return hmac.new(secret, body, algorithm).hexdigest()


class Webhook:
    """One configured webhook: ``verify`` then ``to_event`` (or ``observe`` with a lifecycle)."""

    def __init__(self, config: WebhookConfig, book: AlertBook | None = None) -> None:
        self.config = config
        self.name = config.name
        self._secret = config.secret()
        self._paths: dict[str, JsonPath] = {
            attr: compile_path(getattr(config, attr), field=f"webhooks.{config.name}.{attr}")
            for attr in ("id", "subject", "time", "data")
            if getattr(config, attr) is not None
        }
        self._lifecycle: dict[str, JsonPath] = {
            attr: compile_path(path, field=f"webhooks.{config.name}.lifecycle.{attr}")
            for attr, path in (config.lifecycle.paths() if config.lifecycle else {}).items()
        }
        self.book = book or AlertBook(f"webhook:{config.name}", config.source, id_prefix="wh-")

    def verify(self, body: bytes, headers: dict[str, str]) -> None:
        """Raise :class:`SignatureError` unless the signature header holds the body's HMAC."""
        header = self.config.signature_header.lower()
        given = headers.get(header)
        if not given:
            raise SignatureError(
                f"webhook {self.name}: missing {self.config.signature_header} header", webhook=self.name
            )
        prefix = self.config.signature_prefix
        if prefix and not given.startswith(prefix):
            raise SignatureError(
                f"webhook {self.name}: {self.config.signature_header} must start with {prefix!r}",
                webhook=self.name,
            )
        expected = sign(self._secret, body, self.config.algorithm)
        if not hmac.compare_digest(given[len(prefix) :].strip().lower(), expected):
            raise SignatureError(f"webhook {self.name}: signature does not match the body", webhook=self.name)

    def to_event(self, body: bytes, headers: dict[str, str]) -> CloudEvent:
        """Map the (verified) JSON body; :class:`PayloadError` names what is wrong."""
        return self.observe(body, headers)[0]

    def observe(self, body: bytes, headers: dict[str, str]) -> tuple[CloudEvent, str, Step | None]:
        """The event, and with a lifecycle its alert identity and step (to record once it is stored)."""
        doc = parse_body(body, f"webhook {self.name}")
        ctx = {"body": doc, "headers": {k.lower().replace("-", "_"): v for k, v in headers.items()}}
        try:
            type_ = render(self.config.type, ctx).strip()
        except TemplateError as exc:
            raise _fail(self.name, "type", exc.message) from None
        attrs: dict[str, Any] = {}
        for attr in ("id", "subject"):
            if attr in self._paths:
                value = self._find(attr, doc)
                if isinstance(value, dict | list) or value is None:
                    raise _fail(self.name, attr, f"{self._paths[attr].text} must be a string or number")
                attrs[attr] = str(value)
        if "id" not in attrs:
            attrs["id"] = "wh-" + hashlib.sha256(body).hexdigest()[:40]  # a re-delivery keeps its id
        if "time" in self._paths:
            raw = self._find("time", doc)
            try:
                attrs["time"] = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
            except ValueError:
                raise _fail(self.name, "time", f"{raw!r} is not an RFC 3339 timestamp") from None
        data = self._find("data", doc) if "data" in self._paths else doc
        identity, step = "", None
        if self._lifecycle:
            identity, step, content = self._step(doc, data)
            attrs["extensions"] = lifecycle_extensions(step)
            if isinstance(data, dict):
                data = {**data, **change_fields(step, content)}
            if "id" not in self._paths:
                attrs["id"] = step.event_id
        try:
            event = CloudEvent.create(type=type_, source=self.config.source, data=data, **attrs)
        except EventError as exc:
            raise PayloadError(f"webhook {self.name}: {exc.message}", exc.problems) from None
        return event, identity, step

    def _step(self, doc: Any, data: Any) -> tuple[str, Step, Any]:
        assert self.config.lifecycle is not None
        found: dict[str, Any] = {}
        for attr, path in self._lifecycle.items():
            try:
                found[attr] = path.find(doc)
            except Missing as exc:
                if attr in ("identity", "status"):
                    raise _fail(self.name, f"lifecycle.{attr}", str(exc)) from None
        identity = found["identity"]
        if isinstance(identity, dict | list) or identity is None or identity == "":
            raise _fail(
                self.name,
                "lifecycle.identity",
                f"{self._lifecycle['identity'].text} must be a string or number",
            )
        resolved = "status" in found and str(found["status"]) in self.config.lifecycle.resolved
        started = str(found["started"]) if found.get("started") is not None else None
        content = found.get("content", data)
        step = self.book.step(str(identity), started, resolved=resolved, content=content)
        return str(identity), step, content

    def _find(self, attr: str, doc: Any) -> Any:
        try:
            return self._paths[attr].find(doc)
        except Missing as exc:
            raise _fail(self.name, attr, str(exc)) from None


def _fail(name: str, attr: str, message: str) -> PayloadError:
    return PayloadError(
        f"webhook {name}: {attr}: {message}", [{"field": attr, "message": message}], field=attr
    )
