"""The real `taskjournal` process with a setting that cannot work: it exits
non-zero within seconds, with exactly one line on stderr naming the setting
and no traceback (issue 7). Also what `taskjournal dev` exposes (issue 6 item
10) and a gateway without a root client (issue 6 item 7)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest

from taskjournal.shared.version import package_version

from tests.support.server import Server, free_port

ROOT = {"TASKJOURNAL_ROOT_CLIENT_ID": "e2e-root", "TASKJOURNAL_ROOT_ACCESS_TOKEN": "e2e-secret"}
HANG_GUARD = 10  # seconds; the process is meant to give up within 5


def refusal(command: tuple, tmp_path, **env) -> str:
    """Run the real process with these settings; the one line it printed on stderr."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TASKJOURNAL_") or k.startswith("TASKJOURNAL_TEST")}
    full = {**clean, "TASKJOURNAL_DATA_DIR": str(tmp_path / "data"), "TASKJOURNAL_PORT": str(free_port()),
            "TASKJOURNAL_HOST": "127.0.0.1", **ROOT, **env}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-P", "-m", "taskjournal.services.cli", *command], env=full,
                          capture_output=True, text=True, timeout=HANG_GUARD)
    print(f"{' '.join(command)} refused in {time.monotonic() - started:.2f}s: {done.stderr.strip()}")
    assert done.returncode != 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("taskjournal: TASKJOURNAL_")
    return lines[0]


def _clients_file(tmp_path, text: str) -> str:
    path = tmp_path / "clients.json"
    path.write_text(text)
    return str(path)


COMMANDS = [("dev",), ("run", "api-gateway")]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("setting,value,expected", [
    ("PORT", "abc", "'abc' is not a whole number"),
    ("PORT", "99999", "out of range"),
    ("PORT", "0", "out of range"),
    ("DATABASE_URL", "mysql://user:hunter2@127.0.0.1/db", "must start with postgresql:// or postgres://"),
    ("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/taskjournal", "Connection refused"),
    ("AMQP_URL", "http://guest:guest@127.0.0.1:5672/", "must start with amqp:// or amqps://"),
    ("RESOLVER_INTERVAL", "0", "out of range"),
    ("EXECUTOR_THREADS", "0", "out of range"),
    ("LOG_FORMAT", "xml", "not one of json, text"),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else None)
def test_a_bad_setting_stops_the_process_with_one_line(tmp_path, command, setting, value, expected):
    line = refusal(command, tmp_path, **{"TASKJOURNAL_" + setting: value})
    assert line.startswith(f"taskjournal: TASKJOURNAL_{setting}: ") and expected in line
    assert "hunter2" not in line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("content,expected", [
    ('{"clients": [', "is not JSON"),
    ('{"client": [{"clientId": "a", "accessToken": "b"}]}', "must not contain {'client'}"),
], ids=["malformed", "typo"])
def test_a_bad_clients_file_stops_the_process(tmp_path, command, content, expected):
    line = refusal(command, tmp_path, TASKJOURNAL_CLIENTS_FILE=_clients_file(tmp_path, content))
    assert line.startswith("taskjournal: TASKJOURNAL_CLIENTS_FILE: ") and expected in line


def test_a_data_dir_that_cannot_be_created_stops_the_process(tmp_path):
    (tmp_path / "file").write_text("")
    for command in COMMANDS:  # dev writes credentials there, every command the SQLite store
        line = refusal(command, tmp_path, TASKJOURNAL_DATA_DIR=str(tmp_path / "file" / "data"))
        assert line.startswith("taskjournal: TASKJOURNAL_DATA_DIR: cannot create")


def test_a_database_that_does_not_accept_us_stops_the_process(tmp_path, postgres_base_url):
    if postgres_base_url is None:
        pytest.skip("no PostgreSQL")
    url = urlunsplit(urlsplit(postgres_base_url)._replace(path="/tj_no_such_database"))
    for command in COMMANDS:
        line = refusal(command, tmp_path, TASKJOURNAL_DATABASE_URL=url)
        assert line.startswith("taskjournal: TASKJOURNAL_DATABASE_URL: ")
        assert 'database "tj_no_such_database" does not exist' in line
    stranger = urlunsplit(urlsplit(postgres_base_url)._replace(
        netloc=f"tj_no_such_role:hunter2@{urlsplit(postgres_base_url).hostname}:{urlsplit(postgres_base_url).port or 5432}"))
    line = refusal(("dev",), tmp_path, TASKJOURNAL_DATABASE_URL=stranger)
    assert line.startswith("taskjournal: TASKJOURNAL_DATABASE_URL: ") and "tj_no_such_role" in line
    assert "hunter2" not in line and "tj_no_such_role:***@" in line


def test_a_broker_that_does_not_answer_stops_the_process(tmp_path, postgres_url):
    line = refusal(("dev",), tmp_path, TASKJOURNAL_DATABASE_URL=postgres_url,
                   TASKJOURNAL_AMQP_URL="amqp://guest:guest@127.0.0.1:1/")
    assert line.startswith("taskjournal: TASKJOURNAL_AMQP_URL: ") and "127.0.0.1" in line


def test_a_second_dev_on_a_port_in_use_is_refused_and_the_first_keeps_serving(tmp_path):
    first = Server(tmp_path, None)
    try:
        for command in COMMANDS:
            line = refusal(command, tmp_path / "second", TASKJOURNAL_PORT=str(first.port))
            assert line.startswith("taskjournal: TASKJOURNAL_PORT: ") and "already in use" in line
        assert first.process.poll() is None
        urllib.request.urlopen(first.root_url + "/api/queue/v1/ping", timeout=5)
    finally:
        first.stop()


def test_a_gateway_without_a_root_client_refuses_to_start(tmp_path):
    clients = _clients_file(tmp_path, json.dumps({"clients": [
        {"clientId": "worker", "accessToken": "w", "scopes": ["queue:claim-work:*", "queue:worker-id:*"]}]}))
    line = refusal(("run", "api-gateway"), tmp_path, TASKJOURNAL_CLIENTS_FILE=clients,
                   TASKJOURNAL_ROOT_CLIENT_ID="", TASKJOURNAL_ROOT_ACCESS_TOKEN="")
    assert line.startswith("taskjournal: TASKJOURNAL_ROOT_ACCESS_TOKEN: the api-gateway needs a root client")


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # no packet is sent: this only picks the outgoing address
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_dev_listens_on_loopback_and_keeps_a_configured_token_off_the_banner(tmp_path):
    server = Server(tmp_path, None, TASKJOURNAL_HOST="", TASKJOURNAL_COMMIT="feedbeef")
    try:
        printed = (tmp_path / "server.log").read_text()
        assert f"listening: 127.0.0.1:{server.port}" in printed
        assert server.token not in printed and "TASKCLUSTER_CLIENT_ID=e2e-root" in printed
        address = _non_loopback_address()
        if address is not None:
            with pytest.raises(OSError):
                socket.create_connection((address, server.port), timeout=2).close()
        version = json.loads(urllib.request.urlopen(server.root_url + "/__version__", timeout=5).read())
        assert (version["version"], version["commit"]) == (package_version(), "feedbeef")
    finally:
        server.stop()
