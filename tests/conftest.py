"""Shared fixtures: PostgreSQL databases for tests that need the real server.

The URL comes from TASKJOURNAL_TEST_DATABASE_URL (default: the local server).
When CI is set, a missing PostgreSQL fails the run instead of skipping."""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/taskjournal_test"
AMQP_URL = os.environ.get("TASKJOURNAL_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def _admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


def _postgres_base_url() -> str | None:
    url = os.environ.get("TASKJOURNAL_TEST_DATABASE_URL", DEFAULT_URL)
    try:
        with psycopg.connect(_admin_url(url), connect_timeout=3, autocommit=True) as conn:
            name = urlsplit(url).path.lstrip("/")
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
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


@pytest.fixture(scope="session", autouse=True)
def postgres_base_url():
    """The base database URL (created if missing), or None without PostgreSQL."""
    url = _postgres_base_url()
    if url is not None:
        os.environ["TASKJOURNAL_TEST_DATABASE_URL"] = url
    return url


def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database and the broker queue its services declared."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _delete_service_queues(name)


def _delete_service_queues(instance: str) -> None:
    import asyncio

    import aio_pika

    async def delete():
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
        async with connection:
            channel = await connection.channel()
            for name in (f"taskjournal.{instance}.dependency-resolver",
                         f"taskjournal.{instance}.dependency-resolver.dead"):
                await channel.queue_delete(name)  # a missing queue is no error (RabbitMQ 3.10)

    try:
        asyncio.run(delete())
    except Exception:  # no broker, or no such queue: nothing to clean
        pass


@pytest.fixture
def postgres_url(postgres_base_url):
    """A fresh, empty database for one test; dropped afterwards."""
    if postgres_base_url is None:
        pytest.skip("no PostgreSQL: set TASKJOURNAL_TEST_DATABASE_URL or run a local server")
    name = f"tj_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_url(postgres_base_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(postgres_base_url)._replace(path=f"/{name}"))
    drop_database(admin, name)


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
    import asyncio

    import aio_pika

    async def probe():
        connection = await aio_pika.connect(AMQP_URL, timeout=3)
        await connection.close()

    try:
        asyncio.run(probe())
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
