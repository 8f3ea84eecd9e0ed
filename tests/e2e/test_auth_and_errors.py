"""Authentication, authorization and the error body, as clients see them:
Hawk headers, temporary credentials, authorizedScopes, bewits (signed URLs),
scope expressions of the endpoints and Taskcluster's standard error format
(auth/client protocol spec §3-§8, behaviour spec §1, §7.0)."""

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request

import mohawk
import mohawk.bewit
import pytest
import requests
import taskcluster
from taskcluster.exceptions import TaskclusterAuthFailure, TaskclusterRestFailure

from tests.support.server import ROOT_CLIENT_ID, task_definition

API = "/api/queue/v1"
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
FOOTER = re.compile(r"\n\n---\n\n\* method:     (\S+)\n\* errorCode:  (\S+)\n\* statusCode: (\d+)\n"
                    r"\* time:       (" + TIME + r")$")


# ------------------------------------------------------------------ helpers

def slug() -> str:
    return taskcluster.slugId()


def root(server) -> dict:
    return {"clientId": ROOT_CLIENT_ID, "accessToken": server.token}


def temporary(server, scopes, name=None, start=-60, expiry=3600) -> dict:
    """Temporary credentials issued from the root client (seconds relative to now)."""
    now = dt.datetime.now(dt.timezone.utc)
    issued = taskcluster.createTemporaryCredentials(
        ROOT_CLIENT_ID, server.token, now + dt.timedelta(seconds=start), now + dt.timedelta(seconds=expiry),
        scopes, name=name)
    return {key: _text(issued[key]) for key in ("clientId", "accessToken", "certificate")}


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def limited(server, credentials=None, **options) -> taskcluster.Queue:
    """A client with the given credentials (default root) and options; the
    client converts its credentials in place, so it gets a copy."""
    return taskcluster.Queue({**server.options(dict(credentials) if credentials else None), **options})


def signed(server, method, path, body=None, credentials=None, headers=None, ext=None, timestamp=None):
    """A raw request with a Hawk header made by mohawk (as the client does)."""
    credentials = credentials or root(server)
    url = server.root_url + API + path
    data = b"" if body is None else json.dumps(body).encode()
    content_type = "application/json" if data else ""
    sender = mohawk.Sender({"id": credentials["clientId"], "key": credentials["accessToken"], "algorithm": "sha256"},
                           url, method, content=data, content_type=content_type, ext=ext, _timestamp=timestamp)
    all_headers = {"Authorization": sender.request_header, **({"Content-Type": content_type} if data else {}),
                   **(headers or {})}
    return requests.request(method, url, data=data or None, headers=all_headers, timeout=10)


def failure(fn, *args, **kwargs):
    with pytest.raises((TaskclusterRestFailure, TaskclusterAuthFailure)) as info:
        fn(*args, **kwargs)
    return info.value


def expect(status: int, code: str, fn, *args, **kwargs):
    err = failure(fn, *args, **kwargs)
    assert (err.status_code, err.body.get("code")) == (status, code), err.body
    if status == 401:
        assert isinstance(err, TaskclusterAuthFailure)
    return err


def assert_error_body(body: dict, status: int, code: str, method: str, params: dict, payload=None) -> str:
    """The standard error body (§1.3); returns the message without the footer."""
    assert set(body) == {"code", "message", "requestInfo"}, body
    assert body["code"] == code
    footer = FOOTER.search(body["message"])
    assert footer, repr(body["message"])
    assert footer.groups()[:3] == (method, code, str(status))
    info = body["requestInfo"]
    assert set(info) == {"method", "params", "payload", "time"}, info
    assert info["method"] == method
    assert {k: v for k, v in info["params"].items() if k != "0"} == params
    assert info["payload"] == ({} if payload is None else payload)
    assert re.fullmatch(TIME, info["time"]), info["time"]
    assert footer.group(4) == info["time"]
    return body["message"][:footer.start()]


@pytest.fixture
def task_id(queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    return task_id


# ------------------------------------------------------------------ Hawk authentication (§3)

def test_wrong_access_token_is_401_authentication_failed(server, task_id):
    wrong = limited(server, {"clientId": ROOT_CLIENT_ID, "accessToken": "not-the-token"})
    err = expect(401, "AuthenticationFailed", wrong.status, task_id)
    message = assert_error_body(err.body, 401, "AuthenticationFailed", "status", {"taskId": task_id})
    assert "Bad mac" in message
    reply = signed(server, "GET", f"/task/{task_id}/status",
                   credentials={"clientId": ROOT_CLIENT_ID, "accessToken": "not-the-token"})
    assert reply.status_code == 401 and reply.headers.get("WWW-Authenticate", "").lower() == "hawk"


def test_unknown_client_is_401(server, task_id):
    stranger = limited(server, {"clientId": "nobody-at-all", "accessToken": "whatever-token"})
    err = expect(401, "AuthenticationFailed", stranger.status, task_id)
    assert "Client with clientId 'nobody-at-all' not found" in err.body["message"]


@pytest.mark.parametrize("call", ["createTask", "tasks-empty", "claimWork", "reportCompleted", "sealTaskGroup"])
def test_wrong_credentials_are_401_on_every_scoped_endpoint(server, queue, task_id, unique_queue, call):
    wrong = limited(server, {"clientId": ROOT_CLIENT_ID, "accessToken": "not-the-token"})
    calls = {
        "createTask": lambda: wrong.createTask(slug(), task_definition(unique_queue)),
        "tasks-empty": lambda: wrong.tasks({"taskIds": []}),  # renders to AllOf [] but still authenticates
        "claimWork": lambda: wrong.claimWork(unique_queue, {"workerGroup": "wg", "workerId": "w", "tasks": 1}),
        "reportCompleted": lambda: wrong.reportCompleted(task_id, "0"),
        "sealTaskGroup": lambda: wrong.sealTaskGroup(task_id),
    }
    expect(401, "AuthenticationFailed", calls[call])
    assert queue.status(task_id)["status"]["state"] == "pending"


def test_endpoints_without_scopes_ignore_bad_credentials(server):
    wrong = limited(server, {"clientId": ROOT_CLIENT_ID, "accessToken": "not-the-token"})
    assert wrong.ping()["alive"] is True
    assert wrong.heartbeat() == {}


def test_stale_hawk_timestamp_is_401_and_small_skew_is_accepted(server, task_id):
    stale = signed(server, "GET", f"/task/{task_id}/status", timestamp=int(time.time()) - 20 * 60)
    assert stale.status_code == 401 and stale.json()["code"] == "AuthenticationFailed"
    assert "Stale timestamp" in stale.json()["message"]
    skewed = signed(server, "GET", f"/task/{task_id}/status", timestamp=int(time.time()) - 10 * 60)
    assert skewed.status_code == 200, skewed.text


def test_payload_hash_must_match_the_body(server, unique_queue):
    url = server.root_url + API + "/tasks"
    signed_body, sent_body = b'{"taskIds":[]}', b'{"taskIds": [ ]}'
    sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}, url, "POST",
                           content=signed_body, content_type="application/json")
    reply = requests.post(url, data=sent_body, headers={"Authorization": sender.request_header,
                                                        "Content-Type": "application/json"}, timeout=10)
    assert reply.status_code == 401 and reply.json()["code"] == "AuthenticationFailed", reply.text
    good = requests.post(url, data=signed_body, headers={"Authorization": sender.request_header,
                                                         "Content-Type": "application/json"}, timeout=10)
    assert good.status_code == 200 and good.json() == {"tasks": []}


@pytest.mark.parametrize("header", ["Bearer abc", 'Hawk id="x"', "Hawk garbage",
                                    'Hawk id="a", ts="1", nonce="n", mac="m", bogus="1"'])
def test_malformed_authorization_headers_are_401(server, task_id, header):
    reply = requests.get(server.root_url + API + f"/task/{task_id}/status", headers={"Authorization": header},
                         timeout=10)
    assert reply.status_code == 401, reply.text
    assert_error_body(reply.json(), 401, "AuthenticationFailed", "status", {"taskId": task_id})


# ------------------------------------------------------------------ anonymous callers (§3.10)

def test_anonymous_status_is_403_insufficient_scopes(server, task_id):
    err = expect(403, "InsufficientScopes", server.anonymous_queue().status, task_id)
    message = assert_error_body(err.body, 403, "InsufficientScopes", "status", {"taskId": task_id})
    assert message == ("This request requires Taskcluster credentials that satisfy the following scope expression:"
                       f"\n\n```\nqueue:status:{task_id}\n```")


def test_anonymous_callers_are_never_401(server, unique_queue):
    anonymous = server.anonymous_queue()
    expect(403, "InsufficientScopes", anonymous.createTask, slug(), task_definition(unique_queue))
    expect(403, "InsufficientScopes", anonymous.claimWork, unique_queue,
           {"workerGroup": "wg", "workerId": "w", "tasks": 1})
    expect(403, "InsufficientScopes", anonymous.pendingTasks, unique_queue)


def test_empty_task_id_lists_need_no_scopes(server):
    anonymous = server.anonymous_queue()
    assert anonymous.tasks({"taskIds": []}) == {"tasks": []}
    assert anonymous.statuses({"taskIds": []}) == {"statuses": []}


# ------------------------------------------------------------------ temporary credentials (§4)

@pytest.mark.parametrize("name", [None, "e2e-temp/client"])
def test_temporary_credentials_work_only_for_their_scopes(server, queue, task_id, name):
    creds = temporary(server, [f"queue:status:{task_id}"], name=name)
    assert creds["clientId"] == (name or ROOT_CLIENT_ID)
    temp = limited(server, creds)
    assert temp.status(task_id) == queue.status(task_id)
    err = expect(403, "InsufficientScopes", temp.task, task_id)
    message = assert_error_body(err.body, 403, "InsufficientScopes", "task", {"taskId": task_id})
    assert message == (f"Client ID {creds['clientId']} does not have sufficient scopes and is missing the following "
                       f"scopes:\n\n```\nqueue:get-task:{task_id}\n```\n\nThis request requires the client to satisfy "
                       f"the following scope expression:\n\n```\nqueue:get-task:{task_id}\n```")
    expect(403, "InsufficientScopes", temp.status, slug())
    expect(403, "InsufficientScopes", temp.cancelTask, task_id)
    assert queue.status(task_id)["status"]["state"] == "pending"


def test_temporary_credentials_with_a_star_scope_cover_the_prefix(server, queue, task_id, unique_queue):
    temp = limited(server, temporary(server, ["queue:status:*"]))
    assert temp.status(task_id)["status"]["taskId"] == task_id
    expect(403, "InsufficientScopes", temp.pendingTasks, unique_queue)
    assert limited(server, temporary(server, ["queue:stat*"])).status(task_id)
    literal = limited(server, temporary(server, ["queue:*:" + task_id]))  # only a final * is a wildcard
    expect(403, "InsufficientScopes", literal.status, task_id)


@pytest.mark.parametrize("start, expiry", [(-7200, -3600), (3600, 7200)], ids=["expired", "not-yet-valid"])
def test_temporary_credentials_outside_their_validity_are_401(server, task_id, start, expiry):
    temp = limited(server, temporary(server, ["*"], start=start, expiry=expiry))
    expect(401, "AuthenticationFailed", temp.status, task_id)


def test_temporary_credentials_with_a_tampered_certificate_are_401(server, task_id):
    creds = temporary(server, [f"queue:status:{task_id}"])
    certificate = json.loads(creds["certificate"])
    certificate["scopes"] = ["*"]
    forged = limited(server, {**creds, "certificate": json.dumps(certificate)})
    expect(401, "AuthenticationFailed", forged.task, task_id)


def test_temporary_credentials_signed_with_another_key_are_401(server, task_id):
    now = dt.datetime.now(dt.timezone.utc)
    issued = taskcluster.createTemporaryCredentials(ROOT_CLIENT_ID, "some-other-secret", now - dt.timedelta(minutes=1),
                                                    now + dt.timedelta(hours=1), ["*"])
    forged = limited(server, {key: _text(issued[key]) for key in ("clientId", "accessToken", "certificate")})
    expect(401, "AuthenticationFailed", forged.status, task_id)


def test_run_credentials_grant_only_the_scopes_of_their_run(server, queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    [claim] = queue.claimWork(unique_queue, {"workerGroup": "wg", "workerId": "w1", "tasks": 1})["tasks"]
    run_queue = server.queue(claim["credentials"])
    expect(403, "InsufficientScopes", run_queue.status, task_id)  # the run scopes only
    expect(403, "InsufficientScopes", run_queue.reportCompleted, slug(), "0")
    assert run_queue.reportCompleted(task_id, "0")["status"]["state"] == "completed"


def crafted(server, scopes, start_ms, expiry_ms, name=None, seed=None, version=1, extra=None, sign_name=None):
    """Temporary credentials built by hand (§4.2/§4.3), for cases the client refuses to make."""
    seed = seed if seed is not None else slug() + slug()
    lines = ["version:1"]
    if name is not None:
        lines += [f"clientId:{sign_name or name}", f"issuer:{ROOT_CLIENT_ID}"]
    lines += [f"seed:{seed}", f"start:{start_ms}", f"expiry:{expiry_ms}", "scopes:", *scopes]
    key = server.token.encode()
    certificate = {"version": version, "scopes": scopes, "start": start_ms, "expiry": expiry_ms, "seed": seed,
                   "signature": base64.b64encode(hmac.new(key, "\n".join(lines).encode(), hashlib.sha256).digest()
                                                 ).decode(), **(extra or {})}
    if name is not None:
        certificate["issuer"] = ROOT_CLIENT_ID
    token = base64.urlsafe_b64encode(hmac.new(key, seed.encode(), hashlib.sha256).digest()).decode().rstrip("=")
    return {"clientId": name or ROOT_CLIENT_ID, "accessToken": token, "certificate": json.dumps(certificate)}


def now_ms() -> int:
    return int(time.time() * 1000)


DAY_MS = 24 * 3600 * 1000


def test_hand_made_temporary_credentials_are_accepted(server, task_id):
    creds = crafted(server, [f"queue:status:{task_id}"], now_ms() - 1000, now_ms() + 3600_000, name="e2e-hand/made")
    assert limited(server, creds).status(task_id)["status"]["taskId"] == task_id


@pytest.mark.parametrize("offsets", [(4 * 60_000, 3600_000), (-3600_000, -4 * 60_000), (-1000, 31 * DAY_MS - 1000)],
                         ids=["start-4min-ahead", "expired-4min-ago", "exactly-31-days"])
def test_certificate_validity_allows_five_minutes_of_clock_skew_and_31_days(server, task_id, offsets):
    now = now_ms()
    creds = crafted(server, ["*"], now + offsets[0], now + offsets[1])
    assert limited(server, creds).status(task_id)["status"]["taskId"] == task_id


CERTIFICATE_FAULTS = {
    "start-6min-ahead": dict(start=6 * 60_000, expiry=3600_000),
    "expired-6min-ago": dict(start=-3600_000, expiry=-6 * 60_000),
    "longer-than-31-days": dict(start=-1000, expiry=31 * DAY_MS),
    "version-2": dict(version=2),
    "seed-43-chars": dict(seed="s" * 43),
    "invalid-scope": dict(scopes=["caf\u00e9"]),
    "unnamed-with-client-id": dict(extra={"clientId": "someone"}),
    "named-signature-for-another-name": dict(name="e2e-one", sign_name="e2e-two"),
    "named-as-the-issuer": dict(name=ROOT_CLIENT_ID),
}


@pytest.mark.parametrize("fault", sorted(CERTIFICATE_FAULTS))
def test_invalid_certificates_are_401(server, task_id, fault):
    spec = dict(CERTIFICATE_FAULTS[fault])
    now = now_ms()
    start, expiry = now + spec.pop("start", -1000), now + spec.pop("expiry", 3600_000)
    creds = crafted(server, spec.pop("scopes", ["*"]), start, expiry, **spec)
    expect(401, "AuthenticationFailed", limited(server, creds).status, task_id)


def _hawk_header(server, url, method="GET", ext=None, hash_content=True, credentials=None):
    credentials = credentials or root(server)
    body = {"content": b"", "content_type": ""} if hash_content else {"always_hash_content": False}
    sender = mohawk.Sender({"id": credentials["clientId"], "key": credentials["accessToken"], "algorithm": "sha256"},
                           url, method, ext=ext, **body)
    return sender.request_header


def test_requests_without_a_payload_hash_are_accepted(server, task_id):
    path = API + f"/task/{task_id}/status"
    header = _hawk_header(server, server.root_url + path, hash_content=False)
    assert "hash=" not in header
    reply = requests.get(server.root_url + path, headers={"Authorization": header}, timeout=10)
    assert reply.status_code == 200, reply.text


def test_hawk_scheme_is_case_insensitive(server, task_id):
    path = API + f"/task/{task_id}/status"
    header = _hawk_header(server, server.root_url + path)
    reply = requests.get(server.root_url + path, headers={"Authorization": "hawk" + header[4:]}, timeout=10)
    assert reply.status_code == 200, reply.text


def test_authorization_header_longer_than_4096_characters_is_401(server, task_id):
    path = API + f"/task/{task_id}/status"
    header = _hawk_header(server, server.root_url + path, ext="x" * 4100)
    reply = requests.get(server.root_url + path, headers={"Authorization": header}, timeout=10)
    assert reply.status_code == 401 and reply.json()["code"] == "AuthenticationFailed"


@pytest.mark.parametrize("encoding", ["standard-padded", "standard-unpadded", "urlsafe-unpadded"])
def test_ext_is_decoded_in_either_base64_alphabet(server, task_id, encoding):
    # a certificate whose JSON encodes to both '+' and '/' in standard base64
    for attempt in range(500):
        creds = temporary(server, [f"queue:status:{task_id}", f"x:{attempt}?>?>~~"])
        raw = json.dumps({"certificate": json.loads(creds["certificate"])}, separators=(",", ":")).encode()
        standard = base64.b64encode(raw).decode()
        if "+" in standard and "/" in standard and standard.endswith("="):
            break
    else:
        pytest.fail("no certificate with both '+' and '/' in its base64 form")
    ext = {"standard-padded": standard, "standard-unpadded": standard.rstrip("="),
           "urlsafe-unpadded": base64.urlsafe_b64encode(raw).decode().rstrip("=")}[encoding]
    url = server.root_url + API + f"/task/{task_id}/status"
    reply = requests.get(url, headers={"Authorization": _hawk_header(server, url, ext=ext, credentials=creds)},
                         timeout=10)
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize("signed_for, headers", [
    ("https://{host}/", {"X-Forwarded-Proto": "https"}),
    ("http://{host}:8443/", {"X-Forwarded-Port": "8443"}),
    ("http://{host}:8443/", {"X-Forwarded-Port": "8443", "X-Forwarded-Proto": "https"}),
], ids=["forwarded-proto-https", "forwarded-port", "forwarded-port-wins"])
def test_hawk_behind_a_proxy_uses_the_forwarded_port(server, task_id, signed_for, headers):
    path = API + f"/task/{task_id}/status"
    host = server.root_url.split("//", 1)[1].split(":")[0]
    header = _hawk_header(server, signed_for.format(host=host).rstrip("/") + path)
    reply = requests.get(server.root_url + path, headers={"Authorization": header, **headers}, timeout=10)
    assert reply.status_code == 200, reply.text
    direct = requests.get(server.root_url + path, headers={"Authorization": header}, timeout=10)
    assert direct.status_code == 401  # without the proxy headers the port differs


def _ext(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize("ext", [{}, {"certificate": None, "authorizedScopes": None}, {"certificate": False},
                                 {"other": 1}], ids=["empty", "nulls", "false", "unknown-member"])
def test_falsy_or_unknown_ext_members_are_ignored(server, task_id, ext):
    url = server.root_url + API + f"/task/{task_id}/status"
    reply = requests.get(url, headers={"Authorization": _hawk_header(server, url, ext=_ext(ext))}, timeout=10)
    assert reply.status_code == 200, reply.text


def test_unparseable_ext_or_a_string_certificate_is_401(server, task_id):
    url = server.root_url + API + f"/task/{task_id}/status"
    creds = temporary(server, ["*"])
    for ext in ("bm90IGpzb24", _ext({"certificate": creds["certificate"]})):
        reply = requests.get(url, headers={"Authorization": _hawk_header(server, url, ext=ext, credentials=creds)},
                             timeout=10)
        assert reply.status_code == 401, (ext, reply.text)


def test_hawk_uses_the_host_header(server, task_id):
    path = API + f"/task/{task_id}/status"
    header = _hawk_header(server, "http://queue.example.com" + path)
    reply = requests.get(server.root_url + path, headers={"Authorization": header, "Host": "queue.example.com"},
                         timeout=10)
    assert reply.status_code == 200, reply.text


# ------------------------------------------------------------------ authorizedScopes (§5)

def test_authorized_scopes_restrict_the_root_client(server, task_id):
    restricted = limited(server, authorizedScopes=[f"queue:status:{task_id}"])
    assert restricted.status(task_id)["status"]["taskId"] == task_id
    expect(403, "InsufficientScopes", restricted.task, task_id)
    expect(403, "InsufficientScopes", restricted.status, slug())


def test_empty_authorized_scopes_leave_only_anonymous_scopes(server, task_id):
    nothing = limited(server, authorizedScopes=[])
    expect(403, "InsufficientScopes", nothing.status, task_id)


@pytest.mark.parametrize("value", ["queue:status:*", [1], ["caf\u00e9"]], ids=["string", "number", "non-ascii"])
def test_malformed_authorized_scopes_are_401(server, task_id, value):
    expect(401, "AuthenticationFailed", limited(server, authorizedScopes=value).status, task_id)


def test_authorized_scopes_beyond_the_credentials_are_401(server, task_id):
    creds = temporary(server, [f"queue:status:{task_id}"])
    greedy = limited(server, creds, authorizedScopes=["queue:get-task:*"])
    expect(401, "AuthenticationFailed", greedy.task, task_id)
    narrowed = limited(server, creds, authorizedScopes=[f"queue:status:{task_id}"])
    assert narrowed.status(task_id)["status"]["taskId"] == task_id


# ------------------------------------------------------------------ bewits / signed URLs (§6)

def _bewit_of(url: str) -> str:
    return url.rsplit("bewit=", 1)[1]


def test_signed_url_works_with_plain_http_clients(server, queue, task_id):
    url = queue.buildSignedUrl("status", task_id)
    with urllib.request.urlopen(url, timeout=10) as reply:
        assert reply.status == 200
        assert json.loads(reply.read()) == queue.status(task_id)
    assert requests.get(url, timeout=10).json() == queue.status(task_id)


def test_signed_url_with_a_query_string_works(server, queue, task_id):
    url = queue.buildSignedUrl("listTaskGroup", task_id, query={"limit": 1})
    assert "limit=1&bewit=" in url
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 200, reply.text
    assert [t["status"]["taskId"] for t in reply.json()["tasks"]] == [task_id]


def test_expired_signed_url_is_401(server, queue, task_id):
    reply = requests.get(queue.buildSignedUrl("status", task_id, expiration=-10), timeout=10)
    assert reply.status_code == 401
    message = assert_error_body(reply.json(), 401, "AuthenticationFailed", "status", {"taskId": task_id})
    assert "Access expired" in message
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(queue.buildSignedUrl("status", task_id, expiration=-10), timeout=10)
    assert info.value.code == 401


def test_tampered_signed_url_is_401(server, queue, task_id):
    url = queue.buildSignedUrl("status", task_id)
    bewit = _bewit_of(url)
    client_id, expiry, mac, ext = base64.urlsafe_b64decode(bewit + "=" * (-len(bewit) % 4)).decode().split("\\")
    later = "\\".join([client_id, str(int(expiry) + 3600), mac, ext]).encode()
    longer = base64.urlsafe_b64encode(later).decode().rstrip("=")
    assert requests.get(url.replace(bewit, longer), timeout=10).status_code == 401
    other_task = slug()
    moved = url.replace(f"/task/{task_id}/", f"/task/{other_task}/")
    assert requests.get(moved, timeout=10).status_code == 401
    assert requests.get(url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB"), timeout=10).status_code == 401


def test_signed_url_of_credentials_lacking_the_scope_is_403(server, task_id):
    creds = temporary(server, [f"queue:get-task:{task_id}"])
    url = limited(server, creds).buildSignedUrl("status", task_id)
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 403 and reply.json()["code"] == "InsufficientScopes"
    allowed = limited(server, creds).buildSignedUrl("task", task_id)
    assert requests.get(allowed, timeout=10).status_code == 200


def test_bewit_may_come_before_other_query_parameters(server, queue, task_id):
    url = queue.buildSignedUrl("listTaskGroup", task_id, query={"limit": 1})
    base, query = url.split("?", 1)
    limit, bewit = query.split("&")
    reply = requests.get(f"{base}?{bewit}&{limit}", timeout=10)
    assert reply.status_code == 200, reply.text


def test_empty_bewit_is_401(server, task_id):
    reply = requests.get(server.root_url + API + f"/task/{task_id}/status?bewit=", timeout=10)
    assert reply.status_code == 401 and reply.json()["code"] == "AuthenticationFailed"


def test_signed_url_of_temporary_credentials_works(server, queue, task_id):
    creds = temporary(server, [f"queue:status:{task_id}"], name="e2e-temp/signer")
    url = limited(server, creds).buildSignedUrl("status", task_id)
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 200 and reply.json() == queue.status(task_id)


def test_signed_url_honours_authorized_scopes(server, task_id):
    url = limited(server, authorizedScopes=[f"queue:get-task:{task_id}"]).buildSignedUrl("status", task_id)
    reply = requests.get(url, timeout=10)
    assert reply.status_code == 403 and reply.json()["code"] == "InsufficientScopes"


def test_signed_url_and_authorization_header_together_are_401(server, queue, task_id):
    url = queue.buildSignedUrl("status", task_id)
    sender = mohawk.Sender({"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}, url, "GET",
                           content=b"", content_type="")
    reply = requests.get(url, headers={"Authorization": sender.request_header}, timeout=10)
    assert reply.status_code == 401 and reply.json()["code"] == "AuthenticationFailed"


def test_signed_url_on_a_post_endpoint_is_401(server, queue):
    mohawk_resource = mohawk.base.Resource(
        credentials={"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}, method="GET",
        url=server.root_url + API + "/tasks", timestamp=int(time.time()) + 600, nonce="", ext="")
    url = server.root_url + API + "/tasks?bewit=" + mohawk.bewit.get_bewit(mohawk_resource).rstrip("=")
    assert requests.get(url, timeout=10).status_code == 405  # a valid bewit, but /tasks is POST-only
    reply = requests.post(url, json={"taskIds": []}, timeout=10)
    assert reply.status_code == 401 and reply.json()["code"] == "AuthenticationFailed"
    assert "Invalid method" in reply.json()["message"]


# ------------------------------------------------------------------ endpoint scope expressions (§7.0)

@pytest.mark.parametrize("method, verb", [("scheduleTask", "schedule-task"), ("rerunTask", "rerun-task"),
                                          ("cancelTask", "cancel-task")])
def test_scheduler_commands_accept_each_documented_scope_form(server, queue, unique_queue, method, verb):
    group_id = slug()

    def fresh():
        task_id = slug()
        queue.createTask(task_id, task_definition(unique_queue, taskGroupId=group_id, schedulerId="e2e-s",
                                                  projectId="e2e-proj", dependencies=[task_id]))
        return task_id

    allowed = [lambda t: [f"queue:{verb}:e2e-s/{group_id}/{t}"], lambda t: [f"queue:{verb}-in-project:e2e-proj"],
               lambda t: [f"queue:{verb}", f"assume:scheduler-id:e2e-s/{group_id}"]]
    for scopes in allowed:
        task_id = fresh()
        assert getattr(limited(server, temporary(server, scopes(task_id))), method)(task_id)["status"]["runs"]
    denied = [lambda t: [f"queue:{verb}-in-project:other-proj"], lambda t: [f"queue:{verb}"],
              lambda t: [f"queue:{verb}:e2e-s/{group_id}/{slug()}"]]
    for scopes in denied:
        task_id = fresh()
        expect(403, "InsufficientScopes", getattr(limited(server, temporary(server, scopes(task_id))), method), task_id)
        assert queue.status(task_id)["status"]["runs"] == []
    # 404 comes before 403 for these commands
    expect(404, "ResourceNotFound", getattr(limited(server, temporary(server, [])), method), slug())


def test_insufficient_scopes_message_reports_the_unsatisfied_part_of_an_any_of(server, queue, unique_queue):
    task_id, group_id = slug(), slug()
    queue.createTask(task_id, task_definition(unique_queue, taskGroupId=group_id))
    required = {"AnyOf": [f"queue:cancel-task:-/{group_id}/{task_id}", "queue:cancel-task-in-project:none",
                          {"AllOf": ["queue:cancel-task", f"assume:scheduler-id:-/{group_id}"]}]}
    creds = temporary(server, ["queue:cancel-task"], name="e2e-temp/canceller")
    err = expect(403, "InsufficientScopes", limited(server, creds).cancelTask, task_id)
    missing = {"AnyOf": required["AnyOf"][:2] + [f"assume:scheduler-id:-/{group_id}"]}
    message = assert_error_body(err.body, 403, "InsufficientScopes", "cancelTask", {"taskId": task_id})
    assert message == ("Client ID e2e-temp/canceller does not have sufficient scopes and is missing the following "
                       f"scopes:\n\n```\n{json.dumps(missing, indent=2)}\n```\n\nThis request requires the client to "
                       f"satisfy the following scope expression:\n\n```\n{json.dumps(required, indent=2)}\n```")


def test_insufficient_scopes_message_lists_only_the_missing_task_ids(server, queue, unique_queue):
    ids = [slug(), slug(), slug()]
    creds = temporary(server, [f"queue:get-task:{ids[0]}"], name="e2e-temp/reader")
    err = expect(403, "InsufficientScopes", limited(server, creds).tasks, {"taskIds": ids})
    message = assert_error_body(err.body, 403, "InsufficientScopes", "tasks", {}, payload={"taskIds": ids})
    required = {"AllOf": [f"queue:get-task:{t}" for t in ids]}
    missing = {"AllOf": [f"queue:get-task:{t}" for t in ids[1:]]}
    assert message == ("Client ID e2e-temp/reader does not have sufficient scopes and is missing the following "
                       f"scopes:\n\n```\n{json.dumps(missing, indent=2)}\n```\n\nThis request requires the client to "
                       f"satisfy the following scope expression:\n\n```\n{json.dumps(required, indent=2)}\n```")


def test_create_task_scope_expression_is_rendered_in_full(server, unique_queue):
    provisioner, worker_type = unique_queue.split("/")
    definition = task_definition(unique_queue, routes=["index.a"], scopes=["secrets:get:x"], priority="very-high")
    err = expect(403, "InsufficientScopes", server.anonymous_queue().createTask, slug(), definition)
    required = {"AllOf": ["secrets:get:x", "queue:route:index.a", "queue:create-task:project:none",
                          "queue:scheduler-id:-",
                          {"AnyOf": [f"queue:create-task:{p}:{provisioner}/{worker_type}"
                                     for p in ("highest", "very-high")]}]}
    message = err.body["message"][:FOOTER.search(err.body["message"]).start()]
    assert message == ("This request requires Taskcluster credentials that satisfy the following scope expression:"
                       f"\n\n```\n{json.dumps(required, indent=2)}\n```")


def test_create_task_needs_priority_scheduler_project_route_and_task_scopes(server, queue, unique_queue):
    base = ["queue:scheduler-id:-", "queue:create-task:project:none"]

    def attempt(held, **overrides):
        return limited(server, temporary(server, held)).createTask(slug(), task_definition(unique_queue, **overrides))

    assert attempt(base + [f"queue:create-task:high:{unique_queue}"], priority="high")["status"]["state"] == "pending"
    assert attempt(base + [f"queue:create-task:highest:{unique_queue}"], priority="high")
    assert attempt(base + [f"queue:create-task:lowest:{unique_queue}"], priority="normal")
    expect(403, "InsufficientScopes", attempt, base + [f"queue:create-task:low:{unique_queue}"], priority="high")
    expect(403, "InsufficientScopes", attempt, base + [f"queue:create-task:high:{unique_queue}-x"], priority="high")
    lowest = [f"queue:create-task:lowest:{unique_queue}"]
    expect(403, "InsufficientScopes", attempt, ["queue:create-task:project:none"] + lowest)
    expect(403, "InsufficientScopes", attempt, ["queue:scheduler-id:-"] + lowest)
    expect(403, "InsufficientScopes", attempt, base + lowest, routes=["index.e2e"])
    assert attempt(base + lowest + ["queue:route:index.*"], routes=["index.e2e"])
    expect(403, "InsufficientScopes", attempt, base + lowest, scopes=["secrets:get:e2e"])
    assert attempt(base + lowest + ["secrets:get:*"], scopes=["secrets:get:e2e"])


def test_scopes_ending_in_double_star_are_rejected_only_after_authorization(server, unique_queue):
    scopes = ["queue:scheduler-id:-", "queue:create-task:project:none", f"queue:create-task:lowest:{unique_queue}"]
    lacking = limited(server, temporary(server, scopes))
    expect(403, "InsufficientScopes", lacking.createTask, slug(), task_definition(unique_queue, scopes=["abc:**"]))
    holding = limited(server, temporary(server, scopes + ["abc:**"]))
    err = expect(400, "InputError", holding.createTask, slug(), task_definition(unique_queue, scopes=["abc:**"]))
    assert "scopes must not end with `**`" in err.body["message"]


def test_claim_work_needs_the_queue_and_worker_id_scopes(server, queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    work = {"workerGroup": "wg", "workerId": "w1", "tasks": 1}
    only_queue = limited(server, temporary(server, [f"queue:claim-work:{unique_queue}"]))
    expect(403, "InsufficientScopes", only_queue.claimWork, unique_queue, work)
    expect(403, "InsufficientScopes", limited(server, temporary(server, ["queue:worker-id:wg/w1"])).claimWork,
           unique_queue, work)
    expect(403, "InsufficientScopes", limited(server, temporary(server, [
        f"queue:claim-work:{unique_queue}", "queue:worker-id:wg/other"])).claimWork, unique_queue, work)
    worker = limited(server, temporary(server, [f"queue:claim-work:{unique_queue}", "queue:worker-id:wg/*"]))
    assert [c["status"]["taskId"] for c in worker.claimWork(unique_queue, work)["tasks"]] == [task_id]


def test_claim_task_needs_the_claim_task_and_worker_id_scopes(server, queue, unique_queue):
    task_id = slug()
    queue.createTask(task_id, task_definition(unique_queue))
    body = {"workerGroup": "wg", "workerId": "w1"}
    only_queue = limited(server, temporary(server, [f"queue:claim-task:{unique_queue}"]))
    expect(403, "InsufficientScopes", only_queue.claimTask, task_id, "0", body)
    expect(403, "InsufficientScopes", limited(server, temporary(server, ["queue:worker-id:wg/w1"])).claimTask,
           task_id, "0", body)
    worker = limited(server, temporary(server, [f"queue:claim-task:{unique_queue}", "queue:worker-id:wg/w1"]))
    assert worker.claimTask(task_id, "0", body)["status"]["state"] == "running"
    expect(404, "ResourceNotFound", limited(server, temporary(server, [])).claimTask, slug(), "0", body)


def test_task_group_commands_check_scopes_after_their_existence_checks(server, queue, unique_queue):
    group_id = slug()
    queue.createTask(slug(), task_definition(unique_queue, taskGroupId=group_id, schedulerId="e2e-s"))
    nobody = limited(server, temporary(server, []))
    expect(404, "ResourceNotFound", nobody.sealTaskGroup, slug())
    expect(404, "ResourceNotFound", nobody.cancelTaskGroup, slug())
    expect(409, "RequestConflict", nobody.cancelTaskGroup, group_id)  # unsealed: 409 before 403
    expect(403, "InsufficientScopes", nobody.sealTaskGroup, group_id)
    expect(403, "InsufficientScopes", limited(server, temporary(server, [f"queue:seal-task-group:other/{group_id}"])
                                              ).sealTaskGroup, group_id)
    sealed = limited(server, temporary(server, [f"queue:seal-task-group:e2e-s/{group_id}"])).sealTaskGroup(group_id)
    assert "sealed" in sealed
    expect(403, "InsufficientScopes", nobody.cancelTaskGroup, group_id)
    canceller = limited(server, temporary(server, [f"queue:cancel-task-group:e2e-s/{group_id}"]))
    assert canceller.cancelTaskGroup(group_id)["cancelledCount"] == 1
    expect(403, "InsufficientScopes", nobody.getTaskGroup, group_id)
    expect(403, "InsufficientScopes", nobody.listTaskGroup, group_id)
    reader = limited(server, temporary(server, [f"queue:list-task-group:{group_id}"]))
    assert reader.getTaskGroup(group_id)["taskGroupId"] == group_id
    assert len(reader.listTaskGroup(group_id)["tasks"]) == 1


def test_auto_authorized_endpoints_answer_403_before_404(server):
    nobody = limited(server, temporary(server, []))
    unknown = slug()
    expect(403, "InsufficientScopes", nobody.task, unknown)
    expect(403, "InsufficientScopes", nobody.status, unknown)
    expect(403, "InsufficientScopes", nobody.reportCompleted, unknown, "0")
    expect(403, "InsufficientScopes", nobody.reclaimTask, unknown, "0")
    expect(403, "InsufficientScopes", nobody.listTaskGroup, unknown)


def test_queue_reads_need_their_own_scopes(server, queue, task_id, unique_queue):
    checks = [
        (["queue:get-task:" + task_id], lambda q: q.task(task_id), lambda q: q.tasks({"taskIds": [task_id]})),
        (["queue:status:" + task_id], lambda q: q.status(task_id), lambda q: q.statuses({"taskIds": [task_id]})),
        ([f"queue:pending-count:{unique_queue}"], lambda q: q.pendingTasks(unique_queue), None),
        ([f"queue:pending-list:{unique_queue}"], lambda q: q.listPendingTasks(unique_queue), None),
        ([f"queue:claimed-list:{unique_queue}"], lambda q: q.listClaimedTasks(unique_queue), None),
    ]
    nobody = limited(server, temporary(server, []))
    for scopes, call, other in checks:
        expect(403, "InsufficientScopes", call, nobody)
        holder = limited(server, temporary(server, scopes))
        assert call(holder)
        if other:
            expect(403, "InsufficientScopes", other, nobody)
            assert other(holder)
    expect(403, "InsufficientScopes", limited(server, temporary(server, ["queue:get-task:" + task_id])).tasks,
           {"taskIds": [task_id, slug()]})


# ------------------------------------------------------------------ error body and headers (§1.1, §1.3, §8)

def test_not_found_error_has_the_standard_body(server):
    unknown = slug()
    reply = signed(server, "GET", f"/task/{unknown}/status")
    assert reply.status_code == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    message = assert_error_body(reply.json(), 404, "ResourceNotFound", "status", {"taskId": unknown})
    assert f"`{unknown}` does not correspond to a task that exists" in message


def test_conflict_error_echoes_the_payload_with_schema_defaults(server, queue, unique_queue):
    task_id = slug()
    definition = task_definition(unique_queue)
    queue.createTask(task_id, definition)
    changed = {**definition, "payload": {"other": True}}
    reply = signed(server, "PUT", f"/task/{task_id}", changed)
    assert reply.status_code == 409
    body = reply.json()
    defaults = {"schedulerId": "-", "projectId": "none", "dependencies": [], "requires": "all-completed",
                "routes": [], "priority": "lowest", "retries": 5, "scopes": [], "tags": {}, "extra": {}}
    assert_error_body(body, 409, "RequestConflict", "createTask", {"taskId": task_id},
                      payload=body["requestInfo"]["payload"])
    assert body["requestInfo"]["payload"] == {**changed, **defaults}


def test_input_error_bodies_name_the_api_method(server, queue, unique_queue):
    past = task_definition(unique_queue, created=taskcluster.stringDate(taskcluster.fromNow("-10 minutes")),
                           deadline=taskcluster.stringDate(taskcluster.fromNow("-5 minutes")))
    err = expect(400, "InputError", queue.createTask, slug(), past)
    assert "`deadline` cannot be in the past" in assert_error_body(
        err.body, 400, "InputError", "createTask", {"taskId": err.body["requestInfo"]["params"]["taskId"]},
        payload=err.body["requestInfo"]["payload"])


def test_api_responses_carry_the_standard_headers(server, task_id):
    for reply in (signed(server, "GET", f"/task/{task_id}/status"), signed(server, "GET", f"/task/{slug()}/status"),
                  requests.get(server.root_url + API + f"/task/{task_id}/status", timeout=10)):
        headers = reply.headers
        assert headers["Content-Type"].replace(" ", "").lower() == "application/json;charset=utf-8"
        assert headers["Access-Control-Allow-Origin"] == "*"
        assert headers["Cache-Control"] == "no-store no-cache must-revalidate"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers.get("x-for-request-id")
    traced = signed(server, "GET", f"/task/{task_id}/status", headers={"x-taskcluster-trace-id": "trace-e2e-1"})
    assert traced.headers["x-for-trace-id"] == "trace-e2e-1"
