"""`make bench-history` (ADR 0015): how fast the history answers, in process
(what the API's handlers call), on SQLite or PostgreSQL (--database-url).

  - the history of one task with 50 runs and 1,000 artifacts (p50/p99, ms)
  - that task's status as of random past times (p50/p99, ms)
  - `taskjournal audit` over the whole log (events/s), the log padded with
    --tasks other tasks (each created, claimed, completed: 4 events)

Targets: both p99 < 20 ms; audit >= 20,000 events/s."""

import argparse
import json
import random
import statistics
import sys
import tempfile
import time

from taskjournal.shared import actor, heap
from taskjournal.shared.auth.credentials import slug_id
from taskjournal.shared.domain.definition import normalize
from taskjournal.shared.domain.time import format_ms, now_ms, parse_ms
from taskjournal.shared.journal import open_journal
from taskjournal.shared.store.audit import audit
from taskjournal.shared.store.replay import PROJECTIONS, rebuild

RUNS, ARTIFACTS = 50, 1000
HOUR = 3_600_000


def create_task(journal, task_queue_id: str, deadline_ms: int = HOUR):
    now, task_id = now_ms(), slug_id()
    body = {"taskQueueId": task_queue_id, "created": format_ms(now), "deadline": format_ms(now + deadline_ms),
            "payload": {}, "metadata": {"name": "bench", "description": "history bench", "owner": "b@example.com",
                                        "source": "https://example.com/bench"}}
    return journal.create_task(task_id, normalize(task_id, body, now), now)


def busy_task(journal) -> str:
    """A task with RUNS runs (each claimed, given artifacts, failed, rerun) and ARTIFACTS artifacts."""
    task = create_task(journal, "bench/history", 2 * HOUR)
    expires = task.definition["expires"]
    for run_id in range(RUNS):
        journal.claim_task(task.task_id, run_id, "bench", "w1", now_ms(), now_ms() + HOUR)
        for n in range(ARTIFACTS // RUNS):
            journal.create_artifact(task.task_id, run_id, f"public/logs/{n}.log",
                                    {"storageType": "reference", "url": "https://example.com/", "expires": expires},
                                    now_ms())
        journal.report(task.task_id, run_id, "failed", now_ms())
        if run_id + 1 < RUNS:
            journal.rerun_task(task.task_id, now_ms())
    return task.task_id


def padding(journal, count: int) -> None:
    for _ in range(count):
        task = create_task(journal, "bench/padding")
        journal.claim_task(task.task_id, 0, "bench", "w2", now_ms(), now_ms() + HOUR)
        journal.report(task.task_id, 0, "completed", now_ms())


def timed(call, repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"p50_ms": round(statistics.median(samples), 2),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="PostgreSQL (an empty database); default: SQLite in a temp dir")
    parser.add_argument("--tasks", type=int, default=5000, help="other tasks padding the log")
    parser.add_argument("--repeat", type=int, default=200, help="calls timed per figure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as data_dir, actor.acting(actor.client("bench", "bench")):
        journal = open_journal(args.database_url, data_dir)
        heap.settle()  # as a server process does once started (services/cli.py): the log built next is not frozen
        started = time.monotonic()
        task_id = busy_task(journal)
        padding(journal, args.tasks)
        print(f"built {journal.store.last_event_position()} events in {time.monotonic() - started:.1f}s",
              file=sys.stderr)
        history = journal.views.task_history(task_id)
        first, last = parse_ms(history[0]["time"]), parse_ms(history[-1]["time"])
        rng = random.Random(1)
        results = {
            "store": "postgresql" if args.database_url else "sqlite",
            "task_history": {"events": len(history), **timed(lambda: journal.views.task_history(task_id), args.repeat)},
            "status_as_of": timed(lambda: journal.views.task_status_as_of(task_id, rng.randint(first, last)),
                                  args.repeat),
        }
        started = time.perf_counter()
        rebuild(journal, list(PROJECTIONS))
        replay_s = time.perf_counter() - started
        started = time.perf_counter()
        report = audit(journal)
        seconds = time.perf_counter() - started
        # replay on the same log, just before: on a loaded machine the ratio says more than either figure
        results["audit"] = {"events": report.events, "seconds": round(seconds, 2),
                            "events_per_s": round(report.events / seconds), "ok": report.ok,
                            "replay_events_per_s": round(report.events / replay_s),
                            "audit_to_replay": round(replay_s / seconds, 2)}
        journal.close()
    print(json.dumps(results, indent=2))
    ok = (results["task_history"]["p99_ms"] < 20 and results["status_as_of"]["p99_ms"] < 20
          and results["audit"]["events_per_s"] >= 20_000 and report.ok)
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
