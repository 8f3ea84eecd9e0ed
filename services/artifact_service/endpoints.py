"""The object service's endpoints as in its v1 API reference (spec §9.2)."""

import re

from taskjournal.services.api_gateway import handlers as common
from taskjournal.services.api_gateway.routing import Endpoint

from . import objects as h

OBJECT_PREFIX = "/api/object/v1"
UPLOAD_SCOPE = "object:upload:<projectId>:<name>"
DOWNLOAD_SCOPE = "object:download:<name>"


def _endpoint(name: str, method: str, route: str, handler, scopes=None, input: str | None = None,
              rest: bool = False) -> Endpoint:
    """An Endpoint whose `name` is one path segment, or with `rest` the rest of
    the path (upstream's `(*)` parameters: startDownload, object, download)."""
    endpoint = Endpoint(name, method, route, handler, scopes, (), input)
    piece = "(?P<name>.+?)" if rest else "(?P<name>[^/]+)"
    if "<name>" in route:
        endpoint.regex = re.compile("^" + re.escape(route).replace(re.escape("<name>"), piece) + "/?$")
    return endpoint


OBJECT_ENDPOINTS = [
    _endpoint("ping", "GET", "/ping", common.ping),
    _endpoint("lbheartbeat", "GET", "/__lbheartbeat__", common.empty),
    _endpoint("version", "GET", "/__version__", common.version),
    _endpoint("heartbeat", "GET", "/__heartbeat__", common.empty),
    _endpoint("createUpload", "PUT", "/upload/<name>", h.create_upload, UPLOAD_SCOPE, "object-create-upload-request"),
    _endpoint("finishUpload", "POST", "/finish-upload/<name>", h.finish_upload, UPLOAD_SCOPE,
              "object-finish-upload-request"),
    _endpoint("startDownload", "PUT", "/start-download/<name>", h.start_download, DOWNLOAD_SCOPE,
              "object-download-object-request", rest=True),
    _endpoint("object", "GET", "/metadata/<name>", h.metadata, DOWNLOAD_SCOPE, rest=True),
    _endpoint("download", "GET", "/download/<name>", h.download, DOWNLOAD_SCOPE, rest=True),
]
