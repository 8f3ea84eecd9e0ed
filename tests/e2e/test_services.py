"""The services as separate OS processes over PostgreSQL and RabbitMQ: a task
graph runs to completion, a subscriber bound to task-completed with a route
gets its messages, and killing any service with SIGKILL mid-run loses nothing."""

import secrets
import time

import pytest
import taskcluster

from tests.support.amqp import RouteSubscriber
from tests.support.server import Server, task_definition

ROLES = ("scheduler", "claim-resolver", "dependency-resolver", "relay")


@pytest.fixture(scope="module")
def processes(tmp_path_factory, module_postgres_url, amqp_url):
    token = secrets.token_urlsafe(24)
    env = {"TASKJOURNAL_AMQP_URL": amqp_url}
    gateway = Server(tmp_path_factory.mktemp("gateway"), module_postgres_url, command=("run", "api-gateway"),
                     token=token, **env)
    services = {role: Server(tmp_path_factory.mktemp(role), module_postgres_url, command=("run", role), token=token,
                             ready_path="/ready", **env) for role in ROLES}
    yield gateway, services
    for server in [gateway, *services.values()]:
        if server.process.poll() is None:
            server.stop()


def _wait_for(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _work(queue, queue_id: str, fail: set) -> list[str]:
    """Claim everything pending once; report failure for ids in `fail`."""
    done = []
    for claim in queue.claimWork(queue_id, {"workerGroup": "svc", "workerId": "w1", "tasks": 32})["tasks"]:
        task_id = claim["status"]["taskId"]
        (queue.reportFailed if task_id in fail else queue.reportCompleted)(task_id, str(claim["runId"]))
        done.append(task_id)
    return done


def test_graph_completes_across_processes_and_route_subscriber_gets_task_completed(processes, unique_queue,
                                                                                  amqp_url):
    gateway, _ = processes
    queue, route = gateway.queue(), f"tj-e2e.{secrets.token_hex(4)}"
    subscriber = RouteSubscriber(amqp_url, "task-completed", route)
    ids = {name: taskcluster.slugId() for name in "ABCDFGH"}
    group = taskcluster.slugId()

    def create(name, deps=(), requires="all-completed"):
        queue.createTask(ids[name], task_definition(unique_queue, taskGroupId=group, routes=[route],
                                                    dependencies=[ids[d] for d in deps], requires=requires))

    create("A"), create("F")
    create("B", "A"), create("C", "A"), create("D", "BC")  # fan-out from A, fan-in into D
    create("G", "F"), create("H", "F", "all-resolved")     # F fails: G waits, H runs

    def state(name):
        return queue.status(ids[name])["status"]["state"]

    def settled():
        _work(queue, unique_queue, fail={ids["F"]})
        return all(state(n) == "completed" for n in "ABCDH")

    _wait_for(settled, 30, "the graph to complete")
    assert state("F") == "failed" and state("G") == "unscheduled"
    completed = {ids[n] for n in "ABCDH"}
    _wait_for(lambda: {b["status"]["taskId"] for _, b in subscriber.bodies} >= completed, 10, "task-completed")
    for routing_key, body in subscriber.bodies:
        assert routing_key.startswith(f"primary.{body['status']['taskId']}.0.svc.w1.")
        assert body["status"]["state"] == "completed" and body["task"] == {"tags": {}}
    subscriber.stop = True


@pytest.mark.parametrize("role", ROLES)
def test_service_killed_mid_run_loses_nothing_after_restart(processes, unique_queue, role):
    gateway, services = processes
    queue = gateway.queue()
    root, children = taskcluster.slugId(), [taskcluster.slugId() for _ in range(20)]
    queue.createTask(root, task_definition(unique_queue))
    for child in children:
        queue.createTask(child, task_definition(unique_queue, dependencies=[root]))
    assert _work(queue, unique_queue, fail=set()) == [root]

    services[role].kill()  # SIGKILL right after the root resolved: its events are mid-flight
    time.sleep(0.5)
    services[role] = services[role].restarted()

    def all_children_done():
        _work(queue, unique_queue, fail=set())
        return all(queue.status(c)["status"]["state"] == "completed" for c in children)

    _wait_for(all_children_done, 30, f"dependents to run after {role} was killed")


def test_two_claim_resolvers_expire_each_claim_exactly_once(processes, unique_queue, tmp_path, amqp_url):
    gateway, services = processes
    second = Server(tmp_path, services["claim-resolver"].args[1], command=("run", "claim-resolver"),
                    token=gateway.token, ready_path="/ready", TASKJOURNAL_AMQP_URL=amqp_url)
    try:
        queue = gateway.queue()
        task_ids = [taskcluster.slugId() for _ in range(15)]
        for task_id in task_ids:
            queue.createTask(task_id, task_definition(unique_queue, retries=1))
        claimed = queue.claimWork(unique_queue, {"workerGroup": "svc", "workerId": "gone", "tasks": 32})["tasks"]
        assert len(claimed) == 15  # the worker vanishes: every claim expires after 3 s

        def runs(task_id):
            return queue.status(task_id)["status"]["runs"]

        _wait_for(lambda: all(len(runs(t)) == 2 for t in task_ids), 15, "claims to expire")
        time.sleep(1.5)  # give a second resolution every chance to happen
        for task_id in task_ids:
            first, retry = runs(task_id)
            assert (first["state"], first["reasonResolved"]) == ("exception", "claim-expired")
            assert (retry["state"], retry["reasonCreated"]) == ("pending", "retry")
    finally:
        second.stop()


def test_dev_with_postgres_and_rabbitmq_publishes_and_resolves_dependencies(tmp_path, postgres_url, amqp_url,
                                                                              unique_queue):
    server = Server(tmp_path, postgres_url, TASKJOURNAL_AMQP_URL=amqp_url)
    try:
        queue, route = server.queue(), f"tj-dev.{secrets.token_hex(4)}"
        subscriber = RouteSubscriber(amqp_url, "task-completed", route)
        first, second = taskcluster.slugId(), taskcluster.slugId()
        queue.createTask(first, task_definition(unique_queue, routes=[route]))
        queue.createTask(second, task_definition(unique_queue, routes=[route], dependencies=[first]))
        assert _work(queue, unique_queue, fail=set()) == [first]
        _wait_for(lambda: queue.status(second)["status"]["state"] == "pending", 10, "the dependent")
        _wait_for(lambda: [b["status"]["taskId"] for _, b in subscriber.bodies] == [first], 10, "task-completed")
        subscriber.stop = True
    finally:
        server.stop()
