#!/usr/bin/env python3
"""Resolver scale-out benchmark (`make bench-resolvers`): a backlog of expired
claims resolved by 1 and by 3 claim-resolver processes (`taskjournal run
claim-resolver`), each on a fresh PostgreSQL database.

For each replica count: create N tasks and claim them all until the same
instant E, a few seconds ahead; start the processes meanwhile (they idle
until E); then time from E until no expired claim is left (the store's
backlog count, polled every 20 ms). Per process: how many claims it
resolved (its "resolved an item" log lines). From the log: every run
resolved claim-expired exactly once.

  python bench/resolvers.py [--claims 600] [--replicas 1,3] [--rounds 1]
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import open_journal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.journal import create_task  # noqa: E402  (the repository's own helper)
from tests.support.postgres import create_database, drop_database_at  # noqa: E402

QUEUE = "bench/claims"
START_S = 20.0  # claims expire this long after the first is taken: time to claim them all and start the processes


def log(msg):
    print(f"[resolvers {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backlog(journal, claims: int) -> int:
    """Create `claims` tasks and claim them all until one instant; returns it."""
    now = now_ms()
    for _ in range(claims):
        create_task(journal, QUEUE, now, retries=0)
    expires = now_ms() + int(START_S * 1000)
    taken = 0
    while taken < claims:
        taken += len(journal.claim_work(QUEUE, "bench", "w", min(100, claims - taken), now_ms(), expires))
    return expires


def start_resolvers(url: str, count: int, workdir: str) -> list[tuple[subprocess.Popen, Path]]:
    started = []
    for i in range(count):
        out = Path(workdir) / f"claim-resolver-{i}.log"
        env = {**os.environ, "TASKJOURNAL_DATABASE_URL": url, "TASKJOURNAL_PORT": str(free_port()),
               "TASKJOURNAL_HOST": "127.0.0.1", "TASKJOURNAL_RESOLVER_INTERVAL": "0.05",
               "TASKJOURNAL_LOG_FORMAT": "json", "TASKJOURNAL_DATA_DIR": str(Path(workdir) / f"data-{i}")}
        env.pop("TASKJOURNAL_AMQP_URL", None)
        with open(out, "wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "taskjournal.services.cli", "run", "claim-resolver"],
                                    env=env, stdout=sink, stderr=subprocess.STDOUT)
        started.append((proc, out))
    return started


def stop(started) -> None:
    for proc, _ in started:
        proc.terminate()
    for proc, _ in started:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def resolved_per_process(started) -> list[int]:
    return [sum("resolved an item" in line for line in out.read_text().splitlines()) for _, out in started]


def expiries_in_log(journal) -> Counter:
    """{task aggregate id: claim-expired resolutions in the log}."""
    counts: Counter = Counter()
    position = 0
    while events := journal.events_after(position, 1000):
        for position, event in events:
            if type(event).__name__ == "RunResolved" and event.reason == "claim-expired":
                counts[event.originator_id] += 1
    return counts


def one_round(base_url: str, claims: int, replicas: int) -> dict:
    url = create_database(base_url, "bench_resolvers")
    workdir = tempfile.mkdtemp(prefix="bench-resolvers-")
    journal = open_journal(url, workdir)
    started = []
    try:
        expires = backlog(journal, claims)
        started = start_resolvers(url, replicas, workdir)
        if now_ms() > expires:
            raise RuntimeError("the backlog took longer to create than START_S: raise it")
        while now_ms() < expires:
            time.sleep(0.005)
        begin = time.monotonic()
        while journal.views.expired_claims(now_ms(), limit=1):  # (also on older versions, to compare)
            time.sleep(0.02)
            if time.monotonic() - begin > 600:
                raise RuntimeError("the backlog was not resolved within 10 minutes")
        seconds = time.monotonic() - begin
        stop(started)
        per_process = resolved_per_process(started)
        in_log = expiries_in_log(journal)
        result = {"replicas": replicas, "claims": claims, "seconds": round(seconds, 3),
                  "claims_per_s": round(claims / seconds, 1), "resolved_per_process": per_process,
                  "resolved_in_log": len(in_log), "resolved_twice": sum(1 for n in in_log.values() if n > 1)}
        log(json.dumps(result))
        return result
    finally:
        stop(started)
        journal.close()
        drop_database_at(url)


def main(argv) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db-url", default=os.environ.get("TASKJOURNAL_TEST_DATABASE_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"),
                        help="a PostgreSQL server; each round makes (and drops) a database of its own")
    parser.add_argument("--claims", type=int, default=600, help="expired claims in the backlog (default 600)")
    parser.add_argument("--replicas", default="1,3", help="replica counts to compare, in order (default 1,3)")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds of every count (default 1)")
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.replicas.split(",")]
    results = [one_round(args.db_url, args.claims, n) for _ in range(args.rounds) for n in counts]
    bad = [r for r in results if r["resolved_twice"] or r["resolved_in_log"] != r["claims"]
           or sum(r["resolved_per_process"]) != r["claims"]]
    for r in results:
        print(f"  {r['replicas']} claim-resolver(s): {r['claims']} expired claims in {r['seconds']} s "
              f"({r['claims_per_s']}/s); per process {r['resolved_per_process']}; resolved twice: "
              f"{r['resolved_twice']}")
    print(json.dumps(results))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
