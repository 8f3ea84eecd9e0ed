"""The official JavaScript client (run by node): its downloadArtifact helper
on every storage type the Python helpers uploaded, and a worker's object
artifact uploaded with its upload helper, read back with Python's."""

import hashlib
import json
import os
import subprocess
from pathlib import Path

from .conftest import Target
from .test_artifacts import create, download, put_object, put_s3, web_server  # noqa: F401  (the fixture)

JS = Path(__file__).parent / "js"
SCRIPT = JS / "download_artifacts.js"


def js_download(node_modules: Path, target: Target, task_id: str, run_id: str, *names: str) -> dict[str, dict]:
    credentials = target.credentials
    done = subprocess.run(["node", str(SCRIPT), target.root_url, credentials["clientId"], credentials["accessToken"],
                           task_id, run_id, *names], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "NODE_PATH": str(node_modules)})
    assert done.returncode == 0, done.stderr[-2000:]
    return {row["name"]: row for row in map(json.loads, done.stdout.splitlines())}


def test_js_download_artifact_of_every_storage_type(node_client, target, run, web_server):  # noqa: F811
    blob, text = os.urandom(300_000), b"object text"
    put_s3(run, "public/s3.bin", blob, "application/octet-stream")
    put_object(target, run, "private/object.txt", text)
    create(run, "public/reference.txt", storageType="reference", url=f"{web_server}/js", contentType="text/plain")
    create(run, "public/link.txt", storageType="link", artifact="private/object.txt")
    create(run, "public/error.txt", storageType="error", reason="file-not-readable-on-worker", message="unreadable")

    got = js_download(node_client, target, run.task_id, str(run.run_id), "public/s3.bin", "private/object.txt",
                      "public/reference.txt", "public/link.txt", "public/error.txt")
    sha = {name: row.get("sha256") for name, row in got.items()}
    assert sha["public/s3.bin"] == hashlib.sha256(blob).hexdigest()
    assert sha["private/object.txt"] == sha["public/link.txt"] == hashlib.sha256(text).hexdigest()
    assert sha["public/reference.txt"] == hashlib.sha256(b"referenced /js").hexdigest()
    assert got["public/error.txt"]["reason"] == "file-not-readable-on-worker"
    latest = js_download(node_client, target, run.task_id, "latest", "public/link.txt")
    assert latest["public/link.txt"]["sha256"] == hashlib.sha256(text).hexdigest()


def test_js_upload_of_an_object_artifact(node_client, target, run):
    size = 300_000  # beyond dataInline: a putUrl upload
    credentials = run.worker.options["credentials"]
    credentials = {key: value.decode() if isinstance(value, bytes) else value for key, value in credentials.items()}
    done = subprocess.run(["node", str(JS / "upload_artifact.js"), target.root_url, json.dumps(credentials),
                           run.task_id, str(run.run_id), "public/js.bin", str(size)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "NODE_PATH": str(node_client)})
    assert done.returncode == 0, done.stderr[-2000:]
    pattern = b"js-bytes" * (size // 8 + 1)
    assert download(target, run, "public/js.bin") == pattern[:size]
    info = target.queue().artifactInfo(run.task_id, str(run.run_id), "public/js.bin")
    assert (info["storageType"], info["contentType"]) == ("object", "application/x-js-artifact")
