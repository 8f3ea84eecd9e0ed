"""Fixtures shared by the auth tests."""

import pytest

from taskjournal.shared.auth import Client

from tests.support.auth import FrozenClient


@pytest.fixture
def frozen_client(monkeypatch) -> FrozenClient:
    return FrozenClient(monkeypatch)


@pytest.fixture
def tester() -> Client:
    return Client("tester", "no-secret", ("queue:*", "object:*", "assume:worker-id:*"))


@pytest.fixture
def issuer() -> Client:
    return Client(
        "static/test-issuer",
        "issuer-secret-0123456789abcdef",
        ("auth:create-client:my-temp/*", "queue:get-artifact:private/*", "object:download:t/*"),
    )
