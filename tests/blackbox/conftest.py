"""The black-box suite's targets: a Taskcluster deployment reached only
through HTTP, with the official clients. Nothing here imports taskjournal.

With BLACKBOX_ROOT_URL, BLACKBOX_CLIENT_ID and BLACKBOX_ACCESS_TOKEN set,
the suite runs against that deployment (its credentials need `*`, or at
least the queue's and object service's scopes). Otherwise it starts two
targets itself, one after the other (session-scoped): `taskjournal dev`
(SQLite, bytes on the file back end) and `taskjournal stack` (PostgreSQL,
RabbitMQ, one process per service) with bytes in S3 (moto's server)."""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import taskcluster

HERE = Path(__file__).resolve().parent
TASKJOURNAL = Path(os.environ.get("BLACKBOX_TASKJOURNAL", Path(sys.executable).with_name("taskjournal")))
EXTERNAL = os.environ.get("BLACKBOX_ROOT_URL")
STACK_PORTS = 10  # `taskjournal stack` gives each of its processes the next port


@dataclass
class Target:
    kind: str  # "dev", "stack-s3" or "external"
    root_url: str
    credentials: dict
    processes: list = field(default_factory=list)

    def options(self, credentials: dict | None = None) -> dict:
        return {"rootUrl": self.root_url, "credentials": dict(credentials or self.credentials), "maxRetries": 0}  # the client encodes them in place

    def queue(self, credentials: dict | None = None) -> taskcluster.Queue:
        return taskcluster.Queue(self.options(credentials))


def pytest_generate_tests(metafunc):
    if "target" in metafunc.fixturenames:
        kinds = ["external"] if EXTERNAL else [
            "dev", pytest.param("stack-s3", marks=[pytest.mark.postgres, pytest.mark.rabbitmq])]
        metafunc.parametrize("target", kinds, indirect=True, scope="session")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker("blackbox")
            item.add_marker("e2e")


@pytest.fixture(scope="session")
def target(request, tmp_path_factory):
    if request.param == "external":
        yield Target("external", EXTERNAL or "", {"clientId": os.environ["BLACKBOX_CLIENT_ID"],
                                                  "accessToken": os.environ["BLACKBOX_ACCESS_TOKEN"]})
        return
    data_dir = tmp_path_factory.mktemp(request.param)
    started = _start_dev(data_dir) if request.param == "dev" else _start_stack(request, data_dir)
    try:
        yield started
    finally:
        for process in reversed(started.processes):
            _stop(process)


def _env(port: int, data_dir: Path, token: str) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TASKJOURNAL_")}
    env.update(TASKJOURNAL_PORT=str(port), TASKJOURNAL_HOST="127.0.0.1", TASKJOURNAL_ROOT_URL=f"http://127.0.0.1:{port}",
               TASKJOURNAL_DATA_DIR=str(data_dir), TASKJOURNAL_ROOT_CLIENT_ID="blackbox-root",
               TASKJOURNAL_ROOT_ACCESS_TOKEN=token, TASKJOURNAL_CLAIMWORK_WAIT="2")
    return env


def _start(kind: str, command: str, env: dict, data_dir: Path) -> Target:
    log = open(data_dir / "server.log", "ab")
    process = subprocess.Popen([str(TASKJOURNAL), command], env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)  # its own process group: _stop reaches the stack's children
    started = Target(kind, env["TASKJOURNAL_ROOT_URL"], {"clientId": env["TASKJOURNAL_ROOT_CLIENT_ID"],
                                                         "accessToken": env["TASKJOURNAL_ROOT_ACCESS_TOKEN"]})
    started.processes.append(process)
    for path in ("/api/queue/v1/ping", "/api/object/v1/ping"):  # the stack forwards the object service once it listens
        _wait_for(started.root_url + path, process, data_dir / "server.log")
    return started


def _start_dev(data_dir: Path) -> Target:
    from tests.support.server import free_port

    return _start("dev", "dev", _env(free_port(), data_dir, secrets.token_urlsafe(24)), data_dir)


def _start_stack(request, data_dir: Path) -> Target:
    from tests.moto_support import bucket_names
    from tests.support.server import free_ports

    database_url = request.getfixturevalue("blackbox_database_url")
    moto = request.getfixturevalue("moto")
    public, private = bucket_names()
    moto.create_buckets(public, private)
    env = _env(free_ports(STACK_PORTS), data_dir, secrets.token_urlsafe(24))
    env.update(TASKJOURNAL_DATABASE_URL=database_url, TASKJOURNAL_AMQP_URL=request.getfixturevalue("amqp_url"),
               TASKJOURNAL_ARTIFACT_STORE="s3", TASKJOURNAL_S3_ENDPOINT_URL=moto.url,
               TASKJOURNAL_S3_PUBLIC_BUCKET=public, TASKJOURNAL_S3_PRIVATE_BUCKET=private)
    return _start("stack-s3", "stack", env, data_dir)


@pytest.fixture(scope="session")
def blackbox_database_url(postgres_base_url):
    from tests.conftest import require_postgres
    from tests.support.postgres import create_database, drop_database_at

    url = create_database(require_postgres(postgres_base_url), "tj_blackbox")
    yield url
    drop_database_at(url)


def _wait_for(url: str, process: subprocess.Popen, log: Path, patience_s: float = 120) -> None:
    deadline = time.monotonic() + patience_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # whatever of the group is left (a stack child slow to stop)
    except ProcessLookupError:
        pass
    process.wait()


# ---------------------------------------------------------------- a claimed run
@dataclass
class Run:
    task_id: str
    run_id: int
    worker: taskcluster.Queue  # holding the run's temporary credentials (from claimWork)
    queue_id: str


def task_definition(queue_id: str, **overrides) -> dict:
    body = {"taskQueueId": queue_id, "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
            "deadline": taskcluster.stringDate(taskcluster.fromNow("1 hour")),
            "expires": taskcluster.stringDate(taskcluster.fromNow("7 days")), "payload": {},
            "metadata": {"name": "black-box", "description": "artifact behaviour", "owner": "bb@example.com",
                         "source": "https://example.com/blackbox"}}
    body.update(overrides)
    return body


def unique_queue_id() -> str:
    return f"blackbox/w{secrets.token_hex(5)}"


def claim(target: Target, queue_id: str, task_id: str) -> Run:
    """claimWork on `queue_id` until the task's next run is ours."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        claims = target.queue().claimWork(queue_id, {"workerGroup": "bb", "workerId": "w1", "tasks": 1})["tasks"]
        for claimed in claims:
            assert claimed["status"]["taskId"] == task_id
            return Run(task_id, claimed["runId"], target.queue(claimed["credentials"]), queue_id)
    raise AssertionError(f"task {task_id} was never claimed")


@pytest.fixture
def run(target) -> Run:
    """A fresh task, claimed: its run 0 and the worker's credentials."""
    queue_id, task_id = unique_queue_id(), taskcluster.slugId()
    target.queue().createTask(task_id, task_definition(queue_id))
    return claim(target, queue_id, task_id)


@pytest.fixture(scope="session")
def node_client() -> Path:
    """node, with the official JavaScript client installed (tests/e2e/js)."""
    js = HERE.parent / "e2e" / "js"
    if shutil.which("node") is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed for the JS client's tests")
        pytest.skip("node is not installed")
    if not (js / "node_modules" / "taskcluster-client").is_dir():
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent"], cwd=js, check=True, timeout=300)
    return js / "node_modules"
