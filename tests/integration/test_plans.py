"""Statements that run all the time reach their rows through an index, and
keep one plan.

PostgreSQL takes the JSON rows of a statement for 100 rows, and after five
executions a prepared statement may keep a generic plan: one that hashes a
whole table (the event log, every task, the pending queue) would run on each
commit, under the event store's lock, or at every claimWork look, and grow
with the table. Here the tables hold enough rows for a scan to be a choice,
and the generic plans of the commit's projection statements and of the
leases must not scan any of them."""

import re

import psycopg
import pytest

from taskjournal.shared.journal import open_journal
from taskjournal.shared.store.sql import statements

pytestmark = pytest.mark.postgres

ROWS = 20_000
PARAMETER = re.compile(r"%\((\w+)\)s")  # psycopg's named style, as shared/store/sql writes it


@pytest.fixture(scope="module")
def store(module_postgres_url, tmp_path_factory):
    journal = open_journal(module_postgres_url, str(tmp_path_factory.mktemp("plans")))
    with psycopg.connect(module_postgres_url, autocommit=True) as conn:
        _fill(conn, journal.store.recorder.events_table_name)
    yield journal.store, module_postgres_url
    journal.close()


def _fill(conn, events: str) -> None:
    """ROWS events, tasks, dependencies, pending and claimed entries and history rows, analyzed."""
    conn.execute(f"INSERT INTO {events} (originator_id, originator_version, topic, state) "
                 f"SELECT gen_random_uuid(), 1, 'x', ''::bytea FROM generate_series(1, {ROWS})")
    conn.execute("INSERT INTO tj_tasks (task_id, task_group_id, task_queue_id, created_position, state, deadline, "
                 "expires, definition, status) SELECT 't' || i, 'g' || (i % 50), 'p/w', i, 'pending', 0, 0, "
                 f"repeat('d', 500), repeat('s', 200) FROM generate_series(1, {ROWS}) i")
    conn.execute("INSERT INTO tj_pending (task_id, run_id, task_queue_id, priority, inserted, deadline) "
                 f"SELECT 't' || i, 0, 'p/w', 0, i, 0 FROM generate_series(1, {ROWS}) i")
    conn.execute("INSERT INTO tj_claims (task_id, run_id, task_queue_id, worker_group, worker_id, claimed, "
                 f"taken_until) SELECT 't' || i, 0, 'p/w', 'g', 'w', 0, 0 FROM generate_series(1, {ROWS}) i")
    conn.execute("INSERT INTO tj_history (position, task_id, task_group_id, run_id, event, time, actor, changes) "
                 f"SELECT i, 't' || i, 'g', 0, 'e', '', 'a', '' FROM generate_series(1, {ROWS}) i")
    conn.execute("INSERT INTO tj_dependencies (required_task_id, dependent_task_id, requires) "
                 f"SELECT 't' || i, 't' || (i + 1), 'all-completed' FROM generate_series(1, {ROWS}) i")
    conn.execute("ANALYZE")


def _generic_plan(conn, sql: str) -> str:
    """The plan PostgreSQL keeps for `sql` (psycopg's named parameters; their
    types inferred from the statement)."""
    names: list[str] = []

    def numbered(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    conn.execute("SET plan_cache_mode = force_generic_plan")
    conn.execute(f"PREPARE statement AS {PARAMETER.sub(numbered, sql)}")
    try:
        nulls = f"({', '.join(['NULL'] * len(names))})" if names else ""
        return "\n".join(row[0] for row in conn.execute(f"EXPLAIN EXECUTE statement{nulls}"))
    finally:
        conn.execute("DEALLOCATE statement")


def _scans(url: str, named: dict[str, str]) -> dict[str, list[str]]:
    """The tables each statement's generic plan scans whole, for those that scan any."""
    with psycopg.connect(url, autocommit=True) as conn:
        scans = {name: re.findall(r"Seq Scan on (\w+)", _generic_plan(conn, sql)) for name, sql in named.items()}
    return {name: tables for name, tables in scans.items() if tables}


def test_every_projection_statement_reaches_tables_by_index(store):
    journal_store, url = store
    batch = journal_store.recorder.batch_sql
    assert {"insert_task", "update_task", "delete_pending", "delete_claim", "insert_history"} <= set(batch)
    assert _scans(url, batch) == {}


def test_leases_reach_their_rows_by_index(store):
    """claimWork's pending leases and the resolvers' leases, on one queue of
    many pending tasks and a table of due claims: each call took its few
    rows by index, then joined them back with a scan of the whole table."""
    _, url = store
    queries = statements("queries.sql", "postgres")
    leases = ("lease_pending", "lease_expired_claims", "lease_past_deadline")
    assert _scans(url, {name: queries[name] for name in leases}) == {}


def test_a_generic_plan_is_what_the_test_sees(store):
    """The check above can fail: a join of the JSON rows with the log hashes the log."""
    journal_store, url = store
    events = journal_store.recorder.events_table_name
    joined = ("SELECT e.notification_id FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(event_id uuid, v bigint) "
              f"JOIN {events} e ON e.originator_id = r.event_id AND e.originator_version = r.v")
    with psycopg.connect(url, autocommit=True) as conn:
        assert f"Seq Scan on {events}" in _generic_plan(conn, joined)


def test_ready_dependents_keeps_one_plan(store):
    """The dependency-resolver asks this for every batch of resolved tasks:
    planned again at each call it cost ten times its run."""
    _, url = store
    sql = statements("queries.sql", "postgres")["ready_dependents"].replace("%(task_ids)s", "$1")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET plan_cache_mode = auto")
        conn.execute(f"PREPARE ready(text[]) AS {sql}")
        for i in range(10):
            conn.execute(f"EXECUTE ready(ARRAY['t{i}', 't{i + 1}'])")
        custom, generic = conn.execute("SELECT custom_plans, generic_plans FROM pg_prepared_statements "
                                       "WHERE name = 'ready'").fetchone()
    assert generic >= 5 and custom <= 5
