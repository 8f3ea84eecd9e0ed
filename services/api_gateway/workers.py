"""Provisioners, worker types, task queues and workers (behaviour spec
§7.33-§7.47, §10): reads from the read models, declare* and
quarantineWorker as commands on the TaskQueue and Worker aggregates."""

from typing import Any

import orjson

from taskjournal.shared.domain.errors import ResourceNotFound
from taskjournal.shared.domain.time import format_ms, parse_ms

from . import paging
from .context import Context

RECENT_TASKS = 20


def _queue_of(ctx: Context) -> str:
    return f"{ctx.params['provisionerId']}/{ctx.params['workerType']}"


def _with_token(body: dict, token: str | None) -> dict:
    if token:
        body["continuationToken"] = token
    return body


# ---------------------------------------------------------------- provisioners (synthesised, §10.4)
def _provisioner(row: dict) -> dict:
    return {"provisionerId": row["provisioner_id"], "expires": format_ms(row["expires"]),
            "lastDateActive": format_ms(row["last_date_active"]), "description": "", "stability": "experimental",
            "actions": []}


async def list_provisioners(ctx: Context):
    # upstream never pages this list (Quirk Q8): at most `limit`, no token
    rows = await ctx.run(ctx.services.journal.views.provisioners, ctx.services.clock(), paging.page_size(ctx.query))
    return {"provisioners": [_provisioner(r) for r in rows]}


async def get_provisioner(ctx: Context):
    return await _one_provisioner(ctx)


async def declare_provisioner(ctx: Context):
    ctx.authorize(properties=list(ctx.body))
    return await _one_provisioner(ctx)  # upstream stores nothing


async def _one_provisioner(ctx: Context) -> dict:
    provisioner = ctx.params["provisionerId"]
    rows = await ctx.run(ctx.services.journal.views.provisioners, ctx.services.clock(), 1, provisioner)
    if not rows:
        raise ResourceNotFound(f"Provisioner `{provisioner}` not found. Are you sure it was created?")
    return _provisioner(rows[0])


# ---------------------------------------------------------------- task queues and worker types
def _task_queue(row: dict) -> dict:
    return {"taskQueueId": row["task_queue_id"], "description": row["description"], "stability": row["stability"],
            "expires": format_ms(row["expires"]), "lastDateActive": format_ms(row["last_date_active"])}


def _worker_type(row: dict) -> dict:
    provisioner, worker_type = row["task_queue_id"].split("/", 1)
    return {"provisionerId": provisioner, "workerType": worker_type, **_task_queue(row)}


async def list_task_queues(ctx: Context):
    offset, limit = paging.offset_of(ctx.query), paging.page_size(ctx.query)
    rows = await ctx.run(ctx.services.journal.views.task_queues_page, ctx.services.clock(), offset, limit + 1)
    page, token = paging.offset_page(rows, offset, limit)
    return _with_token({"taskQueues": [_task_queue(r) for r in page]}, token)


async def get_task_queue(ctx: Context):
    queue = ctx.params["taskQueueId"]
    row = await ctx.run(ctx.services.journal.views.task_queue, queue, ctx.services.clock())
    if row is None:
        raise ResourceNotFound(f"Task queue with `{queue}` not found. Are you sure it was created?")
    return _task_queue(row)


async def list_worker_types(ctx: Context):
    offset, limit = paging.offset_of(ctx.query), paging.page_size(ctx.query)
    rows = await ctx.run(ctx.services.journal.views.provisioner_queues_page, ctx.params["provisionerId"],
                         ctx.services.clock(), offset, limit + 1)
    page, token = paging.offset_page(rows, offset, limit)
    return _with_token({"workerTypes": [_worker_type(r) for r in page]}, token)


async def get_worker_type(ctx: Context):
    row = await ctx.run(ctx.services.journal.views.task_queue, _queue_of(ctx), ctx.services.clock())
    if row is None:
        raise ResourceNotFound(f"Worker-type `{ctx.params['workerType']}` with Provisioner "
                               f"`{ctx.params['provisionerId']}` not found. Are you sure it was created?")
    return {**_worker_type(row), "actions": []}


async def declare_worker_type(ctx: Context):
    body = ctx.body
    ctx.authorize(properties=list(body))
    expires = parse_ms(body["expires"]) if "expires" in body else None
    queue = await ctx.run(ctx.services.journal.declare_task_queue, _queue_of(ctx), ctx.services.clock(), expires,
                          body.get("description"), body.get("stability"))
    return {**_worker_type({"task_queue_id": queue.task_queue_id, "description": queue.description,
                            "stability": queue.stability, "expires": queue.expires,
                            "last_date_active": queue.last_date_active}), "actions": []}


# ---------------------------------------------------------------- workers
async def list_workers(ctx: Context):
    offset, limit = paging.offset_of(ctx.query), paging.page_size(ctx.query)
    rows = await ctx.run(ctx.services.journal.views.workers_page, _queue_of(ctx), offset, limit + 1)
    page, token = paging.offset_page(rows, offset, limit)
    now, wanted = ctx.services.clock(), ctx.query.get("quarantined")
    # upstream filters the page after paging (Quirk Q14): pages may be short while a token remains
    listed = [r for r in page if not (r["expires"] < now and r["quarantine_until"] < now)]
    if wanted is not None:
        listed = [r for r in listed if (r["quarantine_until"] >= now) == (wanted == "true")]
    return _with_token({"workers": [_listed_worker(r, now) for r in listed]}, token)


def _listed_worker(row: dict, now: int) -> dict:
    entry: dict[str, Any] = {"workerGroup": row["worker_group"], "workerId": row["worker_id"],
                             "firstClaim": format_ms(row["first_claim"]),
                             "lastDateActive": format_ms(row["last_date_active"])}
    if row["latest_task_id"] is not None:
        entry["latestTask"] = {"taskId": row["latest_task_id"], "runId": row["latest_run_id"]}
    if row["quarantine_until"] > now:
        entry["quarantineUntil"] = format_ms(row["quarantine_until"])
    return entry


async def get_worker(ctx: Context):
    journal, now = ctx.services.journal, ctx.services.clock()
    queue, group, worker_id = _queue_of(ctx), ctx.params["workerGroup"], ctx.params["workerId"]
    row = await ctx.run(journal.views.worker, queue, group, worker_id)
    visible = row is not None and (row["expires"] > now or row["quarantine_until"] > now)
    if not visible or await ctx.run(journal.views.task_queue, queue, now) is None:
        raise ResourceNotFound(f"Worker with workerId `{worker_id}`, workerGroup `{group}`,"
                               f"worker-type `{ctx.params['workerType']}` and provisionerId "
                               f"`{ctx.params['provisionerId']}` not found. Are you sure it was created?")
    return await _worker_body(ctx, row)


async def quarantine_worker(ctx: Context):
    journal, now, body = ctx.services.journal, ctx.services.clock(), ctx.body
    queue, group, worker_id = _queue_of(ctx), ctx.params["workerGroup"], ctx.params["workerId"]
    until = parse_ms(body["quarantineUntil"])
    client_id = ctx.auth.client_id or "anonymous"
    await ctx.run(journal.quarantine_worker, queue, group, worker_id, until, body.get("quarantineInfo"),
                  client_id, now)
    ctx.services.workers.note_quarantine((queue, group, worker_id), until)
    return await _worker_body(ctx, await ctx.run(journal.views.worker, queue, group, worker_id))


async def declare_worker(ctx: Context):
    journal, now, body = ctx.services.journal, ctx.services.clock(), ctx.body
    ctx.authorize(properties=list(body))
    queue, group, worker_id = _queue_of(ctx), ctx.params["workerGroup"], ctx.params["workerId"]
    expires = parse_ms(body["expires"]) if "expires" in body else None
    await ctx.run(journal.declare_worker, queue, group, worker_id, now, expires)
    return await _worker_body(ctx, await ctx.run(journal.views.worker, queue, group, worker_id))


async def _worker_body(ctx: Context, row: dict) -> dict:
    recent = await ctx.run(ctx.services.journal.views.recent_tasks, row["task_queue_id"], row["worker_group"],
                           row["worker_id"], RECENT_TASKS)
    return {"provisionerId": ctx.params["provisionerId"], "workerType": ctx.params["workerType"],
            "taskQueueId": row["task_queue_id"], "workerGroup": row["worker_group"], "workerId": row["worker_id"],
            "recentTasks": recent, "expires": format_ms(row["expires"]), "firstClaim": format_ms(row["first_claim"]),
            "quarantineUntil": format_ms(row["quarantine_until"]),
            "lastDateActive": format_ms(row["last_date_active"]),
            "quarantineDetails": orjson.loads(row["quarantine_details"]), "actions": []}
