"""Spec §13 test vectors TV1-TV6, checked client side (official client) and
verified server side with a frozen clock."""

from datetime import datetime, timezone
from types import SimpleNamespace

import taskcluster
import taskcluster.client
import taskcluster.utils

from taskjournal.shared.auth import (
    AuthRequest,
    Client,
    Roles,
    ScopeSet,
    certificate_signature,
    create_temporary_credentials,
    insufficient_scopes_message,
    payload_hash,
    render,
    satisfies,
    temporary_access_token,
    unsatisfied,
)

from tests.support.auth import auth_request, make_authenticator, url_request

TASK_ID = "fN1SbArXTPSVFNUvaOlinQ"
EMPTY_HASH = "B0weSUXsMcb5UhL41FZbrUJCAotzSI3HawE1NPLRUz8="

TV1_HEADER = (
    'Hawk mac="y7GB935ucp8RadMS0Ie50fQZJWwpGVw1XkMATLXZhoQ=", hash="B0weSUXsMcb5UhL41FZbrUJCAotzSI3HawE1NPLRUz8=", '
    'id="tester", ts="1700000000", nonce="Xy12Ab", ext="e30="'
)
TV2_URL = f"https://tc.example.com/api/queue/v1/task/{TASK_ID}/runs/0/artifacts/public%2Flogs%2Flive%20log.txt"
TV2_BODY = b'{"storageType":"object","expires":"2030-01-01T00:00:00.000Z","contentType":"text/plain"}'
TV2_HEADER = (
    'Hawk mac="OK7FBrvDYpRKf2KFzWL5V/Nt+7odFHg9hrOXiOATLSg=", hash="ER071EbF8zmEk4dj5RwpaV8XPFB9Xssop9usdiF2hjA=", '
    'id="tester", ts="1700000000", nonce="Xy12Ab", ext="e30="'
)

TV3_SEED = "fN1SbArXTPSVFNUvaOlinQYgq5ETrDQtyEX3sXBlW2cA"
TV3_TOKEN = "SKbtkmcU5-lAkncSOwqxWlpzt5_h8n0INmP5lD0KIW4"
TV3_SCOPES = ["queue:get-artifact:private/*", "object:download:t/*"]
TV3_UNNAMED_CERT = (
    '{"version":1,"scopes":["queue:get-artifact:private/*","object:download:t/*"],"start":1704067200000,'
    '"expiry":1704153600000,"seed":"fN1SbArXTPSVFNUvaOlinQYgq5ETrDQtyEX3sXBlW2cA",'
    '"signature":"CJ90Ekp3DtOchtJHt5oYskv+3cAWMxjoBuvgoZfiGpY="}'
)
TV3_NAMED_CERT = (
    '{"version":1,"scopes":["queue:get-artifact:private/*","object:download:t/*"],"start":1704067200000,'
    '"expiry":1704153600000,"seed":"fN1SbArXTPSVFNUvaOlinQYgq5ETrDQtyEX3sXBlW2cA","issuer":"static/test-issuer",'
    '"signature":"f7GrFZiZgCaBtn2dWoKvm0UvAzGgBt2GOA5We2v7lII="}'
)
TV3_URL = f"http://localhost:8080/api/queue/v1/task/{TASK_ID}/runs/0/artifact-content/private%2Fbuild%2Fout.bin"
TV3_HEADER = (
    'Hawk mac="b5kHVIsk9NVCfnbaPIrGcctkfOwwOdc06V2caq+uJNg=", hash="B0weSUXsMcb5UhL41FZbrUJCAotzSI3HawE1NPLRUz8=", '
    'id="my-temp/client", ts="1704070800", nonce="n0nc3Z", '
    'ext="eyJjZXJ0aWZpY2F0ZSI6eyJ2ZXJzaW9uIjoxLCJzY29wZXMiOlsicXVldWU6Z2V0LWFydGlmYWN0OnByaXZhdGUvKiIsIm9iamVjdDpkb3dub'
    'G9hZDp0LyoiXSwic3RhcnQiOjE3MDQwNjcyMDAwMDAsImV4cGlyeSI6MTcwNDE1MzYwMDAwMCwic2VlZCI6ImZOMVNiQXJYVFBTVkZOVXZhT2xpblFZ'
    'Z3E1RVRyRFF0eUVYM3NYQmxXMmNBIiwiaXNzdWVyIjoic3RhdGljL3Rlc3QtaXNzdWVyIiwic2lnbmF0dXJlIjoiZjdHckZaaVpnQ2FCdG4yZFdvS3'
    'ZtMFV2QXpHZ0J0MkdPQTVXZTJ2N2xJST0ifX0="'
)
TV4_URL = f"https://tc.example.com/api/queue/v1/task/{TASK_ID}/artifacts?limit=10"
TV4_HEADER = (
    'Hawk mac="sEcZ5HtIHwE8u6B5y1M14uABe+KscqCZve8pCxbxnnI=", hash="B0weSUXsMcb5UhL41FZbrUJCAotzSI3HawE1NPLRUz8=", '
    'id="tester", ts="1704070800", nonce="n0nc3Z", '
    'ext="eyJhdXRob3JpemVkU2NvcGVzIjpbInF1ZXVlOmdldC1hcnRpZmFjdDpwdWJsaWMvKiJdfQ=="'
)
TV5_ARTIFACT_URL = (
    f"https://tc.example.com/api/queue/v1/task/{TASK_ID}/runs/0/artifacts/private%2Fbuild%2Fout.bin?bewit="
    "dGVzdGVyXDE3MDQwNzE3MDBcSmhJeVVYY04yeERHS0M2T2FjbUwwVExrZjROR3p3MDN4MHpKN0l6QU9WUT1cZTMwPQ"
)
TV5_LIST_URL = (
    f"https://tc.example.com/api/queue/v1/task/{TASK_ID}/artifacts?limit=5&bewit="
    "dGVzdGVyXDE3MDQwNzA4NjBcQmZwdUlod3ljOHJRaWNudnFkY09tQWppU01UclRqSU1SeGExOUhpWFRkdz1cZTMwPQ"
)

TESTER = Client("tester", "no-secret", ("queue:*", "object:*"))


def test_tv1_get_with_permanent_credentials_is_authenticated():
    request = AuthRequest("GET", f"/api/queue/v1/task/{TASK_ID}", "tc.example.com", 443, TV1_HEADER)
    result = make_authenticator([TESTER], now=1700000000).authenticate(request)
    assert (result.status, result.client_id, result.message) == ("auth-success", "tester", None)
    assert result.scopes == ScopeSet(["queue:*", "object:*", "assume:anonymous"])


def test_tv1_official_client_sends_the_vector_header(frozen_client):
    frozen_client.queue(credentials={"clientId": "tester", "accessToken": "no-secret"}).task(TASK_ID)
    sent = frozen_client.last
    assert (sent.method, sent.url) == ("GET", f"https://tc.example.com/api/queue/v1/task/{TASK_ID}")
    assert sent.headers["Authorization"] == TV1_HEADER
    assert payload_hash(b"", None) == EMPTY_HASH


def test_tv2_post_with_json_body_and_encoded_name_is_authenticated():
    request = AuthRequest("POST", TV2_URL.removeprefix("https://tc.example.com"), "tc.example.com", 443,
                          TV2_HEADER, "application/json", TV2_BODY)
    result = make_authenticator([TESTER], now=1700000000).authenticate(request)
    assert (result.status, result.client_id) == ("auth-success", "tester")
    assert payload_hash(TV2_BODY, "application/json") == "ER071EbF8zmEk4dj5RwpaV8XPFB9Xssop9usdiF2hjA="


def test_tv2_official_client_sends_the_vector_request(frozen_client):
    queue = frozen_client.queue(credentials={"clientId": "tester", "accessToken": "no-secret"})
    queue.createArtifact(TASK_ID, 0, "public/logs/live log.txt", {
        "storageType": "object", "expires": "2030-01-01T00:00:00.000Z", "contentType": "text/plain"})
    sent = frozen_client.last
    assert (sent.method, sent.url, sent.payload.encode()) == ("POST", TV2_URL, TV2_BODY)
    assert sent.headers["Authorization"] == TV2_HEADER
    assert make_authenticator([TESTER]).authenticate(auth_request(sent)).status == "auth-success"


def _fixed_slug_ids(monkeypatch):
    slugs = iter(["fN1SbArXTPSVFNUvaOlinQ", "Ygq5ETrDQtyEX3sXBlW2cA"])
    monkeypatch.setattr(taskcluster.utils, "slugId", lambda: next(slugs))


def _official_tv3(monkeypatch, **kwargs):
    _fixed_slug_ids(monkeypatch)
    return taskcluster.createTemporaryCredentials(
        "static/test-issuer", "issuer-secret-0123456789abcdef",
        datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 2, tzinfo=timezone.utc),
        TV3_SCOPES, **kwargs)


def test_tv3_official_client_and_ours_issue_identical_unnamed_credentials(monkeypatch):
    official = _official_tv3(monkeypatch)
    ours = create_temporary_credentials("static/test-issuer", "issuer-secret-0123456789abcdef",
                                        1704067200000, 1704153600000, TV3_SCOPES, seed=TV3_SEED)
    assert official["certificate"] == ours["certificate"] == TV3_UNNAMED_CERT
    assert official["accessToken"].decode() == ours["accessToken"] == TV3_TOKEN
    assert official["clientId"] == ours["clientId"] == "static/test-issuer"


def test_tv3_official_client_and_ours_issue_identical_named_credentials(monkeypatch):
    official = _official_tv3(monkeypatch, name="my-temp/client")
    ours = create_temporary_credentials("static/test-issuer", "issuer-secret-0123456789abcdef",
                                        1704067200000, 1704153600000, TV3_SCOPES,
                                        name="my-temp/client", seed=TV3_SEED)
    assert official["certificate"] == ours["certificate"] == TV3_NAMED_CERT
    assert official["clientId"] == ours["clientId"] == "my-temp/client"
    assert ours["accessToken"] == TV3_TOKEN


def test_tv3_request_with_named_credentials_is_authenticated(issuer):
    request = AuthRequest("GET", TV3_URL.removeprefix("http://localhost:8080"), "localhost", 8080, TV3_HEADER)
    roles = {"anonymous": ["queue:get-task:*"]}
    result = make_authenticator([issuer], roles, now=1704070800).authenticate(request)
    assert (result.status, result.client_id, result.message) == ("auth-success", "my-temp/client", None)
    expected = Roles(roles).expand(TV3_SCOPES + ["assume:anonymous"])
    assert result.scopes == ScopeSet(expected)
    assert result.expires_ms == 1704153600000


def test_tv3_official_client_signs_the_vector_header(monkeypatch, frozen_client, issuer):
    credentials = _official_tv3(monkeypatch, name="my-temp/client")
    frozen_client.freeze(1704070800, b"n0nc3Z")
    queue = frozen_client.queue("http://localhost:8080", credentials=credentials)
    queue.artifact(TASK_ID, 0, "private/build/out.bin")
    assert (frozen_client.last.url, frozen_client.last.headers["Authorization"]) == (TV3_URL, TV3_HEADER)


def test_tv3_upstream_go_client_vectors():
    seed = "JYR4wzMCTG6XeDS2cDUCMwH0RFUXGfQjK7LgqD-e6lSQ"
    cert = {"version": 1, "scopes": ["scope/asd:fhjdf/X", "scope/asd:fhjdf/XYZ*"],
            "start": 1438964811744, "expiry": 1439051211744, "seed": seed}
    assert temporary_access_token("tokenABCDEFGH", seed) == "R4OVHWpIvy6KsqS4AWE51QwbvgLvsstS6e6UW8IfHUY"
    assert certificate_signature(cert, "def/ghi@XXX", "tokenABCDEFGH") == "45AlB/hKZZZz4Tf3NaidutasfgBnr4t2AxwBiGDQF9Q="
    named = {**cert, "issuer": "def/ghi@XXX"}
    named_signature = certificate_signature(named, "abc/def/ghi", "tokenABCDEFGH")
    assert named_signature == "nNEaLtZMiw627NuDbF5Z8HDFc57MGWCptXBQSYNFgBk="


def test_tv4_authorized_scopes_restrict_the_request():
    request = url_request(TV4_URL)
    request.authorization = TV4_HEADER
    result = make_authenticator([TESTER], now=1704070800).authenticate(request)
    assert (result.status, result.client_id) == ("auth-success", "tester")
    assert result.scopes == ScopeSet(["queue:get-artifact:public/*", "assume:anonymous"])
    assert not satisfies(result.scopes, f"queue:list-artifacts:{TASK_ID}")


def test_tv4_anonymous_role_still_applies_under_authorized_scopes():
    request = url_request(TV4_URL)
    request.authorization = TV4_HEADER
    roles = {"anonymous": ["queue:list-artifacts:*"]}
    result = make_authenticator([TESTER], roles, now=1704070800).authenticate(request)
    assert satisfies(result.scopes, f"queue:list-artifacts:{TASK_ID}")


def test_tv4_official_client_sends_the_vector_header(frozen_client):
    frozen_client.freeze(1704070800, b"n0nc3Z")
    queue = frozen_client.queue("https://tc.example.com/", authorizedScopes=["queue:get-artifact:public/*"],
                                credentials={"clientId": "tester", "accessToken": "no-secret"})
    queue.listLatestArtifacts(TASK_ID, query={"limit": 10})
    assert (frozen_client.last.url, frozen_client.last.headers["Authorization"]) == (TV4_URL, TV4_HEADER)


def test_tv5_bewits_are_valid_until_they_expire():
    for url, exp in [(TV5_ARTIFACT_URL, 1704071700), (TV5_LIST_URL, 1704070860)]:
        assert make_authenticator([TESTER], now=1704070800.25).authenticate(url_request(url)).status == "auth-success"
        assert make_authenticator([TESTER], now=exp - 0.001).authenticate(url_request(url)).client_id == "tester"
        expired = make_authenticator([TESTER], now=exp).authenticate(url_request(url))
        assert (expired.status, expired.message) == ("auth-failed", "Unauthorized: Access expired")


def test_tv5_official_client_builds_the_vector_urls(monkeypatch):
    monkeypatch.setattr(taskcluster.client, "time", SimpleNamespace(time=lambda: 1704070800.25))
    queue = taskcluster.Queue({"rootUrl": "https://tc.example.com",
                               "credentials": {"clientId": "tester", "accessToken": "no-secret"}})
    assert queue.buildSignedUrl("getArtifact", TASK_ID, 0, "private/build/out.bin") == TV5_ARTIFACT_URL
    assert queue.buildSignedUrl("listLatestArtifacts", TASK_ID, query={"limit": 5}, expiration=60) == TV5_LIST_URL


TV6_MESSAGE = """\
Client ID tester does not have sufficient scopes and is missing the following scopes:

```
queue:get-artifact:private/x
```

This request requires the client to satisfy the following scope expression:

```
{
  "AllOf": [
    "queue:get-artifact:private/x"
  ]
}
```"""


def test_tv6_insufficient_scopes_message():
    template = {"AllOf": [{"for": "name", "in": "names", "each": "queue:get-artifact:<name>"}]}
    required = render(template, {"taskId": TASK_ID, "runId": "0", "names": ["private/x"]})
    held = make_authenticator([Client("tester", "no-secret", ("queue:get-task:*",))]).anonymous_scopes
    held = ScopeSet(list(held) + ["queue:get-task:*"])
    assert not satisfies(held, required)
    assert insufficient_scopes_message("tester", required, unsatisfied(held, required)) == TV6_MESSAGE


def test_tv6_anonymous_caller_variant():
    message = insufficient_scopes_message(None, "queue:get-artifact:private/x", "queue:get-artifact:private/x")
    assert message == (
        "This request requires Taskcluster credentials that satisfy the following scope expression:\n"
        "\n```\nqueue:get-artifact:private/x\n```"
    )
