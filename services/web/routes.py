"""Where the web view lives under the root URL. None of these paths is the
API's (/api/...) nor an ops route (/ready, /metrics, /__heartbeat__, ...)."""

import asyncio
import re
from pathlib import Path

from aiohttp import web

from . import access
from .access import Viewer
from .live import KEEPALIVE_S, MIN_GAP_S, LogFollower, Watcher, group_watcher, queue_watcher, task_watcher
from .pages import Pages

STATIC = Path(__file__).parent / "static"
# The pages a live stream may follow, by their paths.
TASK_PAGE = re.compile(r"^/tasks/(?P<taskId>[^/?]+)$")
GROUP_PAGE = re.compile(r"^/task-groups/(?P<taskGroupId>[^/?]+)$")
QUEUE_PAGE = re.compile(r"^/task-queues/(?P<provisionerId>[^/?]+)/(?P<workerType>[^/?]+)$")


def add_web_routes(app: web.Application, services) -> None:
    from taskjournal.services.api_gateway.app import authenticate

    pages = Pages(services, lambda request, resource: authenticate(services.authenticator, request,
                                                                    resource=resource))
    follower = LogFollower(services.journal, services.executor)
    live = Live(pages, follower)
    app.router.add_get("/", pages.index)
    app.router.add_get("/web/go", pages.go)
    app.router.add_get("/tasks/{taskId}", pages.task)
    app.router.add_get("/task-groups/{taskGroupId}", pages.group)
    app.router.add_get("/task-queues/{provisionerId}/{workerType}", pages.queue)
    app.router.add_get("/web/live", live.stream)
    app.router.add_static("/web/static", STATIC)

    async def close_streams(app: web.Application) -> None:
        await live.close()

    app.on_shutdown.append(close_streams)


class Live:
    """GET /web/live?page=<a page's path and query>&after=<its log position>:
    `changed` events while what that page shows changes. The stream is
    authorized as the page is (a bewit in the page's query counts)."""

    def __init__(self, pages: Pages, follower: LogFollower):
        self.pages, self.follower = pages, follower
        self.closing = asyncio.Event()

    async def stream(self, request: web.Request) -> web.StreamResponse:
        page = request.query.get("page", "")
        after = _position(request.headers.get("Last-Event-ID") or request.query.get("after", "0"))
        path = page.partition("?")[0]
        if not page.startswith("/") or after is None:
            raise web.HTTPBadRequest(text="page must be a page's path and after a log position")
        viewer = Viewer(self.pages.authenticate(request, page))
        watcher = await self._watcher(viewer, path)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        await self.follower.watch(watcher, after)
        try:
            await response.write(b"retry: 2000\n\n")
            await self._send_changes(response, watcher)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.follower.unwatch(watcher)
        return response

    async def _watcher(self, viewer: Viewer, path: str) -> Watcher:
        """What the page at `path` watches; 403 / 404 as the page would answer."""
        if match := TASK_PAGE.match(path):
            self._allow(viewer, access.TASK, match.groupdict())
            return task_watcher(match["taskId"])
        if match := GROUP_PAGE.match(path):
            self._allow(viewer, access.GROUP, match.groupdict())
            members = await self.pages.run(self.pages.views.group_member_ids, match["taskGroupId"])
            return group_watcher(match["taskGroupId"], members)
        if match := QUEUE_PAGE.match(path):
            params = {**match.groupdict(), "taskQueueId": f"{match['provisionerId']}/{match['workerType']}"}
            self._allow(viewer, {"AnyOf": [access.PENDING, access.CLAIMED, access.WORKERS, access.TASK_QUEUE]},
                        params)
            return queue_watcher()
        raise web.HTTPNotFound(text="no live page at that path")

    @staticmethod
    def _allow(viewer: Viewer, expression, params: dict) -> None:
        refused = viewer.refusal(expression, **params)
        if refused:
            raise web.HTTPForbidden(text="this page needs scopes: " + ", ".join(refused.scopes))

    async def _send_changes(self, response: web.StreamResponse, watcher: Watcher) -> None:
        closing = asyncio.ensure_future(self.closing.wait())
        try:
            while not self.closing.is_set():
                changed = asyncio.ensure_future(watcher.changed.wait())
                done, _ = await asyncio.wait({changed, closing}, timeout=KEEPALIVE_S,
                                             return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                if closing in done:
                    return
                if changed not in done:
                    await response.write(b": keep-alive\n\n")
                    continue
                watcher.changed.clear()
                await response.write(f"id: {watcher.position}\nevent: changed\ndata: {watcher.position}\n\n".encode())
                await asyncio.sleep(MIN_GAP_S)  # changes meanwhile make one more event, not one each
        finally:
            closing.cancel()

    async def close(self) -> None:
        self.closing.set()
        await self.follower.close()


def _position(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 19 else None
