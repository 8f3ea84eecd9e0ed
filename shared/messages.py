"""What the relay sends for each event of the log: Pulse messages for the
public exchanges (behaviour spec §9, with the later upstream fixes the design
brief adopts) and one internal event for the services. Pure: no I/O."""

from dataclasses import dataclass, field

EXCHANGE_PREFIX = "exchange/taskcluster-queue/v1/"
LATER_EXCHANGES = ("task-priority-changed", "task-group-priority-changed")  # upstream v95.1, after v64.2.5
EXCHANGES = ("task-defined", "task-pending", "task-running", "artifact-created", "task-completed",
             "task-failed", "task-exception", "task-group-resolved", "task-group-sealed", *LATER_EXCHANGES)
INTERNAL_EXCHANGE = "taskjournal.events"
PENDING_REASONS = ("scheduled", "rerun", "retry", "task-retry")
_META = ("originator_id", "originator_version", "timestamp", "originator_topic")


@dataclass(frozen=True)
class PulseMessage:
    exchange: str
    routing_key: str
    body: dict
    cc: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class InternalEvent:
    routing_key: str  # "<AggregateClass>.<EventName>", e.g. "Task.RunResolved"
    body: dict


def exchange(name: str) -> str:
    return EXCHANGE_PREFIX + name


def event_type(event) -> str:
    return type(event).__qualname__


def messages_for(event, aggregate_after) -> list[PulseMessage]:
    """The Pulse messages one event causes, given the aggregate's state after it."""
    kind, _, name = event_type(event).rpartition(".")
    if kind == "Task":
        return _task_messages(name, event, aggregate_after)
    if kind == "Artifact":
        return _artifact_messages(aggregate_after)
    if kind == "TaskGroup" and name in ("Sealed", "Resolved"):
        body = {"version": 1, **aggregate_after.public_body()}
        key = f"primary.{body['taskGroupId']}.{body['schedulerId']}._"
        return [PulseMessage(exchange("task-group-" + name.lower()), key, body, [])]
    if kind == "TaskGroup" and name == "PriorityChanged":
        body = {"version": 1, "taskGroupId": aggregate_after.task_group_id, "schedulerId": aggregate_after.scheduler_id,
                "newPriority": event.new_priority, "tasksAffected": event.tasks_affected}
        key = f"primary.{body['taskGroupId']}.{body['schedulerId']}._"
        return [PulseMessage(exchange("task-group-priority-changed"), key, body, [])]
    return []


def _task_messages(name: str, event, task) -> list[PulseMessage]:
    tags = {"tags": task.definition["tags"]}
    if name == "Defined":
        status = {**task.status(), "state": "unscheduled", "runs": [], "retriesLeft": task.definition["retries"]}
        return [_task_message(task, "task-defined", {"status": status, "task": tags})]
    if name == "RunAdded":
        run = task.runs[-1]
        if run["reasonCreated"] not in PENDING_REASONS:
            return []  # a run born resolved (cancel, deadline): its RunResolved speaks for it
        return [_task_message(task, "task-pending", {"status": task.status(), "runId": run["runId"], "task": tags})]
    if name == "RunClaimed":
        run = task.runs[event.run_id]
        # no `task` here: the v64.2.5 task-running schema forbids it
        return [_task_message(task, "task-running", {
            "status": task.status(), "runId": run["runId"], "workerGroup": run["workerGroup"],
            "workerId": run["workerId"], "takenUntil": run["takenUntil"]})]
    if name == "RunResolved":
        run = task.runs[event.run_id]
        body = {"status": task.status(), "runId": run["runId"], "task": tags}
        if "workerGroup" in run:  # only claimed runs have a worker
            body.update(workerGroup=run["workerGroup"], workerId=run["workerId"])
        return [_task_message(task, "task-" + run["state"], body)]
    if name == "PriorityChanged":
        return [_task_message(task, "task-priority-changed", {
            "status": task.status(), "oldPriority": event.old_priority, "newPriority": event.new_priority})]
    return []  # RunReclaimed and anything newer send nothing


def _task_message(task, name: str, body: dict) -> PulseMessage:
    body = {"version": 1, **body}
    status = body["status"]
    words = ["primary", status["taskId"], body.get("runId"), body.get("workerGroup"), body.get("workerId"),
             status["provisionerId"], status["workerType"], status["schedulerId"], status["taskGroupId"], None]
    key = ".".join("_" if w is None or w == "" else str(w) for w in words)
    return PulseMessage(exchange(name), key, body, ["route." + r for r in task.definition["routes"]])


def _artifact_messages(artifact) -> list[PulseMessage]:
    """artifact-created once an artifact is present, for every type but s3
    (upstream never sends it for s3): at creation, on a compatible repeat
    that changed it, and when an object artifact is finished (§9.3)."""
    if not artifact.present or artifact.storage_type == "s3":
        return []
    status = artifact.task_status
    body = {"version": 1, "status": status, "runId": artifact.run_id, "workerGroup": artifact.worker_group,
            "workerId": artifact.worker_id, "artifact": artifact.info()}
    words = ["primary", status["taskId"], artifact.run_id, artifact.worker_group, artifact.worker_id,
             status["provisionerId"], status["workerType"], status["schedulerId"], status["taskGroupId"], None]
    key = ".".join("_" if w is None or w == "" else str(w) for w in words)
    return [PulseMessage(exchange("artifact-created"), key, body, ["route." + r for r in artifact.routes])]


def internal_event_for(event, aggregate_after, position: int) -> InternalEvent:
    """The event as the services see it on `taskjournal.events`."""
    ident = getattr(aggregate_after, "task_id", None) or getattr(aggregate_after, "task_group_id", None)
    attributes = {k: v for k, v in event.__dict__.items() if k not in _META}
    body = {**attributes, "id": ident or str(event.originator_id), "version": event.originator_version,
            "type": event_type(event), "position": position, "timestamp": event.timestamp.isoformat()}
    definition = getattr(aggregate_after, "definition", None)
    if definition is not None:  # spares consumers a load of the task for its group
        body["taskGroupId"] = definition["taskGroupId"]
    return InternalEvent(event_type(event), body)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: `*` is one word, `#` zero or more."""
    return _match(pattern.split("."), key.split("."))


def _match(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_match(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _match(rest, words[1:])
