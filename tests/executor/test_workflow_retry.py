"""A retried run starts from the failed (and unfinished) tasks with the succeeded ones carried over;
approval tasks declare who may answer and the response's schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from whale_executor.catalog import load_catalog
from whale_executor.errors import CatalogError, RunError
from whale_executor.workflow import retry

WORKFLOW = """
kind: workflow
name: wf
tasks:
  a: {action: core.echo, next: [{do: b}]}
  b: {action: core.echo, next: [{do: c}]}
  c: {type: approval, approvers: {role: admin, people: [ann]}, response_schema: {type: object}}
"""


def catalog(tmp_path: Path, text: str) -> Any:
    (tmp_path / "wf.yaml").write_text(text)
    return load_catalog(pool="p", dirs=[tmp_path])


def new_state() -> dict[str, Any]:
    return {"workflow": "wf", "input": {}, "tasks": {}, "joins": {}}


def test_a_retry_reuses_succeeded_tasks_and_restarts_failed_and_unfinished_ones(tmp_path: Path) -> None:
    wf = catalog(tmp_path, WORKFLOW).workflows["wf"]
    old = {
        "kind": "workflow", "workflow": "wf", "input": {"x": 1}, "joins": {},
        "tasks": {"a": {"status": "succeeded", "output": 1}, "b": {"status": "failed"}},
        "failures": [{"task": "b", "error": {"message": "boom"}}],
    }  # fmt: skip
    state = new_state()
    retry.carry_over(state, old, "wf-old")
    assert state["input"] == {"x": 1} and state["retry_of"] == "wf-old"
    assert state["tasks"] == {"a": {"status": "succeeded", "output": 1, "reused_from": "wf-old"}}
    assert retry.restart_tasks(state, wf) == ["b"]
    assert retry.restart_tasks(new_state(), wf) == ["a"]  # not a retry: the start tasks


def test_a_retry_of_an_unknown_run_fails_the_new_run(tmp_path: Path) -> None:
    wf = catalog(tmp_path, WORKFLOW).workflows["wf"]
    state = new_state()
    retry.carry_over(state, None, "wf-gone")
    with pytest.raises(RunError, match="unknown to this pool"):
        retry.restart_tasks(state, wf)


def test_approval_tasks_keep_their_approvers_and_response_schema(tmp_path: Path) -> None:
    task = catalog(tmp_path, WORKFLOW).workflows["wf"].tasks["c"]
    assert task.approvers == {"role": "admin", "people": ["ann"]} and task.response_schema == {
        "type": "object"
    }


@pytest.mark.parametrize(
    ("fragment", "message"),
    [
        ("approvers: {role: boss}", "approvers.role must be"),
        ("approvers: {team: a}", "approvers takes role and/or people"),
        ("response_schema: {type: 12}", "response_schema is not a JSON Schema"),
    ],
)
def test_bad_approval_policies_are_refused_on_load(tmp_path: Path, fragment: str, message: str) -> None:
    text = WORKFLOW.replace(
        "approvers: {role: admin, people: [ann]}, response_schema: {type: object}", fragment
    )
    with pytest.raises(CatalogError, match=message):
        catalog(tmp_path, text)


def test_only_approval_tasks_take_approvers(tmp_path: Path) -> None:
    text = WORKFLOW.replace("a: {action: core.echo,", "a: {action: core.echo, approvers: {role: admin},")
    with pytest.raises(CatalogError, match="only goes with type: approval"):
        catalog(tmp_path, text)
