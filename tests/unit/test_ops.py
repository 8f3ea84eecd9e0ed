"""What every process's ops side promises (docs/adr/0020-metrics-and-drain.md):
Prometheus output that parses, a catalogue in docs/operations.md that matches
the declared metrics, readiness and heartbeat that name what is down, long
polls that answer at once when the process drains, and JSON logs with an
access line per request that never shows credentials."""

import asyncio
import importlib
import io
import json
import logging
import pkgutil
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import taskcluster
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

import taskjournal.services
import taskjournal.shared
from taskjournal.services import cli
from taskjournal.services.api_gateway.claimwork import Claimer, PendingSignal
from taskjournal.services.bootstrap import gateway_app
from taskjournal.services.ops import Health, add_ops_routes, observe
from taskjournal.shared import logs
from taskjournal.shared.config import Settings
from taskjournal.shared.metrics import REGISTRY, Registry

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


# ------------------------------------------------------------------ metrics
def families(text: str) -> dict:
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_the_registry_renders_typed_families_prometheus_parses():
    registry = Registry()
    registry.describe("t_requests_total", "counter", "requests", labels=("route",))
    registry.describe("t_seconds", "histogram", "latency", labels=("route",), buckets=(1, 5))
    registry.describe("t_depth", "gauge", "depth")
    registry.inc("t_requests_total", route="a")
    registry.inc("t_requests_total", 2, route="a")
    for seconds in (0.2, 3, 3):
        registry.observe("t_seconds", seconds, route="a")
    registry.set("t_depth", 7)
    found = families(registry.render().decode())
    assert {name: f.type for name, f in found.items()} == {"t_requests": "counter", "t_seconds": "histogram",
                                                          "t_depth": "gauge"}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in found.values() for s in f.samples}
    assert samples[("t_requests_total", (("route", "a"),))] == 3
    assert samples[("t_seconds_bucket", (("le", "1.0"), ("route", "a")))] == 1
    assert samples[("t_seconds_bucket", (("le", "5.0"), ("route", "a")))] == 3
    assert samples[("t_seconds_count", (("route", "a"),))] == 3
    assert samples[("t_seconds_sum", (("route", "a"),))] == pytest.approx(6.2)
    assert samples[("t_depth", ())] == 7
    assert registry.value("t_requests_total", route="a") == 3


def test_a_scraped_gauge_reads_at_scrape_time_and_a_failing_reader_only_drops_its_own():
    registry = Registry()
    registry.scraped("t_pending", "pending", labels=("task_queue_id",))
    registry.scraped("t_broken", "broken")
    counts = {"p/a": 2}
    registry.read_with("t_pending", lambda: [((queue,), n) for queue, n in counts.items()])
    registry.read_with("t_broken", lambda: 1 / 0)
    counts["p/b"] = 5  # read when scraped, not when bound
    found = families(registry.render().decode())
    assert set(found) == {"t_pending"}
    assert {s.labels["task_queue_id"]: s.value for s in found["t_pending"].samples} == {"p/a": 2, "p/b": 5}


def documented_metrics() -> dict[str, tuple[str, tuple[str, ...]]]:
    """The rows of docs/operations.md's "## Metrics" table: name -> (type, labels)."""
    text = OPERATIONS.read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`taskjournal_"):
            labels = tuple(re.findall(r"`(\w+)`", cells[2]))
            rows[cells[0].strip("`")] = (cells[1], labels)
    return rows


def test_the_metrics_catalogue_in_operations_md_is_what_the_code_declares():
    for package in (taskjournal.shared, taskjournal.services):  # every module that declares metrics
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    assert documented_metrics() == REGISTRY.catalogue()


def test_every_process_serves_process_and_build_metrics():
    found = families(REGISTRY.render().decode())
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "taskjournal_build_info"} <= set(found)


# ------------------------------------------------------------------ readiness, heartbeat, drain
class Store:
    """A journal whose store answers, or not."""

    def __init__(self):
        self.down = False
        self.views = self

    def position(self) -> int:
        if self.down:
            raise ConnectionError("connection refused")
        return 1


@pytest.fixture
async def ops():
    journal, executor = Store(), ThreadPoolExecutor(2)
    app = web.Application()
    add_ops_routes(app, journal, executor)
    health = Health(journal, executor)
    observe(app, health)
    async with TestClient(TestServer(app)) as client:
        yield client, journal, health
    executor.shutdown()


async def answer(client, path):
    reply = await client.get(path)
    return reply.status, await reply.json()


async def test_ready_and_heartbeat_say_which_dependency_is_down(ops):
    client, journal, health = ops
    assert await answer(client, "/ready") == (200, {"ready": True, "checks": {"store": "ok"}})
    assert await answer(client, "/__heartbeat__") == (200, {"status": "ok", "checks": {"store": "ok"},
                                                             "details": {}})

    async def broker():
        raise ConnectionError("not connected to RabbitMQ")

    health.add("broker", broker)
    journal.down = True
    status, body = await answer(client, "/ready")
    assert status == 503 and body["ready"] is False
    assert body["checks"]["store"] == "ConnectionError: connection refused"
    status, body = await answer(client, "/__heartbeat__")
    assert status == 503
    assert body == {"status": "error", "checks": {"store": "error", "broker": "error"},
                    "details": {"store": "ConnectionError: connection refused",
                                "broker": "ConnectionError: not connected to RabbitMQ"}}
    assert await answer(client, "/__lbheartbeat__") == (200, {})  # alive all the same


async def test_a_draining_process_is_not_ready_and_asks_clients_to_reconnect(ops):
    client, _, health = ops
    health.start_draining()
    reply = await client.get("/ready")
    assert (reply.status, await reply.json()) == (503, {"ready": False, "draining": True})
    assert reply.headers.get("Connection", "").lower() == "close"


class NoWork:
    """A journal with nothing pending."""

    def __init__(self):
        self.calls = 0

    def claim_work(self, *args):
        self.calls += 1
        return []


async def test_a_long_poll_answers_with_no_tasks_as_soon_as_the_process_drains():
    journal, signal, draining = NoWork(), PendingSignal(), asyncio.Event()
    with ThreadPoolExecutor(1) as executor:
        claimer = Claimer(journal, executor, signal, wait_s=60, claim_timeout_ms=1000, draining=draining)
        polls = [asyncio.ensure_future(claimer.claim("p/w", "g", f"w{n}", 1)) for n in range(3)]
        polls.append(asyncio.ensure_future(claimer.claim("p/x", "g", "w", 1, barred=lambda now: True)))
        await asyncio.sleep(0.2)
        assert not any(poll.done() for poll in polls)
        draining.set()
        signal.wake_all()  # every sleeper of every queue, not one per queue
        assert await asyncio.wait_for(asyncio.gather(*polls), 5) == [[], [], [], []]
        # a claimWork that arrives while draining looks once and does not wait
        assert await asyncio.wait_for(claimer.claim("p/w", "g", "w", 1), 5) == []


# ------------------------------------------------------------------ logs
def log_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.fixture
def captured():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("json", "info", role="api-gateway")
    stream = io.StringIO()
    root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
    yield stream
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


def test_a_json_line_has_milliseconds_pid_and_role(captured):
    logging.getLogger("taskjournal.test").info("hello", extra=logs.fields(taskId="abc"))
    [line] = log_lines(captured)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["pid"] > 0 and line["role"] == "api-gateway"
    assert (line["level"], line["message"], line["taskId"]) == ("info", "hello", "abc")


def test_the_log_level_is_a_setting(captured):
    logs.configure("json", "warning", role="relay")
    logging.getLogger().handlers[0].setStream(captured)  # type: ignore[attr-defined]
    logging.getLogger("taskjournal.test").info("quiet")
    logging.getLogger("taskjournal.test").warning("loud")
    assert [line["message"] for line in log_lines(captured)] == ["loud"]


def test_a_bad_log_level_stops_the_command_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("TASKJOURNAL_LOG_LEVEL", "verbose")
    assert cli.main(["replay", "--all"]) == 2
    err = capsys.readouterr().err
    assert err == "taskjournal: TASKJOURNAL_LOG_LEVEL: 'verbose' is not one of debug, info, warning, error\n"


async def test_each_request_has_one_access_line_without_credentials(tmp_path, captured):
    from taskjournal.shared.journal import open_journal

    settings = Settings(root_url="http://taskjournal.test", data_dir=tmp_path, root_client_id="root",
                        root_access_token="secret-token", anonymous_scopes=())
    journal = open_journal(None, str(tmp_path))
    with ThreadPoolExecutor(2) as executor:
        app = gateway_app(settings, journal, executor, PendingSignal())
        observe(app, Health(journal, executor))
        async with TestClient(TestServer(app)) as client:
            queue = taskcluster.Queue({"rootUrl": str(client.make_url("")).rstrip("/"),
                                       "credentials": {"clientId": "root", "accessToken": "secret-token"}})
            signed = queue.buildSignedUrl("status", "dSlITZ4yQgmvxxAi4A8fHQ")
            reply = await client.get(signed[signed.index("/api/"):], headers={"x-taskcluster-trace-id": "t-1"})
            assert reply.status == 404
            request_id = reply.headers["x-for-request-id"]
            reply = await client.get("/metrics")
            assert reply.status == 200
    journal.close()
    lines = [line for line in log_lines(captured) if line["logger"] == "taskjournal.access"]
    assert [(line["route"], line["status"], line["method"]) for line in lines] == [
        ("status", 404, "GET"), ("/metrics", 200, "GET")]
    status = lines[0]
    assert (status["clientId"], status["requestId"], status["traceId"]) == ("root", request_id, "t-1")
    assert status["durationMs"] >= 0 and status["path"] == "/api/queue/v1/task/dSlITZ4yQgmvxxAi4A8fHQ/status"
    bewit = signed.split("bewit=", 1)[1]
    assert "bewit" not in captured.getvalue() and bewit not in captured.getvalue()
    assert REGISTRY.value("taskjournal_http_requests_total", route="status", status=404) >= 1


def test_a_long_poll_is_timed_apart_from_the_apis_latency():
    class Request(dict):
        method, path, headers, match_info = "POST", "/api/queue/v1/claim-work/p/w", {}, None

    from taskjournal.services.ops import ROUTE, _record
    from taskjournal.shared.metrics import HTTP_DURATION, HTTP_LONG_POLL

    request = Request()
    request[ROUTE] = "claimWork"
    long_polls = REGISTRY.value(HTTP_LONG_POLL + "_count", route="claimWork", status=200)
    _record(request, 200, 19.5)
    assert REGISTRY.value(HTTP_LONG_POLL + "_count", route="claimWork", status=200) == long_polls + 1
    assert REGISTRY.value(HTTP_DURATION + "_count", route="claimWork", status=200) == 0
    assert REGISTRY.value("taskjournal_http_requests_total", route="claimWork", status=200) >= 1
