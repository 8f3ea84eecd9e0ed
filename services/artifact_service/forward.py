"""The api-gateway's forwarding of object-service calls to the artifact-service
(`taskjournal stack`, or a cluster without an ingress rule for
`/api/object/v1/`): the JSON calls only, small by construction; bytes go to
the data URLs, never through here. The Host header is kept: the
artifact-service checks Hawk against the host the client signed for."""

import logging

import aiohttp
from aiohttp import web
from yarl import URL

from taskjournal.services.api_gateway.errors import ApiError, error_body
from taskjournal.services.api_gateway.responses import json_response

from .endpoints import OBJECT_PREFIX

log = logging.getLogger("taskjournal.gateway")
# hop-by-hop headers, and the body's framing (the body is re-sent whole, already decoded by our server)
DROPPED = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
           "proxy-connection", "content-length", "content-encoding"}
TIMEOUT = aiohttp.ClientTimeout(total=60)


def add_object_forwarding(app: web.Application, target: str) -> None:
    target = target.rstrip("/")
    sessions: list[aiohttp.ClientSession] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        if not sessions:
            sessions.append(aiohttp.ClientSession(timeout=TIMEOUT, auto_decompress=False))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED}
        body = await request.read()  # data=None for none: aiohttp would add a Content-Type, which Hawk signs
        try:
            async with sessions[0].request(request.method, URL(target + request.raw_path, encoded=True),
                                           headers=headers, data=body or None, allow_redirects=False) as reply:
                data = await reply.read()
                kept = {k: v for k, v in reply.headers.items() if k.lower() not in DROPPED}
                return web.Response(status=reply.status, body=data, headers=kept)
        except (aiohttp.ClientError, TimeoutError) as err:
            log.warning("cannot reach the artifact-service at %s: %s", target, err)
            failure = ApiError("ServiceUnavailable", 503, "The object service cannot be reached; try again.")
            return json_response(error_body(failure, "forward", {}, {}), failure.status)

    async def close(app: web.Application) -> None:
        for session in sessions:
            await session.close()

    app.on_cleanup.append(close)
    app.router.add_route("*", OBJECT_PREFIX + "/{tail:[\\s\\S]*}", forward)
