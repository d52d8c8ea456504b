"""The console's pages in the order the menu shows them.

Approvals and runs are built by another track (their APIs, ``/approvals`` and ``/runs``, are being
added to the event center): their entries are here, ``ready=False`` keeps them out of the menu
until their pages exist (a view module each, like :mod:`whale_console.views.todos`).
"""

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
    Page("approvals", "Approvals", "/approvals", ready=False),  # next: the approvals API (#17)
    Page("runs", "Runs", "/runs", ready=False),  # next: the runs API (#17)
    Page("events", "Events", "/events"),
    Page("traces", "Trace", "/traces"),
    Page("rules", "Rules", "/rules"),
    Page("deadletters", "Dead letters", "/dead-letters"),
    Page("overview", "Overview", "/overview"),
    Page("catalog", "Catalogue", "/catalog"),
    Page("schemas", "Schemas", "/schemas"),
    Page("subscriptions", "Subscriptions", "/subscriptions"),
)
