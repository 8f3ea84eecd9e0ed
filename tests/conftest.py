"""Shared fixtures: PostgreSQL databases and RabbitMQ for the tests that need
the real servers, and the markers that say which tests need what.

Nothing here is autouse: a test reaches PostgreSQL or RabbitMQ only through
`postgres_base_url` / `postgres_url` / `amqp_url` (tests/unit forbids them).
The URL comes from TASKJOURNAL_TEST_DATABASE_URL (default: the local server).
When CI is set, a missing PostgreSQL or RabbitMQ fails the run instead of skipping."""

import asyncio
import os
from pathlib import Path

import psycopg
import pytest

from tests.support.amqp import AMQP_URL, probe
from tests.support.postgres import configured_url, create_database, drop_database_at, ensure_database

TESTS = Path(__file__).resolve().parent

# Markers a test gets from the fixtures it uses (statically; parametrized
# fixtures that reach a server mark their params where they are made).
FIXTURE_MARKERS = {"postgres_base_url": "postgres", "amqp_url": "rabbitmq"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for fixture, marker in FIXTURE_MARKERS.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(marker)
        if (TESTS / "e2e") in Path(item.path).parents:
            item.add_marker("e2e")


def _postgres_base_url() -> str | None:
    url = configured_url()
    try:
        ensure_database(url)
        return url
    except psycopg.OperationalError as err:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL tests must run in CI but {url} is unreachable: {err}", pytrace=False)
        return _testcontainers_url()


def _testcontainers_url() -> str | None:
    """A developer machine with Docker but no PostgreSQL gets a container."""
    try:
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15")
        container.start()
    except Exception:
        return None
    return container.get_connection_url().replace("+psycopg2", "")


@pytest.fixture(scope="session")
def postgres_base_url():
    """The base database URL (created if missing), or None without PostgreSQL."""
    url = _postgres_base_url()
    if url is not None:
        os.environ["TASKJOURNAL_TEST_DATABASE_URL"] = url
    return url


def require_postgres(base_url: str | None) -> str:
    if base_url is None:
        pytest.skip("no PostgreSQL: set TASKJOURNAL_TEST_DATABASE_URL or run a local server")
    return base_url


@pytest.fixture
def postgres_url(postgres_base_url):
    """A fresh, empty database for one test; dropped afterwards."""
    url = create_database(require_postgres(postgres_base_url), "tj_test")
    yield url
    drop_database_at(url)


@pytest.fixture(scope="module")
def module_postgres_url(postgres_base_url):
    """A fresh database shared by one module's tests; dropped afterwards."""
    url = create_database(require_postgres(postgres_base_url), "tj_e2e")
    yield url
    drop_database_at(url)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI a test skipped for want of PostgreSQL or RabbitMQ is a failure."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped:
        reason = str(report.longrepr).lower()
        if "postgres" in reason or "rabbitmq" in reason:
            report.outcome = "failed"


@pytest.fixture(scope="session")
def amqp_url():
    """The RabbitMQ URL, or a skip naming RabbitMQ (a failure in CI)."""
    try:
        asyncio.run(probe(AMQP_URL))
    except Exception as error:
        pytest.skip(f"RabbitMQ unreachable at {AMQP_URL}: {error!r}")
    return AMQP_URL


@pytest.fixture(scope="session")
def moto():
    """moto's standalone S3 server on loopback (tests/moto_support.py)."""
    from tests.moto_support import start_moto

    server = start_moto()
    yield server
    server.stop()
