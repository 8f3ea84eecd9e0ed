"""End-to-end fixtures: the real `taskjournal dev` process on a free port,
driven with the official Taskcluster Python client."""

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import taskcluster

from tests.conftest import drop_database

ROOT_CLIENT_ID = "e2e-root"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
                    "TASKJOURNAL_RESOLVER_INTERVAL": "0.5", "TASKJOURNAL_ANONYMOUS_SCOPES": "", **env}
        self.env.pop("TASKJOURNAL_DATABASE_URL", None)
        if database_url:
            self.env["TASKJOURNAL_DATABASE_URL"] = database_url
        self.log = open(data_dir / "server.log", "a")
        self.process = subprocess.Popen([sys.executable, "-P", "-m", self.MODULE, *command], env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        for _ in range(200):
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {Path(self.log.name).read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.root_url + self.ready_path, timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

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


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("module_postgres_url")
    srv = Server(tmp_path_factory.mktemp("tj"), database_url)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def module_postgres_url(postgres_base_url):
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    if postgres_base_url is None:
        pytest.skip("no PostgreSQL: set TASKJOURNAL_TEST_DATABASE_URL or run a local server")
    name = f"tj_e2e_{uuid.uuid4().hex[:12]}"
    admin = urlunsplit(urlsplit(postgres_base_url)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(urlsplit(postgres_base_url)._replace(path=f"/{name}"))
    drop_database(admin, name)


@pytest.fixture
def queue(server):
    return server.queue()


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


@pytest.fixture
def unique_queue():
    return f"e2e-prov/w{secrets.token_hex(4)}"
