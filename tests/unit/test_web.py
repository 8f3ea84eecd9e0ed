"""The web view's pure parts: the run timeline's geometry, and which pages a
logged event concerns (services/web/timeline.py, services/web/live.py)."""

import uuid
from types import SimpleNamespace

import pytest

from taskjournal.services.web.live import changed_keys, group_watcher, queue_watcher, task_watcher
from taskjournal.services.web.timeline import duration, timeline
from taskjournal.shared.domain.ids import group_uuid, task_uuid

T0 = 1_700_000_000_000
TASK, OTHER, GROUP = "fN1Bqj6nSWGyHPyv1yEZ2A", "aO9Pb6dHT1Oa0U0cR8cR0g", "ZbJtpw8sQnq7Cfj-Q4KcTQ"


def at(ms: int) -> str:
    from taskjournal.shared.domain.time import format_ms

    return format_ms(T0 + ms)


def run(run_id: int, scheduled: int, started: int | None = None, resolved: int | None = None,
        state: str = "completed") -> dict:
    r = {"runId": run_id, "state": state, "scheduled": at(scheduled)}
    if started is not None:
        r["started"] = at(started)
    if resolved is not None:
        r["resolved"] = at(resolved)
    return r


def test_each_run_gets_a_waiting_bar_then_a_running_bar_in_percent_of_the_whole_span():
    bars = timeline([(TASK, "a", run(0, 0, 1000, 3000)), (OTHER, "b", run(0, 2000, 2500, 4000, "failed"))],
                    T0 + 10_000).bars
    first, second = bars
    assert (first.wait_x, first.wait_w, first.run_x, first.run_w) == (0, 25, 25, 50)
    assert (second.wait_x, second.wait_w, second.run_x, second.run_w) == (50, 12.5, 62.5, 37.5)
    assert (first.waited_ms, first.ran_ms, second.state) == (1000, 2000, "failed")


def test_runs_are_ordered_by_when_they_became_pending_and_unfinished_ones_reach_now():
    bars = timeline([(TASK, "late", run(1, 3000, state="pending")), (TASK, "early", run(0, 0, 1000, state="running"))],
                    T0 + 4000).bars
    assert [(b.run_id, b.row) for b in bars] == [(0, 0), (1, 1)]
    running, pending = bars
    assert running.run_x + running.run_w == 100 and running.ran_ms == 3000  # still running: until now
    assert pending.run_w == 0 and pending.ran_ms is None and pending.waited_ms == 1000


def test_runs_that_became_pending_at_once_are_ordered_by_task_and_run():
    runs = [(OTHER, "b", run(0, 0, state="pending")), (TASK, "a", run(0, 0, 10, state="running"))]
    assert [bar.task_id for bar in timeline(runs, T0 + 20).bars] == sorted([OTHER, TASK])


def test_a_run_resolved_without_starting_shows_its_wait_only():
    bar, = timeline([(TASK, "x", run(0, 0, resolved=500, state="exception"))], T0 + 9000).bars
    assert (bar.wait_w, bar.run_w, bar.ran_ms, bar.waited_ms) == (100, 0, None, 500)


def test_no_runs_no_bars():
    assert timeline([], T0).bars == [] and timeline([], T0).height == 0


@pytest.mark.parametrize("ms, text", [(None, ""), (850, "850ms"), (12_345, "12.3s"), (245_000, "4m05s"),
                                      (7_620_000, "2h07m")])
def test_durations_read_at_a_glance(ms, text):
    assert duration(ms) == text


def event(originator, **attributes):
    return SimpleNamespace(originator_id=originator, **attributes)


def test_a_task_page_hears_its_task_and_its_artifacts_only():
    watcher = task_watcher(TASK)
    watcher.offer([(1, changed_keys(event(task_uuid(OTHER))))])
    assert not watcher.changed.is_set()
    watcher.offer([(2, changed_keys(event(uuid.uuid4(), task_status={"taskId": TASK})))])  # an artifact finished
    assert watcher.changed.is_set() and watcher.position == 2


def test_a_group_page_hears_its_members_and_the_tasks_that_join_it():
    watcher = group_watcher(GROUP, [TASK])
    watcher.offer([(1, changed_keys(event(task_uuid(TASK))))])
    assert watcher.changed.is_set()
    watcher.changed.clear()
    joined = event(task_uuid(OTHER), task_id=OTHER, definition={"taskGroupId": GROUP})
    watcher.offer([(2, changed_keys(joined))])
    assert watcher.changed.is_set()
    watcher.changed.clear()
    watcher.offer([(3, changed_keys(event(task_uuid(OTHER))))])  # the new member's later events count too
    assert watcher.changed.is_set() and watcher.position == 3
    watcher.changed.clear()
    watcher.offer([(4, changed_keys(event(group_uuid("another group"))))])
    assert not watcher.changed.is_set()


def test_a_queue_page_hears_every_change():
    watcher = queue_watcher()
    watcher.offer([(7, changed_keys(event(uuid.uuid4())))])
    assert watcher.changed.is_set() and watcher.position == 7


def test_a_history_entry_shows_who_acted_and_what_changed():
    from taskjournal.services.web.pages import _history_entry

    entry = {"position": 7, "time": "2026-11-30T11:07:50.505Z", "event": "Task.RunResolved", "taskId": TASK,
             "runId": 0, "actor": {"kind": "client", "clientId": "worker-7", "requestId": "r1"},
             "reason": "completed", "changes": {"state": "completed", "retriesLeft": 4}}
    shown = _history_entry(entry)
    assert (shown["actor"], shown["run"], shown["changes"]) == ("worker-7", 0, "state=completed retriesLeft=4")
    assert _history_entry({**entry, "actor": {"kind": "service", "service": "claim-resolver"}})["actor"] == \
        "claim-resolver"
    assert _history_entry({**entry, "actor": {"kind": "unknown"}, "runId": None})["run"] == ""
