"""Requests built by the official Python client (taskcluster + mohawk) are
authenticated by our Authenticator."""

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
import taskcluster
import taskcluster.client

from taskjournal.shared.auth import (
    Authenticator,
    AuthRequest,
    Client,
    ClientStore,
    Roles,
    ScopeSet,
    create_temporary_credentials,
    host_and_port,
    satisfies,
)

from tests.support.auth import NOW, auth_request, ext_value, hawk_request, make_authenticator, url_request

TASK_ID = "fN1SbArXTPSVFNUvaOlinQ"
ISSUER = Client("static/queue", "queue-secret-0123456789", ("*",))


def _when(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


def test_permanent_credentials_get_and_post(frozen_client, tester):
    queue = frozen_client.queue(credentials={"clientId": "tester", "accessToken": "no-secret"})
    queue.task(TASK_ID)
    queue.createTask(TASK_ID, {"payload": {"x": "ü"}, "scopes": []})
    authenticator = make_authenticator([tester], {"worker-id:*": ["queue:worker:<..>"]})
    for sent in frozen_client.requests:
        result = authenticator.authenticate(auth_request(sent))
        assert (result.status, result.client_id, result.expires_ms) == ("auth-success", "tester", None)
        assert satisfies(result.scopes, "queue:worker:any/thing")


def test_unnamed_temporary_credentials_from_the_client(frozen_client, tester):
    credentials = taskcluster.createTemporaryCredentials(
        "tester", "no-secret", _when(NOW - 60), _when(NOW + 3600), ["queue:get-task:*"])
    frozen_client.queue(credentials=credentials).task(TASK_ID)
    result = make_authenticator([tester]).authenticate(auth_request(frozen_client.last))
    assert (result.status, result.client_id) == ("auth-success", "tester")
    assert result.scopes == ScopeSet(["queue:get-task:*", "assume:anonymous"])
    assert result.expires_ms == (NOW + 3600) * 1000


def test_named_temporary_credentials_from_the_client(frozen_client):
    credentials = taskcluster.createTemporaryCredentials(
        ISSUER.client_id, ISSUER.access_token, _when(NOW - 60), _when(NOW + 3600),
        ["object:upload:proj:t/x"], name="artifact-upload/x/0/on/g/w")
    frozen_client.queue(credentials=credentials).createArtifact(TASK_ID, 0, "public/x", {"storageType": "object"})
    result = make_authenticator([ISSUER]).authenticate(auth_request(frozen_client.last))
    assert (result.status, result.client_id) == ("auth-success", "artifact-upload/x/0/on/g/w")
    assert satisfies(result.scopes, "object:upload:proj:t/x")
    assert not satisfies(result.scopes, "object:upload:proj:t/y")


def test_our_temporary_credentials_work_with_the_client(frozen_client):
    credentials = create_temporary_credentials(
        ISSUER.client_id, ISSUER.access_token, (NOW - 60) * 1000 + 123, (NOW + 600) * 1000 + 456,
        ["queue:claim-work:p/w"], name="task-client/x/0/on/g/w/until/1700000600.456")
    frozen_client.queue(credentials=credentials).task(TASK_ID)
    result = make_authenticator([ISSUER]).authenticate(auth_request(frozen_client.last))
    assert (result.status, result.client_id) == ("auth-success", "task-client/x/0/on/g/w/until/1700000600.456")
    assert result.expires_ms == (NOW + 600) * 1000 + 456


def test_authorized_scopes_from_the_client(frozen_client, tester):
    queue = frozen_client.queue(credentials={"clientId": "tester", "accessToken": "no-secret"},
                                authorizedScopes=["queue:get-task:*"])
    queue.task(TASK_ID)
    result = make_authenticator([tester]).authenticate(auth_request(frozen_client.last))
    assert result.status == "auth-success"
    assert result.scopes == ScopeSet(["queue:get-task:*", "assume:anonymous"])


def test_authorized_scopes_with_temporary_credentials(frozen_client):
    credentials = taskcluster.createTemporaryCredentials(
        ISSUER.client_id, ISSUER.access_token, _when(NOW - 60), _when(NOW + 3600),
        ["queue:a", "queue:b"], name="temp")
    frozen_client.queue(credentials=credentials, authorizedScopes=["queue:b"]).task(TASK_ID)
    result = make_authenticator([ISSUER]).authenticate(auth_request(frozen_client.last))
    assert result.status == "auth-success"
    assert (satisfies(result.scopes, "queue:a"), satisfies(result.scopes, "queue:b")) == (False, True)


@pytest.fixture
def signing_clock(monkeypatch):
    monkeypatch.setattr(taskcluster.client, "time", SimpleNamespace(time=lambda: NOW))


def test_signed_url_with_permanent_credentials(signing_clock, tester):
    queue = taskcluster.Queue({"rootUrl": "https://tc.example.com",
                               "credentials": {"clientId": "tester", "accessToken": "no-secret"}})
    url = queue.buildSignedUrl("getArtifact", TASK_ID, 0, "private/a b.txt")
    result = make_authenticator([tester]).authenticate(url_request(url))
    assert (result.status, result.client_id) == ("auth-success", "tester")
    head = make_authenticator([tester]).authenticate(url_request(url, "HEAD"))
    assert head.status == "auth-success"


def test_signed_url_with_named_temporary_credentials_and_query(signing_clock):
    credentials = taskcluster.createTemporaryCredentials(
        ISSUER.client_id, ISSUER.access_token, _when(NOW - 60), _when(NOW + 3600),
        ["queue:list-artifacts:*"], name="my-temp/client")
    queue = taskcluster.Queue({"rootUrl": "http://localhost:8080", "credentials": credentials})
    url = queue.buildSignedUrl("listLatestArtifacts", TASK_ID, query={"limit": 5})
    result = make_authenticator([ISSUER]).authenticate(url_request(url))
    assert (result.status, result.client_id) == ("auth-success", "my-temp/client")
    assert satisfies(result.scopes, f"queue:list-artifacts:{TASK_ID}")


def test_bewit_may_sit_before_other_query_parameters(signing_clock, tester):
    queue = taskcluster.Queue({"rootUrl": "https://tc.example.com",
                               "credentials": {"clientId": "tester", "accessToken": "no-secret"}})
    url = queue.buildSignedUrl("listLatestArtifacts", TASK_ID, query={"limit": 5})
    path, query = url.split("?")
    limit, bewit = query.split("&")
    moved = url_request(f"{path}?{bewit}&{limit}")
    assert make_authenticator([tester]).authenticate(moved).status == "auth-success"


def test_go_style_standard_base64_ext_is_accepted(tester):
    scopes = ["queue:get-artifact:public/~~~>>>???"]
    ext = ext_value({"authorizedScopes": scopes}, urlsafe=False)
    assert "+" in ext or "/" in ext
    request = hawk_request("tester", "no-secret", "https://tc.example.com/api/queue/v1/ping", ext=ext,
                           with_hash=False)
    result = make_authenticator([tester]).authenticate(request)
    assert result.status == "auth-success"
    assert result.scopes == ScopeSet(scopes + ["assume:anonymous"])


def test_unpadded_ext_is_accepted(tester):
    ext = ext_value({"authorizedScopes": ["queue:x"]}).rstrip("=")
    request = hawk_request("tester", "no-secret", "https://tc.example.com/api/queue/v1/ping", ext=ext)
    assert make_authenticator([tester]).authenticate(request).status == "auth-success"


def test_content_type_parameters_do_not_change_the_payload_hash(tester):
    request = hawk_request("tester", "no-secret", "https://tc.example.com/api/queue/v1/task/x", "PUT",
                           content=b'{"a":1}', content_type="Application/JSON; charset=utf-8")
    assert make_authenticator([tester]).authenticate(request).status == "auth-success"


def test_app_attribute_is_covered_by_the_mac(tester):
    request = hawk_request("tester", "no-secret", "https://tc.example.com/api/queue/v1/task/x", app="some-app")
    assert make_authenticator([tester]).authenticate(request).status == "auth-success"


def test_request_through_a_tls_terminating_proxy(frozen_client, tester):
    frozen_client.queue(credentials={"clientId": "tester", "accessToken": "no-secret"}).task(TASK_ID)
    sent = frozen_client.last
    host, port = host_and_port("tc.example.com", False, {"X-Forwarded-Proto": "https"})
    request = AuthRequest("GET", f"/api/queue/v1/task/{TASK_ID}", host, port, sent.headers["Authorization"])
    assert make_authenticator([tester]).authenticate(request).status == "auth-success"


@pytest.mark.parametrize("host_header, tls, headers, expected", [
    ("tc.example.com", True, {}, ("tc.example.com", 443)),
    ("tc.example.com", False, {}, ("tc.example.com", 80)),
    ("Localhost:8080", False, {}, ("Localhost", 8080)),
    ("[::1]:8080", False, {}, ("[::1]", 8080)),
    ("tc.example.com", False, {"x-forwarded-port": "8443", "x-forwarded-proto": "http"}, ("tc.example.com", 8443)),
    ("tc.example.com:80", False, {"X-Forwarded-Proto": "https"}, ("tc.example.com", 443)),
    ("tc.example.com:8080", True, {"X-Forwarded-Proto": "http"}, ("tc.example.com", 8080)),
    (None, True, {}, ("", 443)),
])
def test_host_and_port(host_header, tls, headers, expected):
    assert host_and_port(host_header, tls, headers) == expected


def test_credentials_stay_valid_through_cached_paths(frozen_client, tester):
    authenticator = make_authenticator([tester])
    queue = frozen_client.queue(credentials={"clientId": "tester", "accessToken": "no-secret"})
    for nonce in (b"aaaaaa", b"bbbbbb"):
        frozen_client.freeze(NOW, nonce)
        queue.task(TASK_ID)
        assert authenticator.authenticate(auth_request(frozen_client.last)).status == "auth-success"
    forged = auth_request(frozen_client.last)
    forged.resource += "?x=1"
    assert authenticator.authenticate(forged).message == "Unauthorized: Bad mac"


def test_no_credentials_gets_anonymous_scopes():
    authenticator = make_authenticator([], {"anonymous": ["queue:get-artifact:public/*"]})
    result = authenticator.authenticate(AuthRequest("GET", "/api/queue/v1/task/x", "h", 80))
    assert (result.status, result.client_id, result.message) == ("no-auth", None, None)
    assert result.scopes == ScopeSet(["assume:anonymous", "queue:get-artifact:public/*"])
    assert result.expires_ms == NOW * 1000 + 15 * 60 * 1000


def test_replaced_client_token_takes_effect(tester):
    store = ClientStore([tester])
    authenticator = Authenticator(store, Roles({}), clock=lambda: NOW)
    request = hawk_request("tester", "no-secret", "https://tc.example.com/api/queue/v1/task/x")
    assert authenticator.authenticate(request).status == "auth-success"
    store.add(Client("tester", "rotated", tester.scopes))
    assert authenticator.authenticate(request).message == "Unauthorized: Bad mac"
    rotated = hawk_request("tester", "rotated", "https://tc.example.com/api/queue/v1/task/x")
    assert authenticator.authenticate(rotated).status == "auth-success"
