"""Task ids are slugids: URL-safe base64 of 16 bytes, so each one maps to a
UUID and back without a lookup table."""

import base64
import re
import uuid

SLUGID = re.compile(r"^[A-Za-z0-9_-]{8}[Q-T][A-Za-z0-9_-][CGKOSWaeimquy26-][A-Za-z0-9_-]{10}[AQgw]$")
_GROUP_NAMESPACE = uuid.UUID("5d1e0a8e-6b1c-4c3e-9d55-7a1f4b6c2e90")


def is_slugid(text: str) -> bool:
    return bool(SLUGID.match(text))


def task_uuid(task_id: str) -> uuid.UUID:
    return uuid.UUID(bytes=base64.urlsafe_b64decode(task_id + "=="))


def task_id_of(value: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode()[:-2]


def group_uuid(task_group_id: str) -> uuid.UUID:
    # Distinct from task_uuid: a group's id is often the id of its first task.
    return uuid.uuid5(_GROUP_NAMESPACE, task_group_id)


_ARTIFACT_NAMESPACE = uuid.UUID("2f6b8c1e-4d0a-4e57-9a3c-61d2b7e5f804")


def artifact_uuid(task_id: str, run_id: int, name: str) -> uuid.UUID:
    """One Artifact aggregate per (taskId, runId, name)."""
    return uuid.uuid5(_ARTIFACT_NAMESPACE, f"{task_id}/{run_id}/{name}")
