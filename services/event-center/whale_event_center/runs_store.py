"""The event center's view of ``whale.executor.state`` on disk: a :class:`~whale.store.LocalStore`
laid out for what ``/runs`` and ``/approvals`` list, so a listing reads only what it returns.

Layout (state key = the topic's key, e.g. ``<pool>/<idempotency key>``):

* ``d`` + state key -> the record, as the JSON the executor wrote (runs and answers alike);
* ``r`` + run id -> the state key of the run;
* ``t`` + newest-first(started_at) + run id -> the run's summary (JSON), every run newest first;
* ``s`` + state + ``0x00`` + newest-first(started_at) + run id -> the summary, per state;
* ``p`` + since + ``0x00`` + run id + ``0x00`` + task -> the approval (JSON), pending ones oldest first;
* ``n`` + JSON ``[state, kind, name, pool]`` (``0`` for any) -> how many runs have them (``total``
  of a listing without counting its entries);
* ``x`` + state key -> what the run's record put in ``t``, ``s``, ``p`` and ``n`` (to take it back
  when the record, or an answer about it, changes).

``started_at`` and ``since`` are ordered as the RFC 3339 text the APIs show (what the in-memory
listing sorted by); newest first inverts the text's bytes and ends it with ``0xff`` (a text before
the texts it is the beginning of); runs started at the same time follow by run id. A summary depends
on the run's pause record, a pending approval on the run and its answer: every change of one of them
recomputes the run's entries.
"""

from __future__ import annotations

import functools
import heapq
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from whale.store import Batch, LocalStore
from whale_event_center.runs_view import ANSWER_KINDS, RUN_KINDS, RunBook, RunFilter, approval_tasks

DATA = b"d"
RUN = b"r"
NEWEST = b"t"
BY_STATE = b"s"
PENDING = b"p"
COUNT = b"n"
DERIVED = b"x"
ANY = 0  # a counter's wildcard (the counted fields are text or null)
_INVERT = bytes(255 - b for b in range(256))
Reader = Batch | LocalStore


def newest_first(text: str) -> bytes:
    """A key part that orders ``text`` descending (byte-wise, as str sorts RFC 3339 times)."""
    return text.encode().translate(_INVERT) + b"\xff"


def state_prefix(state: str) -> bytes:
    return BY_STATE + state.encode() + b"\x00"


def count_key(state: Any, kind: Any, name: Any, pool: Any) -> bytes:
    return COUNT + json.dumps([state, kind, name, pool]).encode()


def dims_of(summary: Mapping[str, Any]) -> tuple[str | None, ...]:
    """What a listing filters on (a value that is not text never matches a query: null)."""
    fields = (summary.get(f) for f in ("state", "kind", "name", "pool"))
    return tuple(v if isinstance(v, str) else None for v in fields)


@functools.lru_cache(maxsize=4096)
def counter_keys(dims: tuple[str | None, ...]) -> tuple[bytes, ...]:
    """The 16 counters a run with ``dims`` is counted in (each field its value, or any)."""
    return tuple(
        count_key(*(value if mask & (1 << i) else ANY for i, value in enumerate(dims))) for mask in range(16)
    )


def load(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        found = json.loads(raw)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


class StoredBook(RunBook):
    """The runs and answers as ``reader`` (the store, or a batch staged over it) holds them."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader

    def get(self, run_id: str) -> dict[str, Any] | None:
        key = self._reader.get(RUN + run_id.encode())
        run = load(self._reader.get(DATA + key)) if key is not None else None
        return run if run is not None and run.get("run_id") == run_id else None

    def record(self, key: str) -> Mapping[str, Any] | None:
        found = load(self._reader.get(DATA + key.encode()))
        return found if found is not None and found.get("kind") in ANSWER_KINDS else None

    def runs_page(self, wanted: RunFilter, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        assert isinstance(self._reader, LocalStore)
        store = self._reader
        states = wanted.states()
        prefixes = [NEWEST] if states is None else [state_prefix(s) for s in states]
        streams = [_suffixes(store, p) for p in prefixes]
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda kv: kv[0])
        out: list[dict[str, Any]] = []
        skipped = 0
        for _, raw in merged:
            if len(out) >= limit:
                break
            summary = json.loads(raw) if wanted.extra() or skipped >= offset else None
            if summary is not None and not wanted.matches(summary):
                continue
            if skipped < offset:
                skipped += 1
                continue
            assert summary is not None
            out.append(summary)
        return out, self.total(wanted)

    def total(self, wanted: RunFilter) -> int:
        """How many runs ``wanted`` selects (from the counters)."""
        extra = [ANY if v is None else v for v in (wanted.kind, wanted.name, wanted.pool)]
        keys = [count_key(s, *extra) for s in (wanted.states() or (ANY,))]
        return sum(int(self._reader.get(k) or b"0") for k in keys)

    def approvals(self) -> list[dict[str, Any]]:
        assert isinstance(self._reader, LocalStore)
        return [json.loads(raw) for _, raw in self._reader.items(PENDING)]


def _suffixes(store: LocalStore, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(the entry's key after ``prefix``, its value) in key order."""
    for key, value in store.items(prefix):
        yield key[len(prefix) :], value


def apply(batch: Batch, key: str, value: bytes | None, record: dict[str, Any] | None) -> None:
    """Stage the record ``value`` (decoded: ``record``) of state key ``key``, None: its tombstone,
    and the entries that follow from it (its run's, when it is an answer)."""
    raw_key = key.encode()
    old = load(batch.get(DATA + raw_key)) if value is None else None
    if value is None:
        batch.delete(DATA + raw_key)
    else:
        batch.put(DATA + raw_key, value)
    about = record if value is not None else old
    kind = about.get("kind") if about is not None else None
    run_id = about.get("run_id") if about is not None else None
    if value is not None and record is not None and kind in RUN_KINDS and isinstance(run_id, str):
        listed = batch.get(RUN + run_id.encode())
        if listed is not None and listed != raw_key:  # one run id, two keys: the latest is listed
            unindex(batch, listed.decode())
        batch.put(RUN + run_id.encode(), raw_key)
        index(batch, key, record)
        return
    unindex(batch, key)  # (no longer) a run: its entries, if it had any, go
    if kind in ANSWER_KINDS and isinstance(run_id, str):
        run_key = batch.get(RUN + run_id.encode())
        run = load(batch.get(DATA + run_key)) if run_key is not None else None
        if run_key is not None and run is not None:
            index(batch, run_key.decode(), run)


def index(batch: Batch, key: str, run: dict[str, Any]) -> None:
    """Stage the listing entries of run ``run`` (state key ``key``) in place of its previous ones."""
    book = StoredBook(batch)
    run_id = str(run["run_id"]).encode()
    summary = book.summary(run)
    shown = json.dumps(summary).encode()
    at = newest_first(str(summary["started_at"] or "")) + run_id
    entries = {NEWEST + at: shown, state_prefix(str(summary["state"])) + at: shown}
    for name in approval_tasks(run):
        approval = book.approval(run, name)
        if approval["status"] == "pending":
            since = str(approval["since"] or "").encode()
            entries[PENDING + since + b"\x00" + run_id + b"\x00" + name.encode()] = json.dumps(
                approval
            ).encode()
    dims = dims_of(summary)
    _replace(batch, key, entries, dims)
    derived = {"run_id": run["run_id"], "keys": [k.hex() for k in entries], "dims": dims}
    batch.put(DERIVED + key.encode(), json.dumps(derived).encode())


def unindex(batch: Batch, key: str) -> None:
    """Stage the removal of the entries of the run recorded at ``key`` (none: nothing)."""
    old = _replace(batch, key, {}, None)
    if not old:
        return
    batch.delete(DERIVED + key.encode())
    run_id = old.get("run_id")
    if isinstance(run_id, str) and batch.get(RUN + run_id.encode()) == key.encode():
        batch.delete(RUN + run_id.encode())


def _replace(
    batch: Batch, key: str, entries: dict[bytes, bytes], dims: tuple[str | None, ...] | None
) -> dict[str, Any]:
    """Put ``entries`` and count ``dims`` instead of what the run at ``key`` had; returns what it had."""
    old = load(batch.get(DERIVED + key.encode())) or {}
    for stale in old.get("keys", []):
        if bytes.fromhex(stale) not in entries:
            batch.delete(bytes.fromhex(stale))
    for entry, shown in entries.items():
        batch.put(entry, shown)
    before = tuple(old["dims"]) if old.get("dims") is not None else None
    if before == dims:
        return old
    change: Counter[bytes] = Counter()
    if before is not None:
        change.subtract(counter_keys(before))
    if dims is not None:
        change.update(counter_keys(dims))
    for counter, delta in change.items():
        if delta:
            now = int(batch.get(counter) or b"0") + delta
            if now > 0:
                batch.put(counter, str(now).encode())
            else:
                batch.delete(counter)
    return old
