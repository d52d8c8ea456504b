"""Elasticsearch access over its REST API (httpx): index template, bulk writes, search, retention.

Daily indices ``<prefix>-YYYY.MM.DD`` (the bundled Elasticsearch has no data streams/ILM), one
template with explicit mappings for CloudEvents attributes and the usual extensions; ``data`` is a
``flattened`` field (no mapping explosion), ``data_text`` its leaf values for free text, and ``raw``
the whole event as an unindexed string.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from whale.errors import EventError, WhaleError


class StoreUnavailable(WhaleError, status=503, code="unavailable", retryable=True):
    """Elasticsearch refused or did not answer; the indexer retries (never skips), an API answers 503."""

    def body(self) -> dict[str, Any]:
        return {**super().body(), "message": "Elasticsearch did not answer; retry later"}


KEYWORD = {"type": "keyword"}
UNINDEXED = {"type": "keyword", "index": False, "doc_values": False}
EXTENSIONS = ("correlationid", "causationid", "traceparent", "tracestate", "partitionkey")


def template(prefix: str) -> dict[str, Any]:
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0, "refresh_interval": "1s"},
            "mappings": {
                "dynamic": False,
                "properties": {
                    "doc_id": KEYWORD,
                    "kind": KEYWORD,
                    "id": KEYWORD,
                    "source": KEYWORD,
                    "type": KEYWORD,
                    "specversion": KEYWORD,
                    "subject": KEYWORD,
                    "datacontenttype": KEYWORD,
                    "dataschema": KEYWORD,
                    "time": {"type": "date"},
                    **{name: KEYWORD for name in EXTENSIONS},
                    "extensions": {"type": "flattened", "ignore_above": 1024},
                    "data": {"type": "flattened", "ignore_above": 1024, "depth_limit": 30},
                    "data_text": {"type": "text"},
                    "raw": UNINDEXED,
                    "topic": KEYWORD,
                    "partition": {"type": "integer"},
                    "offset": {"type": "long"},
                    "indexed_at": {"type": "date"},
                    "headers": {"type": "flattened", "ignore_above": 1024},
                    "dlq": {
                        "properties": {
                            "reason": {"type": "text"},
                            "topic": KEYWORD,
                            "partition": {"type": "integer"},
                            "offset": {"type": "long"},
                            "group": KEYWORD,
                        }
                    },
                },
            },
        },
    }


class Store:
    """A thin async client for the few Elasticsearch APIs Whale uses."""

    def __init__(
        self, url: str, prefix: str, *, auth: tuple[str, str] | None = None, timeout: float = 10.0
    ) -> None:
        self.prefix = prefix
        self._client = httpx.AsyncClient(base_url=url.rstrip("/"), auth=auth, timeout=timeout)

    @property
    def pattern(self) -> str:
        return f"{self.prefix}-*"

    def index_for(self, when: datetime) -> str:
        return f"{self.prefix}-{when.astimezone(UTC):%Y.%m.%d}"

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"Elasticsearch did not answer {method} {path}: {exc!r}") from None
        if response.status_code in (429, 502, 503, 504):
            raise StoreUnavailable(f"Elasticsearch answered {response.status_code} to {method} {path}")
        return response

    async def ping(self) -> bool:
        try:
            response = await self._call("GET", "/_cluster/health", params={"timeout": "2s"})
        except StoreUnavailable:
            return False
        return response.status_code == 200

    async def ensure_template(self) -> None:
        response = await self._call("PUT", f"/_index_template/{self.prefix}", json=template(self.prefix))
        if response.status_code >= 300:
            raise StoreUnavailable(f"cannot install the index template: {response.text[:500]}")

    async def bulk(self, docs: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[int, str | None]]:
        """Index ``(index, id, doc)`` triples; returns (status, error) per doc in order."""
        lines: list[str] = []
        for index, doc_id, doc in docs:
            lines.append(json.dumps({"index": {"_index": index, "_id": doc_id}}))
            lines.append(json.dumps(doc, separators=(",", ":"), default=str))
        body = ("\n".join(lines) + "\n").encode()
        response = await self._call(
            "POST", "/_bulk", content=body, headers={"Content-Type": "application/x-ndjson"}
        )
        if response.status_code >= 300:
            raise StoreUnavailable(f"bulk request refused ({response.status_code}): {response.text[:500]}")
        out: list[tuple[int, str | None]] = []
        for item in response.json().get("items", []):
            result = item.get("index", {})
            error = result.get("error")
            out.append((int(result.get("status", 500)), json.dumps(error)[:1000] if error else None))
        return out

    async def search(self, query: dict[str, Any]) -> dict[str, Any]:
        response = await self._call(
            "POST",
            f"/{self.pattern}/_search",
            json=query,
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        if response.status_code == 400:
            raise EventError(
                f"Elasticsearch refused the query: {_reason(response)}", field=_refused_parameter(response)
            )
        if response.status_code >= 300:
            raise StoreUnavailable(f"search failed ({response.status_code}): {response.text[:500]}")
        result: dict[str, Any] = response.json()
        return result

    async def count(self, query: dict[str, Any]) -> int:
        """How many stored documents match ``query`` (an Elasticsearch query clause)."""
        response = await self._call(
            "POST",
            f"/{self.pattern}/_count",
            json={"query": query},
            params={"ignore_unavailable": "true", "allow_no_indices": "true"},
        )
        if response.status_code >= 300:
            raise StoreUnavailable(f"count failed ({response.status_code}): {response.text[:500]}")
        return int(response.json().get("count", 0))

    async def refresh(self) -> None:
        await self._call("POST", f"/{self.pattern}/_refresh", params={"ignore_unavailable": "true"})

    async def expire(self, retention_days: int, now: datetime | None = None) -> list[str]:
        """Delete daily indices older than the retention; returns their names."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
        response = await self._call(
            "GET", f"/_cat/indices/{self.pattern}", params={"format": "json", "h": "index"}
        )
        if response.status_code >= 300:
            return []
        old: list[str] = []
        for row in response.json():
            name = str(row.get("index", ""))
            try:
                day = datetime.strptime(name.removeprefix(self.prefix + "-"), "%Y.%m.%d").replace(tzinfo=UTC)
            except ValueError:
                continue
            if day + timedelta(days=1) <= cutoff:
                old.append(name)
        for name in old:
            await self._call("DELETE", f"/{name}")
        return old


def _reason(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        causes = error.get("root_cause") or [error]
        return str(causes[0].get("reason") or causes[0].get("type"))[:300]
    except (ValueError, AttributeError, IndexError, TypeError):
        return response.text[:300]


def _refused_parameter(response: httpx.Response) -> str:
    """The query parameter a refused search is about (time bounds are the usual culprit)."""
    text = response.text
    return "since" if "[time]" in text or "date" in text else "q" if "query_string" in text else ""
