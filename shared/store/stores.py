"""The store port's two implementations. Each owns the event store's
infrastructure (eventsourcing factory, datastore, recorder) and runs the
named statements of shared/store/sql/ in its own dialect."""

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager, nullcontext
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment

from . import schema
from .events import event_mapper
from .port import Doomed, Rows
from .sql import statements
from .views import ReadModel

APPLICATION_NAME = "taskjournal"  # names the event store's table: taskjournal_events (PostgreSQL)
SCHEMA_LOCK = 7_401_318_2024  # advisory lock: processes starting together migrate one at a time


class SqlStore(ReadModel):
    """What both dialects share; subclasses say how events are keyed, how
    the events table is named, how writers are held back and how to LISTEN."""

    dialect: str

    def __init__(self, env: dict, schema_mode: str = "auto"):
        # our settings only; the tables are ours to create (migrate), not the library's
        self.factory: Any = InfrastructureFactory.construct(Environment(APPLICATION_NAME, {**env, "CREATE_TABLE": "n"}))
        # one of our projecting recorders (store_env names it): typed loosely, as the library returns its base class
        self.recorder: Any = self.factory.application_recorder()
        super().__init__(self.recorder.datastore, self.dialect)  # type: ignore[attr-defined]  # ours have one
        self.mapper = event_mapper(self.factory)
        self.relay_sql = statements("relay.sql", self.dialect)
        self.version_sql = statements("version.sql", self.dialect)
        try:
            if schema_mode == "require":  # no DDL at all: `taskjournal migrate` did it
                self.migrated_from = self.schema_version()
                schema.require(self.migrated_from)
            else:
                self.migrated_from = self.migrate()
        except BaseException:
            self.factory.close()
            raise
        self.retention_sql = {name: self._with_events_table(sql)
                              for name, sql in statements("retention.sql", self.dialect).items()}

    # ---------------------------------------------------------- the schema (docs/adr/0018)
    def schema_version(self) -> int | None:
        """The version `migrate` recorded; None when it never ran here."""
        if not self._run(self.version_sql["version_table_exists"])[0]["present"]:
            return None
        rows = self._run(self.version_sql["schema_version"])
        return rows[0]["version"] if rows else None

    def migrate(self) -> int | None:
        """Create the event store's tables and the read models, run the upgrades
        above the recorded version and record this build's; returns the version
        found before (None: none). Refuses a schema newer than this build's."""
        with self._schema_lock():
            before = self.schema_version()
            schema.refuse_newer(before)
            # every statement is idempotent: run them all each time, so a table added
            # to schema.sql (CREATE ... IF NOT EXISTS) reaches every database
            self.recorder.create_table()
            with self.datastore.transaction(commit=True) as curs:
                # commits first take the event store's lock, then write to the read models' tables;
                # the DDL's index statements lock those tables one by one: taken in another order, a
                # process starting under load and a commit could each wait for the other (deadlock)
                self._hold_writers(curs)
                for create in statements("schema.sql", self.dialect).values():
                    curs.execute(create)
                for version, upgrade in schema.upgrades(self.dialect):
                    if version > (before or 0):
                        curs.execute(upgrade)
                curs.execute(self.version_sql["create_version_table"])
                if before != schema.SCHEMA_VERSION:
                    curs.execute(self.version_sql["record_schema_version"],
                                 {"version": schema.SCHEMA_VERSION, "migrated": int(time.time() * 1000)})
            return before

    # ---------------------------------------------------------- the log
    def last_event_position(self) -> int:
        return self.recorder.max_notification_id() or 0

    def notifications(self, start: int, limit: int) -> Sequence[Any]:
        return self.recorder.select_notifications(start=start, limit=limit)

    # ---------------------------------------------------------- the relay's position
    def relay_position(self, name: str) -> int:
        rows = self._run(self.relay_sql["relay_position"], name=name)
        return rows[0]["position"] if rows else 0

    def record_relay_position(self, name: str, position: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.relay_sql["record_relay_position"], {"name": name, "position": position})

    def relayed_position(self) -> int | None:
        """How far every relay got; None when no relay ever ran on this store.
        Errors propagate: retention must not take them for "no relay"."""
        return self._run(self.relay_sql["relayed_position"])[0]["position"]

    # ---------------------------------------------------------- retention
    def delete_if_relayed(self, doomed: Sequence[Doomed]) -> list[Doomed]:
        """Delete each aggregate's events and its read-model rows, in one
        transaction, unless some of its events are not relayed yet. Returns
        the ones deleted."""
        deleted = []
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.relay_sql["relayed_position"])
            relayed = dict(curs.fetchone())["position"]
            for item in doomed:
                if self._delete_events(curs, item.aggregate_id, relayed):
                    for statement, params in item.rows:
                        curs.execute(self.retention_sql[statement], params)
                    deleted.append(item)
        return deleted

    def _delete_events(self, curs, aggregate_id: UUID, relayed: int | None) -> bool:
        key = {"originator_id": self._event_key(aggregate_id)}
        if relayed is not None:  # None: no relay ever ran, nobody to wait for
            curs.execute(self.retention_sql["last_event"], key)
            last = dict(curs.fetchone())["last"]
            if last is not None and last > relayed:
                return False
        curs.execute(self.retention_sql["delete_events"], key)
        return True

    # ---------------------------------------------------------- replay
    def rebuild(self, tables: list[str], rows: Callable[[], tuple[Rows, int]]) -> int:
        """Drop and refill read-model `tables` in one transaction; `rows()`,
        called once writers are held back, gives the rows and the log
        position they reflect. Returns that position."""
        projection, drops = statements("projection.sql", self.dialect), statements("replay.sql", self.dialect)
        with self.datastore.transaction(commit=True) as curs:
            self._hold_writers(curs)
            batches, position = rows()
            for table in tables:
                curs.execute(drops[f"drop_{table}"])
            for create in statements("schema.sql", self.dialect).values():
                curs.execute(create)
            for name, params in batches.items():
                curs.executemany(projection[name], params)
            curs.execute(projection["advance_position"], {"position": position})
        return position

    def table_rows(self, table: str) -> tuple[list[str], list[tuple]]:
        """Every row of a read-model table (one replay rebuilds), for an audit:
        the column names and the rows as tuples (many rows: no dicts)."""
        from .replay import PROJECTIONS

        if table not in {t for t, _ in PROJECTIONS.values()}:
            raise ValueError(f"not a read model: {table!r}")
        with self.datastore.transaction(commit=False) as curs:
            plain = self._tuple_cursor(curs)
            plain.execute(statements("replay.sql", self.dialect)["dump"].replace("{table}", table))
            return [column[0] for column in plain.description], plain.fetchall()

    def close(self) -> None:
        self.factory.close()

    # ---------------------------------------------------------- dialect specifics
    def _event_key(self, aggregate_id: UUID):
        raise NotImplementedError

    def _with_events_table(self, sql: str):
        raise NotImplementedError

    def _hold_writers(self, curs) -> None:
        raise NotImplementedError

    def _schema_lock(self):
        return nullcontext()

    def _tuple_cursor(self, curs):
        """The driver's cursor under `curs`, giving the driver's own tuples (not dicts made from them)."""
        raise NotImplementedError


class PostgresStore(SqlStore):
    dialect = "postgres"

    def __init__(self, env: dict, conninfo: str, schema_mode: str = "auto"):
        self.conninfo = conninfo  # the one way of connecting: every option of the URL
        _check_connecting(conninfo)
        super().__init__(env, schema_mode)
        self.events_channel = self.recorder.channel_name
        self.notify_sql = statements("notify.sql", self.dialect)

    def _event_key(self, aggregate_id: UUID):
        return aggregate_id

    def heal(self) -> None:
        self.datastore.pool.check()

    def _run_once(self, sql, commit: bool, params: dict) -> list[dict]:
        """A read is one statement, a snapshot of its own: sent on the pooled
        (autocommit) connection as is, one round trip instead of three
        (BEGIN, the query, ROLLBACK): a third of a getLatestArtifact redirect."""
        if commit:
            return super()._run_once(sql, commit, params)
        with self.datastore.cursor() as curs:
            curs.execute(sql, params)
            return [dict(row) for row in curs.fetchall()]

    def record_relay_position(self, name: str, position: int) -> None:
        """One statement is atomic on its own: sent on the pooled (autocommit)
        connection, one round trip instead of three (ADR 0022)."""
        with self.datastore.cursor() as curs:
            curs.execute(self.relay_sql["record_relay_position"], {"name": name, "position": position})

    def _with_events_table(self, sql: str):
        from psycopg.sql import SQL, Identifier

        return SQL(sql).format(events=Identifier(self.datastore.schema, self.recorder.events_table_name))

    @contextmanager
    def _schema_lock(self) -> Iterator[None]:
        locks = statements("notify.sql", self.dialect)
        with self.datastore.get_connection() as conn:
            conn.execute(locks["lock"], {"key": SCHEMA_LOCK})
            try:
                yield
            finally:
                conn.execute(locks["unlock"], {"key": SCHEMA_LOCK})
                conn.commit()

    def _tuple_cursor(self, curs):
        from psycopg.rows import tuple_row

        curs.row_factory = tuple_row
        return curs

    def _hold_writers(self, curs) -> None:
        for lock in self.recorder.lock_table_statements:  # then catch up with what they wrote meanwhile
            curs.execute(lock)

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator["PostgresListener"]:
        import psycopg
        from psycopg.sql import SQL, Identifier

        async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
            await conn.execute(SQL(self.notify_sql["listen"]).format(channel=Identifier(channel)))
            yield PostgresListener(conn, self.notify_sql["try_lock"])


class StoreUnavailable(RuntimeError):
    """The database cannot be reached with the settings given."""


def _check_connecting(conninfo: str, patience_s: float = 5.0) -> None:
    """Connect once at start, so a wrong setting (no SSL where sslmode=require,
    a bad password, ...) fails with libpq's own words, not a pool timeout. A
    database still starting gets `patience_s` to come up."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    give_up = time.monotonic() + patience_s
    while True:
        try:
            psycopg.connect(conninfo).close()
            return
        except psycopg.OperationalError as error:
            if time.monotonic() < give_up:
                time.sleep(0.5)
                continue
            where = conninfo_to_dict(conninfo)
            raise StoreUnavailable(f"cannot connect to PostgreSQL database {where.get('dbname')!r} at "
                                   f"{where.get('host')}:{where.get('port')}: {error}") from error


class PostgresListener:
    def __init__(self, conn, try_lock_sql: str):
        self.conn, self.try_lock_sql = conn, try_lock_sql

    async def __aiter__(self) -> AsyncIterator[str]:
        async for note in self.conn.notifies():
            yield note.payload

    async def try_lock(self, key: int) -> bool:
        cursor = await self.conn.execute(self.try_lock_sql, {"key": key})
        return bool((await cursor.fetchone())[0])


class SQLiteStore(SqlStore):
    """One process owns a SQLite store: nothing to hear from others, no
    other relay to exclude."""

    dialect = "sqlite"
    events_channel = "events"

    def _event_key(self, aggregate_id: UUID):
        return aggregate_id.hex

    def _id_list(self, ids: list[str]) -> str:
        return orjson.dumps(ids).decode()

    def _with_events_table(self, sql: str):
        return sql.replace("{events}", f'"{self.recorder.events_table_name}"')

    def _tuple_cursor(self, curs):
        plain = curs.sqlite_cursor  # under eventsourcing's wrapper
        plain.row_factory = None  # the connection's is sqlite3.Row
        return plain

    def _hold_writers(self, curs) -> None:
        pass  # the rebuild's own write transaction excludes other writers

    @asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator["SQLiteListener"]:
        yield SQLiteListener()


class SQLiteListener:
    async def __aiter__(self) -> AsyncIterator[str]:
        await asyncio.Event().wait()  # no other process notifies: wait until cancelled
        yield ""  # never reached; makes this an async generator

    async def try_lock(self, key: int) -> bool:
        return True
