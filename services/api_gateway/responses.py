"""JSON responses with the headers upstream sends on every API reply."""

import json
import uuid
from dataclasses import dataclass, field

import orjson
from aiohttp import web

API_HEADERS = {
    "Cache-Control": "no-store no-cache must-revalidate",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Max-Age": "900",
    "Access-Control-Allow-Methods": "OPTIONS,GET,HEAD,POST,PUT,DELETE,TRACE,CONNECT",
    "Access-Control-Request-Method": "*",
    "Access-Control-Allow-Headers": "X-Requested-With,Content-Type,Authorization,Accept,Origin,Cache-Control",
    "X-Content-Type-Options": "nosniff",
}


class Raw(str):
    """A body that is already JSON text (read models store it so)."""


@dataclass
class Reply:
    """A handler's answer other than 200: a status (303, 424, 204 without a
    body, ...) and extra headers (e.g. Location)."""

    body: object
    status: int = 200
    headers: dict = field(default_factory=dict)


def json_response(body, status: int = 200, headers: dict | None = None, trace_id: str | None = None,
                  request_id: str | None = None) -> web.Response:
    request_id = request_id or str(uuid.uuid4())
    all_headers = {**API_HEADERS, "x-for-trace-id": trace_id or str(uuid.uuid4()),
                   "x-for-request-id": request_id, **(headers or {})}
    if isinstance(body, Reply):
        return json_response(body.body, body.status, {**(headers or {}), **body.headers}, trace_id, request_id)
    if status == 204:
        return web.Response(status=204, headers=all_headers)
    data = body.encode() if isinstance(body, Raw) else dumps(body)
    return web.Response(body=data, status=status, content_type="application/json", charset="utf-8",
                        headers=all_headers)


def dumps(body) -> bytes:
    """JSON bytes. orjson cannot nest 255 levels; a task stored before bodies
    were limited in depth (app.MAX_BODY_DEPTH) can reach that inside a reply's
    wrappers, so those few replies are written by the standard library."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
