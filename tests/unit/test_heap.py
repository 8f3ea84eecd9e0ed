"""Garbage collection for our processes (shared/heap.py) and the audit's row comparison."""

import gc

import pytest

from taskjournal.shared import heap
from taskjournal.shared.store.audit import _same_rows


@pytest.fixture
def gc_state():
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    (gc.enable if enabled else gc.disable)()


def test_a_settled_process_keeps_what_start_up_made_apart_and_collects_young_objects_less_often(gc_state):
    made_at_start_up = [[] for _ in range(100)]
    heap.settle()
    assert gc.get_freeze_count() >= len(made_at_start_up)
    assert gc.get_threshold()[0] == heap.YOUNG


def test_collection_is_paused_for_a_batch_job_then_as_it_was(gc_state):
    with heap.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    with heap.paused():
        pass
    assert not gc.isenabled()
    with pytest.raises(RuntimeError), heap.paused():
        raise RuntimeError("the audit failed")
    assert not gc.isenabled()


@pytest.mark.parametrize("live, replayed", [
    ([(1, "a"), (2, "b")], [(2, "b"), (1, "a")]),  # another order
    ([(1, "a"), (1, "a")], [(1, "a"), (1, "a")]),  # repeated rows, as many times each
])
def test_the_same_rows_in_any_order_are_the_same(live, replayed):
    assert _same_rows(live, replayed)


@pytest.mark.parametrize("live, replayed", [
    ([(1, "a"), (2, "b")], [(1, "a"), (1, "a")]),  # as many rows, all of them live ones, but not each once
    ([(1, "a"), (1, "a")], [(1, "a"), (2, "b")]),
    ([(1, "a"), (1, "a"), (2, "b")], [(1, "a"), (2, "b"), (2, "b")]),
    ([(1, "a")], [(1, "a"), (1, "a")]),
])
def test_rows_repeated_a_different_number_of_times_differ(live, replayed):
    assert not _same_rows(live, replayed)
