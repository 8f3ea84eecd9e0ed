"""The artifact-service's aiohttp application: the object service's API
through the gateway's request pipeline (Hawk, scopes, Taskcluster errors)
and, for the file back end, the data plane."""

from concurrent.futures import Executor
from dataclasses import dataclass, field

from aiohttp import web

from taskjournal.services.api_gateway.app import RAW_BODIES, Gateway, _not_found, _robots
from taskjournal.services.api_gateway.unparsable import answer_in_json, expect_handler
from taskjournal.services.ops import add_ops_routes
from taskjournal.shared.auth.hawk import Authenticator
from taskjournal.shared.config import Settings
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import Journal
from taskjournal.shared.storage import BlobStore
from taskjournal.shared.storage.files import FileBlobStore
from taskjournal.shared.version import version_info

from .data import add_data_routes
from .endpoints import OBJECT_ENDPOINTS, OBJECT_PREFIX

MAX_BODY = 10 * 1024 * 1024  # JSON calls; blob PUTs stream past it


@dataclass
class ObjectServiceParts:
    settings: Settings
    journal: Journal
    authenticator: Authenticator
    executor: Executor
    blobs: BlobStore
    version: dict = field(default_factory=version_info)
    clock = staticmethod(now_ms)


def add_artifact_routes(app: web.Application, services: ObjectServiceParts) -> None:
    """The object service's API and, for the file back end, the data plane.
    The server must leave request bodies as sent (auto_decompress off: a gzip
    artifact is stored as uploaded); the JSON calls are decoded by the pipeline."""
    gateway = Gateway(services, OBJECT_ENDPOINTS, OBJECT_PREFIX)
    app[RAW_BODIES] = True
    app.router.add_route("*", OBJECT_PREFIX + "/{tail:[\\s\\S]*}", gateway.dispatch, expect_handler=expect_handler)
    if isinstance(services.blobs, FileBlobStore):  # S3 serves its own data plane
        add_data_routes(app, services.blobs)


def create_app(services: ObjectServiceParts) -> web.Application:
    """The artifact-service on its own (`taskjournal run artifact-service`)."""
    app = web.Application(client_max_size=MAX_BODY)
    answer_in_json(app)
    add_ops_routes(app, services.journal, services.executor)

    async def version(request):
        return web.json_response(services.version)

    app.router.add_get("/__version__", version)
    app.router.add_get("/robots.txt", _robots)
    add_artifact_routes(app, services)
    app.router.add_route("*", "/{tail:[\\s\\S]*}", _not_found, expect_handler=expect_handler)
    return app
