"""Rules: every rule in force with its origin and versions; edit (YAML) with the API's validation
problems shown beside the text; explain every rule against a stored event.

Saving is ``PUT /rules/{id}`` with ``If-Match`` (the version the editor started from), so two people
editing at once get a clear "changed meanwhile" message instead of overwriting each other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import Response

from whale_console import backtest, rulebook, web
from whale_console.web import Visit

router = APIRouter()
NEW_RULE = """\
id: my-rule
description: what it does
enabled: true
match:
  all:
    - {field: type, equals: example.happened}
target: {kind: action, name: core.log}
params: {}
"""


def rules_dir(request: Request) -> Path | None:
    return web.settings_of(request).whale.rules_dir


async def current_book(visit: Visit, request: Request) -> rulebook.Book:
    body = await visit.api.get("/rules")
    return rulebook.book(body.get("rules", []), rules_dir(request))


def as_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(
        {k: v for k, v in rulebook.rule_fields(doc).items() if k != "version"},
        sort_keys=False,
        allow_unicode=True,
    )


@router.get("/rules", include_in_schema=False)
async def rules_page(request: Request, visit: web.Viewing) -> Response:
    found = await current_book(visit, request)
    context = {"title": "Rules", "book": found, "rules_dir": rules_dir(request)}
    return web.render(request, "rules.html", "rules", context, visit=visit)


@router.get("/rules/explain", include_in_schema=False)
async def explain_page(request: Request, visit: web.Viewing) -> Response:
    source = request.query_params.get("source", "").strip()
    event_id = request.query_params.get("id", "").strip()
    only = request.query_params.get("rule", "").strip()
    context: dict[str, Any] = {"title": "Explain", "source": source, "event_id": event_id, "rule": only}
    if source and event_id:
        answer = await visit.api.maybe(f"/events/{quote(source, safe='/')}/{quote(event_id, safe='')}")
        if not answer.ok:
            context["error"] = answer.message
        else:
            found = await current_book(visit, request)
            entries = [e for e in found.entries if not only or e.id == only]
            event, results, error = rulebook.explain(entries, answer.body.get("event"))
            context.update(event=event, results=results, error=error)
    return web.render(request, "explain.html", "rules", context, visit=visit)


@router.get("/rules/new", include_in_schema=False)
async def new_rule(request: Request, visit: web.Viewing) -> Response:
    context: dict[str, Any] = {
        "title": "New rule",
        "entry": None,
        "text": NEW_RULE,
        "versions": [],
        "problems": [],
        "rule_id": "",
    }
    return web.render(request, "rule.html", "rules", context, visit=visit)


@router.get("/rules/{rule_id}", include_in_schema=False)
async def rule_page(request: Request, rule_id: str, visit: web.Viewing) -> Response:
    found = await current_book(visit, request)
    entry = found.get(rule_id)
    if entry is None:
        await visit.api.get(f"/rules/{quote(rule_id, safe='')}")  # the API's own 404
        raise AssertionError("unreachable")  # pragma: no cover
    versions = await visit.api.maybe(f"/rules/{quote(rule_id, safe='')}/versions")
    context = {
        "title": f"Rule {rule_id}",
        "rule_id": rule_id,
        "entry": entry,
        "text": as_yaml(entry.document),
        "versions": versions.body.get("versions", []) if versions.ok else [],
        "problems": [],
        "windows": backtest.WINDOWS,
        "cap": backtest.CAP,
    }
    return web.render(request, "rule.html", "rules", context, visit=visit)


@router.post("/rules/save", include_in_schema=False)
async def save_rule(request: Request, visit: web.Acting) -> Response:
    form = web.form_of(request)
    text = form.get("text", "")
    base = form.get("version", "").strip()
    validate_only = form.get("intent") == "validate"
    problems: list[dict[str, str]] = []
    message, ok, doc = "", False, None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "text"
        problems.append({"field": where, "message": f"not YAML: {getattr(exc, 'problem', None) or exc}"})
    if doc is not None and not isinstance(doc, dict):
        problems.append({"field": "text", "message": "a rule is a YAML mapping (id, match, target, ...)"})
    rule_id = str(doc.get("id", "")).strip() if isinstance(doc, dict) else ""
    if isinstance(doc, dict) and not rule_id:
        problems.append({"field": "id", "message": "the rule needs an id"})
    if isinstance(doc, dict) and not problems:
        body = {k: v for k, v in doc.items() if k != "version"}
        if validate_only:
            answer = await visit.api.call("POST", "/rules/validate", json=body)
        else:
            headers = {"If-Match": base} if base.isdigit() else {}
            answer = await visit.api.call(
                "PUT", f"/rules/{quote(rule_id, safe='')}", json=body, headers=headers
            )
        ok = answer.ok
        if ok:
            saved = answer.body.get("rule", {}) if isinstance(answer.body, dict) else {}
            warnings = answer.body.get("warnings", []) if isinstance(answer.body, dict) else []
            verb = "valid" if validate_only else f"saved as version {saved.get('version')}"
            message = f"{rule_id}: {verb}" + (
                f" (warnings: {'; '.join(map(str, warnings))})" if warnings else ""
            )
            if not validate_only:
                base = str(saved.get("version", base))
        else:
            message = answer.message
            problems = answer.problems or [{"field": "rule", "message": answer.message}]
    context = {
        "title": f"Rule {rule_id or '(new)'}",
        "rule_id": rule_id,
        "entry": None,
        "text": text,
        "base_version": base,
        "versions": [],
        "problems": problems,
        "message": message or ("the rule was not sent" if problems else ""),
        "ok": ok and not problems,
    }
    status = 200 if ok or not problems else 400
    if web.is_htmx(request):
        return web.render(request, "_rule_editor.html", "rules", context, visit=visit, status=200)
    return web.render(request, "rule.html", "rules", context, visit=visit, status=status)
