"""Rule ``regex`` and template regex filters run on RE2: linear time, refused patterns named clearly."""

from __future__ import annotations

from typing import Any

import pytest

from whale.rules import regex
from whale.rules.matching import compile_match
from whale.rules.model import RuleError, validate_rule

pytestmark = pytest.mark.timeout(30)  # a safety net only: RE2 has no backtracking to wait for

# Catastrophic patterns for a backtracking engine, each with an input that would take it years.
REDOS = [
    ("(a+)+$", "a" * 26 + "!"),
    ("^(a+)+$", "a" * 5000 + "!"),
    ("(a|a)*$", "a" * 5000 + "!"),
    ("(a|aa)+$", "a" * 5000 + "!"),
    ("(.*a){20}", "a" * 5000),
    ("(\\w+\\s?)*$", "word " * 1000 + "!"),
    ("^(([a-z])+.)+[A-Z]([a-z])+$", "a" * 5000),
    ("(x+x+)+y", "x" * 5000),
    ("^(\\d+)*$", "1" * 5000 + "z"),
]


@pytest.mark.parametrize(("pattern", "text"), REDOS)
def test_catastrophic_patterns_run_on_re2_and_answer(pattern: str, text: str) -> None:
    """Nested quantifiers and ambiguous alternations are accepted and run on RE2, which has no
    backtracking: the search answers (linear in the text) instead of exploring 2^n paths."""
    compiled = regex.compile(pattern)
    compiled.search(text)
    assert isinstance(compiled, regex.Pattern)


@pytest.mark.parametrize(("pattern", "text"), REDOS)
def test_rule_regex_on_sender_data_uses_re2(pattern: str, text: str) -> None:
    """A rule ``regex`` leaf on a sender-controlled field compiles to the RE2 engine."""
    condition = compile_match({"field": "data.name", "regex": pattern})
    assert condition.evaluate({"data": {"name": text}}) in (True, False)


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("(a)\\1", "backreferences are not supported"),
        ("(?=a)b", "lookahead and lookbehind are not supported"),
        ("(?<!a)b", "lookahead and lookbehind are not supported"),
        ("a{2000}", "at most {1000} repetitions"),
        ("((a{100}){100}){100}", "repetition"),
        ("(", "missing )"),
        ("x" * (regex.MAX_PATTERN + 1), "longer than"),
    ],
)
def test_patterns_re2_cannot_run_in_linear_time_are_refused(pattern: str, words: str) -> None:
    with pytest.raises(regex.RegexError) as caught:
        regex.compile(pattern)
    assert words in str(caught.value)


def test_a_rule_with_a_backreference_is_refused_naming_the_field() -> None:
    doc: dict[str, Any] = {
        "id": "r1",
        "match": {"all": [{"field": "type", "equals": "x"}, {"field": "data.a", "regex": "(a)\\1"}]},
        "target": {"kind": "action", "name": "noop"},
    }
    with pytest.raises(RuleError) as caught:
        validate_rule(doc)
    problem = caught.value.problems[0]
    assert problem["field"] == "match.all[1].regex"
    assert "backreferences are not supported" in problem["message"]


def test_sub_expands_groups_and_escapes() -> None:
    pattern = regex.compile(r"(\w+)@(?P<host>\w+)")
    assert pattern.sub(r"\2 at \1 (\g<host>)\t!", "joe@box é") == "box at joe (box)\t! é"
    assert regex.compile("").sub("-", "ab") == "-a-b-"
    assert regex.compile("b").sub("", "abcb", count=1) == "acb"


def test_sub_refuses_a_result_past_max_size_before_building_it() -> None:
    with pytest.raises(ValueError, match="exceed 1000 characters"):
        regex.compile("").sub("x" * 100, "a" * 100, max_size=1000)


def test_search_groups() -> None:
    found = regex.compile("b(.)").search("abc")
    assert found is not None and found.group() == "bc" and found.group(1) == "c"
    assert regex.compile("z").search("abc") is None


def test_a_template_with_a_constant_lookaround_pattern_is_refused_naming_the_param() -> None:
    doc: dict[str, Any] = {
        "id": "r1",
        "match": {"field": "type", "equals": "x"},
        "target": {"kind": "action", "name": "noop"},
        "params": {"t": "{{ data.a | regex_replace('(?<=a)b', 'c') }}"},
    }
    with pytest.raises(RuleError) as caught:
        validate_rule(doc)
    problem = caught.value.problems[0]
    assert problem["field"] == "params.t"
    assert "regex_replace" in problem["message"] and "lookahead and lookbehind" in problem["message"]
