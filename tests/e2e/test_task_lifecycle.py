"""A worker takes a task from creation to completion with the official client."""

import taskcluster

from tests.support.server import task_definition


def test_created_task_is_claimed_completed_and_reads_completed(server, queue, unique_queue):
    task_id = taskcluster.slugId()
    created = queue.createTask(task_id, task_definition(unique_queue))
    assert created["status"]["state"] == "pending"

    claims = queue.claimWork(unique_queue, {"workerGroup": "wg", "workerId": "w1", "tasks": 4})["tasks"]
    assert [c["status"]["taskId"] for c in claims] == [task_id]
    assert claims[0]["task"] == queue.task(task_id)

    worker = server.queue(claims[0]["credentials"])
    worker.reportCompleted(task_id, "0")
    assert queue.status(task_id)["status"]["state"] == "completed"


def test_run_credentials_reclaim_and_resolve_only_their_own_run(server, queue, unique_queue):
    mine, other = taskcluster.slugId(), taskcluster.slugId()
    queue.createTask(mine, task_definition(unique_queue))
    queue.createTask(other, task_definition(unique_queue))
    claims = queue.claimWork(unique_queue, {"workerGroup": "wg", "workerId": "w1", "tasks": 2})["tasks"]
    creds = {c["status"]["taskId"]: c["credentials"] for c in claims}
    worker = server.queue(creds[mine])

    reclaimed = worker.reclaimTask(mine, "0")
    assert reclaimed["takenUntil"] >= claims[0]["takenUntil"]
    try:
        worker.reportCompleted(other, "0")
        raise AssertionError("credentials of one run resolved another task")
    except taskcluster.TaskclusterRestFailure as err:
        assert err.status_code == 403
    server.queue(reclaimed["credentials"]).reportFailed(mine, "0")
    assert queue.status(mine)["status"]["runs"][0]["state"] == "failed"
