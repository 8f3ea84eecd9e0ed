"""claimWork never hands one run to two workers, however many gateway
processes serve the same PostgreSQL store."""

from concurrent.futures import ThreadPoolExecutor

import pytest
import taskcluster

from tests.support.server import Server, task_definition

TASKS = 120


@pytest.fixture(scope="module")
def gateways(tmp_path_factory, module_postgres_url):
    first = Server(tmp_path_factory.mktemp("gw1"), module_postgres_url, command=("run", "api-gateway"))
    second = Server(tmp_path_factory.mktemp("gw2"), module_postgres_url, command=("run", "api-gateway"),
                    token=first.token)
    yield first, second
    first.stop()
    second.stop()


def test_concurrent_claimers_on_two_gateways_claim_each_run_exactly_once(gateways, unique_queue):
    first, second = gateways
    creator = first.queue()
    task_ids = {taskcluster.slugId() for _ in range(TASKS)}
    for task_id in task_ids:
        creator.createTask(task_id, task_definition(unique_queue))

    def drain(worker: int) -> list[str]:
        queue = (first if worker % 2 else second).queue()
        claimed = []
        while True:
            claims = queue.claimWork(unique_queue, {"workerGroup": "race", "workerId": f"w{worker}", "tasks": 7})
            if not claims["tasks"]:
                return claimed
            claimed += [c["status"]["taskId"] for c in claims["tasks"]]

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(drain, range(12)))
    everything = [task_id for claimed in results for task_id in claimed]
    assert len(everything) == len(set(everything)), "a run was handed to two workers"
    assert set(everything) == task_ids
    statuses = [creator.status(t)["status"] for t in list(task_ids)[:10]]
    assert all(s["state"] == "running" and len(s["runs"]) == 1 for s in statuses)


def test_a_quarantine_made_through_one_gateway_holds_on_the_other(gateways, unique_queue):
    """Each gateway checks quarantine against a copy refreshed every second:
    once the other gateway's copy has it, its claimWork hands out nothing."""
    import time

    first, second = gateways
    provisioner, worker_type = unique_queue.split("/")
    worker = {"workerGroup": "q", "workerId": "quarantined"}
    assert second.queue().claimWork(unique_queue, {**worker, "tasks": 1})["tasks"] == []  # the worker is seen
    first.queue().quarantineWorker(provisioner, worker_type, "q", "quarantined", {
        "quarantineUntil": taskcluster.stringDate(taskcluster.fromNow("1 hour")), "quarantineInfo": "test"})
    held, deadline = False, time.monotonic() + 30
    while not held and time.monotonic() < deadline:
        first.queue().createTask(taskcluster.slugId(), task_definition(unique_queue))
        held = second.queue().claimWork(unique_queue, {**worker, "tasks": 1})["tasks"] == []
    assert held
    for _ in range(3):  # and it keeps holding, with work pending
        assert second.queue().claimWork(unique_queue, {**worker, "tasks": 1})["tasks"] == []
        assert second.queue().pendingTasks(unique_queue)["pendingTasks"] >= 1
    assert first.queue().claimWork(unique_queue, {"workerGroup": "q", "workerId": "free", "tasks": 1})["tasks"]
