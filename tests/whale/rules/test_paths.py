"""JSON field paths: parsing, resolving, compiled getters and the event context."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.whale.rules.helpers import CTX
from whale.cloudevent import CloudEvent
from whale.rules.matching import matches
from whale.rules.paths import event_context, getter, parse_path, resolve


def test_paths_parse_indexes_and_quoted_keys() -> None:
    """Dotted paths with [n] indexes and ["quoted.keys"]."""
    assert parse_path('data.alerts[0].labels["a.b"]') == ("data", "alerts", 0, "labels", "a.b")
    assert resolve(CTX, parse_path("data.alerts[0].labels.instance")) == "web-1"
    with pytest.raises(ValueError):
        parse_path("data.")


def test_event_context_exposes_attributes_extensions_and_data() -> None:
    """Rules see attributes, extensions at top level, RFC 3339 time and data."""
    event = CloudEvent.create(type="t.x", source="s", data={"v": 1}, severity="high")
    ctx = event_context(event)
    assert ctx["type"] == "t.x" and ctx["severity"] == "high" and ctx["data"] == {"v": 1}
    assert matches({"field": "time", "greater": "2020-01-01T00:00:00Z"}, ctx)


_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2, 2), st.sampled_from(["a", "b"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3).map(MappingProxyType),
    ),
    max_leaves=8,
)
_path = st.lists(
    st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 2)), min_size=1, max_size=4
).filter(lambda p: isinstance(p[0], str))


@settings(max_examples=300, deadline=None)
@given(ctx=_json, path=_path)
def test_compiled_getters_resolve_like_resolve(ctx: Any, path: list[str | int]) -> None:
    """The compiled getter of a path (the fast path for plain dicts) finds what resolve finds."""
    assert getter(tuple(path))(ctx) is resolve(ctx, tuple(path))
