"""Notify actions: a templated markdown message to a WeCom group robot or a Slack-compatible webhook.

.. code-block:: yaml

    kind: notify
    name: notify.oncall
    channel: wecom                  # or slack
    webhook: env:ONCALL_WEBHOOK     # the webhook URL holds a key: always a secret reference
    params: {type: object, properties: {title: {type: string}}, required: [title]}
    message: |
      ## {{ params.title }}
      {{ params.body | default('') }}
    timeout: 10
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from whale.rules import templating
from whale_executor import secrets
from whale_executor.actions.base import ActionContext, SchemaParams
from whale_executor.actions.yamlspec import check_keys, check_templates, number
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError, SecretError

CHANNELS = ("wecom", "slack")
MAX_MESSAGE = 4096  # WeCom's markdown content limit (bytes)


def payload(channel: str, text: str) -> dict[str, Any]:
    """The webhook body of each channel."""
    if channel == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": text}}
    return {"text": text}


class NotifyAction:
    kind = "notify"

    def __init__(self, doc: Mapping[str, Any], *, source: str) -> None:
        check_keys(doc, {"channel", "webhook", "message"}, source=source)
        self.name = str(doc["name"])
        self.description = str(doc.get("description", ""))
        self.idempotent = bool(doc.get("idempotent", False))
        self.timeout = number(doc, "timeout", 10.0, source=source, minimum=0.001)
        self._params = SchemaParams(doc.get("params"), source=source)
        channel = doc.get("channel")
        if channel not in CHANNELS:
            raise CatalogError(f"must be one of {', '.join(CHANNELS)}", source=source, field="channel")
        self.channel: str = channel
        self.webhook = secrets.check_ref(doc.get("webhook"), source=source, field="webhook")
        message = doc.get("message")
        if not isinstance(message, str) or not message.strip():
            raise CatalogError("required (a markdown template)", source=source, field="message")
        check_templates(message, source=source, field="message")
        self.message = message

    @property
    def params_schema(self) -> dict[str, Any]:
        return self._params.schema

    def validate(self, params: Any) -> dict[str, Any]:
        return self._params.validate(params)

    async def run(self, params: Any, ctx: ActionContext) -> Any:
        try:
            text = templating.render(self.message, {"params": params}).strip()
            url = secrets.resolve(self.webhook)
        except templating.TemplateError as exc:
            raise ActionFailed(f"message: {exc.message}") from None
        except SecretError as exc:
            raise ActionFailed(exc.message) from None
        encoded = text.encode("utf-8")
        if len(encoded) > MAX_MESSAGE:
            text = encoded[: MAX_MESSAGE - 3].decode("utf-8", "ignore") + "..."
        # The URL carries the robot's key: no message below may contain it.
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.post(url, json=payload(self.channel, text))
        except httpx.TimeoutException:
            raise ActionTimedOut(
                f"the {self.channel} webhook did not answer within {self.timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise ActionFailed(
                f"the {self.channel} webhook request failed: {type(exc).__name__}", retryable=True
            ) from None
        body = secrets.scrub(response.text[:2048], [url])
        output: dict[str, Any] = {"channel": self.channel, "status": response.status_code, "chars": len(text)}
        if response.status_code >= 300:
            raise ActionFailed(
                f"the {self.channel} webhook answered HTTP {response.status_code}",
                retryable=response.status_code >= 500 or response.status_code == 429,
                output={**output, "body": body},
            )
        if self.channel == "wecom":
            # WeCom answers 200 with {"errcode": N, "errmsg": ...}; errcode 0 means delivered.
            try:
                answer = response.json()
            except ValueError:
                answer = {}
            errcode = answer.get("errcode", 0) if isinstance(answer, dict) else 0
            if errcode:
                raise ActionFailed(
                    f"the wecom robot refused the message: errcode {errcode} {answer.get('errmsg', '')}".strip(),
                    output={**output, "errcode": errcode},
                )
        return output
