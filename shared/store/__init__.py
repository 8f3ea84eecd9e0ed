"""The store: the event store and the read models behind one port
(shared/store/port.py). `open_store` is the one place that decides, from the
database URL, which dialect the store speaks."""

import os
from pathlib import Path

from taskjournal.shared.config import private_dir, private_file, without_password

from .port import PENDING_CHANNEL, Store
from .schema import SCHEMA_VERSION
from .stores import PostgresStore, SQLiteStore

__all__ = ["PENDING_CHANNEL", "SCHEMA_VERSION", "Store", "describe", "migrate", "open_store", "store_env",
           "postgres_conninfo"]

KEPT_CONNECTIONS = 4  # opened at start; more (up to max_connections) only under load
CONNECT_TIMEOUT_S = 5  # a restarted database is reachable again within seconds
DEFAULTS = {"host": "localhost", "port": "5432", "user": "postgres", "dbname": "postgres"}


def open_store(database_url: str | None, data_dir: str, max_connections: int = 16,
               schema_mode: str = "auto") -> tuple[dict, Store]:
    """The Journal's settings and the store: PostgreSQL when a URL is given,
    else SQLite in `data_dir`. `schema_mode` (TASKJOURNAL_SCHEMA): `auto`
    creates and upgrades the schema, `require` refuses any but this build's
    (shared/store/schema.py)."""
    if database_url:
        env = store_env(database_url, "", max_connections)
        return env, PostgresStore(env, env["POSTGRES_CONNINFO"], schema_mode)
    sqlite_file = private_file(private_dir(Path(data_dir)) / "taskjournal.sqlite")  # SQLite's -wal, -shm follow
    env = store_env(None, str(sqlite_file), max_connections)
    return env, SQLiteStore(env, schema_mode)


def migrate(database_url: str | None, data_dir: str) -> tuple[int | None, int]:
    """`taskjournal migrate`: create or upgrade the schema; (version before or None, version now)."""
    _, store = open_store(database_url, data_dir, max_connections=2)
    try:
        return store.migrated_from, SCHEMA_VERSION
    finally:
        store.close()


def describe(database_url: str | None, data_dir: Path) -> str:
    """Which store a process uses, for its start-up line (no password)."""
    if database_url:
        return "postgresql " + without_password(database_url)
    return f"sqlite {Path(data_dir) / 'taskjournal.sqlite'}"


def postgres_conninfo(database_url: str) -> str:
    """The libpq connection string for a database URL: every option of the URL
    kept, plus our defaults for what it leaves out."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {**DEFAULTS, "connect_timeout": str(CONNECT_TIMEOUT_S), **conninfo_to_dict(database_url)}
    return make_conninfo("", **params)


def store_env(database_url: str | None, sqlite_path: str, max_connections: int = 16) -> dict:
    """eventsourcing settings for PostgreSQL (when a URL is given) or SQLite."""
    common = {"AGGREGATE_CACHE_MAXSIZE": "20000", "AGGREGATE_CACHE_FASTFORWARD": "y"}
    if not database_url:
        return {**common, "PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": sqlite_path,
                "SQLITE_LOCK_TIMEOUT": "30",
                "APPLICATION_RECORDER_TOPIC": "taskjournal.shared.store.recorders:SQLiteProjectingRecorder"}
    from psycopg.conninfo import conninfo_to_dict

    conninfo = postgres_conninfo(database_url)
    params = conninfo_to_dict(conninfo)
    return {**common, "PERSISTENCE_MODULE": "taskjournal.shared.store.recorders:ConninfoPostgresFactory",
            "POSTGRES_CONNINFO": conninfo,
            # required by eventsourcing; the connections themselves use POSTGRES_CONNINFO
            "POSTGRES_DBNAME": params["dbname"], "POSTGRES_HOST": params["host"], "POSTGRES_PORT": params["port"],
            "POSTGRES_USER": params["user"], "POSTGRES_PASSWORD": params.get("password", ""),
            "POSTGRES_POOL_SIZE": str(KEPT_CONNECTIONS),
            "POSTGRES_MAX_OVERFLOW": str(max(0, max_connections - KEPT_CONNECTIONS)), "POSTGRES_LOCK_TIMEOUT": "10",
            "POSTGRES_PRE_PING": "y", "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S),
            "APPLICATION_RECORDER_TOPIC": "taskjournal.shared.store.recorders:PostgresProjectingRecorder"}
