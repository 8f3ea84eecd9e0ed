"""Tasks made straight through the Journal, for tests below the HTTP layer."""

import uuid

from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.time import format_ms, now_ms

HOUR = 3_600_000


def create_task(journal, task_queue_id: str = "tests/w", now: int | None = None, **fields) -> Task:
    """createTask with a minimal valid body; `fields` override or add to it
    (times as epoch milliseconds for `deadline` and `expires`)."""
    now = now_ms() if now is None else now
    task_id = fields.pop("taskId", None) or task_id_of(uuid.uuid4())
    body = {"taskQueueId": task_queue_id, "created": format_ms(now), "deadline": format_ms(now + HOUR),
            "payload": {}, "metadata": {"name": "n", "description": "d", "owner": "o@example.com",
                                        "source": "https://example.com"}}
    for name in ("deadline", "expires"):
        if isinstance(fields.get(name), int):
            fields[name] = format_ms(fields[name])
    body.update(fields)
    return journal.create_task(task_id, normalize(task_id, body, now), now)
