#!/usr/bin/env python3
"""The web view's figure (`make bench-web`): how long the page of a task
group of 10,000 tasks takes to render.

Starts `taskjournal dev` on a fresh PostgreSQL database (as bench/run.py;
`--sqlite`: on SQLite),
creates one group of N tasks with the official client, C calls at a time,
claims and resolves some of them (so the counts and the timeline have
several states), then times GET /task-groups/<id> (the default page: counts
over the whole group, the first page of the list and its timeline) and the
same page with every task listed (?limit=N). With chromium and chromedriver
installed it also times the page in a headless browser, to its load event.
Prints a table; writes bench/results/webview.json. Loopback only."""

import argparse
import json
import os
import shutil
import statistics
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import taskcluster

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # noqa: E402  (bench/run.py: the server and database helpers)

DB_NAME = "taskjournal_bench_web"
QUEUE_ID = "webbench/worker"
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def parse_args(argv):
    p = argparse.ArgumentParser(description="Time the web view's task group page of a big group.")
    p.add_argument("--tasks", type=int, default=10_000, help="tasks in the group (default 10000)")
    p.add_argument("--resolved", type=int, default=2_000, help="of them claimed and resolved (default 2000)")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent calls while creating (default 16)")
    p.add_argument("--repeat", type=int, default=5, help="timed fetches of each page (default 5)")
    p.add_argument("--server", default=str(run.REPO / ".venv" / "bin" / "taskjournal"))
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--startup-timeout", type=float, default=60.0)
    p.add_argument("--no-browser", action="store_true", help="skip the headless browser timing")
    p.add_argument("--sqlite", action="store_true", help="`taskjournal dev` on SQLite instead of PostgreSQL")
    return p.parse_args(argv)


def definition(group_id: str, number: int) -> dict:
    return {"taskQueueId": QUEUE_ID, "taskGroupId": group_id, "schedulerId": "webbench",
            "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
            "deadline": taskcluster.stringDate(taskcluster.fromNow("2 hours")),
            "payload": {"command": ["build", str(number)]},
            "metadata": {"name": f"task {number}", "description": "web view bench", "owner": "bench@example.com",
                         "source": "http://127.0.0.1/bench"}}


def fill_group(root_url: str, credentials: dict, args) -> str:
    queue = taskcluster.Queue({"rootUrl": root_url, "credentials": credentials, "maxRetries": 5})
    group_id = taskcluster.slugId()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        list(pool.map(lambda n: queue.createTask(taskcluster.slugId(), definition(group_id, n)), range(args.tasks)))
        created = time.perf_counter() - started
        print(f"created {args.tasks} tasks in {created:.1f} s", file=sys.stderr)
        share = args.resolved // args.concurrency
        list(pool.map(lambda n: resolve_some(root_url, queue, n, share), range(args.concurrency)))
    print(f"resolved about {args.resolved} in {time.perf_counter() - started - created:.1f} s", file=sys.stderr)
    return group_id


def resolve_some(root_url: str, queue: taskcluster.Queue, worker: int, share: int, batch: int = 8) -> None:
    """One worker's share of the resolved tasks: most completed, every tenth failed."""
    done = 0
    while done < share:
        claims = queue.claimWork(QUEUE_ID, {"workerGroup": "webbench", "workerId": f"w{worker}",
                                            "tasks": min(batch, share - done)})["tasks"]
        if not claims:
            return
        for claim in claims:
            runner = taskcluster.Queue({"rootUrl": root_url, "credentials": claim["credentials"], "maxRetries": 5})
            task_id = claim["status"]["taskId"]
            (runner.reportFailed if done % 10 == 9 else runner.reportCompleted)(task_id, str(claim["runId"]))
            done += 1


def fetch_times(url: str, repeat: int) -> tuple[list[float], int]:
    """Seconds per full fetch of the page (to the last byte), and its size."""
    times, size = [], 0
    urllib.request.urlopen(url).read()  # warm: the first read fills caches
    for _ in range(repeat):
        started = time.perf_counter()
        with urllib.request.urlopen(url) as reply:
            size = len(reply.read())
        times.append(time.perf_counter() - started)
    return times, size


def browser_times(url: str, repeat: int) -> list[float] | None:
    """Seconds from navigation start to the load event in headless chromium, or None without one."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1024"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        times = []
        for _ in range(repeat + 1):
            driver.get(url)
            load = driver.execute_script(
                "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;")
            times.append(load / 1000)
        return times[1:]
    finally:
        driver.quit()


def summary(times: list[float] | None) -> dict | None:
    if not times:
        return None
    return {"median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
            "max_s": round(max(times), 4), "runs": len(times)}


def main(argv=None) -> int:
    args = parse_args(argv)
    database = None if args.sqlite else DB_NAME
    if database:
        run.reset_database(args.pg_url, database)
    results: dict = {"tasks": args.tasks, "resolved": args.resolved, "store": "sqlite" if args.sqlite else "postgres",
                     "machine": run.machine_info(""), "load_average_before": os.getloadavg()}
    try:
        with run.running_server(args, database, {}, "server-webview.log") as (_, root_url, token, _log):
            group_id = fill_group(root_url, {"clientId": run.CLIENT_ID, "accessToken": token}, args)
            page = f"{root_url}/task-groups/{group_id}"
            for name, url in (("default page", page), ("every task listed", f"{page}?limit={args.tasks}")):
                times, size = fetch_times(url, args.repeat)
                results[name] = {"server": summary(times), "bytes": size}
                if not args.no_browser:
                    results[name]["browser"] = summary(browser_times(url, args.repeat))
    except run.ServerDidNotStart:
        return 2
    print(f"\nweb view, task group of {args.tasks} tasks ({args.resolved} resolved), median of {args.repeat}:")
    print("| page | server (full response) | browser (to load event) | size |\n|---|---|---|---|")
    for name in ("default page", "every task listed"):
        row = results[name]
        browser = row.get("browser")
        in_browser = f"{browser['median_s'] * 1000:.0f} ms" if browser else "n/a"
        print(f"| {name} | {row['server']['median_s'] * 1000:.0f} ms | {in_browser} | {row['bytes'] / 1e6:.1f} MB |")
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    (run.RESULTS / "webview.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
