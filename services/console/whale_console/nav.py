"""The console's pages in the order the menu shows them (``ready=False`` keeps one out of the menu)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Page:
    key: str
    title: str
    path: str
    ready: bool = True


NAV: tuple[Page, ...] = (
    Page("todos", "To-dos", "/todos"),
    Page("approvals", "Approvals", "/approvals"),
    Page("runs", "Runs", "/runs"),
    Page("events", "Events", "/events"),
    Page("traces", "Trace", "/traces"),
    Page("rules", "Rules", "/rules"),
    Page("deadletters", "Dead letters", "/dead-letters"),
    Page("overview", "Overview", "/overview"),
    Page("catalog", "Catalogue", "/catalog"),
    Page("schemas", "Schemas", "/schemas"),
    Page("subscriptions", "Subscriptions", "/subscriptions"),
)
