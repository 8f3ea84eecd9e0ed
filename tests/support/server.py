"""The real `taskjournal dev` process on a free port, driven with the official
Taskcluster Python client, and the task definitions the end-to-end tests send."""

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import taskcluster

ROOT_CLIENT_ID = "e2e-root"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (`taskjournal stack` gives
    each child the next port). They are taken below the kernel's ephemeral
    range: there, the outgoing connections the children open while starting
    would take the neighbours of a port the kernel handed out."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        first = random.randrange(max(1024, low - 10_000), low - count)
        if all(_bindable(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports below {low}")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Server:
    MODULE = "taskjournal.services.cli"  # what `python -m` runs (a subclass may wrap the CLI)

    def __init__(self, data_dir: Path, database_url: str | None, command=("dev",), token=None,
                 ready_path="/api/queue/v1/ping", **env):
        self.args = (data_dir, database_url, command, token, ready_path, env)
        self.ready_path = ready_path
        self.port = free_port()
        self.root_url = f"http://127.0.0.1:{self.port}"
        self.token = token or secrets.token_urlsafe(24)
        self.env = {**os.environ, "TASKJOURNAL_PORT": str(self.port), "TASKJOURNAL_HOST": "127.0.0.1",
                    "TASKJOURNAL_ROOT_URL": self.root_url, "TASKJOURNAL_DATA_DIR": str(data_dir),
                    "TASKJOURNAL_ROOT_CLIENT_ID": ROOT_CLIENT_ID, "TASKJOURNAL_ROOT_ACCESS_TOKEN": self.token,
                    "TASKJOURNAL_CLAIMWORK_WAIT": "2", "TASKJOURNAL_CLAIM_TIMEOUT": "3",
                    "TASKJOURNAL_RESOLVER_INTERVAL": "0.5", "TASKJOURNAL_ANONYMOUS_SCOPES": "",
                    # one gateway: tests read one process's /metrics; tests/e2e/test_dev_processes.py runs more
                    "TASKJOURNAL_GATEWAY_PROCESSES": "1", **env}
        self.env.pop("TASKJOURNAL_DATABASE_URL", None)
        if database_url:
            self.env["TASKJOURNAL_DATABASE_URL"] = database_url
        self.log = open(data_dir / "server.log", "a")
        self.process = subprocess.Popen([sys.executable, "-P", "-m", self.MODULE, *command], env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        self.wait_for(self.root_url + self.ready_path, patience_s=10)

    def wait_for(self, url: str, patience_s: float) -> None:
        """Until `url` answers; fails at once when the server exits meanwhile."""
        deadline = time.monotonic() + patience_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer within {patience_s} s") from None
                time.sleep(0.05)

    def options(self, credentials=None) -> dict:
        creds = {"clientId": ROOT_CLIENT_ID, "accessToken": self.token} if credentials is None else credentials
        return {"rootUrl": self.root_url, "credentials": creds, "maxRetries": 0}

    def queue(self, credentials=None) -> taskcluster.Queue:
        return taskcluster.Queue(self.options(credentials))

    def anonymous_queue(self) -> taskcluster.Queue:
        return taskcluster.Queue({"rootUrl": self.root_url, "maxRetries": 0})

    def restarted(self) -> "Server":
        """The same service started again (same data, credentials and settings)."""
        data_dir, database_url, command, _, ready_path, env = self.args
        return Server(data_dir, database_url, command, self.token, ready_path, **env)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def task_definition(task_queue_id: str = "e2e-prov/e2e-worker", **overrides) -> dict:
    now = taskcluster.fromNow("0 seconds")
    definition = {
        "taskQueueId": task_queue_id,
        "created": taskcluster.stringDate(now),
        "deadline": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
        "payload": {"command": ["true"]},
        "metadata": {"name": "e2e", "description": "end-to-end test task", "owner": "e2e@example.com",
                     "source": "https://example.com/e2e"},
    }
    definition.update(overrides)
    return definition
