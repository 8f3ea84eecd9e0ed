"""Event recorders that also apply the inline projection: the read-model rows
and the tracking position are written in the transaction that appends the
events, so a committed write is visible to every read at once (ADR 0003)."""

import time
from typing import Any
from weakref import WeakKeyDictionary

from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from eventsourcing.postgres import ConnectionPool, PostgresApplicationRecorder, PostgresFactory
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from .port import PENDING_CHANNEL
from .sql import statements

CONNINFO = "POSTGRES_CONNINFO"  # our setting: the libpq connection string every pool connection uses


def _apply(execute, sql: dict, changes, stored_events, ids) -> None:
    """Run the projection's statements; a `position` parameter holding an
    aggregate id becomes the notification id of that aggregate's first event,
    an `event_key` (aggregate id, version) the `position` of that event."""
    first_id: dict[Any, int] = {}
    event_id: dict[tuple, int] = {}
    for stored, notification_id in zip(stored_events, ids):
        first_id.setdefault(stored.originator_id, notification_id)
        event_id[(stored.originator_id, stored.originator_version)] = notification_id
    for name, params in changes.statements:
        if "position" in params:
            params = {**params, "position": first_id[params["position"]]}
        elif "event_key" in params:
            params = {**params, "position": event_id[params["event_key"]]}
            del params["event_key"]
        execute(sql[name], params)
    execute(sql["advance_position"], {"position": max(ids)})


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

    def _fetch_ids_after_insert_events(self, curs, stored_events, **kwargs):
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        changes = kwargs.get("projection")
        if changes is not None and ids:
            sql = statements("projection.sql", "postgres")
            _apply(lambda q, p: curs.execute(q, p, prepare=True), sql, changes, stored_events, ids)
            notify = statements("notify.sql", "postgres")["notify"]
            for queue in sorted(changes.pending_queues):
                curs.execute(notify, {"channel": PENDING_CHANNEL, "payload": queue})
        return ids


class SQLiteProjectingRecorder(SQLiteApplicationRecorder):
    def _insert_events(self, c, stored_events, **kwargs):
        ids = super()._insert_events(c, stored_events, **kwargs)
        changes = kwargs.get("projection")
        if changes is not None and ids:
            _apply(c.execute, statements("projection.sql", "sqlite"), changes, stored_events, ids)
        return ids
