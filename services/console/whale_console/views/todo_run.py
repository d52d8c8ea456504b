"""Run a catalogued action or workflow from a to-do: choose it, fill its params, see the run.

The choices are the executors' catalogue (``whale.catalog``, as the catalogue page reads it); the
params form is drawn from the entry's ``params_schema`` (:mod:`whale_console.schema_form`, fields
named ``params.<property>``). The run is ``POST /actions/{name}/run`` as the signed-in person with
the to-do's latest event as its ``cause`` (so the run joins that event's chain); the API checks the
params (400, shown beside each field), the role (403) and the name (404), shown in place; 202 shows
the run id linked to the run's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale.errors import WhaleError
from whale_console import schema_form, web
from whale_console.views.browse import Catalogue

router = APIRouter()
PREFIX = "params."
JSON_FIELD = "params_json"


@dataclass(frozen=True, slots=True)
class Choice:
    """One catalogued action or workflow, offered by one pool."""

    kind: str
    pool: str
    name: str
    description: str
    schema: Any

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.pool}:{self.name}"


def choices_of(entries: dict[str, Any]) -> list[Choice]:
    """Every action and workflow of every pool's catalogue, by name."""
    out = []
    for pool, doc in entries.items():
        if not isinstance(doc, dict):
            continue
        for kind, listed in (("action", doc.get("actions")), ("workflow", doc.get("workflows"))):
            for entry in listed if isinstance(listed, list) else []:
                if isinstance(entry, dict) and entry.get("name"):
                    out.append(
                        Choice(
                            kind,
                            str(pool),
                            str(entry["name"]),
                            str(entry.get("description") or ""),
                            entry.get("params_schema"),
                        )
                    )
    return sorted(out, key=lambda c: (c.name, c.pool, c.kind))


def cause_of(item: dict[str, Any]) -> str | None:
    """The id of the to-do's latest event (its first when it names no latest)."""
    for ref in (item.get("last_event"), item.get("first_event")):
        if isinstance(ref, dict) and ref.get("id"):
            return str(ref["id"])
    return None


async def offer(
    request: Request, visit: web.Visit, item: dict[str, Any], chosen: str, **extra: Any
) -> dict[str, Any]:
    """The context of a to-do's "Run an action" section."""
    book: Catalogue = web.state(request).catalogue
    try:
        found, error = choices_of(await book.entries()), ""
    except WhaleError as exc:  # Kafka unreachable: the section says so, the page works
        found, error = [], f"the catalogue could not be read: {type(exc).__name__}: {exc}"
    choice = next((c for c in found if c.key == chosen), None)
    fields = schema_form.fields_of(choice.schema, PREFIX) if choice else None
    return {
        "choices": found,
        "choice": choice,
        "catalog_error": error,
        "run_fields": fields,
        "run_values": {},
        "run_field_problems": {},
        "run_problems": [],
        "run_message": "",
        "run_ok": True,
        "run_id": None,
        "run_cause": cause_of(item),
        "run_why_not": "" if visit.may("operator") else "needs the operator role",
        **extra,
    }


def _params(choice: Choice, form: dict[str, str]) -> tuple[Any, str | None]:
    schema = choice.schema if isinstance(choice.schema, dict) and choice.schema else {}
    if schema_form.fields_of(schema, PREFIX) is None and not form.get(JSON_FIELD, "").strip():
        return {}, None
    return schema_form.response_of(schema, form, PREFIX, JSON_FIELD)


@router.post("/todos/{todo_id}/run", include_in_schema=False)
async def run_from_todo(request: Request, todo_id: str, visit: web.Acting) -> Response:
    form = web.form_of(request)
    item = await visit.api.get(f"/todos/{quote(todo_id, safe='')}")
    chosen = form.get("target", "")
    values = {k: v for k, v in form.items() if k.startswith(PREFIX) or k == JSON_FIELD}
    shown = await offer(request, visit, item, chosen, run_values=values)
    choice: Choice | None = shown["choice"]
    status = 200
    if choice is None:
        shown.update(
            run_message=f"choose a catalogued action or workflow ({chosen!r} is not one)", run_ok=False
        )
        status = 400
    else:
        params, bad_json = _params(choice, form)
        if bad_json:
            shown.update(run_message=bad_json, run_ok=False, run_field_problems={JSON_FIELD: bad_json})
            status = 400
        else:
            body = {"params": params, "cause": shown["run_cause"], "pool": choice.pool, "kind": choice.kind}
            answer = await visit.api.call("POST", f"/actions/{quote(choice.name, safe='')}/run", json=body)
            if answer.ok:
                run_id = web.as_dict(answer.body).get("run_id")
                shown.update(run_message=f"{choice.name} requested as {visit.session.name}", run_id=run_id)
            else:
                by_field, rest = schema_form.problems_by_field(answer.problems, PREFIX)
                fields = shown["run_fields"]
                if fields is None:  # the JSON box holds every param
                    by_field = (
                        {JSON_FIELD: "; ".join(f"{k}: {v}" for k, v in by_field.items())} if by_field else {}
                    )
                else:
                    inputs = {f.input_name for f in fields}
                    rest += [{"field": k, "message": v} for k, v in by_field.items() if k not in inputs]
                    by_field = {k: v for k, v in by_field.items() if k in inputs}
                shown.update(
                    run_message=answer.message, run_ok=False, run_field_problems=by_field, run_problems=rest
                )
                status = answer.status if answer.status in (400, 403, 404, 409) else 502
    if web.is_htmx(request):  # htmx swaps 2xx only: the section comes back 200 with the refusal in it
        return web.render(request, "_todo_run.html", "todos", {"item": item, **shown}, visit=visit)
    context = {"title": item.get("title"), "item": item, **shown}
    return web.render(request, "todo.html", "todos", context, visit=visit, status=status)
