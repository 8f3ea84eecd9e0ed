#!/usr/bin/env python3
"""Profile `taskjournal dev` (+ RabbitMQ) under the yardstick with py-spy
(`make bench` installs it, the `bench` extra): one speedscope file per
process (a gateway, the back office) in bench/profiles/, covering the whole
queue_bench run (create, claim+complete, e2e, status) or one phase of it
(`--phase claim`: the yardstick stops after that phase), for
https://www.speedscope.app or `py-spy`'s own viewer; `bench/hotspots.py`
prints a file's heaviest functions.

  .venv/bin/python bench/profile.py [--tasks 2000] [--gateways 1] [--no-amqp] [--phase P] [--name NAME]
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import run
from procs import label, read_proc_stats

PROFILES = run.REPO / "bench" / "profiles"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--gateways", type=int, default=1, help="gateway processes (one is profiled)")
    p.add_argument("--no-amqp", action="store_true", help="in-process bus instead of RabbitMQ")
    p.add_argument("--rate", type=int, default=50, help="py-spy samples per second (small files)")
    p.add_argument("--phase", choices=run.PHASES, help="profile this phase only (default: the whole run)")
    p.add_argument("--name", default="dev-amqp", help="file name prefix in bench/profiles/")
    mine = p.parse_args(argv)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args = run.parse_args(["--tasks", str(mine.tasks), "--no-pipeline", "--no-history"])
    db = f"{run.DB_NAME}_profile"
    run.reset_database(args.pg_url, db)
    env = {"TASKJOURNAL_GATEWAY_PROCESSES": str(mine.gateways)}
    if not mine.no_amqp:
        env["TASKJOURNAL_AMQP_URL"] = args.amqp_url
    PROFILES.mkdir(parents=True, exist_ok=True)
    with run.running_server(args, db, env, f"server-profile-{mine.name}.log") as (proc, root_url, token, _):
        targets = {}
        for pid, (ppid, _, _) in read_proc_stats().items():
            if ppid == proc.pid and label(pid, proc.pid) not in targets:
                targets[label(pid, proc.pid)] = pid
        spies: list[subprocess.Popen] = []

        def start_spies():
            spies.extend(subprocess.Popen([py_spy, "record", "--pid", str(pid), "--rate", str(mine.rate),
                                           "--nonblocking", "--gil", "--format", "speedscope",
                                           "--output", str(PROFILES / f"{mine.name}-{name}.json")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for name, pid in targets.items())

        def stop_spies():
            for spy in spies:
                spy.send_signal(2)  # py-spy writes its file on SIGINT
            for spy in spies:
                spy.wait(60)
            spies.clear()

        def on_phase(name):
            if name == mine.phase:
                start_spies()
            elif spies:
                stop_spies()

        bench_env = dict(os.environ, TASKCLUSTER_ROOT_URL=root_url, TASKCLUSTER_CLIENT_ID=run.CLIENT_ID,
                         TASKCLUSTER_ACCESS_TOKEN=token)
        if mine.phase:  # the yardstick stops after the phase profiled
            bench_env["BENCH_PHASES"] = ",".join(run.PHASES[:run.PHASES.index(mine.phase) + 1])
        else:
            start_spies()
            time.sleep(1)
        summary, code, cpu = run.run_queue_bench(args, bench_env, proc.pid, on_phase=on_phase)
        stop_spies()
    for phase, figures in cpu.items():
        print(f"server CPU during {phase}: {figures}")
    for name in targets:
        print(f"bench/profiles/{mine.name}-{name}.json")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
