"""Test databases on the PostgreSQL server named by TASKJOURNAL_TEST_DATABASE_URL."""

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.support.amqp import delete_service_queues

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/taskjournal_test"


def configured_url() -> str:
    return os.environ.get("TASKJOURNAL_TEST_DATABASE_URL", DEFAULT_URL)


def admin_url(url: str) -> str:
    """The same server's `postgres` database, to create and drop others from."""
    return with_database(url, "postgres")


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def ensure_database(url: str) -> None:
    """Create the database `url` names unless it exists (raises OperationalError when unreachable)."""
    with psycopg.connect(admin_url(url), connect_timeout=3, autocommit=True) as conn:
        name = urlsplit(url).path.lstrip("/")
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def create_database(base_url: str, prefix: str) -> str:
    """A new, empty database on the server of `base_url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url(base_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return with_database(base_url, name)


def drop_database(admin_url: str, name: str) -> None:
    """Drop a test database and the broker queue its services declared."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    delete_service_queues(name)


def drop_database_at(url: str) -> None:
    """Drop the database `url` names (see drop_database)."""
    drop_database(admin_url(url), urlsplit(url).path.lstrip("/"))
