#!/usr/bin/env python3
"""Fault campaign: run a task graph on the services as separate processes
over a private PostgreSQL cluster and a private RabbitMQ node while services
are SIGKILLed and restarted, the broker is restarted and the database is
restarted; then check the invariants from the event log and from the Pulse
messages. Exit 1 on any violation.

  python bench/chaos.py --tasks 1000 --kills 20 --seed 7

The graph mixes chains, fan-out/fan-in and failing tasks whose dependents
stay unscheduled (`all-completed`) or run anyway (`all-resolved`). Workers
use the official `taskcluster` client (claimWork, reportCompleted /
reportFailed). Invariants checked afterwards:
  - every task reaches its expected state (event log, and the HTTP status);
  - no run is claimed twice (one RunClaimed per run; no two workers get it);
  - no dependent is left unscheduled whose dependencies allow it, none is
    scheduled whose dependencies do not;
  - a claim or report acknowledged over HTTP is in the log;
  - exactly one terminal Pulse message (task-completed / -failed /
    -exception) per resolved run, and one message per other event; losses are
    violations, duplicates are reported apart (delivery is at least once,
    ADR 0005; --strict-duplicates makes them violations).

Servers: PostgreSQL via initdb/pg_ctl from /usr/lib/postgresql/*/bin (as the
`postgres` OS user when run as root) and RabbitMQ via rabbitmq-server, each on
free ports in a temporary directory. Without the binaries, --database-url /
--amqp-url (or TASKJOURNAL_DATABASE_URL / TASKJOURNAL_AMQP_URL) are used and
that server is not restarted."""

import argparse
import asyncio
import datetime
import faulthandler
import glob
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import taskcluster

for _noisy in ("aio_pika", "aiormq"):  # the broker is down on purpose now and then
    logging.getLogger(_noisy).setLevel(logging.CRITICAL)

ROLES = ("dependency-resolver", "scheduler", "claim-resolver", "relay", "api-gateway")
TERMINAL = ("task-completed", "task-failed", "task-exception")
SATISFYING = {"all-completed": ("completed",), "all-resolved": ("completed", "failed", "exception")}
PULSE_QUEUE = f"chaos-pulse-{os.getpid()}"  # unique: a shared broker may carry other campaigns
ROOT_CLIENT_ID = "chaos-root"
STUCK_SECONDS = 40.0


def say(message: str) -> None:
    print(f"[chaos {time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")


# ====================================================================== servers
class PrivatePostgres:
    """A throwaway cluster owned by the `postgres` OS user (initdb refuses root)."""

    def __init__(self, base: Path, bin_dir: Path):
        self.bin, self.dir, self.port = bin_dir, base / "postgres", free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/chaos"

    @staticmethod
    def find() -> Path | None:
        candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                            key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
        if candidates:
            return Path(candidates[-1]).parent
        initdb = shutil.which("initdb")
        return Path(initdb).parent if initdb else None

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(command), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> None:
        if not (self.dir / "data").exists():
            self.dir.mkdir(parents=True)
            if os.geteuid() == 0:
                shutil.chown(self.dir, "postgres")
            self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-A", "trust", "-U", "postgres",
                      "--no-sync", "-E", "UTF8")
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                   f"-c max_connections=300 -c full_page_writes=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "server.log"),
                  "-w", "-t", "60", "-o", options, "start")

    def create_database(self) -> None:
        import psycopg

        with psycopg.connect(self.url.replace("/chaos", "/postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE chaos")

    def stop(self, mode: str = "immediate") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-w", "-t", "60", "-m", mode, "stop")


class PrivateRabbit:
    """A RabbitMQ node of our own: own node name, ports, data, cookie and config
    (the machine's config would make it listen on the shared node's port)."""

    def __init__(self, base: Path, server: str):
        self.server, self.dir = server, base / "rabbitmq"
        self.port, self.dist_port = free_port(), free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        for sub in ("home", "mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.env = {**os.environ, "HOME": str(self.dir / "home"),
                    "RABBITMQ_NODENAME": f"chaos-{os.getpid()}@localhost",
                    "RABBITMQ_NODE_PORT": str(self.port), "RABBITMQ_DIST_PORT": str(self.dist_port),
                    "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
                    "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
                    "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
                    "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
                    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}"}

    @staticmethod
    def find() -> str | None:
        # not /usr/sbin/rabbitmq-server: that wrapper switches to the rabbitmq user and its config
        for path in ["/usr/lib/rabbitmq/bin/rabbitmq-server",
                     *sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"))]:
            if os.access(path, os.X_OK):
                return path
        return None

    def start(self) -> None:
        log = open(self.dir / "stdout.log", "a")
        self.process = subprocess.Popen([self.server], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        wait_until(lambda: self._accepts() or self._exited(), 120, "RabbitMQ to start", interval=0.3)
        if self.process.poll() is not None:
            raise RuntimeError(f"RabbitMQ exited: {(self.dir / 'stdout.log').read_text()[-1500:]}")

    def _exited(self) -> bool:
        return self.process.poll() is not None

    def _accepts(self) -> bool:
        import aio_pika

        async def probe():
            connection = await aio_pika.connect(self.url, timeout=2)
            await connection.close()

        try:
            asyncio.run(probe())
            return True
        except Exception:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)  # a clean shutdown: durable queues keep their messages
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


# ====================================================================== services
@dataclass
class Service:
    role: str
    port: int
    env: dict
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**self.env, "TASKJOURNAL_PORT": str(self.port)}
        with open(self.log_path, "a") as log:
            self.process = subprocess.Popen([sys.executable, "-P", "-m", "taskjournal.services.cli", "run", self.role],
                                            env=env, stdout=log, stderr=subprocess.STDOUT)

    def ready(self) -> bool:
        path = "/api/queue/v1/ping" if self.role == "api-gateway" else "/ready"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=1)
            return True
        except OSError:
            return False

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ====================================================================== the graph
@dataclass
class Node:
    task_id: str
    deps: list[str] = field(default_factory=list)
    requires: str = "all-completed"
    fails: bool = False  # the worker reports it failed
    abandons: bool = False  # the worker drops its first claim: the claim expires and the run is retried


def build_graph(rng: random.Random, total: int, abandon: bool = True) -> list[list[Node]]:
    """Units of tasks, each in creation order (dependencies first)."""
    units, count = [], 0
    kinds = ("chain", "fan", "fan", "failing") + (("retried",) if abandon else ())
    while count < total:
        kind = rng.choice(kinds)
        unit = {"chain": _chain, "fan": _fan, "failing": _failing, "retried": _retried}[kind](rng)
        units.append(unit)
        count += len(unit)
    return units


def _chain(rng: random.Random) -> list[Node]:
    nodes = [Node(taskcluster.slugId())]
    for _ in range(rng.randint(2, 6)):
        nodes.append(Node(taskcluster.slugId(), [nodes[-1].task_id]))
    return nodes


def _fan(rng: random.Random) -> list[Node]:
    root = Node(taskcluster.slugId())
    children = [Node(taskcluster.slugId(), [root.task_id], fails=rng.random() < 0.05) for _ in range(rng.randint(3, 40))]
    join = Node(taskcluster.slugId(), [c.task_id for c in children], rng.choice(("all-completed", "all-resolved")))
    return [root, *children, join, Node(taskcluster.slugId(), [join.task_id])]


def _failing(rng: random.Random) -> list[Node]:
    failed = Node(taskcluster.slugId(), fails=True)
    blocked = Node(taskcluster.slugId(), [failed.task_id])  # all-completed: stays unscheduled
    after_blocked = Node(taskcluster.slugId(), [blocked.task_id], "all-resolved")  # waits for ever too
    anyway = Node(taskcluster.slugId(), [failed.task_id], "all-resolved")
    then = Node(taskcluster.slugId(), [anyway.task_id])
    return [failed, blocked, after_blocked, anyway, then]


def _retried(rng: random.Random) -> list[Node]:
    """Its first claim expires and is retried: until the retry resolves, no dependent may run."""
    retried = Node(taskcluster.slugId(), abandons=True, fails=rng.random() < 0.5)
    return [retried, Node(taskcluster.slugId(), [retried.task_id], "all-resolved"),
            Node(taskcluster.slugId(), [retried.task_id])]


def expected_states(nodes: list[Node]) -> dict[str, str]:
    expected: dict[str, str] = {}
    for node in nodes:  # creation order is a topological order
        allowed = all(expected[d] in SATISFYING[node.requires] for d in node.deps)
        expected[node.task_id] = ("failed" if node.fails else "completed") if allowed else "unscheduled"
    return expected


def definition(node: Node, queue_id: str, group_id: str) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"taskQueueId": queue_id, "taskGroupId": group_id, "schedulerId": "chaos", "dependencies": node.deps,
            "requires": node.requires, "created": taskcluster.stringDate(now), "retries": 5,
            "deadline": taskcluster.stringDate(now + datetime.timedelta(hours=2)),
            "payload": {}, "metadata": {"name": "chaos task", "description": "bench/chaos.py",
                                        "owner": "chaos@example.com", "source": "https://example.com/chaos"}}


# ====================================================================== the workload
class Workload:
    """Creates the graph over a time window and works it with claimWork workers;
    remembers every claim and report the API acknowledged."""

    def __init__(self, options: dict, units: list[list[Node]], queue_id: str, workers: int):
        self.options, self.units, self.queue_id, self.workers = options, units, queue_id, workers
        self.group_id = taskcluster.slugId()
        self.fails = {n.task_id for unit in units for n in unit if n.fails}
        self.abandons = {n.task_id for unit in units for n in unit if n.abandons}
        self.lock = threading.Lock()
        self.created = 0
        self.polls = 0  # claimWork calls answered
        self.claims: list[tuple[str, int, str]] = []  # (taskId, runId, workerId) as claimWork returned them
        self.reports: list[tuple[str, int, str]] = []  # (taskId, runId, outcome) acknowledged
        self.errors = Counter()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, window: float) -> None:
        creator = threading.Thread(target=self._create_all, args=(window,), daemon=True)
        self.threads = [creator] + [threading.Thread(target=self._work, args=(i,), daemon=True)
                                    for i in range(self.workers)]
        for thread in self.threads:
            thread.start()

    def creation_done(self) -> bool:
        return not self.threads[0].is_alive()

    def _create_all(self, window: float) -> None:
        started = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            for index, unit in enumerate(self.units):
                delay = started + window * index / len(self.units) - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    return
                pool.submit(self._create_unit, unit)

    def _create_unit(self, unit: list[Node]) -> None:
        queue = taskcluster.Queue(self.options)
        for node in unit:
            body = definition(node, self.queue_id, self.group_id)
            while not self.stop.is_set():  # createTask is idempotent for the same definition
                try:
                    queue.createTask(node.task_id, body)
                    break
                except Exception as error:
                    self._error("createTask", error)
                    time.sleep(0.5)
            with self.lock:
                self.created += 1

    def _work(self, index: int) -> None:
        queue, worker_id = taskcluster.Queue(self.options), f"w{index}"
        while not self.stop.is_set():
            try:
                claims = queue.claimWork(self.queue_id, {"workerGroup": "chaos", "workerId": worker_id, "tasks": 8})
                with self.lock:
                    self.polls += 1
            except Exception as error:
                self._error("claimWork", error)
                time.sleep(0.5)
                continue
            for claim in claims["tasks"]:
                task_id, run_id = claim["status"]["taskId"], claim["runId"]
                with self.lock:
                    self.claims.append((task_id, run_id, worker_id))
                if run_id == 0 and task_id in self.abandons:
                    continue  # a worker that vanished: the claim-resolver retries the run
                taken_until = datetime.datetime.fromisoformat(claim["takenUntil"].replace("Z", "+00:00"))
                self._report(queue, task_id, run_id, taken_until)

    def _report(self, queue, task_id: str, run_id: int, taken_until: datetime.datetime) -> None:
        outcome = "failed" if task_id in self.fails else "completed"
        call = queue.reportFailed if outcome == "failed" else queue.reportCompleted
        while not self.stop.is_set() and datetime.datetime.now(datetime.timezone.utc) < taken_until:
            try:
                call(task_id, str(run_id))
                with self.lock:
                    self.reports.append((task_id, run_id, outcome))
                return
            except taskcluster.exceptions.TaskclusterRestFailure as error:
                if error.status_code == 409:  # the claim expired meanwhile: the run was retried
                    self._error("report-409", error)
                    return
                self._error("report", error)
            except Exception as error:
                self._error("report", error)
            time.sleep(0.5)

    def _error(self, what: str, error: Exception) -> None:
        with self.lock:
            self.errors[f"{what}: {type(error).__name__}"] += 1

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def statuses(queue, task_ids: list[str]) -> dict[str, str]:
    states = {}
    for start in range(0, len(task_ids), 500):
        found, token = [], None
        while True:
            query = {"query": {"continuationToken": token}} if token else {}
            page = queue.statuses({"taskIds": task_ids[start:start + 500]}, **query)
            found += page["statuses"]
            token = page.get("continuationToken")
            if not token:
                break
        states.update({s["taskId"]: s["status"]["state"] for s in found})
    return states


# ====================================================================== Pulse
async def _declare_pulse_queue(url: str) -> None:
    import aio_pika

    from taskjournal.shared.bus.rabbit import declare_exchanges
    from taskjournal.shared.messages import EXCHANGES, exchange

    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        exchanges = await declare_exchanges(channel)
        queue = await channel.declare_queue(PULSE_QUEUE, durable=True)
        for name in EXCHANGES:
            await queue.bind(exchanges[exchange(name)], routing_key="#")


async def _delete_queues(url: str, names: list[str]) -> None:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


async def _pulse_depth(url: str) -> int:
    import aio_pika

    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(PULSE_QUEUE, durable=True, passive=True)
        return queue.declaration_result.message_count


async def _drain_pulse(url: str) -> list[tuple[str, str, int | None, str]]:
    """(exchange, taskId, runId, state) of every message in the queue."""
    import aio_pika
    import orjson

    received = []
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        queue = await channel.declare_queue(PULSE_QUEUE, durable=True, passive=True)
        try:
            async with queue.iterator(no_ack=True, timeout=3) as messages:
                async for message in messages:
                    body = orjson.loads(message.body)
                    name = message.exchange.rsplit("/", 1)[-1]
                    status = body.get("status", {})
                    received.append((name, status.get("taskId", body.get("taskGroupId")), body.get("runId"),
                                     status.get("state", "")))
        except asyncio.TimeoutError:
            pass
        await queue.delete(if_unused=False, if_empty=False)
    return received


# ====================================================================== the log
@dataclass
class LogFacts:
    final: dict[str, object] = field(default_factory=dict)  # taskId -> Task after the last event
    claims: Counter = field(default_factory=Counter)  # (taskId, runId) -> RunClaimed events
    claimed_by: dict = field(default_factory=dict)  # (taskId, runId) -> workerId of its (last) claim
    resolved: dict = field(default_factory=dict)  # (taskId, runId) -> state
    messages: Counter = field(default_factory=Counter)  # (exchange, taskId, runId) the log implies
    events: int = 0
    defined_at: dict = field(default_factory=dict)  # taskId -> position of Defined
    completed_at: dict = field(default_factory=dict)  # taskId -> position of its first completed run
    resolved_at: dict = field(default_factory=lambda: defaultdict(list))  # taskId -> resolutions not retried
    early: list = field(default_factory=list)  # (dependent, position, unsatisfied deps) scheduled too soon

    def satisfied_at(self, task_id: str, requires: str) -> int | None:
        """The log position from which `task_id` satisfies a dependent, if it does."""
        positions = [self.completed_at.get(task_id)]
        if requires == "all-resolved" and self.resolved_at.get(task_id):
            positions.append(self.resolved_at[task_id][0])
        positions = [p for p in positions if p is not None]
        return min(positions) if positions else None


def read_log(database_url: str, data_dir: Path) -> LogFacts:
    """Every event through the project's Journal, replayed as the relay does."""
    from taskjournal.shared.journal import open_journal
    from taskjournal.shared.messages import event_type, messages_for

    journal = open_journal(database_url, str(data_dir), max_connections=2)
    facts, aggregates, position = LogFacts(), {}, 0
    try:
        while True:
            notifications = journal.recorder.select_notifications(start=position + 1, limit=1000)
            if not notifications:
                break
            for notification in notifications:
                event = journal.mapper.to_domain_event(notification)
                after = event.mutate(aggregates.get(event.originator_id))
                aggregates[event.originator_id] = after
                facts.events += 1
                name = event_type(event)
                if name.startswith("Task."):
                    facts.final[after.task_id] = after
                    _follow_dependencies(facts, name, event, after, notification.id)
                if name == "Task.RunClaimed":
                    facts.claims[(after.task_id, event.run_id)] += 1
                    facts.claimed_by[(after.task_id, event.run_id)] = event.worker_id
                if name == "Task.RunResolved":
                    facts.resolved[(after.task_id, event.run_id)] = event.state
                for message in messages_for(event, after):
                    name_ = message.exchange.rsplit("/", 1)[-1]
                    status = message.body.get("status", {})
                    facts.messages[(name_, status.get("taskId", message.body.get("taskGroupId")),
                                    message.body.get("runId"))] += 1
            position = notifications[-1].id
    finally:
        journal.close()
    return facts


RETRY_REASONS = ("retry", "task-retry")


def _follow_dependencies(facts: LogFacts, name: str, event, task, position: int) -> None:
    """Track when each task starts to satisfy dependents, and check each
    dependent scheduled by `scheduled` against that (behaviour spec §5: a
    resolution followed by an automatic retry satisfies nobody)."""
    task_id = task.task_id
    if name == "Task.Defined":
        facts.defined_at[task_id] = position
    elif name == "Task.RunResolved":
        facts.resolved_at[task_id].append(position)
        if event.state == "completed":
            facts.completed_at.setdefault(task_id, position)
    elif name == "Task.RunAdded" and event.reason_created in RETRY_REASONS:
        if facts.resolved_at[task_id]:
            facts.resolved_at[task_id].pop()  # saved with the resolution it retries
    elif name == "Task.RunAdded" and event.reason_created == "scheduled":
        requires = task.definition["requires"]
        unsatisfied = [d for d in task.definition["dependencies"]
                       if d != task_id and facts.satisfied_at(d, requires) is None]
        if unsatisfied:
            facts.early.append((task_id, position, unsatisfied))


# ====================================================================== checks
class Violations:
    def __init__(self):
        self.by_kind: dict[str, list[str]] = defaultdict(list)

    def add(self, kind: str, detail: str) -> None:
        self.by_kind[kind].append(detail)

    def total(self) -> int:
        return sum(len(v) for v in self.by_kind.values())


def check(units: list[list[Node]], workload: Workload, facts: LogFacts, http_states: dict[str, str],
          pulse: list[tuple], strict_duplicates: bool) -> tuple[Violations, Counter]:
    found, duplicates, consequences = Violations(), Counter(), Counter()
    nodes = [n for unit in units for n in unit]
    expected = expected_states(nodes)
    log_state = {n.task_id: (facts.final[n.task_id].state if n.task_id in facts.final else "missing")
                 for n in nodes}
    for node in nodes:
        _check_task(node, expected, log_state, http_states.get(node.task_id), facts, found, consequences)
    for task_id, position, unsatisfied in facts.early:
        found.add("scheduled-before-dependencies-allowed",
                  f"{task_id} scheduled at #{position}; not yet satisfied: {unsatisfied[:3]}")
    for (task_id, run_id), count in facts.claims.items():
        if count > 1:
            found.add("run-claimed-twice", f"{task_id} run {run_id}: {count} RunClaimed events")
    by_run = defaultdict(set)
    for task_id, run_id, worker in workload.claims:
        by_run[(task_id, run_id)].add(worker)
        if facts.claimed_by.get((task_id, run_id)) is None:
            found.add("acknowledged-claim-missing", f"{task_id} run {run_id} claimed by {worker}, no RunClaimed")
    for (task_id, run_id), workers in by_run.items():
        if len(workers) > 1:
            found.add("run-handed-to-two-workers", f"{task_id} run {run_id}: {sorted(workers)}")
    for task_id, run_id, outcome in workload.reports:
        if facts.resolved.get((task_id, run_id)) != outcome:
            found.add("acknowledged-report-missing",
                      f"{task_id} run {run_id} reported {outcome}, log says {facts.resolved.get((task_id, run_id))}")
    _check_pulse(facts, pulse, found, duplicates, strict_duplicates)
    return found, duplicates, consequences


def _check_task(node: Node, expected: dict, log_state: dict, http_state: str | None, facts: LogFacts,
                found: Violations, consequences: Counter) -> None:
    state = log_state[node.task_id]
    deps_allow = all(log_state[d] in SATISFYING[node.requires] for d in node.deps)
    if state == "missing":
        found.add("task-missing-from-log", node.task_id)
    elif state == "unscheduled" and node.deps and deps_allow:
        found.add("dependent-left-unscheduled", _unscheduled_detail(node, facts))
    elif state != "unscheduled" and node.deps and not deps_allow:
        found.add("scheduled-without-dependencies", f"{node.task_id} is {state}")
    elif state != expected[node.task_id] and any(log_state[d] != expected[d] for d in node.deps):
        consequences["downstream of another violation"] += 1  # its dependency went wrong first
    elif state != expected[node.task_id]:
        found.add("wrong-final-state", f"{node.task_id}: expected {expected[node.task_id]}, log says {state}")
    if http_state is not None and http_state != state and state != "missing":
        found.add("http-status-differs-from-log", f"{node.task_id}: HTTP {http_state}, log {state}")


def _unscheduled_detail(node: Node, facts: LogFacts) -> str:
    """Whether createTask or the dependency-resolver should have scheduled it."""
    defined = facts.defined_at.get(node.task_id)
    last = max(facts.satisfied_at(d, node.requires) or 0 for d in node.deps)
    who = ("createTask (defined after its last dependency was satisfied)" if defined > last
           else "the dependency-resolver (last dependency satisfied after the task was defined)")
    return f"{node.task_id} ({node.requires}, {len(node.deps)} deps) defined at #{defined}, " \
           f"last dependency satisfied at #{last}: missed by {who}"


def _check_pulse(facts: LogFacts, pulse: list[tuple], found: Violations, duplicates: Counter,
                 strict: bool) -> None:
    received = Counter((name, task_id, run_id) for name, task_id, run_id, _ in pulse)
    terminal_states = defaultdict(set)
    for name, task_id, run_id, state in pulse:
        if name in TERMINAL:
            terminal_states[(task_id, run_id)].add(state)
    for (task_id, run_id), state in facts.resolved.items():
        count = sum(received[(f"task-{s}", task_id, run_id)] for s in ("completed", "failed", "exception"))
        if count == 0:
            found.add("terminal-message-lost", f"{task_id} run {run_id} ({state})")
        elif count > 1:
            duplicates["terminal"] += count - 1
            if strict:
                found.add("terminal-message-duplicated", f"{task_id} run {run_id}: {count} messages")
        if terminal_states[(task_id, run_id)] - {state}:
            found.add("terminal-message-wrong-state",
                      f"{task_id} run {run_id}: log {state}, messages {sorted(terminal_states[(task_id, run_id)])}")
    for key in received.keys() - facts.messages.keys():
        found.add("message-without-event", f"{key}")
    for key, count in facts.messages.items():
        if key[0] in TERMINAL:
            continue
        got = received[key]
        if got < count:
            found.add("message-lost", f"{key}")
        elif got > count:
            duplicates[key[0]] += got - count
            if strict:
                found.add("message-duplicated", f"{key}: {got}")


# ====================================================================== the campaign
class Campaign:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.base = Path(tempfile.mkdtemp(prefix="taskjournal-chaos-"))
        os.chmod(self.base, 0o755)  # the postgres user keeps its cluster inside
        self.postgres: PrivatePostgres | None = None
        self.rabbit: PrivateRabbit | None = None
        self.services: dict[str, list[Service]] = {}
        self.kills, self.crashes = Counter(), Counter()
        self.broker_restarts = self.db_restarts = 0
        self.notes: list[str] = []
        self.token = secrets.token_urlsafe(24)
        self.instance = f"chaos_{secrets.token_hex(4)}"  # names the services' queue on the broker
        self.shared_database: str | None = None  # a database we made on a server that is not ours
        self.shared_broker: str | None = None

    # ------------------------------------------------------------ servers
    def start_servers(self) -> tuple[str, str]:
        pg_bin = None if self.args.database_url else PrivatePostgres.find()
        if pg_bin:
            self.postgres = PrivatePostgres(self.base, pg_bin)
            self.postgres.start()
            self.postgres.create_database()
            database_url = self.postgres.url
            say(f"private PostgreSQL ({pg_bin}) on port {self.postgres.port}")
        else:
            database_url = self._fresh_database(self.args.database_url or os.environ.get(
                "TASKJOURNAL_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
            self.note(f"no private PostgreSQL: using {database_url}; database restarts skipped")
        server = None if self.args.amqp_url else PrivateRabbit.find()
        if server:
            self.rabbit = PrivateRabbit(self.base, server)
            started = time.monotonic()
            self.rabbit.start()
            amqp_url = self.rabbit.url
            say(f"private RabbitMQ node {self.rabbit.env['RABBITMQ_NODENAME']} on port {self.rabbit.port} "
                f"(up in {time.monotonic() - started:.1f}s)")
        else:
            amqp_url = self.args.amqp_url or os.environ.get("TASKJOURNAL_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
            self.shared_broker = amqp_url
            self.note(f"no private RabbitMQ: using {amqp_url}; broker restarts skipped")
        return database_url, amqp_url

    def _fresh_database(self, url: str) -> str:
        import psycopg

        name = f"chaos_{secrets.token_hex(6)}"
        admin = urlunsplit(urlsplit(url)._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.shared_database = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
        return self.shared_database

    def note(self, text: str) -> None:
        self.notes.append(text)
        say("NOTE: " + text)

    # ------------------------------------------------------------ services
    def start_services(self, database_url: str, amqp_url: str) -> str:
        gateway_port = free_port()
        root_url = f"http://127.0.0.1:{gateway_port}"
        env = {**os.environ, "TASKJOURNAL_DATABASE_URL": database_url, "TASKJOURNAL_AMQP_URL": amqp_url,
               "TASKJOURNAL_HOST": "127.0.0.1", "TASKJOURNAL_ROOT_URL": root_url,
               "TASKJOURNAL_DATA_DIR": str(self.base / "data"), "TASKJOURNAL_ROOT_CLIENT_ID": ROOT_CLIENT_ID,
               "TASKJOURNAL_ROOT_ACCESS_TOKEN": self.token, "TASKJOURNAL_ANONYMOUS_SCOPES": "",
               "TASKJOURNAL_CLAIMWORK_WAIT": "2", "TASKJOURNAL_CLAIM_TIMEOUT": str(self.args.claim_timeout),
               "TASKJOURNAL_RESOLVER_INTERVAL": "0.5", "TASKJOURNAL_EXECUTOR_THREADS": "8",
               "TASKJOURNAL_INSTANCE": self.instance}
        for role in ROLES:  # consumers before producers, as runtime.start_roles does
            count = self.args.gateways if role == "api-gateway" else 1
            self.services[role] = []
            for index in range(count):
                port = gateway_port if role == "api-gateway" else free_port()
                service = Service(role, port, env, self.base / f"{role}-{index}.log")
                service.start()
                self.services[role].append(service)
                wait_until(lambda: service.ready() or service.process.poll() is not None, 60, f"{role} to start")
                if service.process.poll() is not None:
                    raise RuntimeError(f"{role} exited at start: {service.log_path.read_text()[-2000:]}")
        say(f"services up: {', '.join(ROLES)} (gateway at {root_url}); logs in {self.base}")
        return root_url

    def all_services(self) -> list[Service]:
        return [s for group in self.services.values() for s in group]

    def restart_crashed(self) -> None:
        """A service that exited without being killed is a finding; start it again."""
        for service in self.all_services():
            code = service.process.poll()
            if code is not None:
                self.crashes[service.role] += 1
                tail = service.log_path.read_text()[-600:].strip().replace("\n", " | ")
                say(f"{service.role} (pid {service.process.pid}) exited by itself with {code}; restarting. "
                    f"log tail: {tail[-300:]}")
                service.start()

    # ------------------------------------------------------------ faults
    def schedule(self, window: float) -> list[tuple[float, str]]:
        faults = [("kill", self.args.kills)]
        faults.append(("broker", self.args.broker_restarts if self.rabbit else 0))
        faults.append(("db", self.args.db_restarts if self.postgres else 0))
        plan = [(self.rng.uniform(0.05, 0.9) * window, kind) for kind, count in faults for _ in range(count)]
        return sorted(plan)

    def run_faults(self, plan: list[tuple[float, str]], started: float, progress) -> None:
        for at, kind in plan:
            while time.monotonic() - started < at:
                self.restart_crashed()
                progress()
                time.sleep(0.1)
            getattr(self, f"fault_{kind}")()

    def fault_kill(self) -> None:
        service = self.rng.choice(self.all_services())
        old = service.process.pid
        service.kill()
        self.kills[service.role] += 1
        time.sleep(self.rng.uniform(0.1, self.args.down))
        service.start()
        say(f"SIGKILLed {service.role} (pid {old}); restarted as pid {service.process.pid}")

    def fault_broker(self) -> None:
        say("restarting RabbitMQ")
        self.rabbit.stop()
        time.sleep(self.rng.uniform(0.5, self.args.down))
        started = time.monotonic()
        self.rabbit.start()
        self.broker_restarts += 1
        say(f"RabbitMQ back after {time.monotonic() - started:.1f}s")

    def fault_db(self) -> None:
        say("restarting PostgreSQL")
        self.postgres.stop(self.args.db_stop_mode)
        time.sleep(self.rng.uniform(0.5, self.args.down))
        self.postgres.start()
        self.db_restarts += 1
        say("PostgreSQL back")

    # ------------------------------------------------------------ teardown
    def stop_all(self) -> None:
        for service in self.all_services():
            try:
                service.stop()
            except Exception:
                pass
        if self.rabbit:
            self.rabbit.stop()
        if self.postgres:
            try:
                self.postgres.stop("immediate")
            except Exception:
                pass
        self._clean_shared_servers()

    def _clean_shared_servers(self) -> None:
        """Leave servers that are not ours as we found them."""
        if self.shared_database:
            import psycopg

            name = urlsplit(self.shared_database).path.lstrip("/")
            admin = urlunsplit(urlsplit(self.shared_database)._replace(path="/postgres"))
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if self.shared_broker:
            asyncio.run(_delete_queues(self.shared_broker, [PULSE_QUEUE, f"taskjournal.{self.instance}.dependency-resolver"]))


def run(args) -> int:
    campaign = Campaign(args)
    say(f"seed {args.seed}; work dir {campaign.base}")
    started_all = time.monotonic()
    try:
        return _run(campaign, args, started_all)
    finally:
        campaign.stop_all()
        if args.keep:
            say(f"kept {campaign.base}")
        else:
            shutil.rmtree(campaign.base, ignore_errors=True)


def _run(campaign: Campaign, args, started_all: float) -> int:
    database_url, amqp_url = campaign.start_servers()
    asyncio.run(_declare_pulse_queue(amqp_url))  # bound before anything is published
    root_url = campaign.start_services(database_url, amqp_url)
    options = {"rootUrl": root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": campaign.token},
               "maxRetries": 2}
    units = build_graph(campaign.rng, args.tasks, abandon=not args.no_abandon)
    nodes = [n for unit in units for n in unit]
    expected = expected_states(nodes)
    say(f"graph: {len(nodes)} tasks in {len(units)} units; expected {dict(Counter(expected.values()))}")
    workload = Workload(options, units, f"chaos/q{secrets.token_hex(4)}", args.workers)
    window = args.duration
    started = time.monotonic()
    workload.start(window * 0.7)
    last = [0.0]

    def progress() -> None:
        if time.monotonic() - last[0] >= 5:
            last[0] = time.monotonic()
            with workload.lock:
                created, claims, reports = workload.created, len(workload.claims), len(workload.reports)
                polls = workload.polls
            say(f"t={time.monotonic() - started:5.1f}s created {created}/{len(nodes)} claimWork calls {polls} "
                f"claims {claims} reports {reports} kills {sum(campaign.kills.values())} broker restarts "
                f"{campaign.broker_restarts} db restarts {campaign.db_restarts}")

    campaign.run_faults(campaign.schedule(window), started, progress)
    say("faults done; waiting for the graph to settle")
    settled, http_states = _settle(campaign, workload, options, expected, args.settle, progress)
    chaos_seconds = time.monotonic() - started
    workload.finish()
    facts = read_log(database_url, campaign.base / "reader")
    pulse = _collect_pulse(amqp_url, facts)
    violations, duplicates, consequences = check(units, workload, facts, http_states, pulse, args.strict_duplicates)
    if not settled:
        violations.add("graph-did-not-settle", f"{sum(1 for t, s in expected.items() if http_states.get(t) != s)} tasks "
                       f"not in their expected state when the wait ended (--settle {args.settle:.0f}s)")
    _summary(campaign, args, nodes, expected, workload, facts, pulse, violations, duplicates, consequences,
             chaos_seconds, time.monotonic() - started_all)
    if violations.total():
        args.keep = True  # the service logs are the evidence
    return 1 if violations.total() else 0


def _settle(campaign: Campaign, workload: Workload, options: dict, expected: dict[str, str], timeout: float,
            progress) -> tuple[bool, dict[str, str]]:
    """Wait for every task to reach its expected state; give up early when the
    only tasks off are unscheduled and nothing is pending or running for
    STUCK_SECONDS (longer than a pending lease, a claim and the relay's backoff)."""
    queue = taskcluster.Queue(options)
    deadline, states, stuck_since = time.monotonic() + timeout, {}, None
    while time.monotonic() < deadline:
        campaign.restart_crashed()
        progress()
        if workload.creation_done():
            try:
                states = statuses(queue, list(expected))
            except Exception:
                time.sleep(1)
                continue
            off = {t: states.get(t) for t, s in expected.items() if states.get(t) != s}
            if not off:
                return True, states
            if set(off.values()) != {"unscheduled"} or any(s in ("pending", "running") for s in states.values()):
                stuck_since = None
            elif stuck_since is None:
                stuck_since = time.monotonic()
            elif time.monotonic() - stuck_since > STUCK_SECONDS:
                say(f"{len(off)} tasks stay unscheduled and nothing else moves; not waiting longer")
                return False, states
        time.sleep(1)
    try:
        states = statuses(queue, list(expected))
    except Exception as error:
        say(f"cannot read statuses: {error}")
    return False, states


def _collect_pulse(amqp_url: str, facts: LogFacts) -> list[tuple]:
    """Wait until the queue holds at least what the log implies (or stops
    growing), then read it all."""
    wanted, last, since = sum(facts.messages.values()), -1, time.monotonic()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        depth = asyncio.run(_pulse_depth(amqp_url))
        if depth >= wanted and depth == last:
            break
        if depth != last:
            last, since = depth, time.monotonic()
        elif time.monotonic() - since > 15:
            break  # nothing new for 15 s: the rest is not coming
        time.sleep(1)
    ours = {key[1] for key in facts.messages}  # a shared broker also carries other deployments' messages
    return [message for message in asyncio.run(_drain_pulse(amqp_url)) if message[1] in ours]


def _summary(campaign: Campaign, args, nodes, expected, workload: Workload, facts: LogFacts, pulse,
             violations: Violations, duplicates: Counter, consequences: Counter, chaos_seconds: float, total_seconds: float) -> None:
    lines = ["", "=" * 72, "chaos campaign summary",
             f"  seed {args.seed}; tasks {len(nodes)} (expected {dict(Counter(expected.values()))})",
             f"  kills {sum(campaign.kills.values())}: {dict(sorted(campaign.kills.items()))}",
             f"  unexpected service exits {sum(campaign.crashes.values())}: {dict(sorted(campaign.crashes.items()))}",
             f"  broker restarts {campaign.broker_restarts}; database restarts {campaign.db_restarts}",
             f"  claims {len(workload.claims)}; reports {len(workload.reports)}; events in log {facts.events}; "
             f"Pulse messages {len(pulse)} (log implies {sum(facts.messages.values())})",
             f"  duplicate Pulse messages (at least once, ADR 0005): {sum(duplicates.values())} {dict(duplicates)}",
             f"  client errors (retried): {dict(workload.errors.most_common(8))}",
             f"  duration: faults+settle {chaos_seconds:.1f}s, total {total_seconds:.1f}s"]
    lines += [f"  note: {n}" for n in campaign.notes]
    if consequences:
        lines.append(f"  tasks off only because a dependency went wrong first: {sum(consequences.values())}")
    lines.append(f"  violations {violations.total()}" + (":" if violations.total() else " (all invariants hold)"))
    for kind, details in sorted(violations.by_kind.items()):
        lines.append(f"    {kind}: {len(details)}")
        lines += [f"      {d}" for d in details[:5]]
    if violations.total():
        seed = "" if "--seed" in sys.argv else f" --seed {args.seed}"
        lines.append(f"  reproduce: python bench/chaos.py {' '.join(sys.argv[1:])}{seed}")
    lines.append("=" * 72)
    print("\n".join(lines), flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000, help="tasks in the graph")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of random services")
    parser.add_argument("--broker-restarts", type=int, default=1)
    parser.add_argument("--db-restarts", type=int, default=1)
    parser.add_argument("--duration", type=float, default=60, help="seconds over which tasks and faults come")
    parser.add_argument("--settle", type=float, default=120, help="longest wait, after the faults, for the graph")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--gateways", type=int, default=1, help="api-gateway processes (sharing the port)")
    parser.add_argument("--down", type=float, default=2.0, help="longest downtime of a killed service, seconds")
    parser.add_argument("--claim-timeout", type=int, default=10, help="TASKJOURNAL_CLAIM_TIMEOUT, seconds")
    parser.add_argument("--db-stop-mode", choices=("immediate", "fast"), default="immediate")
    parser.add_argument("--database-url", help="use this PostgreSQL server (a fresh database) instead of a private one")
    parser.add_argument("--amqp-url", help="use this broker instead of a private node")
    parser.add_argument("--no-abandon", action="store_true",
                        help="no tasks whose first claim the worker drops (claim expiry, then a retry)")
    parser.add_argument("--strict-duplicates", action="store_true", help="count duplicate messages as violations")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (kept anyway on violations)")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # `kill -USR1` shows where a campaign hangs
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the servers on SIGTERM too
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
