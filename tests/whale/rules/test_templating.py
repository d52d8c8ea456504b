"""The sandboxed template DSL: strict, bounded, and safe against template injection."""

from __future__ import annotations

import pytest

from whale.rules.templating import TemplateError, check, referenced_names, render, render_value

CTX = {"data": {"labels": {"instance": "web-1"}, "value": 91.5, "nums": [1, 2]}, "subject": "fp1"}

# Known server-side template-injection payloads (Jinja2 family).
SSTI_PAYLOADS = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ config.items() }}",
    "{{ self.__init__.__globals__.__builtins__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ request.application.__globals__.__builtins__.__import__('os') }}",
    "{{ data.__class__.__base__.__subclasses__() }}",
    "{{ '{0.__class__}'.format(data) }}",
    "{{ 'a'|attr('__class__') }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ namespace.__init__.__globals__ }}",
    "{% set x = data.update({'a': 1}) %}{{ x }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
    "{% import 'os' as os %}{{ os }}",
    "{% include '/etc/passwd' %}",
]


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_injection_payloads_fail_safely(payload: str) -> None:
    with pytest.raises(TemplateError):
        render(payload, CTX)


def test_missing_field_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(TemplateError, match="missing"):
        render("{{ data.missing }}", CTX)


def test_filters() -> None:
    assert render("{{ data.labels.instance | upper }}", CTX) == "WEB-1"
    assert render("{{ data.nope | default('x') }}", CTX) == "x"
    assert render("{{ data.labels | tojson }}", CTX) == '{"instance":"web-1"}'
    assert render("{{ data.labels.instance | regex_replace('-\\\\d+$', '') }}", CTX) == "web"


def test_output_size_and_range_are_bounded() -> None:
    with pytest.raises(TemplateError, match="exceeds"):
        render("{% for i in range(10000) %}xxxxxxxxxx{% endfor %}", CTX, max_output=1000)
    with pytest.raises(TemplateError, match="range"):
        render("{% for i in range(10**9) %}{% endfor %}", CTX)


def test_render_time_is_bounded() -> None:
    slow = "{% for i in range(10000) %}{% for j in range(10000) %}{{ data.value }}{% endfor %}{% endfor %}"
    with pytest.raises(TemplateError, match=r"longer than|exceeds|steps"):  # whichever budget ends first
        render(slow, CTX, timeout=0.2, max_output=10**9)


def test_render_value_keeps_native_types_and_names_the_failing_path() -> None:
    out = render_value({"n": "{{ data.value }}", "l": ["{{ data.nums }}"], "s": "host {{ subject }}"}, CTX)
    assert out == {"n": 91.5, "l": [[1, 2]], "s": "host fp1"}
    with pytest.raises(TemplateError) as err:
        render_value({"a": {"b": "{{ data.nope }}"}}, CTX)
    assert err.value.field == "a.b"


def test_syntax_errors_and_referenced_names() -> None:
    with pytest.raises(TemplateError, match="syntax"):
        check("{{ data.x ")
    assert referenced_names("{{ data.labels.instance }}-{{ subject }}") == {"data.labels.instance"}
