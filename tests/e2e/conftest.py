"""End-to-end fixtures: the real `taskjournal dev` process on a free port
(tests.support.server), driven with the official Taskcluster Python client."""

import secrets

import pytest

from tests.support.server import Server


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path_factory):
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("module_postgres_url")
    srv = Server(tmp_path_factory.mktemp("tj"), database_url)
    yield srv
    srv.stop()


@pytest.fixture
def queue(server):
    return server.queue()


@pytest.fixture
def unique_queue():
    return f"e2e-prov/w{secrets.token_hex(4)}"
