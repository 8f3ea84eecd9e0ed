"""The inline projection: the read-model rows that follow from an aggregate's
state. Rows are a pure function of state, so the live projection (written in
the same transaction as the events) and a replay from the log agree."""

from dataclasses import dataclass, field

import orjson

from taskjournal.shared.domain.artifact import Artifact
from taskjournal.shared.domain.object import Object
from taskjournal.shared.domain.priority import RANK
from taskjournal.shared.domain.task import Task
from taskjournal.shared.domain.task_group import TaskGroup
from taskjournal.shared.domain.time import parse_ms
from taskjournal.shared.domain.worker import TaskQueue, Worker

from .history import history_rows


@dataclass
class Changes:
    """Statements to run with the events, and the task queues that gained work."""

    statements: list[tuple[str, dict]] = field(default_factory=list)
    pending_queues: set[str] = field(default_factory=set)

    def add(self, name: str, **params) -> None:
        self.statements.append((name, params))

    @classmethod
    def joined(cls, each: list["Changes"]) -> "Changes":
        """The changes of several saves committed together, in order."""
        if len(each) == 1:
            return each[0]
        return cls([s for c in each for s in c.statements], set().union(*(c.pending_queues for c in each)))


def changes_for(aggregates, new_ids: set) -> Changes:
    changes = Changes()
    for aggregate in aggregates:
        if isinstance(aggregate, Task):
            _task_rows(aggregate, aggregate.id in new_ids, changes)
        elif isinstance(aggregate, TaskGroup):
            _group_rows(aggregate, changes)
        elif isinstance(aggregate, Artifact):
            _artifact_rows(aggregate, changes)
        elif isinstance(aggregate, Object):
            _object_rows(aggregate, changes)
        elif isinstance(aggregate, TaskQueue):
            _queue_rows(aggregate, changes)
        elif isinstance(aggregate, Worker):
            _worker_rows(aggregate, changes)
        for row in history_rows(aggregate, list(aggregate.pending_events)):  # none in a replay: see replay.py
            changes.add("insert_history", **row)
    return changes


def _task_rows(task: Task, is_new: bool, changes: Changes) -> None:
    d = task.definition
    key = {"task_id": task.task_id}
    status = orjson.dumps(task.status()).decode()
    flags = {"ever_completed": int(task.ever_completed), "ever_resolved": int(task.ever_resolved)}
    if is_new:
        # position: the recorder puts the notification id of the task's first event here.
        changes.add("insert_task", **key, **flags, task_group_id=d["taskGroupId"], task_queue_id=d["taskQueueId"],
                    state=task.state, deadline=task.deadline_ms, expires=parse_ms(d["expires"]),
                    definition=orjson.dumps(task.public_body()).decode(), status=status, position=task.id)
        for required in d["dependencies"]:
            changes.add("insert_dependency", required_task_id=required, dependent_task_id=task.task_id,
                        requires=d["requires"])
    else:
        changes.add("update_task", **key, **flags, state=task.state, status=status)
    run = task.last_run
    if run is not None and run["state"] == "pending":
        changes.add("upsert_pending", **key, run_id=run["runId"], task_queue_id=d["taskQueueId"],
                    priority=RANK[task.priority], inserted=parse_ms(run["scheduled"]), deadline=task.deadline_ms)
        changes.pending_queues.add(d["taskQueueId"])
    else:
        changes.add("delete_pending", **key)
    if run is not None and run["state"] == "running":
        changes.add("upsert_claim", **key, run_id=run["runId"], task_queue_id=d["taskQueueId"],
                    worker_group=run["workerGroup"], worker_id=run["workerId"], claimed=task.claimed_at,
                    taken_until=parse_ms(run["takenUntil"]))
    else:
        changes.add("delete_claim", **key)
    # a worker's recentTasks: every claimed run (live, only a running last run can be new; a replay sees all)
    for claimed in (task.runs if is_new else [run] if run is not None and run["state"] == "running" else []):
        if "workerGroup" in claimed:
            changes.add("insert_worker_run", **key, run_id=claimed["runId"], task_queue_id=d["taskQueueId"],
                        worker_group=claimed["workerGroup"], worker_id=claimed["workerId"],
                        started=parse_ms(claimed["started"]))


def _group_rows(group: TaskGroup, changes: Changes) -> None:
    changes.add("upsert_task_group", task_group_id=group.task_group_id, scheduler_id=group.scheduler_id,
                expires=group.expires, sealed=group.sealed, view=orjson.dumps(group.public_body()).decode())


def _artifact_rows(artifact: Artifact, changes: Changes) -> None:
    changes.add("upsert_artifact", task_id=artifact.task_id, run_id=artifact.run_id, artifact_name=artifact.name,
                storage_type=artifact.storage_type, content_type=artifact.content_type, expires=artifact.expires,
                present=int(artifact.present), details=orjson.dumps(artifact.details).decode())
def _object_rows(obj: Object, changes: Changes) -> None:
    changes.add("upsert_object", object_name=obj.name, project_id=obj.project_id, upload_id=obj.upload_id,
                expires=obj.expires, upload_expires=obj.upload_expires, finished=obj.finished)


def _queue_rows(queue: TaskQueue, changes: Changes) -> None:
    changes.add("upsert_task_queue", task_queue_id=queue.task_queue_id,
                provisioner_id=queue.task_queue_id.split("/", 1)[0], expires=queue.expires,
                last_date_active=queue.last_date_active, description=queue.description, stability=queue.stability)


def _worker_rows(worker: Worker, changes: Changes) -> None:
    changes.add("upsert_worker", task_queue_id=worker.task_queue_id, worker_group=worker.worker_group,
                worker_id=worker.worker_id, first_claim=worker.first_claim, last_date_active=worker.last_date_active,
                expires=worker.expires, quarantine_until=worker.quarantine_until,
                quarantine_details=orjson.dumps(worker.quarantine_details).decode())
