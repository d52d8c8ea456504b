"""HTTP "API actions" declared in YAML: a templated request, secret-referenced auth, retries.

.. code-block:: yaml

    kind: http
    name: tickets.create
    params: {type: object, properties: {title: {type: string}}, required: [title]}
    request:
      method: POST
      url: "https://api.example.com/tickets"
      headers: {X-Source: whale}
      query: {team: ops}
      json: {title: "{{ params.title }}"}
    auth: {bearer: env:TICKETS_TOKEN}       # or {basic: {username: u, password: env:P}}
                                            # or {header: {name: X-Key, value: file:/run/key}}
    timeout: 10                             # seconds per attempt
    retries: {count: 3, backoff: 0.5, max_backoff: 10}   # on 5xx, timeouts and connection errors
    accept: [200, 201]                      # default: any 2xx
    response_limit: 65536                   # bytes of the response body copied into the result
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import httpx

from whale.rules import templating
from whale_executor import secrets
from whale_executor.actions.base import ActionContext, SchemaParams, truncate
from whale_executor.actions.yamlspec import check_keys, check_templates, integer, mapping, number
from whale_executor.errors import ActionFailed, ActionTimedOut, CatalogError, SecretError

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
REQUEST_KEYS = frozenset({"method", "url", "headers", "query", "json", "body"})


class Retries:
    def __init__(self, doc: Mapping[str, Any], *, source: str) -> None:
        check_keys(doc, {"count", "backoff", "max_backoff"}, source=source, where="retries")
        self.count = integer(doc, "count", 0, source=source, field="retries.count")
        self.backoff = number(doc, "backoff", 0.5, source=source)
        self.max_backoff = number(doc, "max_backoff", 30.0, source=source)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped."""
        return float(min(self.max_backoff, self.backoff * (2 ** (attempt - 1))))


class HttpAction:
    kind = "http"

    def __init__(self, doc: Mapping[str, Any], *, source: str) -> None:
        check_keys(doc, {"request", "auth", "retries", "accept", "response_limit"}, source=source)
        self.source = source
        self.name = str(doc["name"])
        self.description = str(doc.get("description", ""))
        self.idempotent = bool(doc.get("idempotent", False))
        self.per_attempt = number(doc, "timeout", 10.0, source=source, minimum=0.001)
        self._params = SchemaParams(doc.get("params"), source=source)
        request = mapping(doc, "request", source=source)
        check_keys(request, REQUEST_KEYS, source=source, where="request")
        self.method = str(request.get("method", "GET")).upper()
        if self.method not in METHODS:
            raise CatalogError(f"unknown HTTP method {self.method!r}", source=source, field="request.method")
        if not isinstance(request.get("url"), str):
            raise CatalogError("required (a URL template)", source=source, field="request.url")
        if "json" in request and "body" in request:
            raise CatalogError("give json or body, not both", source=source, field="request.body")
        self.request = request
        check_templates(request, source=source, field="request")
        self.auth = self._auth(mapping(doc, "auth", source=source))
        self.retries = Retries(mapping(doc, "retries", source=source), source=source)
        accept = doc.get("accept")
        if accept is not None and (
            not isinstance(accept, list) or not all(isinstance(s, int) and 100 <= s < 600 for s in accept)
        ):
            raise CatalogError("must be a list of HTTP status codes", source=source, field="accept")
        self.accept: list[int] | None = accept
        self.response_limit = integer(doc, "response_limit", 64 * 1024, source=source)
        self.timeout = (self.per_attempt + self.retries.max_backoff) * (self.retries.count + 1)

    def _auth(self, auth: dict[str, Any]) -> dict[str, Any]:
        src = self.source
        check_keys(auth, {"bearer", "basic", "header"}, source=src, where="auth")
        if len(auth) > 1:
            raise CatalogError("give one of bearer, basic, header", source=src, field="auth")
        if "bearer" in auth:
            secrets.check_ref(auth["bearer"], source=src, field="auth.bearer")
        if "basic" in auth:
            basic = auth["basic"]
            if not isinstance(basic, Mapping) or "username" not in basic:
                raise CatalogError("needs username and password", source=src, field="auth.basic")
            secrets.check_ref(basic.get("password"), source=src, field="auth.basic.password")
        if "header" in auth:
            header = auth["header"]
            if not isinstance(header, Mapping) or not isinstance(header.get("name"), str):
                raise CatalogError("needs name and value", source=src, field="auth.header")
            secrets.check_ref(header.get("value"), source=src, field="auth.header.value")
        return auth

    @property
    def params_schema(self) -> dict[str, Any]:
        return self._params.schema

    def validate(self, params: Any) -> dict[str, Any]:
        return self._params.validate(params)

    def _auth_headers(self) -> tuple[dict[str, str], list[str]]:
        if "bearer" in self.auth:
            token = secrets.resolve(self.auth["bearer"])
            return {"Authorization": f"Bearer {token}"}, [token]
        if "basic" in self.auth:
            password = secrets.resolve(self.auth["basic"]["password"])
            basic = httpx.BasicAuth(str(self.auth["basic"]["username"]), password)
            header = next(iter(basic.auth_flow(httpx.Request("GET", "http://x")))).headers["Authorization"]
            return {"Authorization": header}, [password, header]
        if "header" in self.auth:
            value = secrets.resolve(self.auth["header"]["value"])
            return {self.auth["header"]["name"]: value}, [value]
        return {}, []

    async def run(self, params: Any, ctx: ActionContext) -> Any:
        context = {"params": params, "ctx": {"request_id": ctx.request_id, "attempt": ctx.attempt}}
        try:
            req = templating.render_value(self.request, context, path="request")
            auth_headers, hidden = self._auth_headers()
        except templating.TemplateError as exc:
            raise ActionFailed(f"cannot render the request: {exc.message}") from None
        except SecretError as exc:
            raise ActionFailed(exc.message) from None
        headers = {str(k): str(v) for k, v in (req.get("headers") or {}).items()}
        headers.update(auth_headers)
        query = {str(k): str(v) for k, v in (req.get("query") or {}).items()}
        content = None if req.get("body") is None else str(req["body"]).encode()
        attempt = 0
        async with httpx.AsyncClient(timeout=self.per_attempt, follow_redirects=False) as client:
            while True:
                attempt += 1
                try:
                    output = await self._once(client, req, headers, query, content, hidden)
                except (httpx.TimeoutException, httpx.TransportError) as exc:
                    kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "failed"
                    message = (
                        f"{self.method} {req['url']} {kind} ({type(exc).__name__}) after {attempt} attempt(s)"
                    )
                    if attempt <= self.retries.count:
                        await asyncio.sleep(self.retries.delay(attempt))
                        continue
                    if isinstance(exc, httpx.TimeoutException):
                        raise ActionTimedOut(secrets.scrub(message, hidden)) from None
                    raise ActionFailed(secrets.scrub(message, hidden), retryable=True) from None
                output["attempts"] = attempt
                status = output["status"]
                if self._accepted(status):
                    return output
                if status >= 500 and attempt <= self.retries.count:
                    await asyncio.sleep(self.retries.delay(attempt))
                    continue
                raise ActionFailed(
                    f"{self.method} {req['url']} answered HTTP {status} after {attempt} attempt(s)",
                    retryable=status >= 500 or status == 429,
                    output=output,
                )

    def _accepted(self, status: int) -> bool:
        return status in self.accept if self.accept is not None else 200 <= status < 300

    async def _once(
        self,
        client: httpx.AsyncClient,
        req: dict[str, Any],
        headers: dict[str, str],
        query: dict[str, str],
        content: bytes | None,
        hidden: list[str],
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": headers, "params": query}
        if "json" in req:
            kwargs["json"] = req["json"]
        elif content is not None:
            kwargs["content"] = content
        async with client.stream(self.method, str(req["url"]), **kwargs) as response:
            chunks: list[bytes] = []
            size = 0
            cut = False
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                size += len(chunk)
                if size > self.response_limit:
                    cut = True
                    break
            raw = b"".join(chunks)[: self.response_limit]
            return {
                "status": response.status_code,
                "headers": {"content-type": response.headers.get("content-type", "")},
                **response_body(raw, cut, hidden),
            }


def response_body(raw: bytes, cut: bool, hidden: list[str]) -> dict[str, Any]:
    """The body copy: parsed JSON when it is complete JSON, else (possibly cut) text."""
    text = secrets.scrub(raw.decode("utf-8", "replace"), hidden)
    if not cut:
        try:
            return {"body": json.loads(text) if text else None, "truncated": False}
        except json.JSONDecodeError:
            pass
    body, _ = truncate(text, len(text))
    return {"body": body, "truncated": cut}
