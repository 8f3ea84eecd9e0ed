"""Fuzzing every Queue endpoint of the real server process: route parameters,
query and body drawn from the endpoint's request schema and beyond it (wrong
types, deep nesting, huge numbers, unicode, bytes that are not JSON, wrong
content types, other methods, bad credentials).

Whatever arrives, the answer is never a 5xx; a 4xx under /api/queue/v1 has
Taskcluster's error body (`code`, `message`, `requestInfo`) except the two
routing answers the behaviour spec gives a body of their own (§1.1: no route
is `{"error": "Not found"}`; a known route with another method is 405
`{"error": "Method not allowed"}`); and the server still answers ping.

Examples are bounded for CI (about 200 in all, a few tens of seconds): set
TASKJOURNAL_FUZZ_EXAMPLES for a longer run (per store; PostgreSQL gets a
quarter of it as a smoke set)."""

import json
import os
import random
from functools import cache
from pathlib import Path
from urllib.parse import quote, urlencode

import mohawk
import pytest
import requests
import taskcluster
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from taskjournal.services.api_gateway.endpoints import ENDPOINTS
from taskjournal.services.api_gateway.routing import PARAM_PATTERNS
from taskjournal.shared.domain.time import format_ms, now_ms

from tests.support.server import ROOT_CLIENT_ID, task_definition

API = "/api/queue/v1"
EXAMPLES = int(os.environ.get("TASKJOURNAL_FUZZ_EXAMPLES", "160"))
SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"  # the request schemas the gateway applies
ROUTING_BODIES = ({"error": "Not found"}, {"error": "Method not allowed"})
DAY = 24 * 3600 * 1000


# ------------------------------------------------------------------ values beyond any schema

def deep(levels: int):
    """Arrays and objects nested `levels` levels (the gateway refuses more than 100)."""
    value = []
    for level in range(levels - 1):
        value = [value] if level % 2 else {"k": value}
    return value


SCALARS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=30), st.integers(), st.floats(allow_nan=False),
    st.sampled_from([10 ** 40, -(2 ** 63), 2 ** 64, 1e308, -0.0, "", "\u0000", "\ud7ff\U0001f600", "\u202e"]),
)
ANY_JSON = st.one_of(
    st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                 max_leaves=12),
    st.sampled_from([99, 100, 101, 254, 300]).map(deep),
)


# ------------------------------------------------------------------ values from a request schema

TIMES = {  # createTask's time rules, so that schema-true bodies also get past them: offsets from now
    "created": (-10 * 60 * 1000, 10 * 60 * 1000), "deadline": (3600 * 1000, 4 * DAY), "expires": (5 * DAY, 400 * DAY)}
ODD_TIMES = ["9999-12-31T23:59:59.999-01:00", "0001-01-01T00:00:00+23:59", "2026-02-30T00:00:00Z",
             "1970-01-01T00:00:00.123456789Z", "2030-01-01T24:00:00Z", "yesterday"]


def date_time(name: str) -> st.SearchStrategy:
    low, high = TIMES.get(name, (-DAY, DAY))
    near = st.integers(low, high).map(lambda offset: format_ms(now_ms() + offset))
    return st.one_of(near, near, near, st.sampled_from(ODD_TIMES))


def from_schema(schema: dict, strict: bool, name: str = "") -> st.SearchStrategy:
    """Values of `schema`; unless `strict`, any field may be anything at all (a quarter of the time)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties, required = schema.get("properties", {}), set(schema.get("required", ()))
        if not properties:
            return st.dictionaries(st.text(max_size=10), ANY_JSON, max_size=3)
        return st.fixed_dictionaries(
            {key: field(sub, strict, key) for key, sub in properties.items() if key in required},
            optional={key: field(sub, strict, key) for key, sub in properties.items() if key not in required})
    if kind == "array":
        items = field(schema.get("items", {}), strict, name)
        unique = (lambda v: json.dumps(v, sort_keys=True)) if schema.get("uniqueItems") else None
        return st.lists(items, max_size=min(schema.get("maxItems", 4), 4), unique_by=unique)
    if kind == "string":
        if schema.get("format") == "date-time":
            return date_time(name)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda s: schema.get("minLength", 0) <= len(s) <= schema.get("maxLength", 10 ** 6))
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(schema.get("minimum", -(2 ** 31)), schema.get("maximum", 2 ** 31))
    if kind == "boolean":
        return st.booleans()
    return ANY_JSON


def field(schema: dict, strict: bool, name: str) -> st.SearchStrategy:
    by_schema = from_schema(schema, strict, name)
    return by_schema if strict else st.one_of(by_schema, by_schema, by_schema, ANY_JSON)


@cache
def schema_of(name: str) -> dict:
    return json.loads((SCHEMAS / f"{name}.json").read_text())


def body_for(endpoint, strict: bool) -> st.SearchStrategy:
    """(bytes or None, content type or None)."""
    value = from_schema(schema_of(endpoint.input), strict) if endpoint.input else st.just({})
    if strict:
        return st.tuples(value.map(lambda v: json.dumps(v).encode()), st.just("application/json"))
    as_json = st.one_of(value, ANY_JSON).map(lambda v: json.dumps(v).encode())
    not_json = st.one_of(
        st.binary(max_size=40),
        st.sampled_from([b"{", b"[1,]", b"1e999", b"9" * 5000, b'{"a": NaN}', b"\xff\xfe", b'"\\ud800"', b"null",
                         b"[" * 2000 + b"]" * 2000, b"{}" * 3]),
    )
    data = st.one_of(as_json, as_json, as_json, not_json, st.none())
    content_type = st.sampled_from(["application/json", "application/json", "application/json; charset=utf-8",
                                    "text/plain", "application/x-www-form-urlencoded", None])
    return st.tuples(data, content_type)


# ------------------------------------------------------------------ URLs

def param(name: str, known: dict, strict: bool) -> st.SearchStrategy:
    by_pattern = st.from_regex(PARAM_PATTERNS[name], fullmatch=True) if name in PARAM_PATTERNS else st.text()
    if name == "runId":
        by_pattern = st.integers(0, 3).map(str)
    if strict:
        return st.one_of(st.just(known[name]), by_pattern) if name in known else by_pattern
    choices = [by_pattern, st.text(max_size=30), st.sampled_from(["", "%", "..", "a/b", "\u0000", "9" * 40])]
    if name in known:
        choices.append(st.just(known[name]))
    return st.one_of(choices)


def path_for(endpoint, params: dict, raw_slash: bool) -> str:
    path = endpoint.route
    for name, value in params.items():
        encoded = quote(value, safe="/" if raw_slash else "")
        path = path.replace(f"<{name}>", encoded)
    return API + path


QUERY = st.dictionaries(
    st.sampled_from(["limit", "continuationToken", "bewit", "x", "limit\u00e9"]),
    st.one_of(st.integers(0, 2000).map(str), st.text(max_size=20), st.just("9" * 5000), st.just("0" * 3000 + "7")),
    max_size=3)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])


@st.composite
def requests_for(draw, known: dict) -> dict:
    """A third of the requests are what a client would send (and some succeed); the rest anything."""
    endpoint = draw(st.sampled_from(ENDPOINTS))
    strict = draw(st.integers(0, 2)) == 0
    params = {name: draw(param(name, known, strict)) for name in endpoint.url_params}
    method = endpoint.method if strict else draw(st.one_of(st.just(endpoint.method), METHODS))
    query = draw(st.fixed_dictionaries({}, optional={"limit": st.integers(0, 5).map(str)}) if strict else QUERY)
    data, content_type = draw(body_for(endpoint, strict))
    auth = "signed" if strict else draw(st.sampled_from(["signed", "signed", "none", "garbage"]))
    url = path_for(endpoint, params, raw_slash=draw(st.booleans()))
    if query and endpoint.query:
        url += "?" + urlencode(query)
    elif query and not strict:
        url += "?" + urlencode(query)
    return {"endpoint": endpoint.name, "method": method, "url": url, "data": data, "content_type": content_type,
            "auth": auth}


# ------------------------------------------------------------------ sending and checking

def send(server, request: dict) -> requests.Response:
    url = server.root_url + request["url"]
    headers = {}
    if request["content_type"] is not None:
        headers["Content-Type"] = request["content_type"]
    if request["auth"] == "signed":
        sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}, url,
                               request["method"], content=request["data"] or b"",
                               content_type=headers.get("Content-Type", ""))
        headers["Authorization"] = sender.request_header
    elif request["auth"] == "garbage":
        headers["Authorization"] = random.choice(['Hawk id="x"', "Bearer \u00e9", 'Hawk id="", ts="1e9"', "Hawk"])
    return requests.request(request["method"], url, data=request["data"], headers=headers, timeout=60)


def check(reply: requests.Response, request: dict) -> None:
    assert reply.status_code < 500, (request, reply.status_code, reply.text[:500])
    if reply.status_code < 400 or request["method"] == "HEAD":
        return
    assert reply.headers.get("Content-Type", "").startswith("application/json"), (request, reply.text[:300])
    body = reply.json()
    if body in ROUTING_BODIES:
        return
    assert isinstance(body.get("code"), str) and isinstance(body.get("message"), str), (request, body)
    assert set(body) == {"code", "message", "requestInfo"}, (request, body)


@pytest.fixture(scope="module")
def known(server) -> dict:
    """Ids that exist, so some requests get past the 404s."""
    queue_id = f"fuzz-prov/w{random.randrange(16 ** 8):08x}"
    task_id = taskcluster.slugId()
    server.queue().createTask(task_id, task_definition(queue_id))
    return {"taskId": task_id, "taskGroupId": task_id, "taskQueueId": queue_id, "runId": "0"}


def run_fuzz(server, known: dict, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
    @given(request=requests_for(known))
    def one(request):
        reply = send(server, request)
        event(f"{request['endpoint']} {reply.status_code}")  # shown by --hypothesis-show-statistics
        check(reply, request)

    one()
    assert requests.get(server.root_url + API + "/ping", timeout=10).json()["alive"] is True


def test_no_request_to_any_endpoint_gets_a_5xx(server, known, request):
    run_fuzz(server, known, EXAMPLES if "sqlite" in request.node.callspec.id else max(EXAMPLES // 4, 10))

