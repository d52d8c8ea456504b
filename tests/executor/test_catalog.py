"""Loading the catalogue: examples load, workflow validation names file and task."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from whale_executor.catalog import load_catalog
from whale_executor.errors import CatalogError

EXAMPLES = Path(__file__).parents[2] / "examples" / "executor"


def test_examples_load_and_describe_every_action_with_schema() -> None:
    catalog = load_catalog(pool="default", dirs=[EXAMPLES])
    doc = catalog.describe()
    names = {a["name"]: a for a in doc["actions"]}
    assert {"core.noop", "core.echo", "host.disk-usage", "tickets.create", "notify.oncall-wecom"} <= set(
        names
    )
    assert names["host.disk-usage"]["kind"] == "shell" and names["host.disk-usage"]["idempotent"] is True
    assert names["tickets.create"]["params_schema"]["required"] == ["api", "title"]
    assert names["host.remote-logs-clean"]["kind"] == names["host.remote-health"]["kind"] == "ssh"
    assert names["core.echo"]["params_schema"]["required"] == ["message"]
    assert [w["name"] for w in doc["workflows"]] == ["host.cleanup-with-approval", "host.restart-fleet"]
    assert names["host.restart-unit"]["kind"] == "ansible"  # its playbook (a YAML list) is skipped
    schema = json.loads((EXAMPLES.parents[1] / "schemas/events/whale.catalog.published.json").read_text())
    Draft202012Validator(schema).validate(doc)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def load_workflow(tmp_path: Path, text: str) -> None:
    write(tmp_path, "wf.yaml", "kind: workflow\nname: wf\n" + textwrap.dedent(text))
    load_catalog(pool="t", dirs=[tmp_path])


def test_unknown_action_is_named_with_file_and_task(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"wf.yaml: task 'a': unknown action 'nope.nothing'"):
        load_workflow(tmp_path, "tasks:\n  a: {action: nope.nothing}\n")


def test_missing_task_in_a_transition(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"task 'a': next\[0\].do names a missing task 'b'"):
        load_workflow(tmp_path, "tasks:\n  a: {action: core.noop, next: [{do: b}]}\n")


def test_unreachable_task(tmp_path: Path) -> None:
    text = """
    start: a
    tasks:
      a: {action: core.noop}
      b: {action: core.noop, next: [{do: c}]}
      c: {action: core.noop, next: [{do: b}]}
    """
    with pytest.raises(CatalogError, match=r"wf.yaml: task 'b' is unreachable"):
        load_workflow(tmp_path, text)


def test_cycle_without_exit_is_rejected_but_a_conditional_loop_is_fine(tmp_path: Path) -> None:
    trapped = """
    tasks:
      a: {action: core.noop, next: [{do: b}]}
      b: {action: core.noop, next: [{on: always, do: c}]}
      c: {action: core.noop, next: [{on: always, do: b}]}
    """
    with pytest.raises(CatalogError, match=r"tasks 'b', 'c' form a cycle with no exit"):
        load_workflow(tmp_path, trapped)
    looping = """
    tasks:
      a: {action: core.noop, next: [{do: b}]}
      b: {action: core.noop, next: [{on: always, do: c}]}
      c: {action: core.noop, next: [{on: always, when: "{{ tasks.c.status != 'succeeded' }}", do: b}]}
    """
    load_workflow(tmp_path, looping)


def test_template_referring_to_a_task_that_cannot_have_run_yet(tmp_path: Path) -> None:
    text = """
    tasks:
      a: {action: core.noop, next: [{do: [b, c]}]}
      b: {action: core.echo, input: {message: "{{ tasks.c.output }}"}}
      c: {action: core.noop}
    """
    with pytest.raises(
        CatalogError, match=r"task 'b': input: refers to task 'c', which cannot have run before it"
    ):
        load_workflow(tmp_path, text)


def test_template_referring_to_a_missing_task_or_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"output: refers to a missing task 'zz'"):
        load_workflow(tmp_path, "tasks:\n  a: {action: core.noop}\noutput: {x: '{{ tasks.zz.output }}'}\n")
    with pytest.raises(CatalogError, match=r"task 'a': input: unknown name 'params'"):
        load_workflow(tmp_path, "tasks:\n  a: {action: core.echo, input: {message: '{{ params.x }}'}}\n")


def test_join_needs_enough_inbound_tasks(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match=r"task 'b': join 2 but only 1 task"):
        load_workflow(
            tmp_path, "tasks:\n  a: {action: core.noop, next: [{do: b}]}\n  b: {action: core.noop, join: 2}\n"
        )


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    write(tmp_path, "bad.yaml", "kind: shell\nname: [unclosed\n")
    with pytest.raises(CatalogError, match=r"bad.yaml: not valid YAML at line"):
        load_catalog(pool="t", dirs=[tmp_path])


def test_duplicate_names_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "kind: shell\nname: core.noop\nargv: ['true']\n")
    with pytest.raises(CatalogError, match=r"a.yaml: name: 'core.noop' is already defined"):
        load_catalog(pool="t", dirs=[tmp_path])


def test_python_action_by_module_path(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "kind: python\ncallable: whale_executor.builtin:sleep\n")
    catalog = load_catalog(pool="t", dirs=[tmp_path], use_entry_points=False)
    assert list(catalog.actions) == ["core.sleep"]
    catalog = load_catalog(pool="t", modules=["whale_executor.builtin"], use_entry_points=False)
    assert "core.fail" in catalog.actions


def test_whale_actions_validate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from whale.cli import main

    assert main(["actions", "validate", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out.startswith("ok: ")
    write(tmp_path, "wf.yaml", "kind: workflow\nname: wf\ntasks:\n  a: {action: nope}\n")
    assert main(["actions", "validate", str(tmp_path)]) == 2
    assert "task 'a': unknown action 'nope'" in capsys.readouterr().err
