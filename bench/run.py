#!/usr/bin/env python3
"""Benchmark harness for taskjournal (`make bench`).

For each setup users run (`dev` without a broker, `dev` with RabbitMQ,
`stack`), starts a fresh server on a new PostgreSQL database, runs the shared
Queue yardstick (queue_bench.py) against it, measures raw status reads with
wrk, samples the CPU and event-loop lag of every server process and the CPU
of PostgreSQL per phase; then the artifact, object and pipeline phases
(bench/pipeline.py). Prints tables, keeps the run as
bench/results/<time>-<commit>.json, writes bench/results/latest.md and
regenerates the README's table (bench/report.py). Loopback only.
"""

import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg
import taskcluster
import taskcluster.exceptions

import artifacts
import objects
import pipeline
import report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.server import free_ports  # noqa: E402  (one way of finding consecutive free ports)
from procs import LagSampler, cpu_between, cpu_sample, ops_urls

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DB_NAME = "taskjournal_bench"
PIPELINE_DB_NAME = "taskjournal_bench_pipeline"
PIPELINE_SERVER_ENV = {"TASKJOURNAL_CLAIM_TIMEOUT": "2", "TASKJOURNAL_RESOLVER_INTERVAL": "1"}
CLIENT_ID = "bench-root"
# What users run, each on a fresh database: (command, extra arguments, needs RabbitMQ)
SETUPS = {"dev": ("dev", (), False), "dev-amqp": ("dev", (), True), "stack": ("stack", (), True)}
PHASES = ("create", "claim", "e2e", "status")


def parse_args(argv):
    p = argparse.ArgumentParser(description="Benchmark taskjournal with queue_bench.py and wrk.")
    p.add_argument("--queue-bench", default=str(REPO.parent / "shared" / "bench" / "queue_bench.py"),
                   help="path to queue_bench.py (default: ../shared/bench/queue_bench.py from the repo root)")
    p.add_argument("--tasks", type=int, default=5000, help="tasks created and drained (default 5000)")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent create/status calls (default 16)")
    p.add_argument("--workers", type=int, default=8, help="simulated workers (default 8)")
    p.add_argument("--quick", action="store_true", help="short run: 500 tasks")
    p.add_argument("--wrk-duration", default="10s", help="wrk run length (default 10s)")
    p.add_argument("--no-wrk", action="store_true", help="skip the wrk measurement")
    p.add_argument("--server", default=str(REPO / ".venv" / "bin" / "taskjournal"),
                   help="taskjournal executable, started as '<server> dev'")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432",
                   help="PostgreSQL server (without database name)")
    p.add_argument("--startup-timeout", type=float, default=60.0, help="seconds to wait for ping")
    p.add_argument("--no-pipeline", action="store_true", help="skip the pipeline phase (RabbitMQ)")
    p.add_argument("--no-artifacts", action="store_true", help="skip the artifact phase")
    p.add_argument("--artifact-workers", type=int, default=8, help="concurrent workers creating artifacts")
    p.add_argument("--artifacts-per-worker", type=int, default=50, help="artifacts each worker creates")
    p.add_argument("--no-objects", action="store_true", help="skip the object bytes phase (bench/objects.py)")
    p.add_argument("--object-mb", type=int, default=100, help="object size of the object bytes phase (default 100)")
    p.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/",
                   help="RabbitMQ for the pipeline phase")
    p.add_argument("--pipeline-tasks", type=int, default=2000, help="tasks completed in pipeline phase 1")
    p.add_argument("--pipeline-pairs", type=int, default=500, help="task pairs in pipeline phase 2")
    p.add_argument("--pipeline-rate", type=float, default=200.0, help="reportCompleted calls per second")
    p.add_argument("--setups", default=",".join(SETUPS),
                   help=f"comma-separated servers to measure with the yardstick and wrk (default: {','.join(SETUPS)})")
    p.add_argument("--gateways", type=int, default=0,
                   help="TASKJOURNAL_GATEWAY_PROCESSES of dev and --scale api-gateway=N of stack "
                        "(default: dev's, cores - 1, at least 1)")
    p.add_argument("--no-history", action="store_true", help="do not add this run to bench/results/")
    args = p.parse_args(argv)
    args.setups = [name for name in args.setups.split(",") if name]
    unknown = [name for name in args.setups if name not in SETUPS]
    if unknown:
        p.error(f"unknown setup(s) {', '.join(unknown)}; choose among {', '.join(SETUPS)}")
    args.gateways = args.gateways or max(1, len(os.sched_getaffinity(0)) - 1)  # dev's default
    if args.quick:
        args.tasks, args.pipeline_tasks, args.pipeline_pairs = 500, 1000, 250
        args.artifacts_per_worker = 10
    return args


# ------------------------------------------------------------------ machine

def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or None


def git_commit():
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return out.stdout.strip() or None


def machine_info(pg_version):
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "postgresql": pg_version,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git_commit": git_commit(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),  # other work on the machine skews every figure
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


# ------------------------------------------------------------------ database

def reset_database(pg_url, name=DB_NAME):
    """Drop and recreate a bench database; return the server's version string."""
    with psycopg.connect(f"{pg_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name}")
        conn.execute(f"CREATE DATABASE {name}")
        return conn.execute("SHOW server_version").fetchone()[0]


# ------------------------------------------------------------------ server

def free_port(count=8):
    """The first of `count` free consecutive ports below the ephemeral range
    (`stack` gives each child the next port; see tests/support/server.py)."""
    return free_ports(count)


def start_server(args, port, token, data_dir, log_file, db_name=DB_NAME, extra_env=None, command="dev", extra_args=()):
    database = {"TASKJOURNAL_DATABASE_URL": f"{args.pg_url}/{db_name}"} if db_name else {}  # None: SQLite
    env = dict(os.environ,
               **database,
               TASKJOURNAL_PORT=str(port),
               TASKJOURNAL_DATA_DIR=data_dir,
               TASKJOURNAL_ROOT_CLIENT_ID=CLIENT_ID,
               TASKJOURNAL_ROOT_ACCESS_TOKEN=token,
               **(extra_env or {}))
    # own session: a Ctrl-C in the terminal reaches us, and we stop the server in order
    return subprocess.Popen([args.server, command, *extra_args], env=env, stdin=subprocess.DEVNULL,
                            stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(proc, root_url, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{root_url}/api/queue/v1/ping", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def stop_server(proc):
    """SIGINT, then SIGTERM, then SIGKILL, to the server's own process group."""
    for sig, wait in ((signal.SIGINT, 15), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            print(f"server did not stop after {sig.name}", file=sys.stderr)


def log_tail(path, lines=30):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


class ServerDidNotStart(Exception):
    pass


@contextlib.contextmanager
def running_server(args, db_name, extra_env, log_name, command="dev", extra_args=()):
    """A fresh server on db_name: yields (process, root URL, token, log path); always
    stopped, its log copied to bench/results/<log_name>."""
    port, token = free_port(), secrets.token_urlsafe(32)
    root_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="taskjournal-bench-") as data_dir:
        log_path = Path(data_dir) / "server.log"
        with open(log_path, "w") as log_file:
            proc = start_server(args, port, token, data_dir, log_file, db_name, extra_env, command, extra_args)
        try:
            if not wait_ready(proc, root_url, args.startup_timeout):
                print(f"server failed to start (exit code {proc.poll()}); last lines of its log:\n"
                      f"{log_tail(log_path)}", file=sys.stderr)
                raise ServerDidNotStart()
            print(f"server ready at {root_url} (pid {proc.pid}, log bench/results/{log_name})", file=sys.stderr)
            time.sleep(2)  # the other gateways of the port start too
            yield proc, root_url, token, log_path
        finally:
            stop_server(proc)
            RESULTS.mkdir(parents=True, exist_ok=True)
            shutil.copy(log_path, RESULTS / log_name)


# ------------------------------------------------------------------ queue_bench

PHASE_END = re.compile(r"\] (create|claim\+complete|e2e|status): ")


def run_queue_bench(args, env, server_pid, lag=None, on_phase=None):
    """Run the yardstick; echo its progress; return (summary, exit code, server CPU per phase).
    `lag`: a LagSampler told which phase runs; `on_phase(name or None)`: called as each phase starts
    (None after the last)."""
    cmd = [sys.executable, args.queue_bench, "--tasks", str(args.tasks),
           "--concurrency", str(args.concurrency), "--workers", str(args.workers), "--label", "taskjournal"]
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    cpu, last = {}, cpu_sample(server_pid)
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.PIPE, text=True)
        try:
            for line in proc.stderr:
                sys.stderr.write(line)
                sys.stderr.flush()
                if " run id " in line:  # the create phase starts now
                    last = cpu_sample(server_pid)
                    if lag:
                        lag.phase = PHASES[0]
                    if on_phase:
                        on_phase(PHASES[0])
                match = PHASE_END.search(line)
                if match:
                    now = cpu_sample(server_pid)
                    ended = match.group(1).replace("+complete", "")
                    cpu[ended] = cpu_between(last, now)
                    last = now
                    following = PHASES[PHASES.index(ended) + 1] if ended != PHASES[-1] else None
                    if lag:
                        lag.phase = following
                    if on_phase:
                        on_phase(following)
            code = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: do not leave the load running
                proc.terminate()
                proc.wait()
        out.seek(0)
        lines = out.read().strip().splitlines()
    try:
        summary = json.loads(lines[-1])
    except (IndexError, ValueError):
        summary = None
    return summary, code, cpu


# ------------------------------------------------------------------ wrk

def ensure_wrk():
    if shutil.which("wrk"):
        return True
    print("wrk not found; trying 'apt-get install -y wrk' once", file=sys.stderr)
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True,
                       stdout=subprocess.DEVNULL, timeout=300)
    except (OSError, subprocess.SubprocessError) as err:
        print(f"could not install wrk ({err}); skipping the wrk measurement", file=sys.stderr)
        return False
    return shutil.which("wrk") is not None


def one_task_status_url(root_url, token):
    """Create one task and return a bewit-signed URL of its status."""
    queue = taskcluster.Queue({"rootUrl": root_url,
                               "credentials": {"clientId": CLIENT_ID, "accessToken": token}})
    task_id = taskcluster.slugId()
    queue.createTask(task_id, {
        "taskQueueId": "qbench/wrk",
        "schedulerId": "qbench",
        "created": taskcluster.stringDate(taskcluster.fromNow("0 seconds")),
        "deadline": taskcluster.stringDate(taskcluster.fromNow("2 hours")),
        "expires": taskcluster.stringDate(taskcluster.fromNow("2 days")),
        "payload": {},
        "metadata": {"name": "wrk target", "description": "status read by wrk",
                     "owner": "bench@example.com", "source": "http://127.0.0.1/bench"},
    })
    return queue.buildSignedUrl("status", task_id, expiration=3600)


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def to_ms(text):
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text).groups()
    return round(float(number) * UNITS[unit], 3)


def parse_wrk(text):
    def find(pattern):
        match = re.search(pattern, text, re.MULTILINE)
        return match.group(1) if match else None

    socket_errors = find(r"Socket errors: (.*)$")
    return {
        "requests_per_s": float(find(r"^Requests/sec:\s+([\d.]+)")),
        "requests": int(find(r"^\s+(\d+) requests in")),
        "latency_mean_ms": to_ms(find(r"^\s+Latency\s+(\S+)")),
        "latency_p50_ms": to_ms(find(r"^\s+50%\s+(\S+)")),
        "latency_p99_ms": to_ms(find(r"^\s+99%\s+(\S+)")),
        "non_2xx": int(find(r"Non-2xx or 3xx responses: (\d+)") or 0),
        "socket_errors": socket_errors,
    }


def run_wrk(args, root_url, token, server_pid, url=None, what="status", lag=None):
    """wrk on a signed URL: by default a task's status; `url` another (e.g. getLatestArtifact)."""
    if not ensure_wrk():
        return {"skipped": "wrk is not installed"}
    if url is None:
        try:
            url = one_task_status_url(root_url, token)
            with urllib.request.urlopen(url, timeout=10) as resp:  # check the signed URL is accepted
                resp.read()
        except (taskcluster.exceptions.TaskclusterFailure, OSError) as err:
            return {"skipped": f"could not prepare a signed status URL: {type(err).__name__}: {str(err)[:200]}"}
    cmd = ["wrk", "-t2", "-c32", f"-d{args.wrk_duration}", "--latency", url]
    print("$ wrk -t2 -c32 -d%s --latency <signed %s URL>" % (args.wrk_duration, what), file=sys.stderr, flush=True)
    before = cpu_sample(server_pid)
    if lag:
        lag.phase = "wrk"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    cpu = cpu_between(before, cpu_sample(server_pid))
    if lag:
        lag.phase = None
    if out.returncode != 0:
        return {"skipped": f"wrk failed: {out.stderr.strip()[:300]}"}
    result = parse_wrk(out.stdout)
    result.update({"command": "wrk -t2 -c32 -d%s --latency <bewit-signed %s URL>" % (args.wrk_duration, what),
                   "server_cpu": cpu, "raw": out.stdout})
    return result


# ------------------------------------------------------------------ results

def history_name(result):
    """bench/results/<UTC time>-<commit>.json: one file per run, sorted by time."""
    stamp = result["machine"]["date_utc"].replace("-", "").replace(":", "").replace("+0000", "Z")
    return f"{stamp}-{result['machine']['git_commit'] or 'unknown'}.json"


def write_results(result, args):
    """latest.md always; unless --no-history the run's JSON beside the earlier
    ones and the README's table regenerated from it."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.md").write_text(report.markdown(result))
    if args.no_history:
        print(f"\nwrote {RESULTS / 'latest.md'} (--no-history: the run is not kept)")
        return
    path = RESULTS / history_name(result)
    path.write_text(json.dumps(result, indent=2) + "\n")
    report.write_readme()
    print(f"\nwrote {path} and {RESULTS / 'latest.md'}")


# ------------------------------------------------------------------ main

def bench(args, root_url, token, server_pid, log_path):
    """The yardstick and wrk against one server; returns (exit code, figures or None)."""
    env = dict(os.environ, TASKCLUSTER_ROOT_URL=root_url,
               TASKCLUSTER_CLIENT_ID=CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN=token)
    lag = LagSampler(ops_urls(root_url, log_path), tries_per_port=3 * args.gateways)
    lag.start()
    try:
        summary, code, cpu = run_queue_bench(args, env, server_pid, lag)
        if summary is None:
            print(f"queue_bench exited {code} without a JSON summary", file=sys.stderr)
            return 1, None
        setup = {"queue_bench": summary, "server_cpu_by_phase": cpu, "queue_bench_exit_code": code}
        setup["wrk"] = {"skipped": "--no-wrk"} if args.no_wrk else run_wrk(args, root_url, token, server_pid,
                                                                            lag=lag)
    finally:
        setup_lag = lag.stop()
    setup["loop_lag_by_phase"] = setup_lag
    return code, setup


def bench_setup(args, name):
    """Start the server of one setup on its own fresh database and measure it."""
    command, extra_args, broker = SETUPS[name]
    db_name = DB_NAME if name == "dev" else f"{DB_NAME}_{name.replace('-', '_')}"
    reset_database(args.pg_url, db_name)
    env = {"TASKJOURNAL_GATEWAY_PROCESSES": str(args.gateways)}
    if broker:
        env["TASKJOURNAL_AMQP_URL"] = args.amqp_url
    if command == "stack":
        extra_args = (*extra_args, "--scale", f"api-gateway={args.gateways}")
    print(f"\n=== {name}: taskjournal {command} {' '.join(extra_args)} "
          f"({'RabbitMQ' if broker else 'no broker'})", file=sys.stderr, flush=True)
    with running_server(args, db_name, env, f"server-{name}.log", command, extra_args) as (proc, root_url, token,
                                                                                           log_path):
        code, setup = bench(args, root_url, token, proc.pid, log_path)
        if setup is not None and name == args.setups[0] and not args.no_artifacts:
            setup["artifacts"] = bench_artifacts(args, root_url, token, proc.pid)
    if setup is not None:
        setup["server"] = {"command": command, "args": list(extra_args), "env": env}
    return code, setup


def bench_artifacts(args, root_url, token, server_pid):
    """Artifacts created (and uploaded, with the object service) per second,
    then wrk on a signed getLatestArtifact URL (redirects per second)."""
    root = {"clientId": CLIENT_ID, "accessToken": token}
    try:
        result = {"created": artifacts.created_per_second(root_url, root, args.artifact_workers,
                                                          args.artifacts_per_worker)}
        url = artifacts.latest_artifact_url(root_url, root)
    except Exception as err:  # keep the other figures
        return {"error": f"{type(err).__name__}: {str(err)[:300]}"}
    result["wrk"] = {"skipped": "--no-wrk"} if args.no_wrk else run_wrk(args, root_url, token, server_pid, url,
                                                                         "getLatestArtifact")
    return result


def bench_objects(args):
    """100 MB up and down through the file back end, beside cat on the same disk
    (its own `taskjournal dev` on SQLite: the bytes, not the database, are measured)."""
    with tempfile.TemporaryDirectory(prefix="taskjournal-objects-") as work:
        port, token = free_port(), secrets.token_urlsafe(32)
        root_url = f"http://127.0.0.1:{port}"
        env = dict(os.environ, TASKJOURNAL_PORT=str(port), TASKJOURNAL_DATA_DIR=f"{work}/data",
                   TASKJOURNAL_ROOT_CLIENT_ID=CLIENT_ID, TASKJOURNAL_ROOT_ACCESS_TOKEN=token, TASKJOURNAL_ROOT_URL=root_url)
        env.pop("TASKJOURNAL_DATABASE_URL", None)
        proc = subprocess.Popen([args.server, "dev"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            if not wait_ready(proc, root_url, args.startup_timeout):
                return {"error": "server did not start"}
            return objects.run(root_url, CLIENT_ID, token, Path(work), proc.pid, args.object_mb)
        finally:
            stop_server(proc)


def bench_pipeline(args):
    """The pipeline phase on a second server (RabbitMQ, short claims) and a
    fresh database; the server is stopped before the relay and replay phases."""
    reset_database(args.pg_url, PIPELINE_DB_NAME)
    env = dict(PIPELINE_SERVER_ENV, TASKJOURNAL_AMQP_URL=args.amqp_url)
    # the production topology: every service its own process (`taskjournal stack`)
    with running_server(args, PIPELINE_DB_NAME, env, "server-pipeline.log", "stack") as (proc, root_url, token, _):
        cpu = {}
        before = cpu_sample(proc.pid)

        def stop():  # after the live phases: the relay and replay phases read a log nobody writes
            cpu.update(cpu_between(before, cpu_sample(proc.pid)))
            stop_server(proc)

        try:
            result = pipeline.run(root_url=root_url, client_id=CLIENT_ID, access_token=token,
                                  amqp_url=args.amqp_url, db_url=f"{args.pg_url}/{PIPELINE_DB_NAME}",
                                  tasks=args.pipeline_tasks, pairs=args.pipeline_pairs, rate=args.pipeline_rate,
                                  before_log_phases=stop)
        except Exception as err:  # e.g. RabbitMQ unreachable: keep the yardstick's figures
            print(f"pipeline phase failed: {type(err).__name__}: {err}", file=sys.stderr)
            return {"errors": {"total": 1, "samples": [f"{type(err).__name__}: {str(err)[:300]}"]}}
    result["server_cpu"] = cpu
    result["server_env"] = env
    return result


def main(argv):
    args = parse_args(argv)
    if not Path(args.queue_bench).is_file():
        sys.exit(f"queue_bench.py not found at {args.queue_bench} (use --queue-bench PATH)")
    if not Path(args.server).is_file():
        sys.exit(f"taskjournal executable not found at {args.server} (install the project, or use --server)")
    pg_version = reset_database(args.pg_url)
    result = {"machine": machine_info(pg_version), "gateways": args.gateways, "setups": {}}
    code = 0
    try:
        for name in args.setups:
            setup_code, setup = bench_setup(args, name)
            code = code or setup_code
            if setup is None:
                return code or 1
            result["setups"][name] = setup
            if "artifacts" in setup:
                result["artifacts"] = setup.pop("artifacts")
            report.print_setup(name, setup)
        if not args.no_objects:
            result["objects"] = bench_objects(args)
        if not args.no_pipeline:
            result["pipeline"] = bench_pipeline(args)
            print(f"\n{report.pipeline_line(result)}")
            pipeline.print_table(result["pipeline"])
            code = code or (1 if result["pipeline"]["errors"]["total"] else 0)
        write_results(result, args)
        return code
    except ServerDidNotStart:
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
