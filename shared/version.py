"""Our version: the installed package's, and the git commit it was built from."""

import functools
import importlib.metadata
import os
import subprocess
from pathlib import Path

TASKCLUSTER_VERSION = "64.2.5"  # the upstream release whose Queue API we speak


def package_version() -> str:
    try:
        return importlib.metadata.version("taskjournal")
    except importlib.metadata.PackageNotFoundError:  # running from a bare source tree
        return "0+unknown"


@functools.cache
def build_commit() -> str:
    """TASKJOURNAL_COMMIT (set by the container image), else the checkout's HEAD, else "unknown"."""
    commit = os.environ.get("TASKJOURNAL_COMMIT", "").strip()
    if commit:
        return commit
    try:
        found = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                               capture_output=True, text=True, timeout=3)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return found.stdout.strip() if found.returncode == 0 and found.stdout.strip() else "unknown"


def version_info() -> dict:
    """The body of /__version__ (Dockerflow's fields, describing our build)."""
    return {"version": package_version(), "commit": build_commit(), "source": "taskjournal",
            "build": "taskjournal", "taskcluster": TASKCLUSTER_VERSION}


def version_line() -> str:
    return f"taskjournal {package_version()} (commit {build_commit()}, Taskcluster Queue API {TASKCLUSTER_VERSION})"
