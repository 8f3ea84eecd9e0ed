"""Event recorders that also apply the inline projection: the read-model rows
and the tracking position are written in the transaction that appends the
events, so a committed write is visible to every read at once (ADR 0003)."""

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder

from .sql import statements

PENDING_CHANNEL = "taskjournal_pending"


def _with_position(params: dict, position: int) -> dict:
    return {**params, "position": position} if "position" in params else params


class PostgresProjectingRecorder(PostgresApplicationRecorder):
    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            for sql in statements("schema.sql", "postgres").values():
                curs.execute(sql)

    def _fetch_ids_after_insert_events(self, curs, stored_events, **kwargs):
        ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        changes = kwargs.get("projection")
        if changes is not None and ids:
            sql = statements("projection.sql", "postgres")
            position = max(ids)
            for name, params in changes.statements:
                curs.execute(sql[name], _with_position(params, position), prepare=True)
            curs.execute(sql["advance_position"], {"position": position}, prepare=True)
            for queue in sorted(changes.pending_queues):
                curs.execute("SELECT pg_notify(%s, %s)", (PENDING_CHANNEL, queue))
        return ids


class SQLiteProjectingRecorder(SQLiteApplicationRecorder):
    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            for sql in statements("schema.sql", "sqlite").values():
                curs.execute(sql)

    def _insert_events(self, c, stored_events, **kwargs):
        ids = super()._insert_events(c, stored_events, **kwargs)
        changes = kwargs.get("projection")
        if changes is not None and ids:
            sql = statements("projection.sql", "sqlite")
            position = max(ids)
            for name, params in changes.statements:
                c.execute(sql[name], _with_position(params, position))
            c.execute(sql["advance_position"], {"position": position})
        return ids
