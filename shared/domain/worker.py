"""Task queues and workers (behaviour spec §10): the records operators and
the UI read, kept current by claimWork, claimTask, reclaimTask and the
declare* calls, and a worker's quarantine. One TaskQueue aggregate per
taskQueueId and one Worker aggregate per (taskQueueId, workerGroup,
workerId); provisioners are synthesised from task queues (§10.4)."""

import uuid

from eventsourcing.domain import Aggregate, event

from .time import format_ms

DAY_MS = 24 * 3600 * 1000
WORKER_SEEN_EXPIRY_MS = DAY_MS  # claimWork, reclaimTask: a worker is involved
QUEUE_SEEN_EXPIRY_MS = 5 * DAY_MS  # claimTask, declareWorkerType without expires
NEVER_QUARANTINED_MS = 10 * 365 * DAY_MS  # a new worker's quarantineUntil is now - 10 years (upstream)
UNSPECIFIED_INFO = "[unspecified]"
STABILITIES = ("experimental", "stable", "deprecated")

_QUEUE_NAMESPACE = uuid.UUID("8a0f3c52-1e7b-4d6a-b2c9-5f4e3d2a1b07")
_WORKER_NAMESPACE = uuid.UUID("c3e1b7a4-9d2f-4a68-8e15-2b7f6c0d9a31")


def queue_uuid(task_queue_id: str) -> uuid.UUID:
    return uuid.uuid5(_QUEUE_NAMESPACE, task_queue_id)


def worker_uuid(task_queue_id: str, worker_group: str, worker_id: str) -> uuid.UUID:
    return uuid.uuid5(_WORKER_NAMESPACE, f"{task_queue_id}/{worker_group}/{worker_id}")


class TaskQueue(Aggregate):
    @staticmethod
    def create_id(task_queue_id: str, now: int, expires: int):
        return queue_uuid(task_queue_id)

    @event("Created")
    def __init__(self, task_queue_id: str, now: int, expires: int):
        self.task_queue_id = task_queue_id
        self.last_date_active = now
        self.expires = expires
        self.description = ""
        self.stability = "experimental"

    def seen(self, now: int, expires: int) -> None:
        """lastDateActive = now, expires never decreases."""
        self._seen(now, max(self.expires, expires))

    def declare(self, now: int, expires: int, description: str | None, stability: str | None) -> None:
        """declareWorkerType: always written; description/stability only when given."""
        self._declared(now, max(self.expires, expires), description, stability)

    @event("Seen")
    def _seen(self, now: int, expires: int) -> None:
        self.last_date_active = now
        self.expires = expires

    @event("Declared")
    def _declared(self, now: int, expires: int, description: str | None, stability: str | None) -> None:
        self.last_date_active = now
        self.expires = expires
        if description is not None:
            self.description = description
        if stability is not None:
            self.stability = stability

    def view(self) -> dict:
        return {"taskQueueId": self.task_queue_id, "description": self.description, "stability": self.stability,
                "expires": format_ms(self.expires), "lastDateActive": format_ms(self.last_date_active)}


class Worker(Aggregate):
    @staticmethod
    def create_id(task_queue_id: str, worker_group: str, worker_id: str, now: int, expires: int):
        return worker_uuid(task_queue_id, worker_group, worker_id)

    @event("Created")
    def __init__(self, task_queue_id: str, worker_group: str, worker_id: str, now: int, expires: int):
        self.task_queue_id = task_queue_id
        self.worker_group = worker_group
        self.worker_id = worker_id
        self.first_claim = now
        self.last_date_active = now
        self.expires = expires
        self.quarantine_until = now - NEVER_QUARANTINED_MS
        self.quarantine_details: list[dict] = []

    def seen(self, now: int, expires: int) -> None:
        self._seen(now, max(self.expires, expires))

    def quarantine(self, until: int, info: str | None, client_id: str, now: int) -> None:
        """quarantineWorker: a past `until` lifts the quarantine; every call is
        recorded with who made it and why."""
        self._quarantined(until, max(self.expires, now + WORKER_SEEN_EXPIRY_MS), client_id, now,
                          UNSPECIFIED_INFO if info is None else info)

    def is_quarantined(self, now: int) -> bool:
        return self.quarantine_until > now

    @event("Seen")
    def _seen(self, now: int, expires: int) -> None:
        self.last_date_active = now
        self.expires = expires

    @event("Quarantined")
    def _quarantined(self, until: int, expires: int, client_id: str, at: int, info: str) -> None:
        self.quarantine_until = until
        self.expires = expires
        self.quarantine_details = [*self.quarantine_details, {
            "clientId": client_id, "updatedAt": format_ms(at), "quarantineUntil": format_ms(until),
            "quarantineInfo": info}]
