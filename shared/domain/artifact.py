"""The Artifact aggregate: one per (taskId, runId, name), apart from the Task
(a task may have thousands and claimWork loads tasks). It decides the
immutability rules of a repeated createArtifact (behaviour spec §8.3) and
finishArtifact (§8.4); the events carry the task's status and routes at the
time, which the artifact-created message needs (§9.3)."""

import json

from eventsourcing.domain import Aggregate, event

from .errors import InputError, RequestConflict
from .ids import artifact_uuid
from .time import format_ms

STORAGE_TYPES = ("s3", "object", "reference", "link", "error")
DEFAULT_CONTENT_TYPE = "application/binary"
MAX_NAME_LENGTH = 1024  # S3 keys are at most 1024 bytes; the prefix adds a little more, checked by the back end


def name_problem(name: str) -> str | None:
    """Why an artifact name is refused, or None. Upstream accepts any printable
    ASCII; a `..` segment or an empty segment could leave the task's prefix
    in a file-system back end, so they are refused (issue 8, bad input)."""
    if not name:
        return "Artifact names must not be empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"Artifact names must be at most {MAX_NAME_LENGTH} characters"
    if ".." in name.split("/"):
        return "Artifact names must not contain a `..` path segment"
    return None


def object_name(task_id: str, run_id: int, name: str) -> str:
    """The object-service name of an object artifact (auth spec §9.12)."""
    return f"t/{task_id}/{run_id}/{name}"


def blob_key(task_id: str, run_id: int, name: str) -> str:
    """Where an s3 artifact's bytes live in its bucket (upstream's `prefix`)."""
    return f"{task_id}/{run_id}/{name}"


def bucket_for(name: str) -> str:
    return "public" if name.startswith("public/") else "private"


def details_for(storage_type: str, request: dict, task_id: str, run_id: int, name: str,
                upload_id: str | None = None) -> dict:
    """The stored details of a createArtifact request (§8.1)."""
    if storage_type == "s3":
        return {"bucket": bucket_for(name), "prefix": blob_key(task_id, run_id, name)}
    if storage_type == "object":
        return {"uploadId": upload_id}
    if storage_type == "reference":
        return {"url": request["url"]}
    if storage_type == "link":
        return {"artifact": request["artifact"]}
    if storage_type == "error":
        return {"message": request["message"], "reason": request["reason"]}
    raise InputError(f"Unknown storageType: {storage_type}")


def compatible(original: dict, new: dict) -> bool:
    """Whether a repeated createArtifact `new` may replace `original` (§8.3);
    both are {storageType, contentType, expires (ms), details}."""
    if new["storageType"] != "link" and new["contentType"] != original["contentType"]:
        return False
    if new["expires"] < original["expires"]:
        return False
    if new["storageType"] == original["storageType"]:
        return new["storageType"] == "reference" or new["details"] == original["details"]
    return (original["storageType"], new["storageType"]) == ("reference", "link")


class Artifact(Aggregate):
    @staticmethod
    def create_id(task_id: str, run_id: int, name: str):
        return artifact_uuid(task_id, run_id, name)

    @event("Created")
    def __init__(self, task_id: str, run_id: int, name: str, storage_type: str, content_type: str, expires: int,
                 details: dict, worker_group: str, worker_id: str, task_status: dict, routes: list):
        self.task_id = task_id
        self.run_id = run_id
        self.name = name
        self.storage_type = storage_type
        self.content_type = content_type
        self.expires = expires
        self.details = details
        self.present = storage_type != "object"  # object artifacts wait for finishArtifact
        self.worker_group = worker_group
        self.worker_id = worker_id
        self.task_status = task_status  # the task's status when the artifact last changed
        self.routes = routes

    # ------------------------------------------------------------ queries
    def info(self) -> dict:
        """{storageType, name, expires, contentType}: listings, artifactInfo, messages."""
        return {"storageType": self.storage_type, "name": self.name, "expires": format_ms(self.expires),
                "contentType": self.content_type}

    def as_request(self) -> dict:
        return {"storageType": self.storage_type, "contentType": self.content_type, "expires": self.expires,
                "details": self.details}

    # ------------------------------------------------------------ commands
    def revise(self, storage_type: str, content_type: str, expires: int, details: dict, task_status: dict) -> None:
        """A repeated createArtifact: allowed only as §8.3 says; a compatible
        repeat changes storage type, details and expires (never the content type)."""
        new = {"storageType": storage_type, "contentType": content_type, "expires": expires, "details": details}
        if not compatible(self.as_request(), new):
            original = {"storageType": self.storage_type, "contentType": self.content_type,
                        "expires": format_ms(self.expires)}
            raise RequestConflict("Artifact already exists with different properties, and none of the allowed "
                                  f"exceptions apply: {json.dumps(original, indent=2)}")
        if (storage_type, expires, details) != (self.storage_type, self.expires, self.details):
            self._revised(storage_type, expires, details, task_status)

    def finish(self, upload_id: str, object_finished, task_status: dict) -> bool:
        """finishArtifact (§8.4, v105.1.0 for other types). `object_finished()`
        asks the object service whether the upload is done. False when the
        artifact was already present (nothing changes)."""
        if self.storage_type != "object":
            raise InputError("Only object artifacts can be finished")
        if self.present:
            return False
        if upload_id != self.details.get("uploadId"):
            raise InputError("given uploadId does not match that for the artifact")
        if not object_finished():
            raise InputError("Object storing artifact data does not exist")
        self._finished(task_status)
        return True

    # ------------------------------------------------------------ events
    @event("Revised")
    def _revised(self, storage_type: str, expires: int, details: dict, task_status: dict) -> None:
        self.storage_type = storage_type
        self.expires = expires
        self.details = details
        self.present = True  # a compatible repeat never changes an object artifact's type (its uploadId differs)
        self.task_status = task_status

    @event("Finished")
    def _finished(self, task_status: dict) -> None:
        self.present = True
        self.details = {}
        self.task_status = task_status
