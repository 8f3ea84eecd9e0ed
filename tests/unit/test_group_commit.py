"""Group commit: concurrent saves share transactions, and one save's conflict
never fails the others."""

import threading
import time

import pytest
from eventsourcing.persistence import RecordConflictError

from taskjournal.shared.store.group_commit import GroupCommit


class Aggregate:
    def __init__(self, name: str, conflicting: bool = False):
        self.name, self.conflicting = name, conflicting
        self.pending_events = [f"{name}-event"]


class Store:
    """A commit that takes time, like the event store's locked append."""

    def __init__(self):
        self.batches, self.saved, self.changes = [], [], []

    def commit(self, aggregates: list, changes: list) -> None:
        events = [e for a in aggregates for e in a.pending_events]
        for a in aggregates:
            a.pending_events.clear()  # as the library does, even when the commit fails
        time.sleep(0.02)
        self.batches.append([a.name for a in aggregates])
        if any(a.conflicting for a in aggregates):
            raise RecordConflictError("duplicate")
        self.saved += events
        self.changes += changes


def _save_concurrently(group: GroupCommit, aggregates: list) -> dict:
    outcome, start = {}, threading.Barrier(len(aggregates))

    def save(aggregate):
        start.wait()
        try:
            group.save([aggregate], f"{aggregate.name}-rows")
            outcome[aggregate.name] = "saved"
        except RecordConflictError:
            outcome[aggregate.name] = "conflict"

    threads = [threading.Thread(target=save, args=(a,)) for a in aggregates]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return outcome


def test_concurrent_saves_share_commits_and_all_succeed():
    store = Store()
    aggregates = [Aggregate(f"a{i}") for i in range(12)]
    outcome = _save_concurrently(GroupCommit(store.commit), aggregates)
    assert outcome == {a.name: "saved" for a in aggregates}
    assert sorted(store.saved) == sorted(f"a{i}-event" for i in range(12))
    assert len(store.batches) < 12  # some saves went together


def test_a_conflicting_save_fails_alone_and_the_others_are_committed():
    store = Store()
    aggregates = [Aggregate(f"a{i}", conflicting=(i == 3)) for i in range(8)]
    outcome = _save_concurrently(GroupCommit(store.commit), aggregates)
    assert outcome.pop("a3") == "conflict"
    assert set(outcome.values()) == {"saved"}
    assert sorted(store.saved) == sorted(f"a{i}-event" for i in range(8) if i != 3)
    # each save's read-model rows are committed with its events, and only then
    assert sorted(store.changes) == sorted(f"a{i}-rows" for i in range(8) if i != 3)


def test_each_save_hands_its_changes_to_the_commit_that_takes_its_events():
    store = Store()
    aggregates = [Aggregate(f"a{i}") for i in range(12)]
    _save_concurrently(GroupCommit(store.commit), aggregates)
    assert sorted(store.changes) == sorted(f"a{i}-rows" for i in range(12))


def test_a_single_save_commits_at_once_and_raises_its_own_error():
    store = Store()
    group = GroupCommit(store.commit)
    group.save([Aggregate("alone")])
    assert store.batches == [["alone"]]
    with pytest.raises(RecordConflictError):
        group.save([Aggregate("bad", conflicting=True)])


def test_an_interrupted_commit_releases_every_waiting_save():
    class Interrupted(BaseException):
        pass

    calls = []

    def commit(aggregates, changes):
        calls.append(len(aggregates))
        if len(calls) == 1:
            time.sleep(0.05)  # the others queue up meanwhile
            raise Interrupted()

    group = GroupCommit(commit)
    outcome, start = {}, threading.Barrier(4)

    def save(name):
        start.wait()
        try:
            group.save([Aggregate(name)])
            outcome[name] = "saved"
        except (Interrupted, RuntimeError) as error:
            outcome[name] = type(error).__name__

    threads = [threading.Thread(target=save, args=(f"a{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads), "a save waited forever"
    assert len(outcome) == 4
    group.save([Aggregate("later")])  # the group still commits afterwards
