"""The operations endpoints every process serves: liveness, readiness (the
store answers) and Prometheus metrics."""

import asyncio

from aiohttp import web

from taskjournal.shared.metrics import REGISTRY


def add_ops_routes(app: web.Application, journal, executor) -> None:
    async def ready(request):
        await asyncio.get_running_loop().run_in_executor(executor, journal.views.position)
        return web.json_response({"ready": True})

    async def alive(request):
        return web.json_response({})

    async def metrics(request):
        return web.Response(text=REGISTRY.render(), content_type="text/plain")

    app.router.add_get("/ready", ready)
    app.router.add_get("/__lbheartbeat__", alive)
    app.router.add_get("/__heartbeat__", alive)
    app.router.add_get("/metrics", metrics)
