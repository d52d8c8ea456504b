"""Run ids: one definition shared by the executor (which names its runs) and the event center (which
names the run a retry will start). A run id is a uuid5 of the run's state key ``<pool>/<idempotency
key>``: ``wf-...`` for workflow runs, ``act-...`` for action runs."""

from __future__ import annotations

import uuid

RUN_NAMESPACE = uuid.UUID("5f6c1d2e-8a3b-4c7d-9e0f-1a2b3c4d5e6f")


def run_id(kind: str, state_key: str) -> str:
    """The id of the ``kind`` (``workflow`` or ``action``) run recorded under ``state_key``."""
    return ("wf-" if kind == "workflow" else "act-") + str(uuid.uuid5(RUN_NAMESPACE, state_key))
