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
