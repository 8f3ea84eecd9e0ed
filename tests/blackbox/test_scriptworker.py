"""A real worker: Mozilla's scriptworker (from PyPI, in its own virtualenv,
`make blackbox-venv`) claims a task, runs a script that writes files into its
artifact directory, uploads them as s3 artifacts (createArtifact, then a PUT
of the gzip-compressed text to the putUrl) and reports the task completed.
Chain of trust is off (no signing keys, nothing fetched from GitHub): what
remains is the worker protocol. The artifacts are then read with the client."""

import gzip
import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import taskcluster

from .conftest import HERE, Run, Target, task_definition
from .test_artifacts import download

REPO = HERE.parent.parent
VENV = Path(os.environ.get("BLACKBOX_VENV", REPO / ".venv-blackbox"))
TASK_SCRIPT = """
import os, sys
out = sys.argv[1]
os.makedirs(out + "/public/build", exist_ok=True)
open(out + "/public/build/hello.txt", "w").write("hello from scriptworker\\n" * 50)
open(out + "/public/build/blob.bin", "wb").write(bytes(range(256)) * 40)
"""


@pytest.fixture(scope="session")
def scriptworker() -> Path:
    """The scriptworker executable, built into .venv-blackbox when missing."""
    executable = VENV / "bin" / "scriptworker"
    if not executable.exists():
        built = subprocess.run(["make", "-C", str(REPO), "blackbox-venv"], capture_output=True, text=True, timeout=900)
        if built.returncode != 0:
            message = f"could not install scriptworker: {built.stderr[-1500:]}"
            pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return executable


def test_scriptworker_runs_a_task_and_its_artifacts_download(scriptworker, target: Target, tmp_path):
    worker_type = f"sw{secrets.token_hex(6)}"
    task_id = taskcluster.slugId()
    target.queue().createTask(task_id, task_definition(f"blackbox/{worker_type}"))
    config = tmp_path / "scriptworker.yaml"
    artifacts = tmp_path / "artifacts"
    script = tmp_path / "task.py"
    script.write_text(TASK_SCRIPT)
    config.write_text(json.dumps({  # JSON is YAML
        "taskcluster_root_url": target.root_url, "credentials": target.credentials,
        "provisioner_id": "blackbox", "worker_type": worker_type, "worker_group": "bb", "worker_id": "scriptworker1",
        "work_dir": str(tmp_path / "work"), "log_dir": str(tmp_path / "logs"), "artifact_dir": str(artifacts),
        "task_log_dir": str(artifacts / "public" / "logs"), "poll_interval": 1,
        "task_script": [sys.executable, str(script), str(artifacts)],
        "sign_chain_of_trust": False, "verify_chain_of_trust": False, "ed25519_private_key_path": "/unused"}))
    log = open(tmp_path / "scriptworker.log", "w")
    worker = subprocess.Popen([str(scriptworker), str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        state = wait_for_resolution(target, task_id, worker, tmp_path / "scriptworker.log")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    assert state == "completed", (tmp_path / "scriptworker.log").read_text()[-3000:]

    listed = {a["name"]: a for a in target.queue().listArtifacts(task_id, "0")["artifacts"]}
    assert {"public/build/hello.txt", "public/build/blob.bin", "public/logs/live_backing.log",
            "public/chain-of-trust.json"} <= set(listed)
    assert {a["storageType"] for a in listed.values()} == {"s3"}  # scriptworker's way: createArtifact s3 + putUrl
    assert listed["public/build/hello.txt"]["contentType"] == "text/plain"
    run = Run(task_id, 0, target.queue(), "")
    assert download(target, run, "public/build/hello.txt") == b"hello from scriptworker\n" * 50  # gzip undone
    blob = download(target, run, "public/build/blob.bin", latest=True)
    assert hashlib.sha256(blob).hexdigest() == hashlib.sha256(bytes(range(256)) * 40).hexdigest()
    url = target.queue().getArtifact(task_id, "0", "public/build/hello.txt")["url"]
    stored = requests.get(url, stream=True, timeout=30)
    assert gzip.decompress(stored.raw.read()).startswith(b"hello from scriptworker")  # stored compressed
    cot = json.loads(download(target, run, "public/chain-of-trust.json"))
    assert cot["taskId"] == task_id and "public/build/blob.bin" in cot["artifacts"]


def wait_for_resolution(target: Target, task_id: str, worker: subprocess.Popen, log: Path, patience_s=120) -> str:
    deadline = time.monotonic() + patience_s
    while time.monotonic() < deadline:
        state = target.queue().status(task_id)["status"]["state"]
        if state in ("completed", "failed", "exception"):
            return state
        if worker.poll() is not None:
            raise AssertionError(f"scriptworker exited: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"the task was not resolved in {patience_s} s: {log.read_text()[-3000:]}")
