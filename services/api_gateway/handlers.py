"""One coroutine per Queue API endpoint. Each authorizes when its scope
expression needs more than URL parameters, runs the command or query on
the Journal off the event loop, and returns the response body."""

import time
from typing import Any

import orjson

from taskjournal.shared.domain import definition as definitions
from taskjournal.shared.domain import priority as priorities
from taskjournal.shared.domain.errors import RequestConflict, ResourceNotFound
from taskjournal.shared.domain.time import format_ms

from . import paging
from .claims import claim_body, claim_reply, reclaim_body
from .context import Context
from .journal_api import observe_claim
from .responses import Raw

STARTED = time.monotonic()


# ---------------------------------------------------------------- monitoring
async def ping(ctx: Context):
    return {"alive": True, "uptime": time.monotonic() - STARTED}


async def empty(ctx: Context):
    return {}


async def version(ctx: Context):
    return ctx.services.version


# ---------------------------------------------------------------- task reads
async def task(ctx: Context):
    found = await ctx.run(ctx.services.journal.views.task_definition, ctx.params["taskId"])
    if found is None:
        raise _no_task(ctx.params["taskId"])
    return Raw(found)


async def status(ctx: Context):
    found = await ctx.run(ctx.services.journal.views.task_status, ctx.params["taskId"])
    if found is None:
        raise _no_task(ctx.params["taskId"])
    return Raw('{"status":%s}' % found)


def _no_task(task_id: str) -> ResourceNotFound:
    return ResourceNotFound(f"`{task_id}` does not correspond to a task that exists.\n"
                            "Are you sure this task has already been submitted?")


async def tasks(ctx: Context):
    return await _many(ctx, "definition", "tasks", "task")


async def statuses(ctx: Context):
    return await _many(ctx, "status", "statuses", "status")


async def _many(ctx: Context, column: str, key: str, field: str):
    task_ids = ctx.body["taskIds"]
    ctx.authorize(taskIds=task_ids)
    rows = await ctx.run(ctx.services.journal.views.tasks_by_id, task_ids, column)  # any number of ids
    offset, limit = paging.offset_of(ctx.query), paging.page_size(ctx.query)
    page, token = paging.offset_page(rows[offset:offset + limit + 1], offset, limit)
    return _with_token({key: [{"taskId": row["task_id"], field: orjson.loads(row[column])} for row in page]}, token)


def _with_token(body: dict, token: str | None) -> dict:
    if token:
        body["continuationToken"] = token
    return body


def _tasks_with_status(rows: list) -> list[dict]:
    return [{"status": orjson.loads(r["status"]), "task": orjson.loads(r["definition"])} for r in rows]


async def list_dependent_tasks(ctx: Context):
    journal, task_id = ctx.services.journal, ctx.params["taskId"]
    if await ctx.run(journal.views.task_status, task_id) is None:
        raise ResourceNotFound(f"Task with taskId: `{task_id}` was not found")
    offset, limit = paging.offset_of(ctx.query), paging.page_size(ctx.query)
    rows = await ctx.run(journal.views.dependents_page, task_id, offset, limit + 1)
    page, token = paging.offset_page(rows, offset, limit)
    return _with_token({"taskId": task_id, "tasks": _tasks_with_status(page)}, token)


# ---------------------------------------------------------------- task commands
async def create_task(ctx: Context):
    body, task_id = ctx.body, ctx.params["taskId"]
    queue = definitions.resolve_queue(body)
    provisioner, worker_type = definitions.split_queue(queue)
    ctx.authorize(scopes=body["scopes"], routes=body["routes"], projectId=body["projectId"],
                  schedulerId=body["schedulerId"], priorities=priorities.at_least(body["priority"]),
                  provisionerId=provisioner, workerType=worker_type)
    now = ctx.services.clock()
    stored = definitions.normalize(task_id, body, now)
    created = await ctx.run(ctx.services.journal.create_task, task_id, stored, now)
    return {"status": created.status()}


async def schedule_task(ctx: Context):
    return await _task_command(ctx, ctx.services.journal.schedule_task)


async def rerun_task(ctx: Context):
    return await _task_command(ctx, ctx.services.journal.rerun_task)


async def cancel_task(ctx: Context):
    return await _task_command(ctx, ctx.services.journal.cancel_task)


async def _task_command(ctx: Context, command):
    """scheduleTask / rerunTask / cancelTask: 404 first, then the scopes that
    name the task's scheduler, group and project - checked by the command on
    the very task it then changes (a task created meanwhile cannot skip it)."""
    changed = await ctx.run(command, ctx.params["taskId"], ctx.services.clock(), _scheduler_check(ctx))
    return {"status": changed.status()}


def _scheduler_check(ctx: Context):
    ctx.auth  # authenticate here on the loop; the command only checks scopes

    def authorize(task) -> None:
        d = task.definition
        ctx.authorize(schedulerId=d["schedulerId"], taskGroupId=d["taskGroupId"], projectId=d["projectId"])
    return authorize


# ---------------------------------------------------------------- worker interactions
async def claim_work(ctx: Context):
    body = ctx.body
    ctx.authorize(workerGroup=body["workerGroup"], workerId=body["workerId"])
    replies: dict[str, bytes] = {}
    queue, workers = ctx.params["taskQueueId"], ctx.services.workers
    key = (queue, body["workerGroup"], body["workerId"])
    now = ctx.services.clock()
    if workers.needs_write(*key, now):  # at most once per half hour per worker and process (worker_info.py)
        await ctx.run(workers.worker_seen, *key, now)

    def deliverable(task) -> bool:
        """Render each task's reply before its claim is committed (see Journal.claim_work)."""
        reply = claim_reply(ctx.services, task)
        if reply is not None:
            replies[task.task_id] = reply
        return reply is not None

    claimed = await ctx.services.claimer.claim(queue, body["workerGroup"], body["workerId"], int(body["tasks"]),
                                               deliverable, lambda at: workers.is_quarantined(key, at))
    for task in claimed:
        observe_claim(task)
    return Raw('{"tasks":[%s]}' % ",".join(replies[t.task_id].decode() for t in claimed))


async def claim_task(ctx: Context):
    journal, task_id, run_id = ctx.services.journal, ctx.params["taskId"], int(ctx.params["runId"])
    ctx.auth  # authenticate here on the loop; the command only checks scopes

    now = ctx.services.clock()
    workers = ctx.services.workers

    was_pending = [False]  # a repeated claimTask by the same worker commits nothing: no new wait to observe

    def authorize(task) -> None:  # on the task the claim then decides on (404 first)
        was_pending[0] = run_id < len(task.runs) and task.runs[run_id]["state"] == "pending"
        queue = task.definition["taskQueueId"]
        provisioner, worker_type = definitions.split_queue(queue)
        ctx.authorize(provisionerId=provisioner, workerType=worker_type, **ctx.body)
        if task.deadline_ms > now and workers.is_quarantined((queue, ctx.body["workerGroup"], ctx.body["workerId"]),
                                                             now):
            # upstream answers a quarantined worker with a 500 (Quirk Q7); a quarantined worker gets no work
            raise RequestConflict(f"Worker {ctx.body['workerGroup']}/{ctx.body['workerId']} is quarantined "
                                  f"and cannot claim tasks of `{queue}`.")

    claimed = await ctx.run(journal.claim_task, task_id, run_id, ctx.body["workerGroup"], ctx.body["workerId"],
                            now, now + ctx.services.claim_timeout_ms, authorize)
    await ctx.run(workers.queue_seen, claimed.definition["taskQueueId"], now)
    if was_pending[0]:
        observe_claim(claimed, run_id)
    return claim_body(ctx.services, claimed, run_id)


async def reclaim_task(ctx: Context):
    task_id, run_id, now = ctx.params["taskId"], int(ctx.params["runId"]), ctx.services.clock()
    reclaimed = await ctx.run(ctx.services.journal.reclaim_task, task_id, run_id, now,
                              now + ctx.services.claim_timeout_ms)
    run = reclaimed.runs[run_id]
    key = (reclaimed.definition["taskQueueId"], run["workerGroup"], run["workerId"])
    if ctx.services.workers.needs_write(*key, now):
        await ctx.run(ctx.services.workers.worker_seen, *key, now)
    return reclaim_body(ctx.services, reclaimed, run_id)


async def report_completed(ctx: Context):
    # A legacy body {"success": false} makes reportCompleted a reportFailed.
    failed = isinstance(ctx.body, dict) and ctx.body.get("success") is False
    return await _report(ctx, "failed" if failed else "completed")


async def report_failed(ctx: Context):
    return await _report(ctx, "failed")


async def _report(ctx: Context, outcome: str):
    resolved = await ctx.run(ctx.services.journal.report, ctx.params["taskId"], int(ctx.params["runId"]),
                             outcome, ctx.services.clock())
    return {"status": resolved.status()}


async def report_exception(ctx: Context):
    resolved = await ctx.run(ctx.services.journal.report_exception, ctx.params["taskId"],
                             int(ctx.params["runId"]), ctx.body["reason"], ctx.services.clock())
    return {"status": resolved.status()}


# ---------------------------------------------------------------- priorities (upstream v95.1)
async def change_task_priority(ctx: Context):
    """404 first, then the scopes naming the task or its queue, on the task the command changes."""
    ctx.auth  # authenticate here on the loop; the command only checks scopes
    new_priority = priorities.normalize(ctx.body["newPriority"])

    def authorize(task) -> None:
        ctx.authorize(taskQueueId=task.definition["taskQueueId"])
    changed = await ctx.run(ctx.services.journal.change_task_priority, ctx.params["taskId"], new_priority,
                            ctx.services.clock(), authorize)
    return {"status": changed.status()}


async def change_task_group_priority(ctx: Context):
    new_priority = priorities.normalize(ctx.body["newPriority"])
    group, task_ids = await ctx.run(ctx.services.journal.change_task_group_priority, ctx.params["taskGroupId"],
                                    new_priority, ctx.services.clock(), _group_scheduler_check(ctx))
    return {"taskGroupId": group.task_group_id, "schedulerId": group.scheduler_id, "newPriority": new_priority,
            "tasksAffected": len(task_ids), "taskIds": task_ids}


# ---------------------------------------------------------------- task groups
async def get_task_group(ctx: Context):
    return Raw(await _group_body(ctx))


async def _group_body(ctx: Context) -> str:
    group_id = ctx.params["taskGroupId"]
    found = await ctx.run(ctx.services.journal.views.group_body, group_id)
    if found is None:
        raise ResourceNotFound(f"No task-group with taskGroupId: `{group_id}`")
    return found


async def list_task_group(ctx: Context):
    group = orjson.loads(await _group_body(ctx))
    offset, limit = paging.offset_of(ctx.query), paging.page_size(ctx.query)
    rows = await ctx.run(ctx.services.journal.views.group_members, group["taskGroupId"], offset, limit + 1)
    page, token = paging.offset_page(rows, offset, limit)
    return _with_token({**group, "tasks": _tasks_with_status(page)}, token)


async def seal_task_group(ctx: Context):
    sealed = await ctx.run(ctx.services.journal.seal_task_group, ctx.params["taskGroupId"], ctx.services.clock(),
                           _group_scheduler_check(ctx))
    return sealed.public_body()


async def cancel_task_group(ctx: Context):
    journal, group_id = ctx.services.journal, ctx.params["taskGroupId"]
    cancelled = await ctx.run(journal.cancel_task_group, group_id, ctx.services.clock(), _group_scheduler_check(ctx))
    size = await ctx.run(journal.views.group_size, group_id)
    return {"taskGroupId": group_id, "taskGroupSize": size, "cancelledCount": len(cancelled), "taskIds": cancelled}


def _group_scheduler_check(ctx: Context):
    """The group commands' scope check, on the group the command loaded."""
    ctx.auth  # authenticate here on the loop; the command only checks scopes
    return lambda group: ctx.authorize(schedulerId=group.scheduler_id)


# ---------------------------------------------------------------- task queues
async def pending_tasks(ctx: Context):
    queue = ctx.params["taskQueueId"]
    count = await ctx.run(ctx.services.journal.views.pending_count, queue, ctx.services.clock())
    provisioner, worker_type = definitions.split_queue(queue)
    return {"provisionerId": provisioner, "workerType": worker_type, "taskQueueId": queue, "pendingTasks": count}


async def task_queue_counts(ctx: Context):
    """taskQueueCounts (upstream v72): exact counts; a resolved or cancelled
    task leaves the pending queue at once (upstream since v65.4)."""
    queue, views = ctx.params["taskQueueId"], ctx.services.journal.views
    pending = await ctx.run(views.pending_count, queue, ctx.services.clock())
    claimed = await ctx.run(views.claimed_count, queue)
    provisioner, worker_type = definitions.split_queue(queue)
    return {"provisionerId": provisioner, "workerType": worker_type, "taskQueueId": queue, "pendingTasks": pending,
            "claimedTasks": claimed}


async def list_pending_tasks(ctx: Context):
    rows = await _keyset_page(ctx, ctx.services.journal.views.pending_page)
    return _keyset_body(ctx, rows, "inserted", lambda r: {
        "taskId": r["task_id"], "runId": r["run_id"], "inserted": format_ms(r["inserted"]),
        "task": orjson.loads(r["definition"])})


async def list_claimed_tasks(ctx: Context):
    rows = await _keyset_page(ctx, ctx.services.journal.views.claimed_page)
    return _keyset_body(ctx, rows, "claimed", lambda r: {
        "taskId": r["task_id"], "runId": r["run_id"], "workerGroup": r["worker_group"],
        "workerId": r["worker_id"], "claimed": format_ms(r["claimed"]), "task": orjson.loads(r["definition"])})


async def _keyset_page(ctx: Context, query):
    limit = paging.page_size(ctx.query)
    return await ctx.run(query, ctx.params["taskQueueId"], paging.keyset_of(ctx.query), limit + 1)


def _keyset_body(ctx: Context, rows: list, key: str, shape) -> dict:
    limit = paging.page_size(ctx.query)
    body: dict[str, Any] = {"tasks": [shape(r) for r in rows[:limit]]}
    if len(rows) > limit and limit > 0:
        last = rows[limit - 1]
        body["continuationToken"] = paging.keyset_token(last[key], last["task_id"])
    return body

