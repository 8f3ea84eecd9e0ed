"""The history part of our own API (ADR 0015), under /api/journal/v1: what
happened to a task or a task group and who did it, a task's status as of a
past time, and the log itself for external audit systems. Answers come from
the history read model and the log (journal.views)."""

from taskjournal.shared.domain.errors import ResourceNotFound
from taskjournal.shared.domain.time import parse_ms

from . import paging
from .context import Context
from .errors import invalid_arguments
from .routing import Endpoint

NO_TASK = "Task `{task_id}` not found. Are you sure it was created?"


async def task_history(ctx: Context) -> dict:
    task_id = ctx.params["taskId"]
    events = await ctx.run(ctx.services.journal.views.task_history, task_id)
    if not events:
        raise ResourceNotFound(NO_TASK.format(task_id=task_id))
    return {"taskId": task_id, "events": events}


async def task_status_as_of(ctx: Context) -> dict:
    task_id, as_of = ctx.params["taskId"], ctx.query.get("asOf")
    if as_of is None:
        raise invalid_arguments("Query-string parameter asOf (a date-time) is required")
    try:
        moment = parse_ms(as_of)
    except ValueError:
        raise invalid_arguments(f"Query-string parameter asOf=\"{as_of}\" is not a date-time") from None
    status = await ctx.run(ctx.services.journal.views.task_status_as_of, task_id, moment)
    if status is None:
        raise ResourceNotFound(f"Task `{task_id}` did not exist at {as_of}.")
    return {"status": status}


async def task_group_history(ctx: Context) -> dict:
    group_id, views = ctx.params["taskGroupId"], ctx.services.journal.views
    token = ctx.query.get("continuationToken")
    events, more = await ctx.run(views.group_history, group_id, token, max(1, paging.page_size(ctx.query)))
    if not events and token is None and await ctx.run(views.group_body, group_id) is None:
        raise ResourceNotFound(f"No task-group with taskGroupId: `{group_id}`")
    body: dict = {"taskGroupId": group_id, "events": events}
    if more is not None:
        body["continuationToken"] = more
    return body


async def log(ctx: Context) -> dict:
    after = int(ctx.query.get("after", "0"))
    events = await ctx.run(ctx.services.journal.views.log_page, after, max(1, paging.page_size(ctx.query)))
    return {"events": events, "lastPosition": events[-1]["position"] if events else after}


HISTORY_ENDPOINTS = [
    Endpoint("taskHistory", "GET", "/task/<taskId>/history", task_history, "journal:task-history:<taskId>"),
    Endpoint("taskStatusAsOf", "GET", "/task/<taskId>/status", task_status_as_of, "journal:task-history:<taskId>",
             query=("asOf",)),
    Endpoint("taskGroupHistory", "GET", "/task-group/<taskGroupId>/history", task_group_history,
             "journal:task-group-history:<taskGroupId>", query=("continuationToken", "limit")),
    Endpoint("log", "GET", "/log", log, "journal:read-log", query=("after", "limit")),
]
