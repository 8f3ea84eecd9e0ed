"""The api-gateway: an aiohttp application serving the Queue API.

Every request goes through upstream's pipeline in upstream's order (behaviour
spec §1.2): body parsing, authentication with the scope checks that need only
URL parameters, URL and query validation, body schema, handler."""

import asyncio
import hashlib
import hmac
import logging
import zlib
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from taskjournal.services.ops import CLIENT, ROUTE, add_ops_routes, request_id_of
from taskjournal.shared.actor import acting
from taskjournal.shared.auth import scopes as scope_rules
from taskjournal.shared.auth.clients import Client, ClientStore, load_config_file
from taskjournal.shared.auth.hawk import Authenticator, AuthRequest, AuthResult, host_and_port
from taskjournal.shared.config import Settings, roles_need
from taskjournal.shared.domain.errors import DomainError
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import Journal
from taskjournal.shared.schemas import SchemaError, validate
from taskjournal.shared.storage import BlobStore
from taskjournal.shared.version import version_info

from .claimwork import Claimer, PendingListener
from .context import Context, require
from .endpoints import ENDPOINTS
from .errors import (
    ApiError,
    error_body,
    from_domain,
    internal_error,
    invalid_arguments,
    malformed,
    pattern_message,
    schema_message,
)
from .journal_api import JOURNAL_ENDPOINTS, JOURNAL_PREFIX
from .responses import json_response
from .routing import API_PREFIX, Router, invalid_params, invalid_query
from .unparsable import answer_in_json, expect_handler
from .worker_info import WorkerInfo

log = logging.getLogger("taskjournal.gateway")
MAX_BODY = 10 * 1024 * 1024
# Bodies nested deeper than this are refused at the door (400 MalformedPayload). orjson cannot write
# JSON nested 255 levels or more, and replies wrap what a body carries: an error's requestInfo puts the
# body 2 levels down, a task definition's payload sits 4-5 levels down in listTaskGroup, claimWork,
# listPendingTasks... 100 leaves room for every wrapper and is far beyond any real task.
MAX_BODY_DEPTH = 100
ISSUER_ID = "static/taskjournal/queue"


@dataclass
class GatewayParts:
    """What the gateway's handlers work with (built by bootstrap.gateway_app; `ctx.services`)."""

    settings: Settings
    journal: Journal
    authenticator: Authenticator
    issuer: Client
    executor: Executor
    claimer: Claimer
    blobs: BlobStore | None = None  # s3 artifacts' bytes (signed URLs only: bytes never pass through here)
    version: dict = field(default_factory=version_info)
    workers: WorkerInfo = None  # type: ignore[assignment]  # made from the journal when not given
    clock = staticmethod(now_ms)

    def __post_init__(self) -> None:
        if self.workers is None:
            self.workers = WorkerInfo(self.journal)

    @property
    def claim_timeout_ms(self) -> int:
        return int(self.settings.claim_timeout * 1000)


def build_auth(settings: Settings) -> tuple[Authenticator, Client]:
    """Static clients (root, the queue's own issuer, a clients file) and roles.
    SettingError without root credentials: the issuer is derived from them."""
    roles_need(settings, ("api-gateway",))
    clients, roles = [], {"anonymous": list(settings.anonymous_scopes)}
    if settings.clients_file:
        file_clients, file_roles = load_config_file(settings.clients_file)
        clients += file_clients
        roles.update(file_roles)
    root_id, root_token = settings.root_client_id, settings.root_access_token
    assert root_id and root_token  # roles_need refused a gateway without them
    clients.append(Client(root_id, root_token, ("*",)))
    # The queue signs run credentials with a client of its own, derived from the root secret.
    issuer = Client(ISSUER_ID, hmac.new(root_token.encode(), b"taskjournal queue issuer", hashlib.sha256).hexdigest(),
                    ("*",))
    clients.append(issuer)
    return Authenticator(ClientStore(clients), scope_rules.Roles(roles)), issuer


class Gateway:
    """The request pipeline for one API (the queue's here; the object
    service reuses it with its own endpoints and prefix)."""

    def __init__(self, services, endpoints=ENDPOINTS, prefix: str = API_PREFIX):
        self.services = services
        self.router = Router(endpoints)
        self.prefix = prefix

    async def dispatch(self, request: web.Request) -> web.Response:
        path = request.raw_path.partition("?")[0][len(self.prefix):]
        if request.method == "OPTIONS":  # CORS preflight: browsers need the headers on an OK answer
            return json_response({})
        endpoint, params = self.router.match(request.method, path)
        if endpoint is None:
            if params:
                return web.json_response({"error": "Method not allowed"}, status=405,
                                         headers={"Allow": ",".join(params)})
            return web.json_response({"error": "Not found"}, status=404)
        request[ROUTE] = endpoint.name  # the name metrics and the access log use (services/ops.py)
        payload: Any = {}
        request_id = request_id_of(request)  # the same in the answer, the events it causes and the access log
        try:
            raw_body, payload = await _read_body(request)
            response = await self._handle(request, endpoint, params, raw_body, payload, request_id)
        except (ApiError, DomainError, SchemaError) as err:
            response = self._error(request, endpoint, params, payload,
                                   _as_api_error(err, self.services.settings.public_root_url), request_id)
        except Exception:
            log.exception("unexpected error in %s", endpoint.name)
            response = self._error(request, endpoint, params, payload, internal_error(), request_id)
        return response

    async def _handle(self, request, endpoint, params, raw_body, payload, request_id: str):
        ctx = Context(endpoint, params, dict(request.query), payload, self.services,
                      lambda: self._authenticate(request, raw_body), request_id)
        if endpoint.checked_early:
            require(ctx.auth, scope_rules.render(endpoint.scopes, params))
        bad = invalid_params(params)
        if bad:
            raise invalid_arguments("Invalid URL patterns:\n" + "\n".join(pattern_message(*b) for b in bad))
        problems = invalid_query(endpoint, ctx.query)
        if problems:
            raise invalid_arguments("\n".join(problems))
        if endpoint.input:
            if request.content_type != "application/json":
                raise malformed("Payload must be JSON with content-type: application/json "
                                f"got content-type: {request.headers.get('Content-Type', 'null')}")
            ctx.body = validate(endpoint.input, payload)
        with acting(ctx.actor):  # the events this request causes record its client (ADR 0015)
            result = await endpoint.handler(ctx)
        if isinstance(result, web.StreamResponse):  # a handler that answers other than JSON 200 (a redirect)
            return result
        return json_response(result, trace_id=request.headers.get("x-taskcluster-trace-id"), request_id=request_id)

    def _authenticate(self, request: web.Request, raw_body: bytes):
        result = authenticate(self.services.authenticator, request, raw_body)
        request[CLIENT] = result.client_id  # for the access log
        return result

    def _error(self, request, endpoint, params, payload, err: ApiError, request_id: str) -> web.Response:
        body = error_body(err, endpoint.name, params, payload)
        return json_response(body, err.status, err.headers, request.headers.get("x-taskcluster-trace-id"),
                             request_id)


def authenticate(authenticator: Authenticator, request: web.Request, raw_body: bytes = b"",
                 resource: str | None = None) -> AuthResult:
    """The caller's authority (Hawk header, bewit or anonymous); `resource`: the
    path and query a bewit was made for, when not the request's own (the web view's live stream)."""
    host, port = host_and_port(request.headers.get("Host"), request.secure, request.headers)
    return authenticator.authenticate(AuthRequest(
        method=request.method, resource=resource or request.raw_path, host=host, port=port,
        authorization=request.headers.get("Authorization"), content_type=request.headers.get("Content-Type"),
        body=raw_body))


def _as_api_error(err, root_url: str) -> ApiError:
    if isinstance(err, SchemaError):
        return ApiError("InputValidationError", 400, schema_message(root_url + err.schema_id, err.message))
    if isinstance(err, DomainError):
        return from_domain(err)
    return err


async def _read_body(request: web.Request) -> tuple[bytes, object]:
    """(raw bytes, parsed JSON or {}); only application/json bodies are parsed."""
    if request.content_length and request.content_length > MAX_BODY:
        raise ApiError("InputTooLarge", 413, f"Request body is larger than {MAX_BODY} bytes.")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise ApiError("InputTooLarge", 413, f"Request body is larger than {MAX_BODY} bytes.") from None
    except RequestPayloadError as err:  # e.g. a Content-Encoding the bytes do not follow
        raise malformed(f"Failed to read the request body: {err}") from None
    if request.app.get(RAW_BODIES):
        raw = _decoded(raw, request.headers.get("Content-Encoding", "identity"))
    if not raw or request.content_type != "application/json":
        return raw, {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise malformed(f"Failed to parse JSON: {err}") from None
    if not isinstance(parsed, (dict, list)):
        raise malformed("Failed to parse JSON: Must be an object or array")
    if nested_deeper_than(raw, parsed, MAX_BODY_DEPTH):
        raise malformed(f"Failed to parse JSON: nested deeper than {MAX_BODY_DEPTH} levels")
    return raw, parsed


# Set on an app whose server leaves request bodies as sent (auto_decompress off:
# the artifact-service stores gzip bytes as uploaded); API bodies are decoded here.
RAW_BODIES = web.AppKey("raw_bodies", bool)


def _decoded(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise malformed(f"Failed to read the request body: Can not decode content-encoding: {encoding}")
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib, detected from the header
    try:
        body = inflater.decompress(raw, MAX_BODY + 1)
    except zlib.error:
        raise malformed(f"Failed to read the request body: Can not decode content-encoding: {encoding}") from None
    if len(body) > MAX_BODY or inflater.unconsumed_tail:
        raise ApiError("InputTooLarge", 413, f"Request body is larger than {MAX_BODY} bytes.")
    return body


def nested_deeper_than(raw: bytes, parsed, limit: int) -> bool:
    """Whether arrays/objects nest more than `limit` levels (the top one is level 1)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:  # cheap: too few brackets to nest that deep
        return False
    level = [(parsed, 1)]
    while level:
        value, depth = level.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        level.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


async def _robots(request):
    return web.Response(text="User-Agent: *\nDisallow: /\n")


def create_app(services: GatewayParts, mount: Callable[[web.Application], None] | None = None) -> web.Application:
    """`mount` adds more routes (the artifact-service's, in `taskjournal dev`)
    before the catch-all 404."""
    gateway = Gateway(services)
    app = web.Application(client_max_size=MAX_BODY)
    answer_in_json(app)

    async def version(request):
        return web.json_response(services.version)

    async def wakeups_from_other_processes(app):
        # this process's commits wake claimWork through the Journal's listener; other processes' through NOTIFY
        listening = asyncio.create_task(PendingListener(services.journal.store, services.claimer.signal).run())
        # quarantines made through any process hold here within about a second (see worker_info.py)
        quarantines = asyncio.create_task(services.workers.keep_fresh(services.executor))
        yield
        listening.cancel()
        quarantines.cancel()

    app.cleanup_ctx.append(wakeups_from_other_processes)
    add_ops_routes(app, services.journal, services.executor)
    app.router.add_get("/__version__", version)
    app.router.add_get("/robots.txt", _robots)
    app.router.add_get("/schemas/journal/v1/{name}", _journal_schema)  # the outputs journal_reference names
    if mount is not None:
        mount(app)
    from taskjournal.services.web import add_web_routes  # the web view (ADR 0019); it imports this module

    add_web_routes(app, services)
    # [\s\S]: any character, a decoded %0A too (`.` would leave such paths to aiohttp's plain-text 404)
    app.router.add_route("*", API_PREFIX + "/{tail:[\\s\\S]*}", gateway.dispatch, expect_handler=expect_handler)
    ours = Gateway(services, JOURNAL_ENDPOINTS, JOURNAL_PREFIX)  # our own API (journal_api.py)
    app.router.add_route("*", JOURNAL_PREFIX + "/{tail:[\\s\\S]*}", ours.dispatch, expect_handler=expect_handler)
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _not_found, expect_handler=expect_handler)
    return app


async def _journal_schema(request):
    from taskjournal.shared.schemas import published

    schema = published().get(request.match_info["name"])
    if schema is None:
        return await _not_found(request)
    return web.Response(body=schema, content_type="application/json")


async def _not_found(request):
    return web.json_response({"error": "Not found"}, status=404)
