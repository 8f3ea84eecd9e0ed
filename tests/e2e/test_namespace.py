"""Our code installs as `taskjournal.*` only: packages of the user's named
`services` or `shared` (on the path, or in the working directory) change
nothing, for `taskjournal dev` and for every child of `taskjournal stack`."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import taskcluster

from tests.support.server import free_port, free_ports, task_definition

SHADOW = 'raise SystemExit("the user\'s own {name} package was imported")\n'


def _shadowing_packages(folder: Path) -> Path:
    for name in ("services", "shared"):
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(SHADOW.format(name=name))
        (folder / name / "cli.py").write_text(SHADOW.format(name=name))
    return folder


def _start(command: str, cwd: Path, port: int, **env: str) -> subprocess.Popen:
    script = Path(sys.executable).parent / "taskjournal"
    full_env = {**os.environ, "PYTHONPATH": str(cwd), "TASKJOURNAL_PORT": str(port), "TASKJOURNAL_HOST": "127.0.0.1",
                "TASKJOURNAL_ROOT_URL": f"http://127.0.0.1:{port}", "TASKJOURNAL_DATA_DIR": str(cwd / "data"),
                "TASKJOURNAL_ROOT_CLIENT_ID": "ns-root", "TASKJOURNAL_ROOT_ACCESS_TOKEN": "ns-secret"}
    full_env.pop("TASKJOURNAL_DATABASE_URL", None)
    full_env.update(env)
    return subprocess.Popen([str(script), command], cwd=cwd, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_until_serving(process: subprocess.Popen, root_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {process.stdout.read()}")
        try:
            urllib.request.urlopen(root_url + "/api/queue/v1/ping", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("did not start")


def _creates_and_reads_a_task(root_url: str) -> None:
    queue = taskcluster.Queue({"rootUrl": root_url, "maxRetries": 0,
                               "credentials": {"clientId": "ns-root", "accessToken": "ns-secret"}})
    task_id = taskcluster.slugId()
    queue.createTask(task_id, task_definition())
    assert queue.status(task_id)["status"]["state"] == "pending"


def _stop(process: subprocess.Popen) -> str:
    os.killpg(process.pid, signal.SIGINT)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
    return out


def test_dev_ignores_packages_named_services_and_shared(tmp_path):
    folder, port = _shadowing_packages(tmp_path), free_port()
    process = _start("dev", folder, port)
    try:
        _wait_until_serving(process, f"http://127.0.0.1:{port}")
        _creates_and_reads_a_task(f"http://127.0.0.1:{port}")
    finally:
        out = _stop(process)
    assert "package was imported" not in out


def test_stack_children_ignore_packages_named_services_and_shared(tmp_path, module_postgres_url, amqp_url):
    folder, port = _shadowing_packages(tmp_path), free_ports(6)  # one per role
    process = _start("stack", folder, port, TASKJOURNAL_DATABASE_URL=module_postgres_url,
                     TASKJOURNAL_AMQP_URL=amqp_url)
    try:
        _wait_until_serving(process, f"http://127.0.0.1:{port}")
        _creates_and_reads_a_task(f"http://127.0.0.1:{port}")
    finally:
        out = _stop(process)
    assert "package was imported" not in out
    assert "started relay" in out
