"""An HTTP endpoint polled for a JSON list of records: what the adapters' pollers and the inventory's
HTTP sources (a CMDB) share: the URL, interval and timeout, headers (fixed, or from environment
variables), and the JSON path of the records in the response (:mod:`whale.jsonpath`)."""

from __future__ import annotations

import os
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from whale.jsonpath import MappingError, Missing, compile_path


class PolledEndpoint(BaseModel):
    """``url`` answered with JSON; ``items`` = the JSON path of the list of records in it."""

    model_config = ConfigDict(extra="forbid")

    url: str
    interval: float = Field(default=60.0, gt=0)
    timeout: float = Field(default=10.0, gt=0)
    items: str = "$"
    headers: dict[str, str] = Field(default_factory=dict)
    header_env: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        return v

    def endpoint_headers(self, *, label: str, field: str) -> dict[str, str]:
        """The request headers; :class:`MappingError` (``label``, ``field``) if an environment
        variable of ``header_env`` is not set."""
        out = dict(self.headers)
        for header, env in self.header_env.items():
            value = os.environ.get(env)
            if value is None:
                raise MappingError(
                    f"{label}: environment variable {env} (header_env.{header}) is not set",
                    field=f"{field}.header_env.{header}",
                )
            out[header] = value
        return out

    async def get_json(self, client: httpx.AsyncClient, headers: dict[str, str]) -> Any:
        """GET the URL; its JSON (an HTTP error status raises :class:`httpx.HTTPStatusError`)."""
        response = await client.get(self.url, headers=headers, timeout=self.timeout)
        response.raise_for_status()
        return response.json()

    def records(self, doc: Any, *, label: str) -> list[Any]:
        """The list at ``items`` in ``doc``; :class:`ValueError` (naming ``label``) if there is none."""
        try:
            found = compile_path(self.items, field="items").find(doc)
        except Missing as exc:
            raise ValueError(f"{label}: items: {exc}") from None
        if not isinstance(found, list):
            raise ValueError(f"{label}: items: {self.items} is not a list")
        return found
