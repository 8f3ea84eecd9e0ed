"""The Object aggregate: one per object name of the object service (protocol
spec §9). It decides createUpload's create-or-match, the hashes recorded per
algorithm, and finishUpload; the bytes themselves live in the BlobStore."""

import uuid

from eventsourcing.domain import Aggregate, event

from .errors import InputError, RequestConflict
from .time import format_ms

UPLOAD_LIFETIME_MS = 24 * 3600 * 1000  # an unfinished upload is kept a day
_OBJECT_NAMESPACE = uuid.UUID("0b1ec7a1-5e2d-4c6f-8a3b-9f1d2e4c6a80")


def object_uuid(name: str) -> uuid.UUID:
    return uuid.uuid5(_OBJECT_NAMESPACE, name)


def already_exists() -> RequestConflict:
    return RequestConflict("Object already exists")


class Object(Aggregate):
    @staticmethod
    def create_id(name: str):
        return object_uuid(name)

    @event("UploadCreated")
    def __init__(self, name: str, project_id: str, upload_id: str, expires: int, upload_expires: int):
        self.name = name
        self.project_id = project_id
        self.upload_id: str | None = upload_id  # None once finished
        self.expires = expires
        self.upload_expires: int | None = upload_expires
        self.hashes: dict[str, str] = {}
        self.content_type: str | None = None
        self.content_length: int | None = None  # declared by a putUrl proposal
        self.finished: int | None = None

    # ------------------------------------------------------------ queries
    @property
    def is_finished(self) -> bool:
        return self.upload_id is None

    def metadata(self) -> dict:
        return {"projectId": self.project_id, "expires": format_ms(self.expires), "hashes": dict(self.hashes)}

    # ------------------------------------------------------------ decisions
    def match_upload(self, project_id: str, upload_id: str, expires: int) -> None:
        """createUpload again on this name: only the same in-progress upload may go on."""
        if self.is_finished or (self.project_id, self.upload_id, self.expires) != (project_id, upload_id, expires):
            raise already_exists()

    def add_hashes(self, hashes: dict[str, str]) -> None:
        new = {}
        for algorithm, value in hashes.items():
            if algorithm in self.hashes and self.hashes[algorithm] != value:
                raise RequestConflict("Content hash already exists with a different value")
            if algorithm not in self.hashes:
                new[algorithm] = value
        if new:
            self._hashes_added(new)

    def negotiate(self, content_type: str, content_length: int | None) -> None:
        """Record what the chosen upload method will store (dataInline or putUrl)."""
        if (content_type, content_length) != (self.content_type, self.content_length):
            self._negotiated(content_type, content_length)

    def check_finish(self, project_id: str, upload_id: str, hashes: dict[str, str]) -> bool:
        """finishUpload's checks (spec §9.5 steps 3-5); True when already finished (idempotent)."""
        if self.project_id != project_id:
            raise InputError(f'Object "{self.name}" does not have projectId {project_id}')
        if self.is_finished:
            for algorithm, value in hashes.items():
                if algorithm not in self.hashes:
                    raise RequestConflict(f'Object "{self.name}" is already finished, but without hash '
                                          f"algorithm {algorithm}")
                if self.hashes[algorithm] != value:
                    raise RequestConflict(f'Object "{self.name}" is already finished, but with a different hash '
                                          f"for algorithm {algorithm}")
            return True
        if self.upload_id != upload_id:
            raise RequestConflict(f'Object "{self.name}" does not have uploadId {upload_id}')
        return False

    def finish(self, now: int) -> None:
        if not self.is_finished:
            self._finished(now)

    # ------------------------------------------------------------ events
    @event("HashesAdded")
    def _hashes_added(self, hashes: dict) -> None:
        self.hashes.update(hashes)

    @event("Negotiated")
    def _negotiated(self, content_type: str, content_length: int | None) -> None:
        self.content_type = content_type
        self.content_length = content_length

    @event("Finished")
    def _finished(self, at: int) -> None:
        self.upload_id = None
        self.upload_expires = None
        self.finished = at
