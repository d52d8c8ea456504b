"""The compacted-topic followers pause Python's garbage collector while catching up, counted."""

from __future__ import annotations

import gc

from whale.compacted import pause_gc, resume_gc


def test_the_collector_resumes_when_the_last_follower_pausing_it_has_caught_up() -> None:
    assert gc.isenabled()
    pause_gc()
    pause_gc()
    resume_gc()
    assert not gc.isenabled()  # another follower still catching up
    resume_gc()
    assert gc.isenabled()


def test_a_collector_turned_off_elsewhere_stays_off() -> None:
    gc.disable()
    try:
        pause_gc()
        resume_gc()
        assert not gc.isenabled()
    finally:
        gc.enable()
