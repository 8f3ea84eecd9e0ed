"""Issuing temporary credentials, and loading clients and roles from config."""

import json
import re

import pytest

from taskjournal.shared.auth import (
    Client,
    ClientStore,
    certificate_signature,
    create_temporary_credentials,
    load_config_file,
    slug_id,
    temporary_access_token,
)

DAY_MS = 24 * 3600 * 1000


def test_slug_ids_are_22_url_safe_characters():
    slugs = {slug_id() for _ in range(50)}
    assert len(slugs) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", s) for s in slugs)


def test_random_seed_is_two_slug_ids():
    creds = create_temporary_credentials("issuer", "secret", 0, DAY_MS, ["a"])
    cert = json.loads(creds["certificate"])
    assert len(cert["seed"]) == 44
    assert creds["accessToken"] == temporary_access_token("secret", cert["seed"])
    assert len(creds["accessToken"]) == 43 and "=" not in creds["accessToken"]
    assert cert["signature"] == certificate_signature(cert, "issuer", "secret")
    assert "issuer" not in cert and creds["clientId"] == "issuer"


def test_named_credentials_carry_the_issuer():
    creds = create_temporary_credentials("issuer", "secret", 0, DAY_MS, [], name="temp")
    cert = json.loads(creds["certificate"])
    assert (creds["clientId"], cert["issuer"], cert["scopes"]) == ("temp", "issuer", [])
    assert cert["signature"] == certificate_signature(cert, "temp", "secret")
    assert cert["signature"] != certificate_signature(cert, "other", "secret")


def test_span_is_limited_to_31_days():
    create_temporary_credentials("issuer", "secret", 0, 31 * DAY_MS, ["a"])
    with pytest.raises(ValueError):
        create_temporary_credentials("issuer", "secret", 0, 31 * DAY_MS + 1, ["a"])


@pytest.mark.parametrize("kwargs", [{"seed": "short"}, {"name": "issuer"}, {"scopes": [1]}])
def test_invalid_issue_requests(kwargs):
    args = {"issuer_id": "issuer", "issuer_token": "secret", "start_ms": 0, "expiry_ms": 1, "scopes": ["a"]}
    with pytest.raises(ValueError):
        create_temporary_credentials(**{**args, **kwargs})


def test_signature_renders_integral_floats_like_javascript():
    cert = {"version": 1, "scopes": [], "start": 1000, "expiry": 2000, "seed": "s" * 44}
    as_floats = {**cert, "start": 1000.0, "expiry": 2000.0}
    assert certificate_signature(cert, "c", "k") == certificate_signature(as_floats, "c", "k")


def test_load_config_file(tmp_path):
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({
        "clients": [
            {"clientId": "static/taskcluster/queue", "accessToken": "queue-token", "scopes": ["*"]},
            {"clientId": "tester", "accessToken": "no-secret-no-secret-0123", "scopes": ["queue:*"],
             "expires": "3000-01-01T00:00:00Z", "disabled": True},
        ],
        "roles": [{"roleId": "anonymous", "scopes": ["queue:get-task:*"]}],
    }))
    clients, roles = load_config_file(path)
    assert clients[0] == Client("static/taskcluster/queue", "queue-token", ("*",))
    assert clients[1].expires_ms == 32503680000000 and clients[1].disabled
    assert roles == {"anonymous": ["queue:get-task:*"]}
    assert ClientStore.load_file(path) == clients


@pytest.mark.parametrize("entry", [
    {"clientId": "a", "accessToken": "", "scopes": []},
    {"clientId": "a", "accessToken": "t", "scopes": "queue:*"},
    {"clientId": "a", "accessToken": "t", "scopes": ["bad\n"]},
    {"clientId": "a", "accessToken": "t", "expires": True},
])
def test_invalid_client_config_is_rejected(tmp_path, entry):
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"clients": [entry]}))
    with pytest.raises(ValueError):
        load_config_file(path)


def test_client_store():
    store = ClientStore([Client("a", "t", ())])
    assert store.get("a").access_token == "t" and store.get("b") is None
    store.add(Client("a", "u", ("x",)))
    assert store.get("a") == Client("a", "u", ("x",))
    assert len(store) == 1
