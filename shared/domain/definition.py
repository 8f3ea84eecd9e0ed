"""The rules createTask applies to a request before a Task exists: queue
identity, defaults, time checks and normalisation (behaviour spec §2.1, §7.13)."""

from . import priority
from .errors import InputError
from .task_group import LATEST_MS
from .time import add_one_year, format_ms, parse_ms

MAX_DEADLINE_MS = 5 * 24 * 3600 * 1000
DRIFT_MS = 15 * 60 * 1000

FIELDS = ("taskQueueId", "schedulerId", "projectId", "taskGroupId", "dependencies", "requires", "routes",
          "priority", "retries", "created", "deadline", "expires", "scopes", "payload", "metadata", "tags", "extra")


def resolve_queue(body: dict) -> str:
    """taskQueueId from the request, checked against provisionerId/workerType."""
    provisioner, worker_type, queue = body.get("provisionerId"), body.get("workerType"), body.get("taskQueueId")
    if provisioner is not None and worker_type is not None:
        derived = f"{provisioner}/{worker_type}"
        if queue is not None and queue != derived:
            raise InputError('taskQueueId must match "provisionerId/workerType"')
        return derived
    if queue is None:
        raise InputError("at least a provisionerId and a workerType or a taskQueueId must be provided")
    return queue


def split_queue(task_queue_id: str) -> tuple[str, str]:
    provisioner, _, worker_type = task_queue_id.partition("/")
    return provisioner, worker_type


def normalize(task_id: str, body: dict, now: int) -> dict:
    """The stored definition: defaults applied, times checked and re-serialised.
    `body` has passed schema validation (so defaults of the schema are set)."""
    task_queue_id = resolve_queue(body)  # step 1 of createTask: its error wins over the time checks
    created, deadline = parse_ms(body["created"]), parse_ms(body["deadline"])
    _check_times(created, deadline, now)
    expires = parse_ms(body["expires"]) if "expires" in body else add_one_year(deadline)
    if expires < deadline:
        raise InputError("`expires` cannot be before `deadline`")
    if expires > LATEST_MS:  # e.g. 9999-12-31T23:59:59.999-01:00: the API writes instants in 4-digit years
        raise InputError(f"`expires` cannot be after {format_ms(LATEST_MS)}")
    if any(scope.endswith("**") for scope in body.get("scopes", ())):
        raise InputError("scopes must not end with `**`")
    return {
        "taskQueueId": task_queue_id,
        "schedulerId": body.get("schedulerId", "-"),
        "projectId": body.get("projectId", "none"),
        "taskGroupId": body.get("taskGroupId", task_id),
        "dependencies": list(body.get("dependencies", [])),
        "requires": body.get("requires", "all-completed"),
        "routes": list(body.get("routes", [])),
        "priority": priority.normalize(body.get("priority", "lowest")),
        "retries": int(body.get("retries", 5)),  # JSON 3.0 is the integer 3
        "created": format_ms(created),
        "deadline": format_ms(deadline),
        "expires": format_ms(expires),
        "scopes": list(body.get("scopes", [])),
        "payload": body["payload"],
        "metadata": body["metadata"],
        "tags": body.get("tags", {}),
        "extra": body.get("extra", {}),
    }


def _check_times(created: int, deadline: int, now: int) -> None:
    if created < now - DRIFT_MS:
        raise InputError("`created` cannot be in the past (max 15min drift)")
    if created > now + DRIFT_MS:
        raise InputError("`created` cannot be in the future (max 15min drift)")
    if created > deadline:
        raise InputError("`deadline` cannot be before `created`")
    if deadline < now:
        raise InputError("`deadline` cannot be in the past")
    if deadline > now + MAX_DEADLINE_MS + DRIFT_MS:
        raise InputError("`deadline` cannot be more than 5 days into the future")


def public_body(definition: dict) -> dict:
    """The task definition as the API returns it (provisionerId/workerType derived)."""
    provisioner, worker_type = split_queue(definition["taskQueueId"])
    return {"provisionerId": provisioner, "workerType": worker_type, **definition}
