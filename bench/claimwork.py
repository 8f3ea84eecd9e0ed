#!/usr/bin/env python3
"""claimWork throughput, focused: W workers call claimWork (tasks=1) on one
task queue until N pending tasks are drained; optionally with R workers
registered on Q other task queues first (some quarantined), to show the
worker bookkeeping costs claimWork nothing that grows with them (issue 10).

    .venv/bin/python bench/claimwork.py [--registered 1000 --queues 100]

Starts `taskjournal dev` on a fresh PostgreSQL database each run; prints one
line per run. Loopback only; needs the official Python client."""

import argparse
import os
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import taskcluster

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.support.server import Server, task_definition  # noqa: E402

DB_NAME = "taskjournal_bench_claimwork"


def fresh_database(pg_url: str) -> str:
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    return f"{pg_url}/{DB_NAME}"


def register(server: Server, registered: int, queues: int) -> None:
    expires = taskcluster.stringDate(taskcluster.fromNow("1 day"))
    until = taskcluster.stringDate(taskcluster.fromNow("1 hour"))

    def one(i: int) -> None:
        queue = server.queue()
        path = ["bench-reg", f"wt{i % queues}", "bench", f"w{i}"]
        queue.declareWorker(*path, {"expires": expires})
        if i % 100 == 0:  # a few quarantined ones: the quarantine copy is not empty
            queue.quarantineWorker(*path, {"quarantineUntil": until})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(registered)))


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(server: Server, task_queue_id: str, tasks: int, workers: int) -> tuple[float, float]:
    """(claims per second, server CPU milliseconds per claim)."""
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: server.queue().createTask(taskcluster.slugId(), task_definition(task_queue_id)),
                      range(tasks)))

    def work(w: int) -> int:
        queue, claimed = server.queue(), 0
        while True:
            got = queue.claimWork(task_queue_id, {"workerGroup": "bench", "workerId": f"c{w}", "tasks": 1})["tasks"]
            if not got:
                return claimed
            claimed += len(got)

    started, cpu = time.perf_counter(), cpu_seconds(server.process.pid)
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(work, range(workers)))
    elapsed = time.perf_counter() - started - 1.0  # each worker's last call waits claimwork_wait (1 s) for nothing
    cpu = cpu_seconds(server.process.pid) - cpu
    assert total == tasks, (total, tasks)
    return total / elapsed, cpu * 1000 / total


def main(argv) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--registered", type=int, default=0, help="workers registered before (declareWorker)")
    p.add_argument("--queues", type=int, default=100, help="task queues they are spread over")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    args = p.parse_args(argv)
    data_dir = Path(f"/tmp/tj-bench-claimwork-{secrets.token_hex(4)}")
    data_dir.mkdir()
    server = Server(data_dir, fresh_database(args.pg_url),
                    TASKJOURNAL_CLAIMWORK_WAIT="1", TASKJOURNAL_CLAIM_TIMEOUT="1200",
                    TASKJOURNAL_LOG_FORMAT="text")
    try:
        if args.registered:
            register(server, args.registered, args.queues)
        rate, cpu_ms = drain(server, "bench-claim/w", args.tasks, args.workers)
        print(f"claimWork tasks=1: {rate:.1f} claims/s, server CPU {cpu_ms:.2f} ms/claim (tasks={args.tasks} workers={args.workers} "
              f"registered={args.registered} over {args.queues if args.registered else 0} queues)")
    finally:
        server.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
