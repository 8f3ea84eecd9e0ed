"""How the publisher packs internal events (shared/bus/rabbit.py): runs of
one routing key, in order, PACK at most to a message."""

from taskjournal.shared.bus.rabbit import PACK, _packs
from taskjournal.shared.messages import InternalEvent


def event(key: str, position: int) -> InternalEvent:
    return InternalEvent(key, {"position": position})


def test_runs_of_one_key_are_packed_in_order_and_bounded():
    run = [event("Task.RunResolved", i) for i in range(3, PACK + 4)]  # one more than a pack
    events = [event("Task.RunResolved", i) for i in range(3)] + [event("TaskGroup.Resolved", 99)] + run
    packs = _packs(events)
    assert [[e.body["position"] for e in pack] for pack in packs] == [
        [0, 1, 2], [99], list(range(3, PACK + 3)), [PACK + 3]]
    assert [e for pack in packs for e in pack] == events


def test_no_events_no_packs():
    assert _packs([]) == []
