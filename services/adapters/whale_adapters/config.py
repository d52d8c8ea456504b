"""The adapters' YAML configuration: generic webhooks and pollers (onboarding by configuration).

::

    webhooks:
      - name: shop                         # POST /webhooks/shop
        secret_env: SHOP_WEBHOOK_SECRET    # HMAC key, read from this environment variable
        signature_header: X-Signature      # default X-Whale-Signature
        signature_prefix: "sha256="        # stripped before comparing the hex digest
        algorithm: sha256                  # sha1 | sha256 | sha512
        source: https://shop.example.com
        type: "shop.order.{{ body.status }}"   # sandboxed template over body and headers
        id: $.delivery_id                  # JSON paths; id defaults to a hash of the body
        subject: $.order.id
        time: $.created_at
        data: $.order                      # default $ (the whole body)
        lifecycle:                         # optional: alerts with an identity (see lifecycle.py)
          identity: $.alert.id             # what identifies the alert
          status: $.alert.state            # resolved when its value is one of `resolved`
          resolved: [resolved, ok]
          started: $.alert.started_at      # optional: start of the episode (default: first event)
          content: $.alert.details         # optional: what an update is (default: the event's data)
    pollers:
      - name: inventory
        url: http://127.0.0.1:8090/cis
        interval: 30                       # seconds
        items: $                           # where the list is in the response
        key: $.id                          # what identifies an item
        type_prefix: cmdb.ci               # -> cmdb.ci.created | .updated | .deleted
        source: /adapters/poller/inventory
        header_env: {Authorization: INVENTORY_AUTH}   # header values from the environment
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from whale.polling import PolledEndpoint
from whale.rules.templating import TemplateError, check
from whale_adapters.errors import MappingError
from whale_adapters.jsonpath import compile_path

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class LifecycleConfig(BaseModel):
    """A generic webhook that sends alerts: one episode per identity, firing -> updated -> resolved."""

    model_config = ConfigDict(extra="forbid")

    identity: str
    status: str | None = None
    resolved: list[str] = Field(default_factory=lambda: ["resolved"])
    started: str | None = None
    content: str | None = None

    def paths(self) -> dict[str, str]:
        attrs = ("identity", "status", "started", "content")
        return {a: getattr(self, a) for a in attrs if getattr(self, a) is not None}


class WebhookConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME)
    secret_env: str
    signature_header: str = "X-Whale-Signature"
    signature_prefix: str = "sha256="
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha256"
    source: str
    type: str
    id: str | None = None
    subject: str | None = None
    time: str | None = None
    data: str = "$"
    lifecycle: LifecycleConfig | None = None

    def secret(self) -> bytes:
        value = os.environ.get(self.secret_env)
        if not value:
            raise MappingError(
                f"webhook {self.name}: environment variable {self.secret_env} (secret_env) is not set",
                field=f"webhooks.{self.name}.secret_env",
            )
        return value.encode()


class PollerConfig(PolledEndpoint):
    """A poller: the endpoint (url, interval, timeout, items, headers: :class:`whale.polling.PolledEndpoint`,
    shared with the inventory's HTTP sources) and how its items become events."""

    name: str = Field(pattern=NAME)
    key: str = "$.id"
    type_prefix: str
    source: str

    def request_headers(self) -> dict[str, str]:
        return self.endpoint_headers(label=f"poller {self.name}", field=f"pollers.{self.name}")


class AdaptersConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    webhooks: list[WebhookConfig] = Field(default_factory=list)
    pollers: list[PollerConfig] = Field(default_factory=list)


def parse_adapters(doc: Any, *, origin: str = "<config>") -> AdaptersConfig:
    """Validate the document; :class:`MappingError` names the field (``webhooks.0.type``) and why."""
    try:
        config = AdaptersConfig.model_validate(doc or {})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "<root>"
        raise MappingError(f"{origin}: {field}: {err['msg']}", field=field, source=origin) from None
    for kind, items in (("webhooks", config.webhooks), ("pollers", config.pollers)):
        names = [item.name for item in items]
        for name in names:
            if names.count(name) > 1:
                raise MappingError(f"{origin}: {kind}: duplicate name {name!r}", field=kind, source=origin)
    for i, hook in enumerate(config.webhooks):
        try:
            check(hook.type)
        except TemplateError as exc:
            raise MappingError(
                f"{origin}: webhooks.{i}.type: {exc.message}", field=f"webhooks.{i}.type"
            ) from None
        for attr in ("id", "subject", "time", "data"):
            value = getattr(hook, attr)
            if value is not None:
                compile_path(value, field=f"webhooks.{i}.{attr}")
        for attr, value in (hook.lifecycle.paths() if hook.lifecycle else {}).items():
            compile_path(value, field=f"webhooks.{i}.lifecycle.{attr}")
    for i, poller in enumerate(config.pollers):
        compile_path(poller.items, field=f"pollers.{i}.items")
        compile_path(poller.key, field=f"pollers.{i}.key")
    return config


def load_adapters(path: Path | None) -> AdaptersConfig:
    if path is None:
        return AdaptersConfig()
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise MappingError(f"{path}: cannot read: {exc}", field="<file>", source=str(path)) from None
    return parse_adapters(doc, origin=str(path))
