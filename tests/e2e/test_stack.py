"""`taskjournal stack` supervises its children: a child that dies is named on
stderr and started again, and one that keeps dying stops the stack with a
non-zero exit naming it."""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time

import taskcluster

from tests.support.server import ROOT_CLIENT_ID, free_ports, task_definition

SERVICES = 6  # processes of a stack without --scale: one port each (artifact-service included)


class Stack:
    """`taskjournal stack` with its stderr collected line by line."""

    def __init__(self, data_dir, database_url: str, amqp_url: str, port: int, args=(), **env_overrides: str):
        self.root_url, self.token = f"http://127.0.0.1:{port}", secrets.token_urlsafe(24)
        env = {**os.environ, "TASKJOURNAL_DATABASE_URL": database_url, "TASKJOURNAL_AMQP_URL": amqp_url,
               "TASKJOURNAL_PORT": str(port), "TASKJOURNAL_HOST": "127.0.0.1", "TASKJOURNAL_ROOT_URL": self.root_url,
               "TASKJOURNAL_DATA_DIR": str(data_dir), "TASKJOURNAL_ROOT_CLIENT_ID": ROOT_CLIENT_ID,
               "TASKJOURNAL_ROOT_ACCESS_TOKEN": self.token, "TASKJOURNAL_CLAIMWORK_WAIT": "2",
               "TASKJOURNAL_ANONYMOUS_SCOPES": "", "TASKJOURNAL_LOG_FORMAT": "json", **env_overrides}
        self.lines: list[str] = []
        self.process = subprocess.Popen([sys.executable, "-P", "-m", "taskjournal.services.cli", "stack", *args],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def started_pids(self, role: str) -> list[int]:
        pattern = re.compile(rf"^started {re.escape(role)} \(pid (\d+), ")
        return [int(m.group(1)) for m in map(pattern.match, list(self.lines)) if m]

    def wait_for(self, predicate, what: str, timeout: float = 30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.1)
        plain = [line for line in self.lines if not line.startswith("{")]  # the stack's own lines, errors
        raise AssertionError(f"timed out waiting for {what}; stderr:\n" + "\n".join(plain[-20:] + self.lines[-40:]))

    def queue(self) -> taskcluster.Queue:
        return taskcluster.Queue({"rootUrl": self.root_url, "maxRetries": 0,
                                  "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": self.token}})

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def _ready(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=1)
        return True
    except OSError:
        return False


def test_stack_restarts_a_killed_child_and_the_queue_still_works(tmp_path, module_postgres_url, amqp_url,
                                                                   unique_queue):
    port = free_ports(SERVICES)
    stack = Stack(tmp_path, module_postgres_url, amqp_url, port)
    try:
        role = "dependency-resolver"
        [first] = stack.wait_for(lambda: stack.started_pids(role), f"{role} to start")
        ops_port = port + 3  # api-gateway, scheduler, claim-resolver, dependency-resolver, relay
        stack.wait_for(lambda: _ready(f"http://127.0.0.1:{ops_port}/ready"), f"{role} to be ready")
        os.kill(first, signal.SIGKILL)

        stack.wait_for(lambda: any(f"{role} (pid {first}) died: killed by SIGKILL" in line for line in stack.lines),
                       "the stack to report the death")
        second = stack.wait_for(lambda: [p for p in stack.started_pids(role) if p != first], "a new process")[0]
        assert _alive(second) and stack.process.poll() is None
        stack.wait_for(lambda: _ready(f"http://127.0.0.1:{ops_port}/ready"), f"the new {role} to be ready")

        queue = stack.queue()
        stack.wait_for(lambda: _ready(stack.root_url + "/api/queue/v1/ping"), "the gateway")
        parent, child = taskcluster.slugId(), taskcluster.slugId()
        queue.createTask(parent, task_definition(unique_queue))
        queue.createTask(child, task_definition(unique_queue, dependencies=[parent]))
        [claim] = queue.claimWork(unique_queue, {"workerGroup": "stack", "workerId": "w", "tasks": 4})["tasks"]
        queue.reportCompleted(parent, str(claim["runId"]))
        # only the restarted dependency-resolver schedules the dependent
        stack.wait_for(lambda: queue.status(child)["status"]["state"] == "pending", "the dependent to be scheduled")
    finally:
        assert stack.stop() == 0


def test_stack_stops_with_an_error_when_a_child_keeps_dying(tmp_path, module_postgres_url, amqp_url):
    port = free_ports(SERVICES)
    with socket.socket() as taken:  # the scheduler's port: every start of the scheduler fails
        taken.bind(("127.0.0.1", port + 1))
        taken.listen()
        stack = Stack(tmp_path, module_postgres_url, amqp_url, port)
        try:
            code = stack.process.wait(120)
        finally:
            stack.stop()
    stack.reader.join(5)
    assert code == 1
    # its port is taken: the start-up check refuses with one line and exit 2
    assert any(re.match(r"scheduler \(pid \d+\) died: exited with code 2$", line) for line in stack.lines)
    assert "scheduler died 6 times within 60s; stopping the stack" in stack.lines
    assert len(stack.started_pids("scheduler")) == 6  # the first start and five restarts


# ------------------------------------------------------------------ metrics and draining (ADR 0020)
def test_every_process_kind_serves_metrics_prometheus_parses(tmp_path, module_postgres_url, amqp_url, unique_queue):
    from prometheus_client.parser import text_string_to_metric_families

    from tests.unit.test_ops import documented_metrics

    port = free_ports(SERVICES)
    stack = Stack(tmp_path, module_postgres_url, amqp_url, port)
    try:
        queue = stack.queue()
        stack.wait_for(lambda: _ready(stack.root_url + "/api/queue/v1/ping"), "the gateway")
        queue.createTask(taskcluster.slugId(), task_definition(unique_queue))
        documented = documented_metrics()
        served = set()
        for offset, role in enumerate(ROLE_ORDER):
            url = f"http://127.0.0.1:{port + offset}"
            stack.wait_for(lambda: _ready(url + "/ready"), f"{role} to be ready")
            families = {f.name: f for f in text_string_to_metric_families(_get(url + "/metrics"))}
            assert all(f.type in ("counter", "gauge", "histogram", "summary", "info") for f in families.values())
            assert sum(len(f.samples) for f in families.values()) > 20, role
            [build] = families["taskjournal_build_info"].samples
            assert build.labels["roles"] == role and build.value == 1
            assert families["process_resident_memory_bytes"].samples[0].value > 0
            ours = {name for name in families if name.startswith("taskjournal_")}
            served |= ours
            # every family we serve is in the catalogue (counters lose `_total` in the parser's names)
            assert ours <= {name.removesuffix("_total") for name in documented}, role
            if role == "scheduler":
                pending = families["taskjournal_task_queue_pending"].samples
                assert {s.labels["task_queue_id"]: s.value for s in pending}[unique_queue] == 1
            if role == "relay":
                [lag] = families["taskjournal_relay_lag_events"].samples
                assert lag.value >= 0
            if role == "dependency-resolver":
                [backlog] = families["taskjournal_dependency_events_backlog"].samples
                assert backlog.value >= 0
        assert served == {name.removesuffix("_total") for name in documented}
    finally:
        assert stack.stop() == 0


ROLE_ORDER = ("api-gateway", "scheduler", "claim-resolver", "dependency-resolver", "relay", "artifact-service")


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.read().decode()


def test_a_rolling_restart_of_the_gateways_drops_no_request_and_strands_no_claim(
        tmp_path, module_postgres_url, amqp_url, unique_queue):
    """Two gateways share the port; each in turn gets SIGTERM under a steady
    claimWork load (20 s long polls) and the stack starts it again. Clients
    never retry, so every call must get an HTTP answer, and every task
    claimed must be completed by the worker that claimed it."""
    port = free_ports(SERVICES)
    stack = Stack(tmp_path, module_postgres_url, amqp_url, port, args=("--scale", "api-gateway=2"),
                  TASKJOURNAL_CLAIMWORK_WAIT="20")
    created, completed, errors = [], [], []
    producing, finished = threading.Event(), threading.Event()
    producing.set()

    def calls(what):
        try:
            return what()
        except Exception as error:  # no retries: a dropped connection shows here
            if not finished.is_set():
                errors.append(repr(error))
            return None

    def producer():
        queue = stack.queue()
        while producing.is_set() and len(created) < 400:
            task_id = taskcluster.slugId()
            if calls(lambda: queue.createTask(task_id, task_definition(unique_queue))) is not None:
                created.append(task_id)
            time.sleep(0.03)

    def worker(name):
        queue = stack.queue()
        while not finished.is_set():
            answer = calls(lambda: queue.claimWork(unique_queue, {"workerGroup": "roll", "workerId": name, "tasks": 2}))
            for claim in (answer or {}).get("tasks", []):
                task_id = claim["status"]["taskId"]
                if calls(lambda: queue.reportCompleted(task_id, str(claim["runId"]))) is not None:
                    completed.append(task_id)

    def started_log(pid):
        return any(f'"pid":{pid},' in line and '"taskjournal started"' in line for line in list(stack.lines))

    try:
        gateways = stack.wait_for(lambda: len(stack.started_pids("api-gateway")) == 2
                                  and stack.started_pids("api-gateway"), "two gateways")
        stack.wait_for(lambda: all(started_log(pid) for pid in gateways), "the gateways to listen")
        threads = [threading.Thread(target=producer)] + [threading.Thread(target=worker, args=(f"w{i}",))
                                                         for i in range(6)]
        for thread in threads:
            thread.start()
        for old in gateways:
            time.sleep(2)
            os.kill(old, signal.SIGTERM)
            stack.wait_for(lambda: any(f"api-gateway (pid {old}) died: exited with code 0" in line
                                       for line in stack.lines), "the gateway to drain and exit", timeout=60)
            new = stack.wait_for(lambda: [p for p in stack.started_pids("api-gateway") if p not in gateways],
                                 "a new gateway")
            stack.wait_for(lambda: all(started_log(pid) for pid in new), "the new gateway to listen")
            gateways = gateways + new
        time.sleep(2)
        producing.clear()
        threads[0].join(30)
        stack.wait_for(lambda: sorted(completed) == sorted(created),
                       "every task created to be completed", timeout=60)
        finished.set()
    finally:
        finished.set()
        code = stack.stop()  # drains too: the last long polls answer and the workers end
        for thread in threads:
            thread.join(30)
    assert errors == []
    assert code == 0 and not any(thread.is_alive() for thread in threads)
    assert len(completed) == len(set(completed)) == len(created)
