"""Authentication failures and their upstream messages."""

import base64

import pytest

from taskjournal.shared.auth import AuthRequest, Client, ScopeSet, temporary_access_token
from taskjournal.shared.auth.hawk import calculate_mac

from tests.support.auth import NOW, bewit_url, ext_value, hawk_request, make_authenticator, signed_certificate, url_request

URL = "https://tc.example.com/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ"
RESOURCE = "/api/queue/v1/task/fN1SbArXTPSVFNUvaOlinQ"
TESTER = Client("tester", "no-secret", ("queue:*",))
ISSUER = Client("issuer", "issuer-secret", ("auth:create-client:temp/*", "queue:*"))
DAY_MS = 24 * 3600 * 1000


def failure(request, clients=(TESTER, ISSUER), roles=None, now=NOW) -> str:
    result = make_authenticator(list(clients), roles, now=now).authenticate(request)
    assert result.status == "auth-failed"
    assert (result.client_id, result.scopes, result.expires_ms) == (None, ScopeSet(), None)
    return result.message


def succeeds(request, clients=(TESTER, ISSUER), roles=None, now=NOW) -> bool:
    return make_authenticator(list(clients), roles, now=now).authenticate(request).status == "auth-success"


def cert_request(cert, client_id="issuer", key=None, **kwargs):
    key = key or _temporary_key(cert)
    return hawk_request(client_id, key, URL, ext=ext_value({"certificate": cert}), **kwargs)


def _temporary_key(cert):
    seed = cert.get("seed") if isinstance(cert, dict) else None
    return temporary_access_token(ISSUER.access_token, seed) if isinstance(seed, str) else "x"


# ----------------------------------------------------------- header basics


def test_bad_mac():
    assert failure(hawk_request("tester", "wrong-secret", URL)) == "Unauthorized: Bad mac"


def test_tampered_resource_fails_the_mac():
    request = hawk_request("tester", "no-secret", URL)
    request.resource = RESOURCE + "x"
    assert failure(request) == "Unauthorized: Bad mac"


@pytest.mark.parametrize("offset", [-901, 901])
def test_stale_timestamp(offset):
    assert failure(hawk_request("tester", "no-secret", URL, ts=NOW + offset)) == "Unauthorized: Stale timestamp"


@pytest.mark.parametrize("offset", [-900, 900])
def test_timestamp_within_fifteen_minutes(offset):
    assert succeeds(hawk_request("tester", "no-secret", URL, ts=NOW + offset))


def test_non_numeric_timestamp_is_stale():
    mac = calculate_mac("no-secret", "header", "abc", "n", "GET", RESOURCE, "tc.example.com", 443)
    header = f'Hawk id="tester", ts="abc", nonce="n", mac="{mac}"'
    assert failure(AuthRequest("GET", RESOURCE, "tc.example.com", 443, header)) == "Unauthorized: Stale timestamp"


def test_mac_is_checked_before_the_timestamp():
    request = hawk_request("tester", "wrong", URL, ts=NOW - 5000)
    assert failure(request) == "Unauthorized: Bad mac"


def test_bad_payload_hash():
    request = hawk_request("tester", "no-secret", URL, "POST", content=b'{"a":1}', content_type="application/json")
    request.body = b'{"a":2}'
    message = failure(request)
    assert message.startswith("Invalid payload hash: ")
    assert "\nComputed payload hash: " in message


def test_missing_hash_is_not_checked():
    request = hawk_request("tester", "no-secret", URL, "POST", with_hash=False)
    assert 'hash="' not in request.authorization
    request.body, request.content_type = b"anything", "application/json"
    assert succeeds(request)


def test_unknown_client():
    assert failure(hawk_request("nobody", "x", URL)) == "Client with clientId 'nobody' not found"


def test_disabled_client():
    client = Client("tester", "no-secret", (), disabled=True)
    assert failure(hawk_request("tester", "no-secret", URL), [client]) == "Client with clientId 'tester' is disabled"


def test_expired_client():
    client = Client("tester", "no-secret", (), expires_ms=NOW * 1000 - 1)
    assert failure(hawk_request("tester", "no-secret", URL), [client]) == "Client with clientId: 'tester' has expired"
    expiring_now = Client("tester", "no-secret", (), expires_ms=NOW * 1000)
    assert succeeds(hawk_request("tester", "no-secret", URL), [expiring_now])


def test_both_schemes_at_once():
    request = hawk_request("tester", "no-secret", URL + "?bewit=abc")
    assert failure(request) == (
        "Cannot use two authentication schemes at once this request has both bewit in querystring "
        "and 'authorization' header")


def test_non_hawk_scheme():
    request = AuthRequest("GET", RESOURCE, "tc.example.com", 443, "Bearer abc.def")
    assert failure(request) == "Unauthorized: Unauthorized"


@pytest.mark.parametrize("header, message", [
    ("Hawk", "Bad Request: Invalid header syntax"),
    ("Hawk ", "Bad Request: Invalid header syntax"),
    ("Hawk: x", "Bad Request: Invalid header syntax"),
    ('Hawk id="tester", ts="1", nonce="n"', "Bad Request: Missing attributes"),
    ('Hawk id="tester", ts="1", nonce="n", mac="m", foo="x"', "Bad Request: Unknown attribute: foo"),
    ('Hawk id="tester", id="other", ts="1", nonce="n", mac="m"', "Bad Request: Duplicate attribute: id"),
    ('Hawk id="tést", ts="1", nonce="n", mac="m"', "Bad Request: Bad attribute value: id"),
    ('Hawk id="", ts="1", nonce="n", mac="m"', "Bad Request: Bad attribute value: id"),
    ('Hawk id="tester" ts="1", nonce="n", mac="m"', "Bad Request: Bad header format"),
    ('Hawk id="tester", ts="1", nonce="n", mac="m" trailing', "Bad Request: Bad header format"),
    ('Hawk id="tester", ts="1", nonce="n", mac="' + "m" * 5000 + '"', "Bad Request: Header length too long"),
])
def test_malformed_authorization_header(header, message):
    assert failure(AuthRequest("GET", RESOURCE, "tc.example.com", 443, header)) == message


def test_scheme_is_case_insensitive():
    request = hawk_request("tester", "no-secret", URL)
    request.authorization = "hAwK" + request.authorization[4:]
    assert succeeds(request)


@pytest.mark.parametrize("ext", ["!!!!", "bm90IGpzb24=", "e30"[:2]])
def test_ext_that_is_not_base64_json(ext):
    assert failure(hawk_request("tester", "no-secret", URL, ext=ext)) == "Failed to parse ext"


def test_ext_is_parsed_before_the_client_is_loaded():
    assert failure(hawk_request("nobody", "x", URL, ext="!!!!")) == "Failed to parse ext"


# ------------------------------------------------------------ certificates


def test_certificate_too_long():
    cert = signed_certificate("issuer", "issuer-secret", start=NOW * 1000, expiry=NOW * 1000 + 31 * DAY_MS + 1)
    assert failure(cert_request(cert)) == "ext.certificate cannot last longer than 31 days!"
    exactly = signed_certificate("issuer", "issuer-secret", start=NOW * 1000, expiry=NOW * 1000 + 31 * DAY_MS)
    assert succeeds(cert_request(exactly))


def test_named_certificate_issuer_lacking_create_client():
    cert = signed_certificate("issuer", "issuer-secret", "other/name")
    assert failure(cert_request(cert, "other/name")) == (
        "ext.certificate issuer `issuer` doesn't have `auth:create-client:other/name` for supplied clientId.")


def test_certificate_issuer_lacking_certificate_scopes():
    cert = signed_certificate("issuer", "issuer-secret", "temp/a", scopes=["queue:x", "secrets:get:y", "z"])
    assert failure(cert_request(cert, "temp/a")) == (
        "ext.certificate issuer `issuer` doesn't satisfy all certificate scopes queue:x, secrets:get:y, z.  "
        "The temporary credentials were not generated correctly.")


def test_tampered_certificate_signature():
    cert = signed_certificate("issuer", "issuer-secret", scopes=["queue:a"])
    cert["scopes"] = ["queue:b"]
    assert failure(cert_request(cert)) == "ext.certificate.signature is not valid"


def test_tampered_named_certificate_signature():
    cert = signed_certificate("issuer", "issuer-secret", "temp/a")
    assert failure(cert_request(cert, "temp/b")) == (
        "ext.certificate.signature is not valid, or wrong clientId provided")


def test_certificate_signature_of_another_length():
    cert = signed_certificate("issuer", "issuer-secret")
    cert["signature"] = cert["signature"][:-1]
    assert failure(cert_request(cert)) == "Input buffers must have the same byte length"


def test_certificate_signature_must_be_a_string():
    cert = signed_certificate("issuer", "issuer-secret")
    cert["signature"] = 7
    assert failure(cert_request(cert)) == "ext.certificate.signature is not valid"


def test_certificate_validity_window_allows_five_minutes_of_skew():
    early = signed_certificate("issuer", "issuer-secret", start=(NOW + 300) * 1000)
    assert succeeds(cert_request(early))
    too_early = signed_certificate("issuer", "issuer-secret", start=(NOW + 300) * 1000 + 1)
    assert failure(cert_request(too_early)) == "ext.certificate.start > now"
    late = signed_certificate("issuer", "issuer-secret", start=(NOW - 3600) * 1000, expiry=(NOW - 300) * 1000)
    assert succeeds(cert_request(late))
    too_late = signed_certificate("issuer", "issuer-secret", start=(NOW - 3600) * 1000, expiry=(NOW - 300) * 1000 - 1)
    assert failure(cert_request(too_late)) == "ext.certificate.expiry < now"


def test_certificate_checks_come_before_the_mac():
    expired = signed_certificate("issuer", "issuer-secret", start=(NOW - 7200) * 1000, expiry=(NOW - 3600) * 1000)
    assert failure(cert_request(expired, key="wrong")) == "ext.certificate.expiry < now"


def test_certificate_window_is_checked_before_its_span():
    cert = signed_certificate("issuer", "issuer-secret", start=(NOW + 3600) * 1000, expiry=(NOW * 1000 + 40 * DAY_MS))
    assert failure(cert_request(cert)) == "ext.certificate.start > now"


def test_certificate_checks_are_repeated_for_cached_credentials():
    cert = signed_certificate("issuer", "issuer-secret", expiry=(NOW + 60) * 1000)
    authenticator = make_authenticator([ISSUER])
    assert authenticator.authenticate(cert_request(cert)).status == "auth-success"
    authenticator._clock = lambda: NOW + 60 + 301
    later = cert_request(cert, ts=NOW + 361)
    assert authenticator.authenticate(later).message == "ext.certificate.expiry < now"


def test_temporary_credentials_expire_with_their_issuer():
    issuer = Client("issuer", "issuer-secret", ("queue:*",), expires_ms=(NOW + 10) * 1000)
    cert = signed_certificate("issuer", "issuer-secret")
    result = make_authenticator([issuer]).authenticate(cert_request(cert))
    assert (result.status, result.expires_ms) == ("auth-success", (NOW + 10) * 1000)


def _mutated(**changes):
    cert = signed_certificate("issuer", "issuer-secret")
    for key, value in changes.items():
        if value is KeyError:
            del cert[key]
        else:
            cert[key] = value
    return cert


@pytest.mark.parametrize("cert, message", [
    ("a string", "ext.certificate must be a JSON object"),
    (5, "ext.certificate must be a JSON object"),
    ([1], "ext.certificate.version must be 1"),
    (_mutated(version=2), "ext.certificate.version must be 1"),
    (_mutated(version=True), "ext.certificate.version must be 1"),
    (_mutated(version="1"), "ext.certificate.version must be 1"),
    (_mutated(seed=KeyError), "ext.certificate.seed must be a string"),
    (_mutated(seed="s" * 43), "ext.certificate.seed must be 44 characters"),
    (_mutated(start="1"), "ext.certificate.start must be a number"),
    (_mutated(expiry=None), "ext.certificate.expiry must be a number"),
    (_mutated(scopes="queue:*"), "ext.certificate.scopes must be an array"),
    (_mutated(scopes=["ok", "bad\n"]), "ext.certificate.scopes must be an array of valid scopes"),
    (_mutated(scopes=[1]), "ext.certificate.scopes must be an array of valid scopes"),
])
def test_malformed_certificate(cert, message):
    assert failure(cert_request(cert)) == message


def test_falsy_certificate_is_ignored():
    request = hawk_request("tester", "no-secret", URL, ext=ext_value({"certificate": None}))
    assert succeeds(request)


def test_certificate_issuer_must_be_a_string():
    cert = signed_certificate("issuer", "issuer-secret")
    cert["issuer"] = 5
    assert failure(cert_request(cert)) == "ext.certificate.issuer must be a string"


def test_certificate_issuer_must_differ_from_the_client_id():
    cert = signed_certificate("issuer", "issuer-secret", "temp/a")
    assert failure(cert_request(cert, "issuer")) == "ext.certificate.issuer must differ from the supplied clientId"


def test_unnamed_certificate_must_not_name_a_client():
    cert = signed_certificate("issuer", "issuer-secret", clientId="temp/a")
    assert failure(cert_request(cert)) == "ext.certificate.clientId must only be used with ext.certificate.issuer"


def test_unknown_certificate_issuer():
    cert = signed_certificate("ghost", "x", "temp/a")
    assert failure(cert_request(cert, "temp/a")) == "Client with clientId 'ghost' not found"


# -------------------------------------------------------- authorizedScopes


def _authorized(scopes, client_id="tester", key="no-secret"):
    return hawk_request(client_id, key, URL, ext=ext_value({"authorizedScopes": scopes}))


def test_authorized_scopes_must_be_an_array():
    assert failure(_authorized("queue:*")) == "ext.authorizedScopes must be an array"


def test_authorized_scopes_must_be_valid():
    assert failure(_authorized(["queue:\u00e9"])) == "ext.authorizedScopes must be an array of valid scopes"


def test_authorized_scopes_beyond_the_credentials():
    roles = {"anonymous": ["queue:ping"]}
    assert failure(_authorized(["secrets:get:x", "queue:a"]), roles=roles) == "\n".join([
        "Supplied credentials do not satisfy authorizedScopes; credentials have scopes:",
        "", "```", "assume:anonymous", "queue:*", "```", "",
        "authorizedScopes are:", "", "```", "secrets:get:x", "queue:a", "```",
    ])


def test_authorized_scopes_may_name_anonymous_scopes():
    roles = {"anonymous": ["secrets:get:public"]}
    result = make_authenticator([TESTER], roles).authenticate(_authorized(["secrets:get:public"]))
    assert result.status == "auth-success"
    assert result.scopes == ScopeSet(["assume:anonymous", "secrets:get:public"])


def test_empty_authorized_scopes_leave_only_anonymous_scopes():
    result = make_authenticator([TESTER], {"anonymous": ["a"]}).authenticate(_authorized([]))
    assert result.scopes == ScopeSet(["assume:anonymous", "a"])


def test_authorized_scopes_cannot_exceed_certificate_scopes():
    cert = signed_certificate("issuer", "issuer-secret", scopes=["queue:a"])
    ext = ext_value({"certificate": cert, "authorizedScopes": ["queue:b"]})
    request = hawk_request("issuer", _temporary_key(cert), URL, ext=ext)
    assert failure(request).startswith("Supplied credentials do not satisfy authorizedScopes")


# ------------------------------------------------------------------ bewits


BEWIT_BASE = "https://tc.example.com/api/queue/v1/task/x/artifacts/a"


def test_expired_bewit():
    assert failure(url_request(bewit_url("tester", "no-secret", BEWIT_BASE, NOW))) == "Unauthorized: Access expired"
    assert succeeds(url_request(bewit_url("tester", "no-secret", BEWIT_BASE, NOW + 1)))


def test_bewit_with_bad_mac():
    request = url_request(bewit_url("tester", "wrong", BEWIT_BASE, NOW + 60))
    assert failure(request) == "Unauthorized: Bad mac"


def test_bewit_bound_to_its_resource():
    request = url_request(bewit_url("tester", "no-secret", BEWIT_BASE, NOW + 60))
    request.resource = request.resource.replace("/a?", "/b?")
    assert failure(request) == "Unauthorized: Bad mac"


def _bewit(raw: str) -> AuthRequest:
    encoded = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
    return AuthRequest("GET", f"/p?bewit={encoded}", "h", 80)


@pytest.mark.parametrize("request_, message", [
    (AuthRequest("GET", "/p?bewit=ab$cd", "h", 80), "Bad Request: Invalid bewit encoding"),
    (AuthRequest("GET", "/p?bewit=ab+cd", "h", 80), "Bad Request: Invalid bewit encoding"),
    (AuthRequest("GET", "/p?bewit=ab%3D", "h", 80), "Bad Request: Invalid bewit encoding"),
    (AuthRequest("GET", "/p?bewit=", "h", 80), "Unauthorized: Empty bewit"),
    (AuthRequest("GET", "/p?bewit=abc&", "h", 80), "Unauthorized: Unauthorized"),
    (AuthRequest("POST", "/p?bewit=abc", "h", 80), "Unauthorized: Invalid method"),
    (AuthRequest("GET", "/p?bewit=abc&x=" + "y" * 4096, "h", 80), "Bad Request: Resource path exceeds max length"),
    (_bewit("tester\\1800000000\\mac"), "Bad Request: Invalid bewit structure"),
    (_bewit("tester\\1800000000\\mac\\ext\\more"), "Bad Request: Invalid bewit structure"),
    (_bewit("\\1800000000\\mac\\"), "Bad Request: Missing bewit attributes"),
    (_bewit("tester\\soon\\mac\\"), "Bad Request: Missing bewit attributes"),
    (_bewit("tester\\0\\mac\\"), "Bad Request: Missing bewit attributes"),
    (_bewit("tester\\1800000000\\\\"), "Bad Request: Missing bewit attributes"),
    (_bewit("tester\\1600000000\\mac\\"), "Unauthorized: Access expired"),
    (_bewit("nobody\\1800000000\\mac\\"), "Client with clientId 'nobody' not found"),
    (_bewit("tester\\1800000000\\mac\\!!!"), "Failed to parse ext"),
])
def test_malformed_bewit(request_, message):
    assert failure(request_) == message


def test_bewit_with_temporary_credentials_checks_the_certificate():
    cert = signed_certificate("issuer", "issuer-secret", start=(NOW - 7200) * 1000, expiry=(NOW - 3600) * 1000)
    url = bewit_url("issuer", _temporary_key(cert), BEWIT_BASE, NOW + 60, ext=ext_value({"certificate": cert}))
    assert failure(url_request(url)) == "ext.certificate.expiry < now"


def test_bewit_with_authorized_scopes():
    url = bewit_url("tester", "no-secret", BEWIT_BASE, NOW + 60, ext=ext_value({"authorizedScopes": ["queue:a"]}))
    result = make_authenticator([TESTER]).authenticate(url_request(url))
    assert result.scopes == ScopeSet(["assume:anonymous", "queue:a"])
