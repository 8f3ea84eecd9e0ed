"""The web view's pages: a task group, a task, a task queue, and a start page.
Each handler checks the viewer's scopes as the Queue API's read endpoints
do, reads the read models off the event loop, and renders a template."""

import asyncio
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import orjson
from aiohttp import web

from taskjournal.shared.domain.time import format_ms, now_ms

from . import access
from .access import Refusal, Viewer
from .timeline import duration, durations, runs_of, timeline

STATES = ("unscheduled", "pending", "running", "completed", "failed", "exception")
PAGE_SIZE, MAX_PAGE_SIZE = 1000, 10_000
MAX_ARTIFACTS = 1000  # per run shown on a task page
MAX_WORKERS = 1000
HEADERS = {
    # no inline script or style: the SVG bars are attributes, the script a file of ours
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",  # a bewit in the URL must not leave with a click on a task's source link
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
TEMPLATES = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                               autoescape=True, trim_blocks=True, lstrip_blocks=True)
TEMPLATES.filters["duration"] = duration
TEMPLATES.filters["iso"] = format_ms
TEMPLATES.filters["waited"] = lambda run: duration(durations(run, now_ms())[0])
TEMPLATES.filters["ran"] = lambda run: duration(durations(run, now_ms())[1])


class BadQuery(Exception):
    pass


class Pages:
    """The page handlers over the gateway's parts (GatewayParts)."""

    def __init__(self, services, authenticate):
        self.services = services
        self.authenticate = authenticate  # (request, resource or None) -> AuthResult

    @property
    def views(self):
        return self.services.journal.views

    async def run(self, fn, *args) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.services.executor, fn, *args)

    def viewer(self, request: web.Request) -> Viewer:
        return Viewer(self.authenticate(request, None))

    async def position(self) -> int:
        """The log position a page shows (read before its data: the live stream catches up from it)."""
        return await self.run(self.services.journal.store.last_event_position)

    # ------------------------------------------------------------ pages
    async def index(self, request: web.Request) -> web.Response:
        viewer = self.viewer(request)
        queues = None
        if viewer.may(access.TASK_QUEUES):
            rows = await self.run(self.views.task_queues_page, self.services.clock(), 0, 200)
            queues = [row["task_queue_id"] for row in rows]
        return page("index.html", title="taskjournal", viewer=viewer, queues=queues)

    async def go(self, request: web.Request) -> web.Response:
        """The start page's forms: an id typed in, the page it names."""
        kind, wanted = request.query.get("kind", ""), request.query.get("id", "").strip()
        paths = {"task": "/tasks/", "group": "/task-groups/", "queue": "/task-queues/"}
        if kind not in paths or not wanted:
            return problem(400, "Nothing to look up", "Give an id and what it is: a task, a group or a task queue.")
        raise web.HTTPFound(paths[kind] + quote(wanted, safe="/" if kind == "queue" else ""))

    async def group(self, request: web.Request) -> web.Response:
        group_id = request.match_info["taskGroupId"]
        viewer = self.viewer(request)
        refused = viewer.refusal(access.GROUP, taskGroupId=group_id)
        if refused:
            return refusal(viewer, refused, f"task group {group_id}")
        try:
            wanted_state, name, offset, limit = _group_query(request.query)
        except BadQuery as err:
            return problem(400, "Bad query", str(err))
        seen = await self.position()
        body = await self.run(self.views.group_body, group_id)
        if body is None:
            return problem(404, "No such task group", f"No task group has the id {group_id}.")
        # every member's state for the counts; statuses and definitions only of the tasks listed
        states = await self.run(self.views.group_states, group_id)
        counts = Counter(row["state"] for row in states)
        listed = [row["task_id"] for row in states if not wanted_state or row["state"] == wanted_state]
        if name:
            named = await self.run(self.views.tasks_by_id, listed, "definition")
            listed = [row["task_id"] for row in named if name.lower() in _name(_definition(row)).lower()]
        rows = await self.run(self.views.tasks_by_id, listed[offset:offset + limit], "definition, status")
        now = self.services.clock()
        shown = [(orjson.loads(row["status"]), _name(_definition(row))) for row in rows]
        tasks = [ListedTask.of(status, name, now) for status, name in shown]
        bars = timeline([run for status, name in shown for run in runs_of(status, name)], now)
        return page("group.html", title=f"Task group {group_id}", viewer=viewer, position=seen,
                    group=orjson.loads(body), group_id=group_id, counts=[(s, counts[s]) for s in STATES],
                    total=len(states), tasks=tasks, matching=len(listed), offset=offset, limit=limit,
                    state=wanted_state, name=name, timeline=bars, states=STATES,
                    more=_paging(request, offset, limit, len(listed)))

    async def task(self, request: web.Request) -> web.Response:
        task_id = request.match_info["taskId"]
        viewer = self.viewer(request)
        refused = viewer.refusal(access.TASK, taskId=task_id)
        if refused:
            return refusal(viewer, refused, f"task {task_id}")
        seen = await self.position()
        found = await self.run(self.views.tasks_by_id, [task_id], "definition, status")
        if not found:
            return problem(404, "No such task", f"No task has the id {task_id}.")
        definition, status = orjson.loads(found[0]["definition"]), orjson.loads(found[0]["status"])
        runs = [{**run, "artifacts": await self._artifacts(viewer, task_id, run["runId"])} for run in status["runs"]]
        return page("task.html", title=f"Task {_name(definition)}", viewer=viewer, position=seen, task_id=task_id,
                    definition=definition, status=status, runs=runs, name=_name(definition),
                    pretty=orjson.dumps(definition, option=orjson.OPT_INDENT_2).decode(),
                    timeline=timeline(runs_of(status, _name(definition)), self.services.clock()),
                    history=await self._history(viewer, task_id))

    async def _artifacts(self, viewer: Viewer, task_id: str, run_id: int) -> dict:
        refused = viewer.refusal(access.ARTIFACTS, taskId=task_id, runId=str(run_id))
        if refused:
            return {"refused": refused, "items": []}
        rows = await self.run(self.views.artifacts_page, task_id, run_id, "", MAX_ARTIFACTS)
        items = [{"name": row["name"], "storageType": row["storage_type"], "contentType": row["content_type"],
                  "expires": format_ms(row["expires"]), "refused": viewer.refusal(access.ARTIFACT, name=row["name"]),
                  "url": f"/api/queue/v1/task/{task_id}/runs/{run_id}/artifacts/{quote(row['name'], safe='')}"}
                 for row in rows]
        return {"refused": None, "items": items}

    async def _history(self, viewer: Viewer, task_id: str) -> dict:
        """The task's events with who caused them: `journal.views.task_history` (the
        history branch); until that exists the page shows the runs alone."""
        read = getattr(self.views, "task_history", None)
        if read is None:
            return {"available": False, "refused": None, "entries": []}
        refused = viewer.refusal(access.HISTORY, taskId=task_id)
        entries = [] if refused else await self.run(read, task_id)
        return {"available": True, "refused": refused, "entries": [_history_entry(e) for e in entries]}

    async def queue(self, request: web.Request) -> web.Response:
        provisioner, worker_type = request.match_info["provisionerId"], request.match_info["workerType"]
        queue_id = f"{provisioner}/{worker_type}"
        params = {"taskQueueId": queue_id, "provisionerId": provisioner, "workerType": worker_type}
        viewer = self.viewer(request)
        parts = {"pending": access.PENDING, "claimed": access.CLAIMED, "workers": access.WORKERS,
                 "info": access.TASK_QUEUE}
        refused = {part: viewer.refusal(expression, **params) for part, expression in parts.items()}
        if all(refused.values()):
            return refusal(viewer, Refusal({"AnyOf": [r.needed for r in refused.values() if r]}, viewer.client_id),
                           f"task queue {queue_id}")
        seen, now = await self.position(), self.services.clock()
        pending = None if refused["pending"] else await self.run(self.views.pending_count, queue_id, now)
        claimed = None if refused["claimed"] else await self.run(self.views.claimed_count, queue_id)
        info = None if refused["info"] else await self.run(self.views.task_queue, queue_id, now)
        workers = None if refused["workers"] else _workers(
            await self.run(self.views.workers_page, queue_id, 0, MAX_WORKERS), now)
        return page("queue.html", title=f"Task queue {queue_id}", viewer=viewer, position=seen, queue_id=queue_id,
                    pending=pending, claimed=claimed, info=info, workers=workers, refused=refused)


# ---------------------------------------------------------------- rendering
def page(template: str, code: int = 200, **values: Any) -> web.Response:
    html = TEMPLATES.get_template(template).render(**values)
    return web.Response(text=html, status=code, content_type="text/html", headers=HEADERS)


def problem(status: int, title: str, message: str) -> web.Response:
    return page("problem.html", status, title=title, message=message, viewer=None)


def refusal(viewer: Viewer, refused: Refusal, what: str) -> web.Response:
    """403 with what is missing; 401 for credentials (a bewit) that do not authenticate."""
    if viewer.failed:
        return problem(401, "Credentials not accepted", f"The credentials of this link were refused: "
                       f"{viewer.auth.message}. Open the page without them, or ask for a fresh link.")
    return page("refused.html", 403, title="Not allowed", what=what, refused=refused, viewer=None)


def _group_query(query) -> tuple[str, str, int, int]:
    state = query.get("state", "")
    if state and state not in STATES:
        raise BadQuery(f"state must be one of {', '.join(STATES)}")
    return state, query.get("name", ""), _integer(query, "offset", 0, 0, 10**9), \
        _integer(query, "limit", PAGE_SIZE, 1, MAX_PAGE_SIZE)


def _integer(query, name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise BadQuery(f"{name} must be a whole number from {low} to {high}")
    return int(text)


def _paging(request: web.Request, offset: int, limit: int, matching: int) -> dict:
    """Links to the previous and next pages of the task list, keeping the filters."""
    def at(start: int) -> str:
        return str(request.rel_url.update_query(offset=str(start), limit=str(limit)))
    return {"previous": at(max(offset - limit, 0)) if offset > 0 else None,
            "next": at(offset + limit) if offset + limit < matching else None}


def _definition(row: dict) -> dict:
    return orjson.loads(row["definition"])


@dataclass(frozen=True)
class ListedTask:
    """A row of a group's task list, ready to print (attributes: the template reads them fast)."""

    task_id: str
    name: str
    state: str
    runs: int
    waited: str
    ran: str
    worker: str

    @classmethod
    def of(cls, status: dict, name: str, now: int) -> "ListedTask":
        last = status["runs"][-1] if status["runs"] else None
        waited, ran = durations(last, now) if last else (None, None)
        worker = f"{last['workerGroup']}/{last['workerId']}" if last and last.get("workerId") else ""
        return cls(status["taskId"], name, status["state"], len(status["runs"]), duration(waited), duration(ran),
                   worker)


def _name(definition: dict) -> str:
    return definition.get("metadata", {}).get("name", "")


def _workers(rows: list[dict], now: int) -> list[dict]:
    """Workers as listWorkers shows them: the ones not expired (or still quarantined)."""
    return [{"group": r["worker_group"], "id": r["worker_id"], "firstClaim": format_ms(r["first_claim"]),
             "lastActive": format_ms(r["last_date_active"]), "latestTask": r["latest_task_id"],
             "latestRun": r["latest_run_id"],
             "quarantinedUntil": format_ms(r["quarantine_until"]) if r["quarantine_until"] > now else None}
            for r in rows if not (r["expires"] < now and r["quarantine_until"] < now)]


def _history_entry(entry: dict) -> dict:
    """One history entry for the page: the actor as one line of text."""
    actor = entry.get("actor") or {}
    if isinstance(actor, dict):
        who = actor.get("clientId") or actor.get("service") or actor.get("kind") or "unknown"
    else:
        who = str(actor)
    run = entry.get("runId", entry.get("run"))
    changes = entry.get("changes")
    return {"position": entry.get("position"), "time": entry.get("time"), "event": entry.get("event"),
            "actor": who, "run": "" if run is None else run, "reason": entry.get("reason") or "",
            "changes": _changes(changes)}


def _changes(changes: Any) -> str:
    """{"state": "completed", "retriesLeft": 4} as `state=completed retriesLeft=4`."""
    if not changes:
        return ""
    if not isinstance(changes, dict):
        return orjson.dumps(changes).decode()
    return " ".join(f"{key}={value if isinstance(value, str) else orjson.dumps(value).decode()}"
                    for key, value in changes.items())
