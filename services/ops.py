"""The operations side of every process's HTTP app: liveness
(`/__lbheartbeat__`), readiness (`/ready`: not draining, and the store and
broker answer), dependency health (`/__heartbeat__`), Prometheus metrics
(`/metrics`), and one middleware that counts, times and logs every request
and lets a draining process finish what it has (docs/adr/0020-metrics-and-drain.md)."""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from aiohttp import web

from taskjournal.shared.logs import fields
from taskjournal.shared.metrics import CONTENT_TYPE, HTTP_DURATION, HTTP_LONG_POLL, HTTP_REQUESTS, REGISTRY

access_log = logging.getLogger("taskjournal.access")
CHECK_TIMEOUT = 2.0  # seconds a dependency may take to answer a health check
LONG_POLLS = frozenset({"claimWork"})  # routes whose time is mostly waiting: timed apart (HTTP_LONG_POLL)
Check = Callable[[], Awaitable[None]]  # raises (or times out) when the dependency is down


class Health:
    """One process's state as its ops routes report it: whether it drains,
    and a check per dependency (`store` always; `broker` where a role talks
    to RabbitMQ)."""

    def __init__(self, journal, executor: Executor):
        self.draining = asyncio.Event()
        self.checks: dict[str, Check] = {}
        self.in_flight = 0

        async def store() -> None:
            await asyncio.get_running_loop().run_in_executor(executor, journal.views.position)

        self.add("store", store)

    def add(self, name: str, check: Check) -> None:
        self.checks[name] = check

    def start_draining(self) -> None:
        self.draining.set()
        REGISTRY.set("taskjournal_draining", 1)

    async def report(self) -> dict[str, str]:
        """Each dependency: "ok", or why it is not."""
        names = list(self.checks)
        results = await asyncio.gather(*(asyncio.wait_for(self.checks[n](), CHECK_TIMEOUT) for n in names),
                                       return_exceptions=True)
        return {name: "ok" if not isinstance(result, BaseException) else _why(result)
                for name, result in zip(names, results)}


def _why(error: BaseException) -> str:
    if isinstance(error, asyncio.TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:g} s"
    return f"{type(error).__name__}: {error}"[:300]


HEALTH = web.AppKey("health", Health)
def _request_key(name: str) -> Any:
    """A key of request storage: typed where aiohttp has them (3.14), else a plain name."""
    make = getattr(web, "RequestKey", None)
    return make(name, object) if make is not None else f"taskjournal.{name}"


ROUTE = _request_key("route")  # the API endpoint's name, set by the gateway's dispatch
CLIENT = _request_key("client")  # the authenticated clientId
REQUEST_ID = _request_key("request_id")


def add_ops_routes(app: web.Application, journal, executor: Executor) -> None:
    """The ops routes; they report `app[HEALTH]` (a process replaces it with its own, see `observe`)."""
    app[HEALTH] = Health(journal, executor)

    async def ready(request: web.Request) -> web.Response:
        health = request.app[HEALTH]
        if health.draining.is_set():
            return web.json_response({"ready": False, "draining": True}, status=503)
        checks = await health.report()
        ok = all(state == "ok" for state in checks.values())
        return web.json_response({"ready": ok, "checks": checks}, status=200 if ok else 503)

    async def heartbeat(request: web.Request) -> web.Response:
        checks = await request.app[HEALTH].report()
        down = {name: state for name, state in checks.items() if state != "ok"}
        body = {"status": "error" if down else "ok",
                "checks": {name: "error" if name in down else "ok" for name in checks}, "details": down}
        return web.json_response(body, status=503 if down else 200)

    async def alive(request: web.Request) -> web.Response:
        return web.json_response({})

    async def metrics(request: web.Request) -> web.Response:
        text = await asyncio.get_running_loop().run_in_executor(executor, REGISTRY.render)
        return web.Response(body=text, headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/ready", ready)
    app.router.add_get("/__lbheartbeat__", alive)
    app.router.add_get("/__heartbeat__", heartbeat)
    app.router.add_get("/metrics", metrics)


def observe(app: web.Application, health: Health) -> None:
    """Serve `app` as part of a process: its ops routes report `health`, and
    every request is counted, timed and logged (call before the app starts)."""
    app[HEALTH] = health
    app.middlewares.append(_observed(health))
    REGISTRY.read_with("taskjournal_http_in_flight_requests", lambda: [((), health.in_flight)])


def _observed(health: Health):
    @web.middleware
    async def middleware(request: web.Request, handler):
        started = time.perf_counter()
        health.in_flight += 1
        status = 500
        try:
            response = await handler(request)
            status = response.status
            if health.draining.is_set() and not response.prepared:
                response.force_close()  # keep-alive clients reconnect to a process that is not going away
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        finally:
            health.in_flight -= 1
            _record(request, status, time.perf_counter() - started)

    return middleware


def _record(request: web.Request, status: int, seconds: float) -> None:
    route = request.get(ROUTE) or _resource(request)
    histogram = HTTP_LONG_POLL if route in LONG_POLLS else HTTP_DURATION
    REGISTRY.inc(HTTP_REQUESTS, route=route, status=status)
    REGISTRY.observe(histogram, seconds, route=route, status=status)
    if access_log.isEnabledFor(logging.INFO):
        # never the query (bewits, signatures) nor any header but the ids
        access_log.info("request", extra=fields(
            method=request.method, route=route, path=request.path, status=status,
            durationMs=round(seconds * 1000, 3), clientId=request.get(CLIENT),
            requestId=request_id_of(request), traceId=request.headers.get("x-taskcluster-trace-id")))


def request_id_of(request: web.Request) -> str:
    """This request's id, made here once (API answers carry it as x-for-request-id)."""
    found = request.get(REQUEST_ID)
    if found is None:
        found = request[REQUEST_ID] = str(uuid.uuid4())
    return found


def _resource(request: web.Request) -> str:
    """A route name for requests outside the APIs: the route's pattern (`/metrics`), never the raw path."""
    info = request.match_info
    route = getattr(info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "unmatched"
