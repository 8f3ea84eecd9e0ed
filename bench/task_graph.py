#!/usr/bin/env python3
"""Run a task graph to completion against a running taskjournal (or any
Taskcluster queue): one root, a fan-out of children that depend on it, and
fan-in tasks that each depend on up to 100 children. Workers claim with
claimWork and complete everything. Prints the time to resolve the graph.

  TASKCLUSTER_ROOT_URL=... TASKCLUSTER_CLIENT_ID=... TASKCLUSTER_ACCESS_TOKEN=... \\
      python bench/task_graph.py --tasks 1000
"""

import argparse
import datetime
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import taskcluster


def definition(queue_id: str, group_id: str, dependencies=()) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc)
    return {"taskQueueId": queue_id, "taskGroupId": group_id, "schedulerId": "graph",
            "dependencies": list(dependencies), "created": taskcluster.stringDate(now),
            "deadline": taskcluster.stringDate(now + datetime.timedelta(hours=1)),
            "payload": {}, "metadata": {"name": "graph task", "description": "task_graph.py",
                                        "owner": "graph@example.com", "source": "https://example.com/graph"}}


def build(queue, queue_id: str, group_id: str, total: int) -> list[str]:
    root = taskcluster.slugId()
    joins = max(1, -(-(total - 1) // 101))  # each fan-in task may depend on at most 100 tasks
    children = [taskcluster.slugId() for _ in range(total - 1 - joins)]
    queue.createTask(root, definition(queue_id, group_id))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: queue.createTask(c, definition(queue_id, group_id, [root])), children))
        chunk = -(-len(children) // joins)
        join_ids = [taskcluster.slugId() for _ in range(joins)]
        list(pool.map(lambda i: queue.createTask(join_ids[i], definition(
            queue_id, group_id, children[i * chunk:(i + 1) * chunk])), range(joins)))
    return [root, *children, *join_ids]


def work(options: dict, queue_id: str, done: threading.Event, worker: int) -> int:
    queue = taskcluster.Queue(options)
    completed = 0
    while not done.is_set():
        claims = queue.claimWork(queue_id, {"workerGroup": "graph", "workerId": f"w{worker}", "tasks": 32})
        for claim in claims["tasks"]:
            queue.reportCompleted(claim["status"]["taskId"], str(claim["runId"]))
            completed += 1
    return completed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    options = taskcluster.optionsFromEnvironment()
    queue = taskcluster.Queue(options)
    queue_id, group_id = f"graph/g{secrets.token_hex(6)}", taskcluster.slugId()
    started = time.monotonic()
    task_ids = build(queue, queue_id, group_id, args.tasks)
    print(f"created {len(task_ids)} tasks in {time.monotonic() - started:.1f}s", file=sys.stderr)
    done = threading.Event()
    with ThreadPoolExecutor(args.workers) as pool:
        workers = [pool.submit(work, options, queue_id, done, i) for i in range(args.workers)]
        try:
            while not all(s["status"]["state"] == "completed" for s in _statuses(queue, task_ids)):
                time.sleep(0.2)
            resolved = time.monotonic() - started
        finally:
            done.set()  # workers leave after their current long poll
        completed = sum(w.result() for w in workers)
    print(f"graph of {len(task_ids)} tasks completed in {resolved:.1f}s "
          f"({completed} runs completed by {args.workers} workers)")
    return 0


def _statuses(queue, task_ids: list[str]) -> list[dict]:
    found, token = [], None
    while True:
        page = queue.statuses({"taskIds": task_ids}, **({"query": {"continuationToken": token}} if token else {}))
        found += page["statuses"]
        token = page.get("continuationToken")
        if not token:
            return found


if __name__ == "__main__":
    sys.exit(main())
