#!/usr/bin/env python3
"""Fleet scale: what one gateway process holds for P idle workers long-polling
claimWork over Q task queues (issue 11, item 6; ADR 0021).

    .venv/bin/python bench/fleet.py [--polls 1000 --queues 50 --tasks 100]
    make bench-fleet BENCH_FLEET_ARGS="--polls 5000"

Starts `taskjournal dev` on a fresh PostgreSQL database, then measures:
- the server's RSS before and with the polls held (memory per held poll);
- while idle (every poll held; each re-polls when its wait ends, as workers
  do): server CPU %, database transactions per second (pg_stat_database
  xact_commit of its database) and claimWork's looks per second (its
  /metrics counter), next to the same figures with no poll held;
- pickup latency: tasks created one at a time on random queues while all
  polls wait; from createTask's reply to the claimWork reply at the worker.

The workers are one aiohttp client on loopback with Hawk headers (mohawk);
the file-descriptor limit is raised in this process only, and the server
inherits it."""

import argparse
import asyncio
import json
import math
import os
import random
import resource
import secrets
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import mohawk
import psycopg
import taskcluster

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.claimwork import cpu_seconds  # noqa: E402
from bench.procs import label, read_proc_stats  # noqa: E402
from tests.support.postgres import admin_url, create_database, drop_database_at  # noqa: E402
from tests.support.server import ROOT_CLIENT_ID, Server, task_definition  # noqa: E402

LOOKS = "taskjournal_claimwork_looks_total"
CLAIM_WAIT = "taskjournal_claim_wait_seconds"


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def gateway_pid(root: int) -> int:
    """The process holding the polls: `dev` on PostgreSQL is a supervisor whose
    gateway child serves the port (one gateway: TASKJOURNAL_GATEWAY_PROCESSES=1)."""
    children = [pid for pid, (ppid, _, _) in read_proc_stats().items() if ppid == root]
    gateways = [pid for pid in children if label(pid, root) == "gateway"]
    if len(gateways) > 1:
        raise RuntimeError("more than one gateway process: the figures are per gateway")
    return gateways[0] if gateways else root


class Fleet:
    """P workers, each holding one claimWork long poll at a time."""

    def __init__(self, server: Server, polls: int, queues: int):
        self.server, self.polls, self.queues = server, polls, queues
        self.credentials = {"id": ROOT_CLIENT_ID, "key": server.token, "algorithm": "sha256"}
        self.arrived: dict[str, float] = {}  # taskId -> when its claimWork reply reached the worker
        self.got_one = asyncio.Event()
        self.requests = 0  # claimWork calls sent
        self.errors = 0
        self.holding = 0  # polls in flight now

    def queue_of(self, i: int) -> str:
        return f"fleet-prov/w{i % self.queues}"

    async def call(self, session: aiohttp.ClientSession, method: str, path: str, body: dict) -> dict:
        url = f"{self.server.root_url}/api/queue/v1/{path}"
        content = json.dumps(body)
        sender = mohawk.Sender(self.credentials, url, method, content=content, content_type="application/json")
        headers = {"Authorization": sender.request_header, "Content-Type": "application/json"}
        async with session.request(method, url, data=content, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"{method} {path}: {response.status} {await response.text()}")
            return await response.json()

    async def worker(self, session: aiohttp.ClientSession, i: int, start_after: float) -> None:
        await asyncio.sleep(start_after)
        body = {"workerGroup": "fleet", "workerId": f"w{i}", "tasks": 1}
        path = f"claim-work/{self.queue_of(i)}"
        while True:
            self.requests += 1
            self.holding += 1
            try:
                reply = await self.call(session, "POST", path, body)
            except (aiohttp.ClientError, RuntimeError):
                self.errors += 1
                await asyncio.sleep(1)
                continue
            finally:
                self.holding -= 1
            at = time.perf_counter()
            for claim in reply["tasks"]:
                self.arrived[claim["status"]["taskId"]] = at
                self.got_one.set()

    async def create(self, session: aiohttp.ClientSession, queue: str) -> tuple[str, float]:
        task_id = taskcluster.slugId()
        await self.call(session, "PUT", f"task/{task_id}", task_definition(queue))
        return task_id, time.perf_counter()

    async def pickup(self, session: aiohttp.ClientSession, task_queue_id: str) -> float:
        """Seconds from createTask's reply to the claimWork reply (0 when the claim came first)."""
        self.got_one.clear()
        task_id, created = await self.create(session, task_queue_id)
        while task_id not in self.arrived:
            await asyncio.wait_for(self.got_one.wait(), 60)
            self.got_one.clear()
        return max(0.0, self.arrived[task_id] - created)


class Probe:
    """Server CPU, database transactions and claimWork looks over a window."""

    def __init__(self, server: Server, database: str):
        self.server, self.database = server, database
        # one connection, opened now: a shared server may have none to spare later
        self.conn = psycopg.connect(admin_url(server.env["TASKJOURNAL_DATABASE_URL"]), autocommit=True)

    def xact_commits(self) -> int:
        self.conn.execute("SELECT pg_stat_clear_snapshot()")
        row = self.conn.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                                (self.database,)).fetchone()
        return int(row[0])

    async def quiet(self, xact_per_s: float, limit_s: float) -> float:
        """Wait until the workers' first "seen" writes (one per worker, ADR 0014)
        are done: database transactions below `xact_per_s`. Returns the seconds waited."""
        started = time.perf_counter()
        while time.perf_counter() - started < limit_s:
            before, at = self.xact_commits(), time.perf_counter()
            await asyncio.sleep(2)
            if (self.xact_commits() - before) / (time.perf_counter() - at) < xact_per_s:
                break
        return time.perf_counter() - started

    async def metric(self, session: aiohttp.ClientSession, name: str) -> dict[str, float]:
        """A metric's values by label text, e.g. {'le="0.1",task_queue_id="q"': 3.0}."""
        values: dict[str, float] = {}
        async with session.get(f"{self.server.root_url}/metrics") as response:
            for line in (await response.text()).splitlines():
                if line.startswith(name + "{") or line.startswith(name + " "):
                    key, value = line.rsplit(" ", 1)
                    values[key[len(name):].strip("{}")] = float(value)
        return values

    async def looks(self, session: aiohttp.ClientSession) -> float:
        return (await self.metric(session, LOOKS)).get("", 0.0)

    async def claimed_within(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """Server side: claims by how long their task was pending (all queues)."""
        within: dict[str, float] = {}
        for labels, value in (await self.metric(session, CLAIM_WAIT + "_bucket")).items():
            bound = labels.split('le="', 1)[1].split('"', 1)[0]
            within[bound] = within.get(bound, 0.0) + value
        return within

    async def window(self, session: aiohttp.ClientSession, seconds: float) -> dict[str, float]:
        pid = gateway_pid(self.server.process.pid)
        started, cpu, xacts, looks = time.perf_counter(), cpu_seconds(pid), self.xact_commits(), await self.looks(session)
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - started
        return {"cpu_pct": 100 * (cpu_seconds(pid) - cpu) / elapsed,
                "xact_per_s": (self.xact_commits() - xacts) / elapsed,
                "looks_per_s": (await self.looks(session) - looks) / elapsed}


async def measure(server: Server, database: str, args) -> dict:
    fleet, probe = Fleet(server, args.polls, args.queues), Probe(server, database)
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        await fleet.create(session, "fleet-prov/warm-up")  # the first request's imports and pools are not the polls' cost
        await asyncio.sleep(2)
        pid = gateway_pid(server.process.pid)
        rss_before = rss_bytes(pid)
        baseline = await probe.window(session, args.idle)
        # polls start spread over one wait, so they end (and start again) spread too
        workers = [asyncio.create_task(fleet.worker(session, i, args.wait * i / args.polls)) for i in range(args.polls)]
        await asyncio.sleep(args.wait + args.settle)
        settled = await probe.quiet(baseline["xact_per_s"] + args.queues / 5 + 10, limit_s=args.quiet_limit)
        rss_held = rss_bytes(pid)
        idle = await probe.window(session, args.idle)
        held, requests = fleet.holding, fleet.requests
        looks_before, started = await probe.looks(session), time.perf_counter()
        latencies = [await fleet.pickup(session, random.choice([fleet.queue_of(q) for q in range(args.queues)]))
                     for _ in range(args.tasks)]
        pickup_s = time.perf_counter() - started
        within = await probe.claimed_within(session)
        # the safety re-checks go on meanwhile: count only the looks the tasks caused
        looks_per_task = (await probe.looks(session) - looks_before - idle["looks_per_s"] * pickup_s) / args.tasks
        for worker in workers:
            worker.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        probe.conn.close()
    latencies.sort()
    return {"polls": args.polls, "queues": args.queues, "held": held, "requests": requests, "errors": fleet.errors,
            "rss_before_mb": rss_before / 2**20, "rss_held_mb": rss_held / 2**20,
            "kb_per_poll": (rss_held - rss_before) / 1024 / args.polls,
            "baseline": baseline, "idle": idle, "repolls_per_s": args.polls / args.wait, "settled_s": settled,
            "pickup_p50_ms": 1000 * statistics.median(latencies),
            "pickup_p99_ms": 1000 * latencies[math.ceil(0.99 * len(latencies)) - 1],  # nearest rank
            "pickup_max_ms": 1000 * latencies[-1], "looks_per_task": looks_per_task,
            "slowest_ms": [round(1000 * x, 1) for x in latencies[-3:]], "server_claimed_within_s": within,
            "tasks": args.tasks, "pickup_s": pickup_s}


def report(r: dict) -> str:
    b, i = r["baseline"], r["idle"]
    return (f"fleet: {r['polls']} polls over {r['queues']} queues ({r['held']} held at the idle probe, "
            f"{r['requests']} claimWork calls, {r['errors']} errors)\n"
            f"  server RSS {r['rss_before_mb']:.1f} MB -> {r['rss_held_mb']:.1f} MB: {r['kb_per_poll']:.1f} KB per held poll\n"
            f"  no polls: CPU {b['cpu_pct']:.1f} %, {b['xact_per_s']:.1f} db xact/s, {b['looks_per_s']:.2f} looks/s\n"
            f"  first \"seen\" writes done {r['settled_s']:.0f} s after the settle time\n"
            f"  idle polls ({r['repolls_per_s']:.0f} re-polls/s): CPU {i['cpu_pct']:.1f} %, {i['xact_per_s']:.1f} db xact/s, "
            f"{i['looks_per_s']:.2f} looks/s\n"
            f"  pickup over {r['tasks']} tasks: p50 {r['pickup_p50_ms']:.1f} ms, p99 {r['pickup_p99_ms']:.1f} ms, "
            f"max {r['pickup_max_ms']:.1f} ms, {r['looks_per_task']:.1f} looks per task beyond the re-checks\n"
            f"  slowest {r['slowest_ms']} ms; server side, claims by seconds pending: "
            + ", ".join(f"<={le} s: {n:.0f}" for le, n in r["server_claimed_within_s"].items() if le in ("0.05", "0.5", "5", "+Inf")))


def main(argv) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--polls", type=int, default=1000, help="workers, each holding one long poll")
    p.add_argument("--queues", type=int, default=50, help="task queues they are spread over")
    p.add_argument("--tasks", type=int, default=100, help="tasks created one at a time for the pickup latency")
    p.add_argument("--wait", type=float, default=20.0, help="claimWork's long-poll wait (TASKJOURNAL_CLAIMWORK_WAIT)")
    p.add_argument("--idle", type=float, default=10.0, help="seconds each idle window is measured")
    p.add_argument("--settle", type=float, default=10.0, help="seconds between the last poll's start and the idle window (longer while writes go on)")
    p.add_argument("--quiet-limit", type=float, default=180.0,
                   help="at most this many seconds more for the first writes to end (a claimWork that queries per poll never gets quiet)")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = p.parse_args(argv)
    raise_fd_limit(2 * args.polls + 1024)  # the server (a child) inherits the raised limit
    database_url = create_database(args.pg_url, "taskjournal_bench_fleet")
    data_dir = Path(f"/tmp/tj-bench-fleet-{secrets.token_hex(4)}")
    data_dir.mkdir()
    # claims outlast the run (the test server's 3 s would re-pend every picked-up task), default resolver pace
    server = Server(data_dir, database_url, TASKJOURNAL_CLAIMWORK_WAIT=str(args.wait),
                    TASKJOURNAL_CLAIM_TIMEOUT="1200", TASKJOURNAL_RESOLVER_INTERVAL="1", TASKJOURNAL_LOG_FORMAT="text")
    try:
        result = asyncio.run(measure(server, database_url.rsplit("/", 1)[1], args))
    finally:
        server.stop()
        drop_database_at(database_url)
    print(report(result))
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
