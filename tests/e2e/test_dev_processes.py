"""`taskjournal dev` over PostgreSQL runs several gateway processes on one port
and a back-office process (ADR 0016): all of them serve, a long poll in one
gateway wakes for work created through another, and stopping dev stops them all."""

import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import taskcluster

from taskjournal.services.api_gateway.claimwork import SAFETY_POLL_S
from tests.support.server import Server, task_definition

pytestmark = pytest.mark.postgres
GATEWAYS = 2
PROCESS_INFO = re.compile(r'taskjournal_process_info\{pid="(\d+)",roles="([^"]*)"\}')


@pytest.fixture
def dev(tmp_path, postgres_url):
    server = Server(tmp_path, postgres_url, TASKJOURNAL_GATEWAY_PROCESSES=str(GATEWAYS),
                    TASKJOURNAL_CLAIMWORK_WAIT="30")
    yield server
    server.stop()


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has stopped


def serving_pid(queue: taskcluster.Queue, root_url: str) -> int:
    """The gateway process behind this client's kept-alive connection."""
    text = queue.session.get(root_url + "/metrics", timeout=30).text
    return int(PROCESS_INFO.search(text).group(1))


def clients_on_distinct_gateways(server: Server, wanted: int) -> dict[int, taskcluster.Queue]:
    """New clients (each its own connection) until `wanted` gateways answered."""
    by_pid: dict[int, taskcluster.Queue] = {}
    for _ in range(200):
        queue = server.queue()
        by_pid.setdefault(serving_pid(queue, server.root_url), queue)
        if len(by_pid) == wanted:
            return by_pid
        time.sleep(0.05)  # gateways may still be starting
    raise AssertionError(f"only {len(by_pid)} gateway processes answered")


def test_every_gateway_process_serves_and_the_back_office_runs_the_rest(dev):
    clients = clients_on_distinct_gateways(dev, GATEWAYS)
    assert set(clients) <= children(dev.process.pid)
    assert len(children(dev.process.pid)) == GATEWAYS + 1
    for queue in clients.values():  # each gateway answers the API, not only /metrics
        assert queue.ping()["alive"]


def test_a_long_poll_in_one_gateway_wakes_for_a_task_created_through_another(dev, unique_queue):
    (waiter, creator) = list(clients_on_distinct_gateways(dev, GATEWAYS).values())[:2]
    task_id = taskcluster.slugId()
    with ThreadPoolExecutor(1) as pool:
        poll = pool.submit(waiter.claimWork, unique_queue, {"workerGroup": "g", "workerId": "w", "tasks": 1})
        time.sleep(1)  # the poll is waiting in its gateway
        assert not poll.done()
        created = time.monotonic()
        creator.createTask(task_id, task_definition(unique_queue))
        claims = poll.result(timeout=30)
        woken_after = time.monotonic() - created
    assert [c["status"]["taskId"] for c in claims["tasks"]] == [task_id]
    assert woken_after < SAFETY_POLL_S  # woken by the other process's commit, not found by the safety poll


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_dev_stops_every_child(dev, how):
    clients_on_distinct_gateways(dev, GATEWAYS)
    kids = children(dev.process.pid)
    assert len(kids) == GATEWAYS + 1
    dev.process.send_signal(how)  # SIGKILL: the children hear of it from the kernel (PR_SET_PDEATHSIG)
    dev.process.wait(30)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in kids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in kids if alive(pid)]
