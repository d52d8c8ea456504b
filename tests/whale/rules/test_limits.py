"""The template sandbox refuses resource exhaustion before it happens, with a reason that says which limit.

No assertion here measures time: each case asserts the refusal (error type and message), which the
sandbox raises *before* building the value or running the loop; pytest-timeout is only a safety net.
"""

from __future__ import annotations

import pytest

from whale.rules import limits
from whale.rules.templating import TemplateError, TemplateLimitError, budget, check, render, render_value

pytestmark = pytest.mark.timeout(60)

CTX = {"data": {"s": "a" * 26 + "!", "long": "a" * 5000, "n": 5_000_000_000, "nums": [1, 2, 3]}}

EXHAUSTION = [
    # (template, words in the refusal)
    ("{{ (7**6000000) % 10 }}", "power ('**') would have more than"),
    ("{{ 10 ** 100000 }}", "power ('**')"),
    ("{{ (2**8000) * (2**8000) * (2**8000) }}", "product ('*')"),
    ("{{ 'a' * 100000000 }}", "repetition ('*') would be larger than"),
    ("{{ 'x' * 10**9 }}", "repetition ('*')"),
    ("{{ [1, 2] * 10**9 }}", "repetition ('*')"),
    ("{{ 10**9 * 'x' }}", "repetition ('*')"),
    ("{{ ('a' * 200000) + ('a' * 200000) }}", "concatenation ('+')"),
    ("{{ range(10**9) | length }}", "range() larger than"),
    ("{% for i in range(10**100) %}{% endfor %}", "range() larger than"),
    ("{{ '%999999999d' % 1 }}", "% formatting would be larger than"),
    ("{{ '%*d' % (999999999, 1) }}", "'*' widths are not allowed"),
    ("{{ '%.999999999f' % 1.5 }}", "% formatting"),
    ("{{ '%999999999d' | format(1) }}", "% formatting"),
    ("{{ '{:>999999999}'.format(1) }}", "str.format would be larger than"),
    ("{{ '{:{w}}'.format(1, w=999999999) }}", "nested fields in format specs"),
    ("{{ '{a:>999999999}'.format_map({'a': 1}) }}", "str.format"),
    ("{{ 'x' | center(1000000000) }}", "filter center: argument 1000000000 is larger than"),
    ("{{ 'x'.ljust(1000000000) }}", "ljust(): argument 1000000000"),
    ("{{ 'x'.zfill(1000000000) }}", "zfill(): argument"),
    ("{{ (1).to_bytes(1000000000, 'big') }}", "to_bytes(): argument"),
    ("{{ ('\t' * 10000).expandtabs(10000) }}", "expandtabs() would be larger than"),
    ("{{ ('a' * 1000) | replace('', 'b' * 1000) }}", "replace would be larger than"),
    ("{{ ('a' * 1000).replace('', 'b' * 1000) }}", "replace() would be larger than"),
    ("{{ range(10000) | map('string') | join('x' * 1000) }}", "join would be larger than"),
    ("{{ ('x' * 1000).join(range(10000) | map('string')) }}", "join() would be larger than"),
    ("{{ ('\n' * 100000) | indent(1000) }}", "indent would be larger than"),
    ("{{ data.long | wordwrap(1, wrapstring='y' * 100000) }}", "wordwrap would be larger than"),
    ("{{ [1] | batch(1000000000, 'x') | list | length }}", "filter batch: argument"),
    ("{{ [1] | slice(1000000000) | list | length }}", "filter slice: argument"),
    ("{{ {}.fromkeys(range(10000), 'x' * 100000) | tojson }}", "the result of fromkeys() would be larger"),
    ("{{ dict(a=range(10000)|list, b=range(10000)|list, c='x' * 250000) }}", "the result of dict()"),
    ("{% set x = 'x' * 200000 %}{{ [x, x] | length }}", "a value would be larger than"),
    ("{% set x = 'x' * 200000 %}{{ (x ~ x) | length }}", "a value would be larger than"),
    (
        "{% macro f(x, n) %}{% if n %}{{ f([x, x, x], n - 1) }}{% else %}{{ x | tojson | length }}"
        "{% endif %}{% endmacro %}{{ f(1, 60) }}",
        "a value would be larger than",
    ),
    (
        "{% macro f(s, n) %}{% if n %}{{ f(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}"
        "{% endmacro %}{{ f('ab', 60) }}",
        "a value would be larger than",
    ),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "recursion too deep"),
    (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
        "steps",
    ),
    (
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        "more than 100000 steps",
    ),
    ("{% for c in data.long %}{% for d in data.long %}{% endfor %}{% endfor %}", "steps"),
    (
        "{% macro f() %}{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ f() | length }}",
        "render wrote more than",
    ),
    (
        "{% set big %}{% for i in range(10000) %}{{ 'y' * 200 }}{% endfor %}{% endset %}{{ big | length }}",
        "render wrote more than",
    ),
    ("{{ data.s | regex_search('(a)\\\\1') }}", "backreferences are not supported"),
    ("{{ data.s | regex_replace('(?=a)', 'b') }}", "lookahead and lookbehind are not supported"),
    ("{{ data.long | regex_replace('', 'x' * 100) }}", "regex_replace result would exceed"),
]


@pytest.mark.parametrize(("source", "words"), EXHAUSTION)
def test_resource_exhaustion_is_refused_before_it_happens(source: str, words: str) -> None:
    """Under a deadline far away, every case is stopped by a size or step limit, not by the clock."""
    with budget(timeout=600), pytest.raises(TemplateLimitError) as caught:
        render(source, CTX)
    assert words in str(caught.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ lipsum(100000) }}",
        "{{ cycler(1, 2).next() }}",
        "{{ joiner(',')() }}",
        "{{ namespace(a=1).a }}",
        "{% include 'x' %}",
    ],
)
def test_jinja_globals_that_build_or_load_are_not_available(source: str) -> None:
    with pytest.raises(TemplateError):
        render(source, CTX)


@pytest.mark.parametrize(
    ("pattern", "text"),
    [("(a+)+$", "a" * 26 + "!"), ("(a|a)*$", "a" * 5000 + "!"), ("(.*a){20}", "a" * 5000)],
)
def test_catastrophic_regexes_in_filters_answer_on_re2(pattern: str, text: str) -> None:
    """The finding: ``regex_replace('(a+)+$')`` on 26 characters blocked a worker 5.5 s on Python's
    backtracking engine. On RE2 it answers like any other pattern."""
    out = render(
        "{{ data.t | regex_replace(p, 'x') }}|{{ data.t | regex_search(p) is none }}",
        {"data": {"t": text}, "p": pattern},
    )
    assert out.endswith(("|True", "|False"))


def test_a_regex_filter_with_a_constant_refused_pattern_fails_validation() -> None:
    with pytest.raises(TemplateError, match=r"regex_search: .*backreferences are not supported"):
        check("{{ data.s | regex_search('(a)\\\\1') }}")
    check("{{ data.s | regex_search('(a+)+$') }}")


def test_an_exhausted_budget_stops_every_later_render_in_the_block() -> None:
    """A rule's templates share one budget: the cap is per rule, not per string."""
    with budget(timeout=60) as spent:
        spent.steps = 5
        with pytest.raises(TemplateLimitError, match="steps"):
            render_value(
                {"a": "{{ data.nums | join(',') }}", "b": "{% for i in range(10) %}{% endfor %}"}, CTX
            )


def test_a_render_past_its_deadline_fails_at_the_next_step() -> None:
    with budget(timeout=60) as spent:
        spent.deadline = 0.0  # the deadline has passed: the next step notices
        with pytest.raises(TemplateLimitError, match="render took longer than 60s"):
            render("{{ data.nums | length }}", CTX)


def test_ordinary_templates_still_render() -> None:
    """Formatting, big event numbers, loops over event data and regexes are untouched by the limits."""
    source = (
        "{{ data.s | regex_replace('(a)a', '\\\\1-') | truncate(9, True, '') }} {{ '%05d' % 42 }}"
        " {{ '{:>5}'.format(3) }} {{ 2 ** 64 }} {{ '%d bytes' | format(data.n) }} {{ data.n * 2 }}"
        " {% for i in data.nums %}{{ i }}{% endfor %} {{ [1, 2] * 2 }} {{ 'ab' ~ 'cd' }}"
    )
    assert (
        render(source, CTX)
        == f"a-a-a-a-a {'00042'}     3 {2**64} 5000000000 bytes 10000000000 123 [1, 2, 1, 2] abcd"
    )
    assert render_value({"n": "{{ data.n }}", "l": "{{ data.nums | list }}"}, CTX) == {
        "n": 5_000_000_000,
        "l": [1, 2, 3],
    }


def test_size_of_stops_counting_past_the_limit() -> None:
    """Shared references count each time, so a value built by doubling is seen at its printed size."""
    x: list[object] = [1]
    for _ in range(100):
        x = [x, x]
    assert limits.size_of(x, limit=1000) > 1000
    assert limits.size_of({"a": [1, "bc"]}) < 40
