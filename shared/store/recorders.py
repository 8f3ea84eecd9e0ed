"""Event recorders that also apply the inline projection: the read-model rows
and the tracking position are written in the transaction that appends the
events, so a committed write is visible to every read at once (ADR 0003)."""

import time
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import ConnectionPool, PostgresApplicationRecorder, PostgresFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from .port import PENDING_CHANNEL
from .sql import statements

CONNINFO = "POSTGRES_CONNINFO"  # our setting: the libpq connection string every pool connection uses


def _bound(changes, stored_events, place: Callable[[StoredEvent, int], dict]) -> list[tuple[str, dict]]:
    """The projection's statements with their positions filled in: a
    `position` parameter holding an aggregate id stands for that aggregate's
    first event here, an `event_key` (aggregate id, version) for that event;
    `place(event, index)` gives the parameters that replace either."""
    first: dict[Any, int] = {}
    index: dict[tuple, int] = {}
    for i, stored in enumerate(stored_events):
        first.setdefault(stored.originator_id, i)
        index[(stored.originator_id, stored.originator_version)] = i
    bound = []
    for name, params in changes.statements:
        if "position" in params:
            i = first[params["position"]]
        elif "event_key" in params:
            i = index[params["event_key"]]
        else:
            bound.append((name, params))
            continue
        rest = {k: v for k, v in params.items() if k not in ("position", "event_key")}
        bound.append((name, {**rest, **place(stored_events[i], i)}))
    return bound


def _named(stored: StoredEvent, _: int) -> dict:
    """An event by its key: its notification id is looked up by the statement (projection_batch.sql)."""
    return {"event_id": str(stored.originator_id), "event_version": stored.originator_version}


def _by_kind(statements: list[tuple[str, dict]]) -> dict[str, list[dict]]:
    """Parameter sets grouped by statement, in the order each first appears."""
    kinds: dict[str, list[dict]] = {}
    for name, params in statements:
        kinds.setdefault(name, []).append(params)
    return kinds


RECENTLY_USED_S = 1.0  # pre-ping skips connections that were in use this recently


class ConninfoPostgresFactory(PostgresFactory):
    """eventsourcing's factory builds its pool from host, port, user, password
    and dbname only; this one's pool connects with the whole connection string,
    so every option of the database URL (sslmode, application_name, ...) holds.
    With pre-ping, a connection found dead makes the pool check all its idle
    ones: after a database restart the next request gets a fresh connection
    instead of trying each dead one in turn (with growing pauses between)."""

    def __init__(self, env):
        super().__init__(env)
        datastore, old = self.datastore, self.datastore.pool
        conninfo = self.env.get(CONNINFO) or ""

        taken: WeakKeyDictionary = WeakKeyDictionary()  # connection -> when it was last taken from the pool

        def check(conn) -> None:
            # A connection taken less than a second ago was alive then: pinging
            # it would add a round trip to every read (about a fifth of a status
            # read). One idle for longer, as all are after a database restart,
            # is pinged; a read that meets a dead one heals and retries
            # (ReadModel._run).
            now = time.monotonic()
            last, taken[conn] = taken.get(conn, 0.0), now
            if now - last < RECENTLY_USED_S:
                return
            try:
                ConnectionPool.check_connection(conn)
            except Exception:
                pool.check()  # discards the dead idle connections and opens new ones
                raise

        pool = ConnectionPool(
            conninfo, connection_class=old.connection_class,
            kwargs={"row_factory": dict_row} if conninfo else old.kwargs,
            min_size=old.min_size, max_size=old.max_size, open=False, configure=datastore.after_connect_func(),
            timeout=old.timeout, max_waiting=old.max_waiting, max_lifetime=old.max_lifetime,
            check=check if datastore.pre_ping else None)
        datastore.pool = pool


def _text(statement) -> str:
    return statement if isinstance(statement, str) else statement.as_string()


def _stored(row) -> StoredEvent:
    return StoredEvent(originator_id=row["originator_id"], originator_version=row["originator_version"],
                       topic=row["topic"], state=bytes(row["state"]))


class PostgresProjectingRecorder(PostgresApplicationRecorder):
    """Also: the library's statements rendered to text once (it composes
    them, and psycopg renders a composed statement again on every call, a
    few percent of a gateway's CPU), and several aggregates' events read at
    once (select_aggregates)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        names = {"events": Identifier(self.datastore.schema, self.events_table_name),
                 "channel": Identifier(self.channel_name)}
        self.events_sql = {name: SQL(sql).format(**names).as_string()
                           for name, sql in statements("events.sql", "postgres").items()}
        self.batch_sql = {name: SQL(sql).format(**names).as_string()
                          for name, sql in statements("projection_batch.sql", "postgres").items()}
        self.notify_sql = statements("notify.sql", "postgres")["notify"]
        self.insert_events_statement = self.insert_events_statement.as_string()  # type: ignore[assignment]
        self.lock_table_statements = [_text(lock) for lock in self.lock_table_statements]

    def _notify_channel(self, curs) -> None:
        curs.execute(self.events_sql["notify_events"])

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(self, originator_id, *, gt=None, lte=None, desc=False, limit=None):
        if lte is not None or desc or limit is not None:  # not asked for by taskjournal: the library's way
            return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)
        if gt is None:
            query, params = self.events_sql["select_events"], {"originator_id": originator_id}
        else:
            query, params = self.events_sql["select_events_after"], {"originator_id": originator_id, "after": gt}
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(query, params, prepare=True)
            return [_stored(row) for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_aggregates(self, originator_ids: list) -> list[StoredEvent]:
        """The events of all these aggregates, each's in order."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.events_sql["select_aggregates"], {"originator_ids": originator_ids}, prepare=True)
            return [_stored(row) for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_notifications(self, start, limit, stop=None, topics=(), *, inclusive_of_start=True):
        if start is None or stop is not None or topics or not inclusive_of_start:  # the library's way
            return super().select_notifications(start, limit, stop, topics, inclusive_of_start=inclusive_of_start)
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self.events_sql["select_notifications"], {"start": start, "limit": limit}, prepare=True)
            return [Notification(id=row["notification_id"], originator_id=row["originator_id"],
                                 originator_version=row["originator_version"], topic=row["topic"],
                                 state=bytes(row["state"]))
                    for row in curs.fetchall()]

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events, **kwargs):
        """Events and their projection in one transaction, one statement per
        kind of row (projection_batch.sql), all sent before any reply is
        read: the event store's lock, which every writer of every process
        waits for, is not held across a round trip, nor across the Python
        work (and the wait for a core or the GIL) between two."""
        changes = kwargs.get("projection")
        if changes is None or not stored_events:
            return super().insert_events(stored_events, **kwargs)
        rows_by_kind = _by_kind(_bound(changes, stored_events, _named))
        work: list[tuple[str, dict | None]] = [(self.batch_sql[name], {"rows": orjson.dumps(rows).decode()})
                                               for name, rows in rows_by_kind.items()]
        work.append((self.batch_sql["advance_position"], None))
        work += [(self.notify_sql, {"channel": PENDING_CHANNEL, "payload": queue})
                 for queue in sorted(changes.pending_queues)]
        with self.datastore.get_connection() as conn:
            events = [self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
                      for e in stored_events]
            inserted = conn.cursor()
            try:
                # BEGIN and COMMIT as plain statements: psycopg's transaction block
                # would wait for replies after BEGIN and before COMMIT
                with conn.pipeline(), conn.cursor() as curs:
                    curs.execute("BEGIN")
                    for lock in self.lock_table_statements:
                        curs.execute(lock, prepare=True)
                    curs.execute(self.events_sql["notify_events"])
                    inserted.execute(self.insert_events_statement, (events,))
                    for sql, params in work:
                        curs.execute(sql, params, prepare=True)
                    curs.execute("COMMIT")
            except BaseException:
                if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
                    conn.rollback()  # a failed statement left the transaction open (and its lock held)
                raise
            return [row["notification_id"] for row in inserted.fetchall()]


class SQLiteProjectingRecorder(SQLiteApplicationRecorder):
    def _insert_events(self, c, stored_events, **kwargs):
        ids = super()._insert_events(c, stored_events, **kwargs)
        changes = kwargs.get("projection")
        if changes is not None and ids:
            sql = statements("projection.sql", "sqlite")
            for name, params in _bound(changes, stored_events, lambda _, i: {"position": ids[i]}):
                c.execute(sql[name], params)
            c.execute(sql["advance_position"], {"position": max(ids)})
        return ids
