"""createTask(B, dependencies=[A]) racing reportCompleted(A) against the real
server on PostgreSQL: whichever commits first, B must end up pending (before
the fix some B stayed unscheduled forever: the dependency-resolver looked for
A's dependents before B existed, and createTask had read A unresolved)."""

import threading
import time

import pytest
import taskcluster

from tests.support.server import Server, task_definition

PAIRS = 6  # concurrent races per round
ROUNDS = 30
SETTLE_SECONDS = 60  # how long the resolver may take to schedule every B


@pytest.fixture(scope="module")
def pg_server(module_postgres_url, tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("tj-deps"), module_postgres_url)
    yield srv
    srv.stop()


def claimed_task(queue, task_queue: str) -> str:
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition(task_queue))
    queue.claimTask(task_id, "0", {"workerGroup": "race", "workerId": "w"})
    return task_id


def race_round(server, task_queue: str) -> list[str]:
    """PAIRS races of createTask(B, [A]) against reportCompleted(A); the Bs."""
    queue = server.queue()
    dependencies = [claimed_task(queue, task_queue) for _ in range(PAIRS)]
    dependents = [taskcluster.slugId() for _ in range(PAIRS)]
    start = threading.Barrier(2 * PAIRS)
    errors: list = []

    def run(call):
        start.wait()
        try:
            call()
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)

    calls = []
    for a, b in zip(dependencies, dependents):
        calls.append(lambda a=a: server.queue().reportCompleted(a, "0"))
        calls.append(lambda a=a, b=b: server.queue().createTask(b, task_definition(task_queue, dependencies=[a])))
    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return dependents


def states(server, task_ids: list[str]) -> dict[str, str]:
    reply = server.queue().statuses({"taskIds": task_ids})
    return {s["taskId"]: s["status"]["state"] for s in reply["statuses"]}


def test_dependent_created_while_its_dependency_completes_is_scheduled(pg_server, unique_queue):
    dependents = []
    for _ in range(ROUNDS):
        dependents += race_round(pg_server, unique_queue)
    deadline = time.monotonic() + SETTLE_SECONDS
    waiting = dependents
    while waiting and time.monotonic() < deadline:
        found = {}
        for i in range(0, len(waiting), 100):
            found.update(states(pg_server, waiting[i:i + 100]))
        assert set(found.values()) <= {"unscheduled", "pending"}, found
        waiting = [task_id for task_id, state in found.items() if state != "pending"]
        if waiting:
            time.sleep(0.2)
    assert not waiting, f"{len(waiting)} of {len(dependents)} dependents stuck unscheduled: {waiting[:5]}"
