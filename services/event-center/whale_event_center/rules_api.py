"""The ``/rules`` API (stub: the rule-engine engineer replaces this module with the real router)."""

from __future__ import annotations

from fastapi import APIRouter

from whale.compacted import CompactedView
from whale.producer import EventProducer


def build_router(
    producer: EventProducer, rules: CompactedView, catalog: CompactedView, schemas: CompactedView
) -> APIRouter:
    """An empty router until the rules API exists."""
    return APIRouter()
