"""Where the official Taskcluster reference (API json, JSON schemas, exchanges) is.

It lives next to the repository, in ../shared/reference, never at an absolute
path; TASKJOURNAL_REFERENCE_DIR overrides it. A test that needs it and does
not find it fails when CI is set (a silently skipped schema check proves
nothing) and is skipped, with the path it looked at, otherwise."""

import os
from pathlib import Path

import pytest

VERSION = "taskcluster-v64.2.5"
REPOSITORY = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPOSITORY / ".." / "shared" / "reference" / VERSION


def reference_dir() -> Path:
    """The reference folder (it may not exist; see `require`)."""
    return Path(os.environ.get("TASKJOURNAL_REFERENCE_DIR", DEFAULT_DIR)).resolve()


def require(*parts: str, root: Path | None = None) -> Path:
    """The path of a file or folder inside the reference: a failure in CI, or a
    skip elsewhere, when it is missing."""
    path = (root or reference_dir()).joinpath(*parts)
    if path.exists():
        return path
    reason = (f"the Taskcluster reference (official schemas) is missing: {path} does not exist "
              f"(expected ../shared/reference/{VERSION} next to the repository, or TASKJOURNAL_REFERENCE_DIR)")
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this is a failure", pytrace=False)
    pytest.skip(reason)


def v64_queue(options: dict):
    """The official Python client's Queue, generated from v64.2.5's api.json
    (it still has declareProvisioner and declareWorkerType, which the
    installed, later client no longer offers), plus the later client's
    methods v64.2.5 did not have (taskQueueCounts, changeTaskPriority, ...)."""
    import json

    import taskcluster
    from taskcluster.client import createApiClient

    api = json.loads(require("references", "queue", "v1", "api.json").read_text())
    known = {entry["name"] for entry in api["entries"]}
    api["entries"] += [{"type": "function", **entry} for name, entry in taskcluster.Queue.funcinfo.items()
                       if name not in known]
    return createApiClient("Queue", {"reference": api})(options)
