"""Numbered slots: one live holder each, the first free one claimed, a released one claimed again."""

from __future__ import annotations

from pathlib import Path

import pytest

from whale.slots import claim_slot


def test_a_held_slot_is_skipped_and_a_released_one_is_claimed_again(tmp_path: Path) -> None:
    first, second = claim_slot(tmp_path), claim_slot(tmp_path)
    assert (first.path.name, second.path.name) == ("0", "1")
    first.release()
    again = claim_slot(tmp_path)
    assert again.path == first.path
    again.release()
    second.release()


def test_claiming_when_every_slot_is_held_names_the_directory(tmp_path: Path) -> None:
    held = [claim_slot(tmp_path, limit=2) for _ in range(2)]
    with pytest.raises(RuntimeError, match=r"all 2 slots of .* are held"):
        claim_slot(tmp_path, limit=2)
    for slot in held:
        slot.release()
