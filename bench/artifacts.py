"""The artifact phase of `make bench` (bench/run.py): artifacts created (and,
with the object service, uploaded) per second by C concurrent workers, each
holding its own claimed task; and a signed getLatestArtifact URL for wrk
(redirects per second). Small files; loopback only."""

import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import taskcluster

QUEUE_PREFIX = "artbench"
PAYLOAD = os.urandom(1024)  # a small log


def _queue(root_url: str, credentials: dict) -> taskcluster.Queue:
    return taskcluster.Queue({"rootUrl": root_url, "credentials": credentials, "maxRetries": 0})


def _claimed_run(root_url: str, root: dict) -> tuple[str, taskcluster.Queue]:
    """A task claimed through claimWork: (taskId, the worker's queue with run credentials)."""
    queue = _queue(root_url, root)
    task_id, queue_id = taskcluster.slugId(), f"{QUEUE_PREFIX}/w{taskcluster.slugId()[:10].lower().replace('_', 'a')}"
    queue_id = queue_id.replace("-", "a")
    queue.createTask(task_id, {
        "taskQueueId": queue_id, "schedulerId": "artbench",
        "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
        "deadline": taskcluster.stringDate(taskcluster.fromNow("2 hours")),
        "expires": taskcluster.stringDate(taskcluster.fromNow("2 days")),
        "payload": {}, "metadata": {"name": "artifact bench", "description": "artifacts",
                                    "owner": "bench@example.com", "source": "http://127.0.0.1/bench"}})
    claim, = queue.claimWork(queue_id, {"workerGroup": "artbench", "workerId": "w", "tasks": 1})["tasks"]
    return task_id, _queue(root_url, claim["credentials"])


def has_object_service(root_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{root_url}/api/object/v1/ping", timeout=5) as reply:
            return reply.status == 200
    except OSError:
        return False


def _one_artifact(root_url: str, worker: taskcluster.Queue, task_id: str, name: str, upload: bool) -> None:
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    if not upload:
        worker.createArtifact(task_id, "0", name, {"storageType": "reference", "url": "https://example.com/",
                                                   "contentType": "text/plain", "expires": expires})
        return
    from taskcluster import upload as helpers

    created = worker.createArtifact(task_id, "0", name, {"storageType": "object", "contentType": "text/plain",
                                                         "expires": expires})
    objects = taskcluster.Object({"rootUrl": root_url, "credentials": created["credentials"], "maxRetries": 0})
    helpers.uploadFromBuf(projectId=created["projectId"], name=created["name"], contentType="text/plain",
                          contentLength=len(PAYLOAD), expires=created["expires"],  # as the queue locked it in
                          uploadId=created["uploadId"], data=PAYLOAD, objectService=objects, maxRetries=0)
    worker.finishArtifact(task_id, "0", name, {"uploadId": created["uploadId"]})


def created_per_second(root_url: str, root: dict, workers: int = 8, per_worker: int = 50) -> dict:
    """C workers, each creating `per_worker` artifacts on its own run."""
    upload = has_object_service(root_url)
    runs = [_claimed_run(root_url, root) for _ in range(workers)]
    errors: list[str] = []

    def work(run) -> None:
        task_id, worker = run
        for i in range(per_worker):
            try:
                _one_artifact(root_url, worker, task_id, f"public/bench/{i}.log", upload)
            except Exception as err:  # counted, the run goes on
                errors.append(f"{type(err).__name__}: {str(err)[:200]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(work, runs))
    elapsed = time.perf_counter() - started
    done = workers * per_worker - len(errors)
    return {"kind": "object, 1 KiB uploaded with the client's helper, finished" if upload
            else "reference (no object service: nothing uploaded)",
            "workers": workers, "artifacts": done, "seconds": round(elapsed, 3),
            "per_s": round(done / elapsed, 1) if elapsed else None,
            "errors": {"total": len(errors), "samples": errors[:5]}}


def latest_artifact_url(root_url: str, root: dict) -> str:
    """A bewit-signed getLatestArtifact URL (a 303 per request) for wrk."""
    task_id, worker = _claimed_run(root_url, root)
    _one_artifact(root_url, worker, task_id, "public/wrk.log", has_object_service(root_url))
    return _queue(root_url, root).buildSignedUrl("getLatestArtifact", task_id, "public/wrk.log", expiration=3600)


def figures(result: dict) -> list[tuple[str, str]]:
    created = result.get("created") or {}
    rows = []
    if "per_s" in created:
        rows.append((f"artifacts created/s ({created['workers']} workers, {created['kind']})",
                     f"{created['per_s']} ({created['errors']['total']} errors)"))
    wrk = result.get("wrk") or {}
    if "requests_per_s" in wrk:
        rows.append(("wrk getLatestArtifact (signed URL, 303) requests/s", f"{wrk['requests_per_s']}"))
        rows.append(("wrk getLatestArtifact latency mean / p50 / p99",
                     f"{wrk['latency_mean_ms']} / {wrk['latency_p50_ms']} / {wrk['latency_p99_ms']} ms"))
    elif wrk:
        rows.append(("wrk getLatestArtifact", wrk.get("skipped", "n/a")))
    if "error" in result:
        rows.append(("artifact phase", result["error"]))
    return rows
