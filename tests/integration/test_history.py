"""The history read model and the audit, on SQLite and PostgreSQL: who did
what to a scripted workload's tasks, their status as of past times, a group's
history in pages, the log stored before actors were recorded, and
`audit` on a clean log, a corrupted read model and a hand-made violation."""

import json
import time
import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from taskjournal.shared import actor
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import now_ms, parse_ms
from taskjournal.shared.store import audit as audit_module
from taskjournal.shared.store.audit import audit
from taskjournal.shared.store.replay import PROJECTIONS, rebuild
from tests.support.journal import create_task

FIXTURE = Path(__file__).parents[1] / "fixtures" / "events-before-actors.jsonl"
ROOT = actor.client("root", "request-1")
WORKER = actor.client("task-client/w1", "request-2", issuer="root")


def _pause() -> None:
    time.sleep(0.003)  # events of the next step are recorded at a later millisecond


def _workload(journal) -> dict:
    """A task created by root, claimed and completed by a worker's temporary
    credentials, a retry after claim-expired (the claim-resolver), and a
    dependent the dependency-resolver schedules. Returns ids and each
    step's status, keyed by the time right after the step."""
    group = task_id_of(uuid.uuid4())
    snapshots: dict[int, dict] = {}

    def snap(task_id: str) -> None:
        snapshots[now_ms()] = journal.task(task_id).status()
        _pause()

    with actor.acting(ROOT):
        task = create_task(journal, taskGroupId=group, retries=1)
        dependent = create_task(journal, taskGroupId=group, dependencies=[task.task_id])
    snap(task.task_id)
    now = now_ms()
    with actor.acting(WORKER):
        journal.claim_task(task.task_id, 0, "wg", "w1", now, now + 1)
    snap(task.task_id)
    with actor.acting(actor.service("claim-resolver")):
        assert journal.expire_claim(task.task_id, 0, now + 1, now_ms() + 2)
    snap(task.task_id)
    with actor.acting(WORKER):
        journal.claim_task(task.task_id, 1, "wg", "w1", now_ms(), now_ms() + 60_000)
        journal.create_artifact(task.task_id, 1, "public/log.txt", {"storageType": "reference",
                                "url": "https://example.com/log", "expires": task.definition["expires"]}, now_ms())
        journal.report(task.task_id, 1, "completed", now_ms())
    snap(task.task_id)
    with actor.acting(actor.service("dependency-resolver")):
        assert [t.task_id for t in journal.schedule_ready_dependents(task.task_id, now_ms())] == [dependent.task_id]
    return {"group": group, "task": task.task_id, "dependent": dependent.task_id, "snapshots": snapshots}


def test_a_tasks_history_says_what_happened_and_who_did_it(journal):
    ids = _workload(journal)
    history = journal.views.task_history(ids["task"])
    summary = [(e["event"], e["runId"], e["reason"], e["actor"].get("clientId") or e["actor"].get("service"))
               for e in history]
    assert summary == [
        ("Task.Defined", None, None, "root"),
        ("Task.RunAdded", 0, "scheduled", "root"),
        ("Task.RunClaimed", 0, None, "task-client/w1"),
        ("Task.RunResolved", 0, "claim-expired", "claim-resolver"),
        ("Task.RunAdded", 1, "retry", "claim-resolver"),
        ("Task.RunClaimed", 1, None, "task-client/w1"),
        ("Artifact.Created", 1, None, "task-client/w1"),
        ("Task.RunResolved", 1, "completed", "task-client/w1"),
    ]
    assert history[2]["actor"] == WORKER  # issuer and request id included
    assert history[2]["changes"]["workerId"] == "w1" and history[6]["changes"]["name"] == "public/log.txt"
    assert [e["position"] for e in history] == sorted(e["position"] for e in history)
    dependent = journal.views.task_history(ids["dependent"])
    assert [(e["event"], e["actor"].get("service")) for e in dependent][-1] == ("Task.RunAdded", "dependency-resolver")
    assert journal.views.task_history(task_id_of(uuid.uuid4())) == []


def test_status_as_of_a_past_time_is_the_status_then(journal):
    ids = _workload(journal)
    for moment, status in ids["snapshots"].items():
        assert journal.views.task_status_as_of(ids["task"], moment) == status
    created = parse_ms(journal.views.task_history(ids["task"])[0]["time"])
    assert journal.views.task_status_as_of(ids["task"], created - 1) is None
    assert journal.views.task_status_as_of(ids["task"], now_ms()) == journal.task(ids["task"]).status()


def test_a_groups_history_pages_through_every_event_of_its_tasks(journal):
    ids = _workload(journal)
    everything, _ = journal.views.group_history(ids["group"], None, 1000)
    pages, token = [], None
    while True:
        page, token = journal.views.group_history(ids["group"], token, 3)
        pages.append(page)
        if token is None:
            break
    assert [e for page in pages for e in page] == everything
    assert all(len(page) <= 3 for page in pages) and len(pages) > 2
    assert everything[0]["event"] == "TaskGroup.Defined" and everything[0]["taskId"] is None
    mine = [e for e in everything if e["taskId"] == ids["task"]]
    assert mine == journal.views.task_history(ids["task"])


def test_the_log_after_a_position_is_every_event_whole(journal):
    _workload(journal)
    first = journal.views.log_page(0, 4)
    rest = journal.views.log_page(first[-1]["position"], 1000)
    positions = [e["position"] for e in first + rest]
    assert positions == sorted(positions) and len(positions) == journal.store.last_event_position()
    defined = next(e for e in first if e["event"] == "Task.Defined")
    assert defined["actor"] == ROOT and defined["data"]["definition"]["taskGroupId"]


def _load_fixture(journal) -> None:
    """The log of a store written before actors were recorded (exported rows)."""
    stored = []
    for line in FIXTURE.read_text().splitlines():
        row = json.loads(line)
        stored.append(StoredEvent(originator_id=uuid.UUID(row["originator_id"]),
                                  originator_version=row["originator_version"], topic=row["topic"],
                                  state=row["state"].encode()))
    journal.recorder.insert_events(stored)
    rebuild(journal, list(PROJECTIONS))


def test_events_stored_before_actors_read_as_unknown(journal):
    _load_fixture(journal)
    history = journal.views.task_history("Ch3rG0GSTzGoIvNfsnbTaw")
    assert [e["event"] for e in history][-1] == "Task.RunResolved"
    assert {json.dumps(e["actor"]) for e in history} == {json.dumps(actor.UNKNOWN)}
    assert journal.task("Ch3rG0GSTzGoIvNfsnbTaw").state == "completed"
    assert all(e["actor"] == actor.UNKNOWN for e in journal.views.log_page(0, 100))
    assert audit(journal).ok


def test_audit_passes_on_a_clean_log(journal):
    _workload(journal)
    report = audit(journal)
    assert report.ok, (report.violations, report.differences)
    assert report.events == journal.store.last_event_position() and report.tasks == 2


def test_audit_finds_a_corrupted_read_model(journal):
    ids = _workload(journal)
    with journal.store.datastore.transaction(commit=True) as curs:
        curs.execute(f"UPDATE tj_tasks SET state = 'failed' WHERE task_id = '{ids['task']}'")
    report = audit(journal)
    assert not report.ok and list(report.differences) == ["tasks"]
    assert "state live 'failed' replayed 'completed'" in report.differences["tasks"][0]


def test_audit_finds_a_history_row_changed_or_missing(journal):
    # tj_history is compared as the replay wrote it (audit.AS_WRITTEN), not through the scratch database
    ids = _workload(journal)
    rows = journal.views.task_history(ids["task"])
    changed, missing = rows[2]["position"], rows[-1]["position"]
    with journal.store.datastore.transaction(commit=True) as curs:
        curs.execute(f"UPDATE tj_history SET reason = 'forged' WHERE position = {changed}")
        curs.execute(f"DELETE FROM tj_history WHERE position = {missing}")
    report = audit(journal)
    assert not report.violations and list(report.differences) == ["history"]
    assert sorted(report.differences["history"]) == sorted([
        f"position={changed} task_id={ids['task']} run_id=0 task_group_id={ids['group']}: "
        "reason live 'forged' replayed None",
        f"position={missing} task_id={ids['task']} run_id=1 task_group_id={ids['group']}: "
        "missing from the live read model"])


def test_audit_refuses_to_compare_a_statement_that_does_not_store_its_parameters_as_they_are(journal, monkeypatch):
    _workload(journal)
    monkeypatch.setattr(audit_module, "AS_WRITTEN", ("insert_task",))  # it stores :position as created_position
    with pytest.raises(ValueError, match="insert_task does not store its parameters as they are"):
        audit(journal)


def test_audit_finds_a_run_claimed_twice(journal):
    ids = _workload(journal)
    with actor.acting(ROOT):
        rerun = journal.rerun_task(ids["task"], now_ms())
    claimed = journal.claim_task(ids["task"], 2, "wg", "w1", now_ms(), now_ms() + 60_000)
    forged = Task.RunClaimed(originator_id=claimed.id, originator_version=claimed.version + 1,
                             timestamp=Task.Event.create_timestamp(), run_id=2, worker_group="wg", worker_id="w2",
                             at=now_ms(), taken_until=now_ms() + 60_000, via_claim_task=False)
    journal.recorder.insert_events([journal.mapper.to_stored_event(forged)])  # the log only: no read model
    report = audit(journal)
    rules = [v.rule for v in report.violations]
    assert rules == ["claimed-once"] and report.violations[0].task_id == ids["task"] and rerun.state == "pending"


def test_audit_finds_a_dependent_left_unscheduled(journal):
    with actor.acting(ROOT):
        task = create_task(journal)
        dependent = create_task(journal, dependencies=[task.task_id])
        journal.claim_task(task.task_id, 0, "wg", "w1", now_ms(), now_ms() + 60_000)
        journal.report(task.task_id, 0, "completed", now_ms())  # no dependency-resolver ran
    report = audit(journal)
    assert [(v.rule, v.task_id) for v in report.violations] == [("dependents-scheduled", dependent.task_id)]
    assert not report.differences
