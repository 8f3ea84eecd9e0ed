"""Our own API, beside upstream's under /api/journal/v1 (routes upstream can
never take): where a pending task stands in its queue, and how long a task
queue's claims waited. Same pipeline as the Queue API (Hawk, scopes, errors);
answers come from the read models, so they are rebuilt by a replay."""

import math

import orjson

from taskjournal.shared.domain.errors import ResourceNotFound
from taskjournal.shared.domain.time import parse_ms
from taskjournal.shared.metrics import CLAIM_WAIT, CLAIM_WAIT_BUCKETS, REGISTRY

from .context import Context
from .history_api import HISTORY_ENDPOINTS
from .journal_reference import reference_endpoint
from .routing import Endpoint

JOURNAL_PREFIX = "/api/journal/v1"
WAIT_WINDOW_MS = 3_600_000  # wait-times: the claims of the last hour


async def queue_position(ctx: Context) -> dict:
    """A pending task's place in claimWork's order: `pendingAhead` entries are
    claimed before it, `position` = pendingAhead + 1. A task that is not
    pending (or past its deadline) answers 200 with both null: it has no place."""
    task_id = ctx.params["taskId"]
    row = await ctx.run(ctx.services.journal.views.queue_position, task_id, ctx.services.clock())
    if row is None:
        raise ResourceNotFound(f"Task `{task_id}` not found. Are you sure it was created?")
    ahead = row["ahead"]
    return {"taskId": task_id, "taskQueueId": row["task_queue_id"], "state": row["state"],
            "runId": row["run_id"], "position": None if ahead is None else int(ahead) + 1,
            "pendingAhead": None if ahead is None else int(ahead)}


async def wait_times(ctx: Context) -> dict:
    """Milliseconds from pending (the run's `scheduled`) to claimed (its
    `started`) for the queue's claims in the last hour: nearest-rank
    percentiles, null when there were none."""
    queue = ctx.params["taskQueueId"]
    rows = await ctx.run(ctx.services.journal.views.recent_claims, queue, ctx.services.clock() - WAIT_WINDOW_MS)
    waits = sorted(claim_wait_ms(row) for row in rows)
    return {"taskQueueId": queue, "window": WAIT_WINDOW_MS, "claims": len(waits),
            "p50": percentile(waits, 50), "p95": percentile(waits, 95), "p99": percentile(waits, 99)}


def claim_wait_ms(row: dict) -> int:
    run = orjson.loads(row["status"])["runs"][row["run_id"]]
    return row["started"] - parse_ms(run["scheduled"])


def percentile(ordered: list[int], p: int) -> int | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p * len(ordered) / 100) - 1)]


def observe_claim(task, run_id: int = -1) -> None:
    """The Prometheus histogram of claim waits (where a claim was committed);
    run -1: the task's last run."""
    run = task.runs[run_id]
    seconds = (parse_ms(run["started"]) - parse_ms(run["scheduled"])) / 1000
    REGISTRY.histogram(CLAIM_WAIT, seconds, CLAIM_WAIT_BUCKETS, task_queue_id=task.definition["taskQueueId"])


DOCUMENTED_ENDPOINTS = [
    Endpoint("queuePosition", "GET", "/task/<taskId>/queue-position", queue_position,
             "journal:queue-position:<taskId>"),
    Endpoint("waitTimes", "GET", "/task-queues/<taskQueueId>/wait-times", wait_times,
             "journal:wait-times:<taskQueueId>"),
    *HISTORY_ENDPOINTS,
]
JOURNAL_ENDPOINTS = [*DOCUMENTED_ENDPOINTS, reference_endpoint(DOCUMENTED_ENDPOINTS)]
