"""The `taskjournal` command.

  dev                 every service in one process (SQLite unless TASKJOURNAL_DATABASE_URL is set)
  run <service>       one service: api-gateway, scheduler, claim-resolver, dependency-resolver, relay
  stack               every service as its own OS process (PostgreSQL and RabbitMQ required)
  replay <name>|--all drop and rebuild read models from the event log"""

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field, replace

from taskjournal.shared import logs
from taskjournal.shared.config import Settings, without_password
from taskjournal.shared.journal import open_journal
from taskjournal.shared.store.replay import PROJECTIONS, rebuild

from .runtime import ROLES, open_runtime, start_roles, stop_roles

log = logging.getLogger("taskjournal")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="taskjournal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run every service in one process")
    stack = sub.add_parser("stack", help="run every service as its own process")
    stack.add_argument("--scale", action="append", default=[], metavar="SERVICE=N",
                       help="run N processes of a service (gateways share the port), e.g. api-gateway=2")
    run = sub.add_parser("run", help="run one service")
    run.add_argument("service", choices=ROLES)
    replay = sub.add_parser("replay", help="drop and rebuild read models from the event log")
    replay.add_argument("projections", nargs="*", metavar="projection", help=f"any of: {', '.join(PROJECTIONS)}")
    replay.add_argument("--all", action="store_true", help="rebuild every projection")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(settings.log_format)
    if args.command == "replay":
        return run_replay(settings, list(PROJECTIONS) if args.all else args.projections)
    if args.command == "stack":
        return run_stack(settings, dict(_replicas(item) for item in args.scale))
    if args.command == "dev":
        return asyncio.run(serve(with_root_credentials(settings), ROLES, announce=True))
    return asyncio.run(serve(settings, (args.service,), announce=False))


async def serve(settings: Settings, roles, announce: bool) -> int:
    runtime = open_runtime(settings)
    await start_roles(runtime, roles)
    describe(settings, roles, announce)
    await wait_for_stop_signal()
    log.info("shutting down", extra=logs.fields(services=list(roles)))
    await stop_roles(runtime)
    return 0


def _replicas(item: str) -> tuple[str, int]:
    role, _, count = item.partition("=")
    if role not in ROLES or not count.isdigit() or int(count) < 1:
        raise SystemExit(f"--scale wants SERVICE=N with SERVICE one of {', '.join(ROLES)}, not {item!r}")
    return role, int(count)


RESTART_LIMIT = 5  # restarts of one service within RESTART_WINDOW before the stack gives up
RESTART_WINDOW = 60.0


@dataclass
class _Child:
    """One service process of the stack, and when it was last restarted."""
    role: str
    port: int
    env: dict
    process: subprocess.Popen | None = None
    restarts: deque = field(default_factory=deque)

    def start(self, note: str = "") -> None:
        self.process = subprocess.Popen([sys.executable, "-P", "-m", "taskjournal.services.cli", "run", self.role],
                                        env=self.env)
        print(f"started {self.role} (pid {self.process.pid}, port {self.port}{note})", file=sys.stderr, flush=True)


def run_stack(settings: Settings, scale: dict | None = None) -> int:
    """Each role in its own process, the topology Kubernetes runs; Ctrl-C stops all.
    Gateways share one port (SO_REUSEPORT); every other process takes the next port.
    A service that dies is started again, up to RESTART_LIMIT times in RESTART_WINDOW
    seconds; past that the stack stops and exits 1."""
    if not (settings.database_url and settings.amqp_url):
        print("taskjournal stack needs TASKJOURNAL_DATABASE_URL and TASKJOURNAL_AMQP_URL", file=sys.stderr)
        return 2
    settings = with_root_credentials(settings)
    children, scale = [], scale or {}
    roles = [role for role in ROLES for _ in range(scale.get(role, 1))]
    gateways = scale.get("api-gateway", 1)
    for index, role in enumerate(roles):
        port = settings.port + max(0, index - gateways + 1)
        env = {**os.environ, "TASKJOURNAL_PORT": str(port),
               "TASKJOURNAL_ROOT_CLIENT_ID": settings.root_client_id,
               "TASKJOURNAL_ROOT_ACCESS_TOKEN": settings.root_access_token,
               "TASKJOURNAL_ROOT_URL": settings.public_root_url}
        children.append(_Child(role, port, env))
        children[-1].start()
    describe(settings, ROLES, announce=True)
    stopping = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # set explicitly: a background shell may ignore SIGINT
        signal.signal(sig, lambda *_: stopping.append(True))
    while not stopping:
        for child in children:
            if child.process.poll() is not None and not stopping and not _restart(child):
                _stop_all(children)
                return 1
        time.sleep(0.2)
    return _stop_all(children)


def _restart(child: _Child) -> bool:
    """Say how a child died and start it again; False once it died too often."""
    print(f"{child.role} (pid {child.process.pid}) died: {_how_it_ended(child.process.returncode)}",
          file=sys.stderr, flush=True)
    now = time.monotonic()
    while child.restarts and now - child.restarts[0] > RESTART_WINDOW:
        child.restarts.popleft()
    if len(child.restarts) >= RESTART_LIMIT:
        print(f"{child.role} died {RESTART_LIMIT + 1} times within {RESTART_WINDOW:.0f}s; stopping the stack",
              file=sys.stderr, flush=True)
        return False
    child.restarts.append(now)
    child.start(f"; restart {len(child.restarts)} in {RESTART_WINDOW:.0f}s")
    return True


def _how_it_ended(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _stop_all(children) -> int:
    processes = [child.process for child in children]
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
    return 0


def run_replay(settings: Settings, names: list[str]) -> int:
    unknown = [n for n in names if n not in PROJECTIONS]
    if not names or unknown:
        print(f"name projections among {', '.join(PROJECTIONS)}, or use --all", file=sys.stderr)
        return 2
    journal = open_journal(settings.database_url, str(settings.data_dir))
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        filled = 30 * done // total if total else 30
        print(f"\rreplay [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} events", end="", file=sys.stderr)

    position = rebuild(journal, names, progress)
    seconds = time.monotonic() - started
    print(f"\nreplayed {position} events into {', '.join(names)} in {seconds:.2f}s "
          f"({position / max(seconds, 1e-9):.0f} events/s)", file=sys.stderr)
    journal.close()
    return 0


def with_root_credentials(settings: Settings) -> Settings:
    """Generate root credentials once and keep them in the data dir, unless configured."""
    if settings.root_client_id and settings.root_access_token:
        return settings
    path = settings.data_dir / "root-credentials.json"
    if path.exists():
        saved = json.loads(path.read_text())
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        saved = {"clientId": "root", "accessToken": secrets.token_urlsafe(32)}
        path.write_text(json.dumps(saved))
        os.chmod(path, 0o600)
    return replace(settings, root_client_id=saved["clientId"], root_access_token=saved["accessToken"])


def describe(settings: Settings, roles, announce: bool) -> None:
    broker = settings.amqp_url or "in-process bus"
    log.info("taskjournal started", extra=logs.fields(
        services=list(roles), rootUrl=settings.public_root_url, listen=f"{settings.host}:{settings.port}",
        store=settings.store_description, broker=_redacted(broker)))
    if announce:
        print(f"taskjournal is running ({', '.join(roles)})\n"
              f"  root URL:  {settings.public_root_url}   (API: {settings.public_root_url}/api/queue/v1/)\n"
              f"  store:     {settings.store_description}\n"
              f"  broker:    {_redacted(broker)}\n"
              f"  root credentials (scope *):\n"
              f"    export TASKCLUSTER_ROOT_URL={settings.public_root_url}\n"
              f"    export TASKCLUSTER_CLIENT_ID={settings.root_client_id}\n"
              f"    export TASKCLUSTER_ACCESS_TOKEN={settings.root_access_token}\n"
              f"  stop with Ctrl-C", file=sys.stderr, flush=True)


def _redacted(url: str) -> str:
    return without_password(url) if "://" in url else url


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    sys.exit(main())
