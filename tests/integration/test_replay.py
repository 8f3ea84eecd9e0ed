"""A read model rebuilt from the log equals the live one, after a random
workload, on SQLite and on PostgreSQL."""

import random
import uuid

import pytest

from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.errors import DomainError
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.time import format_ms
from taskjournal.shared.store.replay import PROJECTIONS, rebuild

NOW = 1_900_000_000_000
QUEUES = ("replay/a", "replay/b")


def _dump(journal) -> dict:
    tables = {}
    with journal.recorder.datastore.transaction(commit=False) as curs:
        for name, (table, _) in PROJECTIONS.items():
            curs.execute(f"SELECT * FROM {table}")
            rows = [{k: v for k, v in dict(r).items() if k != "leased_until"} for r in curs.fetchall()]
            tables[name] = sorted(rows, key=lambda r: sorted(r.items()))
    return tables


def _random_workload(journal, rng: random.Random, steps: int) -> None:
    task_ids, now = [], NOW
    for _ in range(steps):
        now += rng.randint(1, 5000)
        action = rng.choice(["create", "create", "claim", "complete", "fail", "exception", "rerun", "cancel",
                             "seal", "expire", "artifact", "artifact", "worker", "priority"])
        try:
            if action == "create" or not task_ids:
                task_id = task_id_of(uuid.uuid4())
                deps = rng.sample(task_ids, min(len(task_ids), rng.randint(0, 2)))
                body = {"taskQueueId": rng.choice(QUEUES), "created": format_ms(now),
                        "deadline": format_ms(now + 3_600_000), "dependencies": deps,
                        "requires": rng.choice(["all-completed", "all-resolved"]),
                        "taskGroupId": rng.choice([task_id, "Hr3PBrTTS0CmV3gXuHKgNg"]),
                        "payload": {}, "metadata": {"name": "n", "description": "d", "owner": "o@example.com",
                                                    "source": "https://example.com"}}
                journal.create_task(task_id, normalize(task_id, body, now), now)
                task_ids.append(task_id)
            elif action == "claim":
                journal.claim_work(rng.choice(QUEUES), "wg", "w", rng.randint(1, 4), now, now + 60_000)
            elif action in ("complete", "fail", "exception"):
                task = journal.task(rng.choice(task_ids))
                if task.last_run and task.last_run["state"] == "running":
                    run_id = task.last_run["runId"]
                    if action == "exception":
                        journal.report_exception(task.task_id, run_id, "worker-shutdown", now)
                    else:
                        journal.report(task.task_id, run_id, "completed" if action == "complete" else "failed", now)
                    journal.schedule_ready_dependents(task.task_id, now)
            elif action == "rerun":
                journal.rerun_task(rng.choice(task_ids), now)
            elif action == "cancel":
                journal.cancel_task(rng.choice(task_ids), now)
            elif action == "seal":
                journal.seal_task_group("Hr3PBrTTS0CmV3gXuHKgNg", now)
            elif action == "artifact":
                running = [t for t in task_ids if journal.task(t).state == "running"]
                if running:
                    _random_artifact(journal, rng, rng.choice(running), now)
            elif action == "priority":
                journal.change_task_priority(rng.choice(task_ids), rng.choice(["highest", "low"]), now)
            elif action == "worker":
                _random_worker_change(journal, rng, now)
            elif action == "expire":
                for claim in journal.views.expired_claims(now + 120_000):
                    journal.expire_claim(claim["task_id"], claim["run_id"], claim["taken_until"], now + 120_000)
        except DomainError:
            pass  # a refusal is a legal outcome of a random command


def _random_artifact(journal, rng: random.Random, task_id: str, now: int) -> None:
    """A createArtifact (new or repeated, allowed or not) on the task's last run."""
    task = journal.task(task_id)
    kind = rng.choice(["reference", "link", "error", "s3"])
    request = {"storageType": kind, "expires": format_ms(now + rng.choice([3_600_000, 7_200_000])),
               "contentType": "text/plain", "url": rng.choice(["https://a", "https://b"]),
               "artifact": rng.choice(["public/a", "public/b"]), "reason": "file-missing-on-worker", "message": "m"}
    journal.create_artifact(task_id, task.last_run["runId"], rng.choice(["public/a", "public/b", "public/c"]),
                            request, now)


def _random_worker_change(journal, rng: random.Random, now: int) -> None:
    """A task queue or worker record changes: seen, declared or quarantined."""
    queue, worker = rng.choice(QUEUES), rng.choice(["w", "x"])
    change = rng.choice(["seen", "declare-queue", "declare-worker", "quarantine"])
    if change == "seen":
        journal.record_seen(queue, now + 86_400_000, now, ("wg", worker, now + 86_400_000))
    elif change == "declare-queue":
        journal.declare_task_queue(queue, now, rng.choice([None, now + 10_000_000]), rng.choice([None, "d"]),
                                   rng.choice([None, "stable"]))
    elif change == "declare-worker":
        journal.declare_worker(queue, "wg", worker, now, rng.choice([None, now + 10_000_000]))
    else:
        journal.quarantine_worker(queue, "wg", worker, now + rng.choice([-1000, 60_000]), rng.choice([None, "why"]),
                                  "someone", now)


@pytest.mark.parametrize("seed", [1, 2])
def test_rebuilt_projections_equal_the_live_ones_after_a_random_workload(journal, seed):
    _random_workload(journal, random.Random(seed), 150)
    live = _dump(journal)
    assert live["tasks"] and live["task-groups"] and live["artifacts"]
    assert live["task-queues"] and live["workers"] and live["worker-runs"]
    position = rebuild(journal, list(PROJECTIONS))
    assert position == journal.recorder.max_notification_id()
    assert _dump(journal) == live
    assert journal.views.position() == position


def _journal_api_answers(journal) -> dict:
    """What our own API (journal_api.py) reads: every task's queue position, every queue's recent claims."""
    with journal.recorder.datastore.transaction(commit=False) as curs:
        curs.execute("SELECT task_id FROM tj_tasks")
        task_ids = sorted(row["task_id"] for row in curs.fetchall())
    positions = {t: journal.views.queue_position(t, NOW) for t in task_ids}
    claims = {q: sorted(map(sorted, (r.items() for r in journal.views.recent_claims(q, 0)))) for q in QUEUES}
    return {"positions": positions, "claims": claims}


def test_queue_positions_and_wait_times_are_rebuilt_by_a_replay(journal):
    _random_workload(journal, random.Random(3), 150)
    live = _journal_api_answers(journal)
    assert any(p is not None and p["ahead"] for p in live["positions"].values()) and any(live["claims"].values())
    rebuild(journal, list(PROJECTIONS))
    assert _journal_api_answers(journal) == live
