"""Ids of the records a process writes: UUID-shaped, fresh each time, different in a forked child."""

from __future__ import annotations

import os
import uuid

from whale.ids import unique_id


def test_ids_are_uuid_shaped_and_never_repeat() -> None:
    ids = [unique_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids[:100])


def test_a_forked_child_draws_its_own_prefix() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave without running anything else
        os.write(write, unique_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child[:24] != unique_id()[:24]
