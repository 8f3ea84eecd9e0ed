"""Builders shared by the domain unit tests: a fixed clock, request bodies
and tasks driven into a given state. Times are integer milliseconds."""

import uuid

from taskjournal.shared.domain import definition as definitions
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import format_ms

SECOND = 1000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR

NOW = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
CLAIM_TIMEOUT = 20 * MINUTE


def new_task_id() -> str:
    return task_id_of(uuid.uuid4())


def request_body(now: int = NOW, **fields) -> dict:
    """A createTask request body; a field given as None is left out."""
    body = {
        "provisionerId": "prov",
        "workerType": "wt",
        "created": format_ms(now),
        "deadline": format_ms(now + HOUR),
        "payload": {"command": ["true"]},
        "metadata": {"name": "t", "description": "d", "owner": "o@example.com", "source": "https://example.com"},
    }
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


def make_task(now: int = NOW, task_id: str | None = None, **fields) -> Task:
    task_id = task_id or new_task_id()
    return Task(task_id=task_id, definition=definitions.normalize(task_id, request_body(now, **fields), now))


def pending_task(now: int = NOW, **fields) -> Task:
    task = make_task(now, **fields)
    task.schedule(now)
    return task


def running_task(now: int = NOW, worker=("wg", "wid"), **fields) -> Task:
    task = pending_task(now, **fields)
    assert task.claim_work(0, *worker, now, now + CLAIM_TIMEOUT)
    return task


def claim_last(task: Task, now: int, worker=("wg", "wid")) -> int:
    run_id = task.last_run["runId"]
    assert task.claim_work(run_id, *worker, now, now + CLAIM_TIMEOUT)
    return run_id
