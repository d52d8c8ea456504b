"""Fixtures of the console's unit tests: the console app in front of :class:`FakeApi`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from whale_console.app import create_app
from whale_console.settings import Settings

from .fake_api import FakeApi


class NoCatalog:
    async def start(self, timeout: float = 60.0) -> None:
        return None

    def items(self) -> dict[str, Any]:
        return {"disk": {"description": "disk clean-up", "actions": {}}}


def console(api: FakeApi, **settings: Any) -> TestClient:
    built = Settings(session_secret=SecretStr("unit-test-secret"), **settings)
    return TestClient(
        create_app(built, transport=api.transport(), catalog=NoCatalog()), follow_redirects=False
    )


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def client(api: FakeApi) -> Iterator[TestClient]:
    with console(api) as found:
        yield found


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(client: TestClient, token: str, next_: str = "/todos") -> None:
    page = client.get(f"/login?next={next_}")
    answer = client.post("/login", data={"token": token, "csrf": csrf_of(page.text), "next": next_})
    assert answer.status_code == 303, answer.text
