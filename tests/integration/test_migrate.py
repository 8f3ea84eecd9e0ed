"""`taskjournal migrate` and TASKJOURNAL_SCHEMA (docs/adr/0018): the schema Job
creates and upgrades the schema and records its version; a service with
`require` does no DDL and refuses, with one line and exit 2, a database whose
schema is missing or of another version; any process refuses a newer one."""

import os
import subprocess
import sys
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from taskjournal.shared.journal import open_journal
from taskjournal.shared.store import SCHEMA_VERSION
from tests.support.journal import create_task
from tests.support.server import Server, task_definition


def taskjournal(database_url: str, tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run the command to its end (a service refused at start ends at once)."""
    environment = {**os.environ, "TASKJOURNAL_DATABASE_URL": database_url, "TASKJOURNAL_DATA_DIR": str(tmp_path),
                   "TASKJOURNAL_PORT": "1", "TASKJOURNAL_LOG_FORMAT": "text", **env}
    environment.pop("TASKJOURNAL_AMQP_URL", None)
    return subprocess.run([sys.executable, "-P", "-m", "taskjournal.services.cli", *args], env=environment,
                          capture_output=True, text=True, timeout=60)


def scalar(database_url: str, sql: str):
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return row[0] if row else None


def recorded_version(database_url: str):
    return scalar(database_url, "SELECT version FROM tj_schema_version")


def test_migrate_creates_the_schema_and_records_its_version(postgres_url, tmp_path):
    done = taskjournal(postgres_url, tmp_path, "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(f"version {SCHEMA_VERSION} (was none)")
    assert recorded_version(postgres_url) == SCHEMA_VERSION
    for table in ("taskjournal_events", "tj_tasks", "tj_pending", "tj_relay_position", "tj_worker_runs"):
        assert scalar(postgres_url, f"SELECT to_regclass('{table}') IS NOT NULL"), table


def test_migrate_again_keeps_the_data_and_the_version(postgres_url, tmp_path):
    assert taskjournal(postgres_url, tmp_path, "migrate").returncode == 0
    journal = open_journal(postgres_url, str(tmp_path), schema_mode="require")
    task_id = create_task(journal).task_id
    journal.close()

    again = taskjournal(postgres_url, tmp_path, "migrate")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip().endswith(f"version {SCHEMA_VERSION} (was {SCHEMA_VERSION})")
    assert scalar(postgres_url, "SELECT COUNT(*) FROM tj_schema_version") == 1
    assert scalar(postgres_url, f"SELECT state FROM tj_tasks WHERE task_id = '{task_id}'") == "pending"


def test_a_service_that_requires_the_schema_refuses_an_empty_database_with_one_line(postgres_url, tmp_path):
    done = taskjournal(postgres_url, tmp_path, "run", "scheduler", TASKJOURNAL_SCHEMA="require")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "taskjournal: TASKJOURNAL_SCHEMA: require: the database has no taskjournal schema; run `taskjournal "
        f"migrate` first (this build's schema is version {SCHEMA_VERSION})"]
    assert scalar(postgres_url, "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'") == 0  # no DDL


def test_a_service_that_requires_the_schema_runs_on_a_migrated_database_without_ddl_rights(postgres_url, tmp_path):
    assert taskjournal(postgres_url, tmp_path, "migrate").returncode == 0
    with application_role(postgres_url) as app_url:
        server = Server(tmp_path, app_url, command=("run", "api-gateway"), TASKJOURNAL_SCHEMA="require")
        try:
            queue = server.queue()
            task_id = "fU0b-gsUQhWDMW3tPp2r9A"
            queue.createTask(task_id, task_definition())
            assert queue.status(task_id)["status"]["state"] == "pending"
        finally:
            server.stop()


@pytest.mark.parametrize("command", [("migrate",), ("run", "scheduler")])
@pytest.mark.parametrize("mode", ["auto", "require"])
def test_a_schema_newer_than_this_build_is_refused_with_one_line(postgres_url, tmp_path, command, mode):
    assert taskjournal(postgres_url, tmp_path, "migrate").returncode == 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE tj_schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    done = taskjournal(postgres_url, tmp_path, *command, TASKJOURNAL_SCHEMA=mode)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"taskjournal: TASKJOURNAL_DATABASE_URL: the database's schema is version {SCHEMA_VERSION + 1}, newer than "
        f"this build knows ({SCHEMA_VERSION}): run a taskjournal at least as new as the one that migrated it"]
    assert recorded_version(postgres_url) == SCHEMA_VERSION + 1  # left as it was


def test_an_older_schema_is_refused_by_require_and_upgraded_by_migrate(postgres_url, tmp_path):
    assert taskjournal(postgres_url, tmp_path, "migrate").returncode == 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE tj_schema_version SET version = 0")
    done = taskjournal(postgres_url, tmp_path, "run", "scheduler", TASKJOURNAL_SCHEMA="require")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"taskjournal: TASKJOURNAL_SCHEMA: require: the database's schema is version 0, this build needs "
        f"{SCHEMA_VERSION}; run `taskjournal migrate` first"]
    upgraded = taskjournal(postgres_url, tmp_path, "migrate")
    assert upgraded.returncode == 0 and upgraded.stdout.strip().endswith("(was 0)")
    assert recorded_version(postgres_url) == SCHEMA_VERSION


def test_auto_creates_the_schema_at_start_as_before(postgres_url, tmp_path):
    journal = open_journal(postgres_url, str(tmp_path))  # the default: `dev` and the tests need no migrate step
    journal.close()
    assert recorded_version(postgres_url) == SCHEMA_VERSION


# ------------------------------------------------------------------ helpers
class application_role:
    """A login role with the rights the services get in production (k8s/README:
    read and write rows, use sequences; no CREATE, no ownership); its URL."""

    def __init__(self, database_url: str):
        self.database_url, self.name = database_url, f"tj_app_{uuid.uuid4().hex[:10]}"

    def __enter__(self) -> str:
        database = urlsplit(self.database_url).path.lstrip("/")
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            for sql in (f'CREATE ROLE "{self.name}" LOGIN',
                        'REVOKE CREATE ON SCHEMA public FROM PUBLIC',
                        f'GRANT CONNECT ON DATABASE "{database}" TO "{self.name}"',
                        f'GRANT USAGE ON SCHEMA public TO "{self.name}"',
                        f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{self.name}"',
                        f'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO "{self.name}"'):
                conn.execute(sql)
        parts = urlsplit(self.database_url)
        return urlunsplit(parts._replace(netloc=f"{self.name}@{parts.hostname}:{parts.port or 5432}"))

    def __exit__(self, *exc) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{self.name}"')
            conn.execute(f'DROP ROLE "{self.name}"')



def test_a_process_starting_while_others_commit_does_not_deadlock_with_them(postgres_url, tmp_path):
    """A starting process runs the schema's idempotent DDL (`auto`): its
    CREATE INDEX IF NOT EXISTS statements lock the read models' tables one
    after another, while a commit holding the event store's lock writes to
    them in another order. The DDL takes the event store's lock first, as
    every commit does, so neither can wait for the other in a cycle (a
    gateway restarted under load died of `deadlock detected`)."""
    import threading
    import time

    open_journal(postgres_url, str(tmp_path / "first")).close()  # the schema exists
    outcomes: dict[str, object] = {}

    def run(name, work):
        try:
            work()
            outcomes[name] = None
        except Exception as error:
            outcomes[name] = error

    def commit():  # as a commit does: the event store's lock, then the read models' tables
        with psycopg.connect(postgres_url) as conn:
            conn.execute("LOCK TABLE taskjournal_events IN EXCLUSIVE MODE")
            conn.execute("LOCK TABLE tj_history IN ROW EXCLUSIVE MODE")  # late in schema.sql
            conn.execute("LOCK TABLE tj_tasks IN ROW EXCLUSIVE MODE")  # early in schema.sql

    with psycopg.connect(postgres_url) as lease:  # a write of its own holds the DDL halfway (tj_pending)
        lease.execute("LOCK TABLE tj_pending IN ROW EXCLUSIVE MODE")
        starting = threading.Thread(target=run, args=("start", lambda: open_journal(
            postgres_url, str(tmp_path / "second")).close()))
        starting.start()
        time.sleep(1.0)
        committing = threading.Thread(target=run, args=("commit", commit))
        committing.start()
        time.sleep(0.5)
    starting.join(30)
    committing.join(30)
    assert outcomes == {"start": None, "commit": None}
