"""The endpoint table and how a raw request path finds its endpoint.

Paths are matched still percent-encoded (ids may contain an encoded `/`);
parameters are decoded afterwards with decodeURIComponent semantics."""

import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable
from urllib.parse import unquote

from taskjournal.shared.auth.scopes import template_params

API_PREFIX = "/api/queue/v1"
SLUGID = r"^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$"
PARAM_PATTERNS = {
    "taskId": SLUGID,
    "taskGroupId": SLUGID,
    "runId": r"^[1-9]*[0-9]+$",
    "taskQueueId": r"^[a-zA-Z0-9-_]{1,38}/[a-z]([-a-z0-9]{0,36}[a-z0-9])?$",
    "name": r"^[\x20-\x7e]+$",  # artifact names: printable ASCII
    "provisionerId": r"^[a-zA-Z0-9-_]{1,38}$",
    # upstream's URL pattern is looser than the taskQueueId schema (Quirk Q10: a 500); the schema's, for a 400
    "workerType": r"^[a-z]([-a-z0-9]{0,36}[a-z0-9])?$",
    "workerGroup": r"^[a-zA-Z0-9-_]{1,38}$",
    "workerId": r"^[a-zA-Z0-9-_]{1,38}$",
}
QUERY_PATTERNS = {"continuationToken": r".", "limit": r"^[0-9]+$", "quarantined": r"^(true|false)$",
                  "after": r"^[0-9]{1,18}$", "asOf": r"."}  # the last two: our own API's (history_api.py)
REST_PARAMS = {"taskQueueId", "name"}  # may hold a raw `/` (upstream's `(*)` parameters)


@dataclass
class Endpoint:
    name: str
    method: str
    route: str
    handler: Callable[..., Awaitable]
    scopes: object = None
    query: tuple = ()
    input: str | None = None
    rest: bool = True  # False: a REST_PARAMS parameter is one (encoded) path segment here
    regex: re.Pattern = field(init=False)
    url_params: tuple = field(init=False)
    checked_early: bool = field(init=False)

    def __post_init__(self):
        self.url_params = tuple(re.findall(r"<(\w+)>", self.route))
        pattern = re.escape(self.route)
        for param in self.url_params:
            piece = "(?P<%s>.+?)" if param in REST_PARAMS and self.rest else "(?P<%s>[^/]+)"
            pattern = pattern.replace(re.escape(f"<{param}>"), piece % param)
        self.regex = re.compile(f"^{pattern}/?$")
        # Scope checks that need only URL parameters run before anything else (upstream order).
        self.checked_early = self.scopes is not None and template_params(self.scopes) <= set(self.url_params)


class Router:
    def __init__(self, endpoints: list[Endpoint]):
        self.endpoints = endpoints

    def match(self, method: str, raw_path: str):
        """(endpoint, decoded params), or (None, allowed methods) when nothing matches."""
        allowed = []
        for endpoint in self.endpoints:
            found = endpoint.regex.match(raw_path)
            if found:
                if endpoint.method == method or (method == "HEAD" and endpoint.method == "GET"):
                    return endpoint, {k: unquote(v) for k, v in found.groupdict().items()}
                allowed.append(endpoint.method)
        return None, allowed


def invalid_params(params: dict) -> list[tuple[str, str, str]]:
    return [(name, value, PARAM_PATTERNS[name]) for name, value in params.items()
            if name in PARAM_PATTERNS and not matches(PARAM_PATTERNS[name], value)]


def matches(pattern: str, value: str) -> bool:
    """RegExp.test as upstream runs it: a final `$` is the end of the string
    (Python's `$` also matches before a trailing newline, so an id ending in
    %0A would pass)."""
    if pattern.endswith("$"):
        pattern = pattern[:-1] + r"\Z"
    return re.search(pattern, value) is not None


def invalid_query(endpoint: Endpoint, query: dict) -> list[str]:
    problems = []
    for key, value in query.items():
        if key == "bewit":
            continue
        if key not in endpoint.query:
            problems.append(f"Query-string parameter: {key} is not supported!")
        elif key in QUERY_PATTERNS and not matches(QUERY_PATTERNS[key], value):
            problems.append(f'Query-string parameter: {key}="{value}" does not match expression: /{QUERY_PATTERNS[key]}/')
    return problems
