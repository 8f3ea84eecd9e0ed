"""Queries over the read models (the tables the inline projection keeps)."""

from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError

from taskjournal.shared.domain.errors import InputError
from taskjournal.shared.domain.ids import is_slugid, task_uuid

from . import history
from .sql import statements

# A pending entry leased by a claimWork that never settles it (its process
# died) is offered again after this; the aggregates still decide each claim,
# so a slow but living claimer that loses its lease only loses a race.
LEASE_MS = 2_000
# A batch of expired claims or past deadlines a resolver leased is its own
# this long (ADR 0017); if it dies, another replica takes the rest after that.
RESOLVER_LEASE_MS = 30_000
TASK_COLUMNS = frozenset({"definition", "status", "state", "expires", "ever_completed", "ever_resolved"})  # what tasks_by_id may select


class ReadModel:
    recorder: Any  # the event store's recorder, and the mapper that decodes its events (set by the store)
    mapper: Any

    def __init__(self, datastore, dialect: str):
        self.datastore = datastore
        self.dialect = dialect
        self.sql = statements("queries.sql", dialect)

    def _rows(self, name: str, commit: bool = False, **params) -> list[dict]:
        return self._run(self.sql[name], commit, **params)

    def _run(self, sql, commit: bool = False, **params) -> list[dict]:
        try:
            return self._run_once(sql, commit, params)
        except (OperationalError, InterfaceError):
            if commit:
                raise
            self.heal()  # a pooled connection died (the database restarted): drop the dead ones, read again
            return self._run_once(sql, commit, params)

    def _run_once(self, sql, commit: bool, params: dict) -> list[dict]:
        with self.datastore.transaction(commit=commit) as curs:
            curs.execute(sql, params)
            return [dict(row) for row in curs.fetchall()]

    def heal(self) -> None:
        """Drop dead pooled connections; the PostgreSQL store's pool has some to drop."""

    def _execute(self, name: str, **params) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.sql[name], params)

    def _id_list(self, ids: list[str]):
        """A list of ids as one parameter (an array; SQLite: a JSON text)."""
        return ids

    def _value(self, name: str, **params):
        rows = self._rows(name, **params)
        return next(iter(rows[0].values())) if rows else None

    def task_definition(self, task_id: str) -> str | None:
        return self._value("task_definition", task_id=task_id)

    def task_status(self, task_id: str) -> str | None:
        return self._value("task_status", task_id=task_id)

    def tasks_by_id(self, task_ids: list[str], columns: str) -> list[dict]:
        """Rows (task_id plus `columns`) for the ids that exist, in request order."""
        unique = [task_id for task_id in dict.fromkeys(task_ids) if is_slugid(task_id)]  # others match nothing
        if not unique:
            return []
        wanted = [c.strip() for c in columns.split(",")]
        if not set(wanted) <= TASK_COLUMNS:
            raise ValueError(f"tasks_by_id cannot select {columns!r}")
        sql = self.sql["tasks_by_id"].replace("{columns}", ", ".join(wanted))
        # one parameter for all ids (PostgreSQL caps bind parameters at 65,535)
        found = {row["task_id"]: row for row in self._run(sql, task_ids=self._id_list(unique))}
        return [found[task_id] for task_id in unique if task_id in found]

    def group_body(self, task_group_id: str) -> str | None:
        return self._value("group_body", task_group_id=task_group_id)

    def group_admission(self, task_group_id: str) -> dict | None:
        rows = self._rows("group_admission", task_group_id=task_group_id)
        return rows[0] if rows else None

    def group_members(self, task_group_id: str, offset: int, limit: int) -> list[dict]:
        return self._rows("group_members", task_group_id=task_group_id, offset=offset, limit=limit)

    def group_member_ids(self, task_group_id: str) -> list[str]:
        return [row["task_id"] for row in self._rows("group_member_ids", task_group_id=task_group_id)]

    def group_states(self, task_group_id: str) -> list[dict]:
        """{task_id, state} of every member, in the group's order."""
        return self._rows("group_states", task_group_id=task_group_id)

    def group_size(self, task_group_id: str) -> int:
        return self._value("group_size", task_group_id=task_group_id) or 0

    def dependents_page(self, task_id: str, offset: int, limit: int) -> list[dict]:
        return self._rows("dependents_page", task_id=task_id, offset=offset, limit=limit)

    def ready_dependents(self, task_ids: list[str]) -> list[str]:
        """The dependents that any of `task_ids` was the last obstacle for (one query)."""
        if not task_ids:
            return []
        return [row["task_id"] for row in self._rows("ready_dependents", task_ids=self._id_list(list(task_ids)))]

    def dependencies_satisfied(self, task_id: str) -> bool:
        """True when none of the task's recorded dependencies is unsatisfied
        (the same test as ready_dependents). A fresh statement: it sees every
        commit made before it starts."""
        return not self._rows("unsatisfied_dependency", task_id=task_id)

    def group_has_unresolved(self, task_group_id: str) -> tuple[bool, int]:
        """Whether a task of the group is unresolved, and the log position that answer reflects."""
        row, = self._rows("group_has_unresolved", task_group_id=task_group_id)
        return bool(row["unresolved"]), row["position"] or 0

    def pending_count(self, task_queue_id: str, now: int) -> int:
        return self._value("pending_count", task_queue_id=task_queue_id, now=now) or 0

    def claimed_count(self, task_queue_id: str) -> int:
        return self._value("claimed_count", task_queue_id=task_queue_id) or 0

    def pending_counts(self, now: int) -> list[dict]:
        """{task_queue_id, n} for every task queue with pending work (one scan, for /metrics)."""
        return self._rows("pending_counts", now=now)

    def claimed_counts(self) -> list[dict]:
        return self._rows("claimed_counts")

    def pending_page(self, task_queue_id: str, after: tuple[int, str], limit: int) -> list[dict]:
        return self._rows("pending_page", task_queue_id=task_queue_id, after_inserted=after[0],
                          after_task_id=after[1], limit=limit)

    def claimed_page(self, task_queue_id: str, after: tuple[int, str], limit: int) -> list[dict]:
        return self._rows("claimed_page", task_queue_id=task_queue_id, after_claimed=after[0],
                          after_task_id=after[1], limit=limit)

    def expired_claims(self, now: int, limit: int = 100) -> list[dict]:
        return self._rows("expired_claims", now=now, limit=limit)

    def past_deadline(self, now: int, limit: int = 100) -> list[str]:
        return [row["task_id"] for row in self._rows("past_deadline", now=now, limit=limit)]

    def lease_expired_claims(self, now: int, limit: int) -> list[dict]:
        """Up to `limit` expired claims {task_id, run_id, taken_until} that no
        other resolver holds, now held by this caller for RESOLVER_LEASE_MS."""
        return self._rows("lease_expired_claims", commit=True, now=now, limit=limit,
                          lease_until=now + RESOLVER_LEASE_MS)

    def lease_past_deadline(self, now: int, limit: int) -> list[str]:
        """As lease_expired_claims, for unresolved tasks past their deadline."""
        rows = self._rows("lease_past_deadline", commit=True, now=now, limit=limit,
                          lease_until=now + RESOLVER_LEASE_MS)
        return [row["task_id"] for row in rows]

    def expired_claims_backlog(self, now: int) -> int:
        return self._value("expired_claims_backlog", now=now) or 0

    def expired_tasks(self, cutoff: int, limit: int) -> list[str]:
        return [row["task_id"] for row in self._rows("expired_tasks", cutoff=cutoff, limit=limit)]

    def expired_groups(self, cutoff: int, limit: int) -> list[str]:
        return [row["task_group_id"] for row in self._rows("expired_groups", cutoff=cutoff, limit=limit)]

    def position(self) -> int:
        return self._value("position") or 0

    def lease_pending(self, task_queue_id: str, count: int, now: int) -> list[tuple[str, int]]:
        """Lease up to `count` pending entries, best first. Replicas never lease
        the same entry at once; the aggregate still decides each claim."""
        rows = self._rows("lease_pending", commit=True, task_queue_id=task_queue_id, limit=count, now=now,
                          lease_until=now + LEASE_MS)
        rows.sort(key=lambda r: (-r["priority"], r["inserted"], r["task_id"]))
        return [(row["task_id"], row["run_id"]) for row in rows]

    def release_lease(self, task_id: str, run_id: int) -> None:
        self._execute("release_lease", task_id=task_id, run_id=run_id)

    # ---------------------------------------------------------- artifacts
    def artifact_row(self, task_id: str, run_id: int, name: str) -> dict | None:
        """{name, storage_type, content_type, expires, present, details (JSON text),
        object_finished, object_expires (an object artifact's object, else None)} or None."""
        rows = self._rows("artifact", task_id=task_id, run_id=run_id, artifact_name=name)
        return rows[0] if rows else None

    def latest_artifact(self, task_id: str, name: str) -> tuple[int | None, dict | None]:
        """(the task's last run id, or None when there is no task, -1 when it has
        no runs; the artifact `name` of that run, or None)."""
        rows = self._rows("latest_artifact", task_id=task_id, artifact_name=name)
        if not rows:
            return None, None
        row = rows[0]
        run_id = row.pop("run_id")
        return run_id, (row if row["name"] is not None else None)

    def artifacts_page(self, task_id: str, run_id: int, after_name: str, limit: int) -> list[dict]:
        return self._rows("artifacts_page", task_id=task_id, run_id=run_id, after_name=after_name, limit=limit)

    def expired_artifacts(self, cutoff: int, limit: int) -> list[dict]:
        return self._rows("expired_artifacts", cutoff=cutoff, limit=limit)

    # ---------------------------------------------------------- objects (the object service)
    def object_with_upload(self, upload_id: str) -> str | None:
        """The name of the object whose upload in progress has this uploadId."""
        return self._value("object_with_upload", upload_id=upload_id)

    def expired_objects(self, now: int, limit: int) -> list[str]:
        return [row["name"] for row in self._rows("expired_objects", now=now, limit=limit)]
    # ---------------------------------------------------------- task queues and workers (behaviour spec §10)
    def task_queue(self, task_queue_id: str, now: int) -> dict | None:
        """The task queue if it has not expired."""
        rows = self._rows("task_queue", task_queue_id=task_queue_id, now=now)
        return rows[0] if rows else None

    def task_queues_page(self, now: int, offset: int, limit: int) -> list[dict]:
        return self._rows("task_queues_page", now=now, offset=offset, limit=limit)

    def provisioner_queues_page(self, provisioner_id: str, now: int, offset: int, limit: int) -> list[dict]:
        return self._rows("provisioner_queues_page", provisioner_id=provisioner_id, now=now, offset=offset,
                          limit=limit)

    def provisioners(self, now: int, limit: int, provisioner_id: str = "") -> list[dict]:
        """Provisioners synthesised from unexpired task queues (all, or the one named)."""
        return self._rows("provisioners", now=now, limit=limit, provisioner_id=provisioner_id)

    def worker(self, task_queue_id: str, worker_group: str, worker_id: str) -> dict | None:
        rows = self._rows("worker", task_queue_id=task_queue_id, worker_group=worker_group, worker_id=worker_id)
        return rows[0] if rows else None

    def workers_page(self, task_queue_id: str, offset: int, limit: int) -> list[dict]:
        return self._rows("workers_page", task_queue_id=task_queue_id, offset=offset, limit=limit)

    def recent_tasks(self, task_queue_id: str, worker_group: str, worker_id: str, limit: int) -> list[dict]:
        """The worker's latest `limit` claimed runs, oldest first."""
        rows = self._rows("recent_tasks", task_queue_id=task_queue_id, worker_group=worker_group,
                          worker_id=worker_id, limit=limit)
        return [{"taskId": r["task_id"], "runId": r["run_id"]} for r in reversed(rows)]

    def quarantined_workers(self, now: int) -> list[dict]:
        return self._rows("quarantined_workers", now=now)

    def expired_task_queues(self, cutoff: int, limit: int) -> list[str]:
        return [r["task_queue_id"] for r in self._rows("expired_task_queues", cutoff=cutoff, limit=limit)]

    def expired_workers(self, cutoff: int, limit: int) -> list[tuple[str, str, str]]:
        return [(r["task_queue_id"], r["worker_group"], r["worker_id"])
                for r in self._rows("expired_workers", cutoff=cutoff, limit=limit)]

    # ---------------------------------------------------------- our own API (journal)
    def queue_position(self, task_id: str, now: int) -> dict | None:
        """{state, task_queue_id, run_id, ahead} (run_id and ahead None unless
        the task is pending before its deadline), or None for no such task."""
        rows = self._rows("queue_position", task_id=task_id, now=now)
        return rows[0] if rows else None

    def recent_claims(self, task_queue_id: str, since: int) -> list[dict]:
        """{run_id, started, status (JSON text)} of the queue's runs claimed since `since`."""
        return self._rows("recent_claims", task_queue_id=task_queue_id, since=since)

    # ---------------------------------------------------------- history (ADR 0015, shared/store/history.py)
    # Entries: {position, time, event, taskId, runId, actor, reason, changes}; `actor` is
    # {"kind": "client", "clientId", "requestId"[, "issuer"]}, {"kind": "service", "service"}
    # or {"kind": "unknown"} (events recorded before actors were).
    def task_history(self, task_id: str) -> list[dict]:
        """Every event of the task, of its artifacts, in log order; [] for no such task."""
        return [history.entry(row) for row in self._rows("task_history", task_id=task_id)]

    def group_history(self, task_group_id: str, continuation: str | None = None,
                      limit: int = 1000) -> tuple[list[dict], str | None]:
        """One page of the events of the group, its tasks and their artifacts,
        in log order, and the continuation token of the next page (None: this
        is the last). A token that is not one of ours: InputError."""
        after = history_position(continuation)
        rows = self._rows("group_history", task_group_id=task_group_id, after=after, limit=limit + 1)
        page = rows[:limit]
        more = limit > 0 and len(rows) > limit
        return [history.entry(row) for row in page], str(page[-1]["position"]) if more else None

    def task_status_as_of(self, task_id: str, as_of: int) -> dict | None:
        """The task's status (as `status` answers it) after its events recorded
        at or before `as_of` (epoch ms); None when it did not exist then."""
        if not is_slugid(task_id):
            return None
        stored = self.recorder.select_events(task_uuid(task_id))
        return history.status_as_of((self.mapper.to_domain_event(s) for s in stored), as_of)

    def log_page(self, after: int, limit: int) -> list[dict]:
        """Up to `limit` events after log position `after`, in log order, whole:
        {position, time, event, aggregateId, version, actor, data}."""
        notifications = self.recorder.select_notifications(start=after + 1, limit=limit)
        return [history.log_entry(n.id, self.mapper.to_domain_event(n)) for n in notifications]


def history_position(continuation: str | None) -> int:
    """The log position a group-history continuation token stands for."""
    if continuation is None or continuation == "":
        return 0
    if not continuation.isdigit() or len(continuation) > 18:
        raise InputError(f"continuationToken `{continuation}` is not one this API gave")
    return int(continuation)
