"""The store port against real PostgreSQL (and SQLite where it applies):
any number of ids, the relay position, retention's safety, settings that come
from our settings only, and connection options honoured by every connection."""

import asyncio
import time
import uuid

import psycopg
import pytest

from taskjournal.shared.domain.ids import task_id_of
from taskjournal.shared.journal import open_journal
from tests.support.journal import create_task
from taskjournal.shared.store.retention import drop_expired

NOW = 1_900_000_000_000
HOUR = 3_600_000


def _create(journal, expires: int = NOW + 48 * HOUR) -> str:
    return create_task(journal, "store/w", NOW, expires=expires).task_id


def _with_query(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


def _sessions(admin_url: str, application_name: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s",
                            (application_name,)).fetchone()[0]


# ------------------------------------------------------------ any number of ids
def test_tasks_by_id_takes_more_ids_than_postgres_has_bind_parameters(journal):
    existing = [_create(journal) for _ in range(3)]
    asked = [task_id_of(uuid.uuid4()) for _ in range(70_000)]
    asked[10], asked[40_000], asked[69_999] = existing
    rows = journal.views.tasks_by_id(asked, "state, expires")
    assert [row["task_id"] for row in rows] == existing  # in request order
    assert all(row["state"] == "pending" for row in rows)


def test_tasks_by_id_selects_only_known_columns(journal):
    task_id = _create(journal)
    assert journal.views.tasks_by_id([task_id], "status")[0]["task_id"] == task_id
    with pytest.raises(ValueError):
        journal.views.tasks_by_id([task_id], "status FROM tj_tasks; DROP TABLE tj_tasks; --")


# ------------------------------------------------------------ the relay position
def test_relay_position_is_zero_until_recorded_and_never_moves_back(journal):
    store = journal.store
    assert store.relay_position("a") == 0 and store.relayed_position() is None
    store.record_relay_position("a", 5)
    store.record_relay_position("a", 3)  # a relay that lost leadership, late
    store.record_relay_position("b", 2)
    assert store.relay_position("a") == 5 and store.relayed_position() == 2


def test_an_error_reading_the_relay_position_does_not_let_retention_delete_unrelayed_events(journal):
    task_id = _create(journal, NOW + 2 * HOUR)
    with journal.recorder.datastore.transaction(commit=True) as curs:
        # a relay ran and relayed nothing yet; then its position cannot be read
        curs.execute("CREATE TABLE IF NOT EXISTS tj_relay_position (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
        curs.execute("INSERT INTO tj_relay_position (name, position) VALUES ('default', 0)")
        curs.execute("DROP TABLE tj_relay_position")
    with pytest.raises(Exception):
        drop_expired(journal, NOW + 10 * HOUR)
    assert journal.views.task_status(task_id) is not None and journal.task(task_id) is not None


# ------------------------------------------------------------ our settings only
def test_the_event_store_ignores_taskjournal_variables_in_the_environment(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TASKJOURNAL_POSTGRES_ENABLE_DB_FUNCTIONS", "y")  # would skip the inline projection
    monkeypatch.setenv("TASKJOURNAL_AGGREGATE_CACHE_MAXSIZE", "1")
    journal = open_journal(postgres_url, str(tmp_path))
    try:
        task_id = _create(journal)
        assert journal.views.task_status(task_id) is not None
        assert journal.env.get("POSTGRES_ENABLE_DB_FUNCTIONS") is None
        assert journal.env.get("AGGREGATE_CACHE_MAXSIZE") == "20000"
    finally:
        journal.close()


def test_sqlite_store_ignores_a_persistence_module_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKJOURNAL_PERSISTENCE_MODULE", "eventsourcing.popo")  # would keep events in memory
    journal = open_journal(None, str(tmp_path))
    task_id = _create(journal)
    journal.close()
    reopened = open_journal(None, str(tmp_path))
    try:
        assert reopened.task(task_id) is not None and reopened.views.task_status(task_id) is not None
    finally:
        reopened.close()


# ------------------------------------------------------------ connection options
async def test_every_connection_honours_the_urls_options(postgres_url, tmp_path):
    name = f"tj-{uuid.uuid4().hex[:12]}"
    journal = open_journal(_with_query(postgres_url, f"application_name={name}"), str(tmp_path))
    try:
        _create(journal)
        pool = _sessions(postgres_url, name)
        assert pool >= 1  # the event store's pool
        async with journal.store.listen("anything"):
            assert _sessions(postgres_url, name) == pool + 1  # the LISTEN connection too
    finally:
        journal.close()


def test_sslmode_require_fails_against_a_server_without_ssl(postgres_url, tmp_path):
    with psycopg.connect(postgres_url) as conn:
        if conn.execute("SHOW ssl").fetchone()[0] == "on":
            pytest.skip("this PostgreSQL server offers SSL")
    with pytest.raises(Exception, match="SSL"):
        open_journal(_with_query(postgres_url, "sslmode=require"), str(tmp_path))


def test_pool_heals_after_its_connections_are_killed(postgres_url, tmp_path):
    """What a database restart does to the pool: every connection dies. The
    next call gets a fresh connection rather than an error."""
    journal = open_journal(postgres_url, str(tmp_path))
    try:
        task_id = _create(journal)
        database = postgres_url.rsplit("/", 1)[1]
        with psycopg.connect(_with_query(postgres_url.rsplit("/", 1)[0] + "/postgres", "application_name=killer"),
                             autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                                   (database,)).fetchall()
            assert killed
            deadline = time.monotonic() + 10
            while admin.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s",
                                (database,)).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
        assert journal.views.task_status(task_id) is not None  # the first call after the "restart"
        assert journal.views.task_status(_create(journal)) is not None
    finally:
        journal.close()


async def test_pending_notifications_reach_a_listener(postgres_url, tmp_path):
    from taskjournal.shared.store import PENDING_CHANNEL

    journal = open_journal(postgres_url, str(tmp_path))
    try:
        async with journal.store.listen(PENDING_CHANNEL) as notes:
            await asyncio.to_thread(_create, journal)
            heard = await asyncio.wait_for(anext(aiter(notes)), 10)
        assert heard == "store/w"
    finally:
        journal.close()
