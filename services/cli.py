"""The `taskjournal` command.

  dev                 every service on one port: with PostgreSQL, TASKJOURNAL_GATEWAY_PROCESSES gateway
                      processes and one for the rest (ADR 0016); with SQLite, one process
  run <service>...    services in one process: api-gateway, scheduler, claim-resolver, dependency-resolver,
                      relay, artifact-service
  stack               every service as its own OS process (PostgreSQL and RabbitMQ required)
  replay <name>|--all drop and rebuild read models from the event log
  migrate             create or upgrade the database schema and record its version (before the services)
  dead-letters        list (or --requeue) internal events a service kept failing on (docs/operations.md)
  history <taskId>    a task's history; also status --as-of, export, audit (services/history_cli.py)"""

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
from collections.abc import Coroutine
from typing import Any
from dataclasses import dataclass, field, replace

from taskjournal.shared import heap, logs
from taskjournal.shared.config import Settings, SettingError, private_dir, without_password
from taskjournal.shared.preflight import check_reachable
from taskjournal.shared.store import describe as describe_store
from taskjournal.shared.store.replay import PROJECTIONS, rebuild
from taskjournal.shared.version import version_line

from . import bootstrap, history_cli
from .bootstrap import ROLES

log = logging.getLogger("taskjournal")
ROOT_CREDENTIALS = "root-credentials.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="taskjournal", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=version_line())
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run every service in one process")
    stack = sub.add_parser("stack", help="run every service as its own process")
    stack.add_argument("--scale", action="append", default=[], metavar="SERVICE=N",
                       help="run N processes of a service (gateways share the port), e.g. api-gateway=2")
    run = sub.add_parser("run", help="run one service")
    run.add_argument("services", nargs="+", choices=ROLES, metavar="service", help=", ".join(ROLES))
    run.add_argument("--shared-port", action="store_true",
                     help="the port may already be taken by this stack's other gateways (SO_REUSEPORT)")
    run.add_argument("--no-sweeps", action="store_true", help=argparse.SUPPRESS)  # dev's gateways: another child sweeps
    replay = sub.add_parser("replay", help="drop and rebuild read models from the event log")
    replay.add_argument("projections", nargs="*", metavar="projection", help=f"any of: {', '.join(PROJECTIONS)}")
    replay.add_argument("--all", action="store_true", help="rebuild every projection")
    sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    dead = sub.add_parser("dead-letters", help="list, or --requeue, the dependency-resolver's dead letters")
    dead.add_argument("--requeue", action="store_true", help="move them back to the service queue")
    dead.add_argument("--limit", type=int, default=100, help="list at most this many")
    history_cli.add_commands(sub)
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env(dev=args.command == "dev")
        logs.configure(settings.log_format, settings.log_level,
                       role="+".join(args.services) if args.command == "run" else args.command)
        if args.command == "replay":
            check_reachable(settings, (), port_must_be_free=False)
            return run_replay(settings, list(PROJECTIONS) if args.all else args.projections)
        if args.command == "migrate":
            check_reachable(settings, (), port_must_be_free=False)
            return run_migrate(settings)
        if args.command in history_cli.COMMANDS:
            check_reachable(settings, (), port_must_be_free=False)
            return history_cli.run(args, settings)
        if args.command == "dead-letters":
            return run_dead_letters(settings, args.requeue, args.limit)
        if args.command == "stack":
            check_reachable(with_root_credentials(settings), ROLES)
            return run_stack(settings, dict(_replicas(item) for item in args.scale))
        if args.command == "dev":
            settings = with_root_credentials(settings)
            check_reachable(settings, ROLES)
            if settings.database_url:  # SQLite has one writer and no cross-process wake-ups: one process
                return run_dev_processes(settings, dev_gateway_processes(settings))
            return run_on_event_loop(serve(settings, ROLES, announce=True))
        check_reachable(settings, args.services, port_must_be_free=not args.shared_port)
        return run_on_event_loop(serve(settings, tuple(args.services), announce=False, sweeps=not args.no_sweeps))
    except SettingError as err:  # a setting that cannot work: one line, no traceback
        print(f"taskjournal: {err}", file=sys.stderr, flush=True)
        return 2


def run_on_event_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run a service on uvloop (libuv: less overhead per I/O event than asyncio's own loop)."""
    try:
        import uvloop
    except ImportError:  # a platform without it: asyncio's own loop
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


async def serve(settings: Settings, roles, announce: bool, sweeps: bool = True) -> int:
    process = bootstrap.bootstrap(settings, sweeps=sweeps)
    await bootstrap.start(process, roles)
    heap.settle()  # started: collections never walk what start-up made again, and come less often
    describe(settings, roles, announce)
    await wait_for_stop_signal()
    log.info("draining, then shutting down", extra=logs.fields(services=list(roles)))
    started = time.monotonic()
    await bootstrap.stop(process)
    log.info("stopped", extra=logs.fields(services=list(roles), seconds=round(time.monotonic() - started, 3)))
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
    """One process of the stack (or of dev), and when it was last restarted."""
    roles: tuple[str, ...]
    port: int
    env: dict[str, str]
    options: list[str]  # extra `taskjournal run` options
    process: subprocess.Popen = field(init=False)
    restarts: deque = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.start()

    @property
    def role(self) -> str:
        return "+".join(self.roles)

    def start(self, note: str = "") -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "taskjournal.services.cli", "run", *self.roles, *self.options],
            env=self.env, preexec_fn=_die_with_parent)
        print(f"started {self.role} (pid {self.process.pid}, port {self.port}{note})", file=sys.stderr, flush=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies, even by
    SIGKILL, so no orphan keeps the port (Linux; elsewhere nothing)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# `taskjournal dev` with PostgreSQL (ADR 0016): the gateways share the port and
# the store's wake-ups; one more process runs everything that is not a request
# (the relay's publishing, the resolvers, the sweeps) off their event loops.
DEV_GATEWAY_ROLES = ("api-gateway", "artifact-service")  # the artifact routes join each gateway's app
DEV_BACK_OFFICE_ROLES = ("dependency-resolver", "scheduler", "claim-resolver", "relay", "artifact-service")


def dev_gateway_processes(settings: Settings) -> int:
    """TASKJOURNAL_GATEWAY_PROCESSES, or one per core this process may use but
    one, left to the back office and PostgreSQL: on 2 cores one gateway wrote
    faster than two (group commit shares a transaction within a process only)."""
    return settings.gateway_processes or max(1, len(os.sched_getaffinity(0)) - 1)


def run_dev_processes(settings: Settings, gateways: int) -> int:
    """`taskjournal dev` over PostgreSQL: `gateways` api-gateway processes on the
    port, and a back-office process (relay, resolvers, scheduler, the
    artifact-service's expiry) whose ops routes take a free port of their own."""
    common = {**os.environ, "TASKJOURNAL_HOST": settings.host, "TASKJOURNAL_ROOT_URL": settings.public_root_url,
              "TASKJOURNAL_ROOT_CLIENT_ID": settings.root_client_id or "",
              "TASKJOURNAL_ROOT_ACCESS_TOKEN": settings.root_access_token or ""}
    back_port = _free_port(settings.host)
    children = [_Child(DEV_BACK_OFFICE_ROLES, back_port, {**common, "TASKJOURNAL_PORT": str(back_port)}, [])]
    gateway_env = {**common, "TASKJOURNAL_PORT": str(settings.port)}
    children += [_Child(DEV_GATEWAY_ROLES, settings.port, gateway_env, ["--shared-port", "--no-sweeps"])
                 for _ in range(gateways)]
    describe(settings, ROLES, announce=True,
             processes=f"{gateways} api-gateway, 1 back office (ops routes on port {back_port})")
    warn_if_restarts_reset_connections(gateways, settings.port)
    return _supervise(children)


def _free_port(host: str) -> int:
    import socket

    with socket.socket() as probe:
        probe.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return probe.getsockname()[1]


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
    artifacts = _artifact_service_env(settings, settings.port + max(0, roles.index("artifact-service") - gateways + 1))
    for index, role in enumerate(roles):
        port = settings.port + max(0, index - gateways + 1)
        env = {**os.environ, "TASKJOURNAL_PORT": str(port),
               "TASKJOURNAL_ROOT_CLIENT_ID": settings.root_client_id or "",
               "TASKJOURNAL_ROOT_ACCESS_TOKEN": settings.root_access_token or "",
               "TASKJOURNAL_ROOT_URL": settings.public_root_url, **artifacts}
        shared = ["--shared-port"] if role == "api-gateway" and gateways > 1 else []  # main() checked it is free
        children.append(_Child((role,), port, env, shared))
    describe(settings, ROLES, announce=True, processes=f"{len(children)}, one per service ({gateways} api-gateway)")
    warn_if_restarts_reset_connections(gateways, settings.port)
    return _supervise(children)


MIGRATE_REQUESTS = "/proc/sys/net/ipv4/tcp_migrate_req"


def warn_if_restarts_reset_connections(gateways: int, port: int, setting: str = MIGRATE_REQUESTS) -> bool:
    """Gateways share their port (SO_REUSEPORT). Unless Linux moves the
    connections waiting in a closing listener's queue to the others
    (net.ipv4.tcp_migrate_req, Linux 5.14), a gateway that drains for a
    restart resets them: say so once at start. True when it warned."""
    try:
        with open(setting) as file:
            off = gateways > 1 and file.read().strip() == "0"
    except OSError:  # another system, or an older kernel: nothing to say
        return False
    if off:
        log.warning(f"{gateways} gateways share port {port} and net.ipv4.tcp_migrate_req is 0: a gateway that "
                    "restarts resets the connections waiting to be accepted by it; "
                    "`sysctl -w net.ipv4.tcp_migrate_req=1` hands them to the others (docs/operations.md)")
    return off


def _supervise(children: list[_Child]) -> int:
    """Restart children that die (within limits) until SIGINT or SIGTERM; then stop them all."""
    stopping: list[bool] = []
    for sig in (signal.SIGINT, signal.SIGTERM):  # set explicitly: a background shell may ignore SIGINT
        signal.signal(sig, lambda *_: stopping.append(True))
    while not stopping:
        for child in children:
            if child.process.poll() is not None and not stopping and not _restart(child):
                _stop_all(children)
                return 1
        time.sleep(0.2)
    return _stop_all(children)


def _artifact_service_env(settings: Settings, port: int) -> dict[str, str]:
    """The artifact-service listens on its own port: clients PUT and GET bytes
    there (ARTIFACT_URL), the gateways forward object-service calls to it."""
    from urllib.parse import urlsplit, urlunsplit

    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    own = f"http://{host}:{port}"
    root = urlsplit(settings.public_root_url)
    public = urlunsplit(root._replace(netloc=f"{root.hostname}:{port}"))  # the root URL's host, our port
    return {"TASKJOURNAL_ARTIFACT_URL": settings.artifact_url or public,
            "TASKJOURNAL_ARTIFACT_SERVICE_URL": settings.artifact_service_url or own}


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
    journal = bootstrap.journal_for(settings)
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


def run_migrate(settings: Settings) -> int:
    from taskjournal.shared.store import migrate

    before, now = migrate(settings.database_url, str(settings.data_dir))
    print(f"schema of {describe_store(settings.database_url, settings.data_dir)}: version {now} "
          f"(was {'none' if before is None else before})", flush=True)
    return 0


def run_dead_letters(settings: Settings, requeue: bool, limit: int) -> int:
    """One JSON line per parked event, or move them all back to the service queue."""
    if not settings.amqp_url:
        print("dead-letters needs TASKJOURNAL_AMQP_URL", file=sys.stderr)
        return 2
    from taskjournal.services.dependency_resolver.resolver import ROUTING_KEYS
    from taskjournal.shared.bus.deadletter import list_dead_letters, requeue_dead_letters
    from taskjournal.shared.bus.queues import service_queue

    queue = service_queue(settings.instance, "dependency-resolver", ROUTING_KEYS)
    if requeue:
        moved = asyncio.run(requeue_dead_letters(settings.amqp_url, queue))
        print(f"moved {moved} events from {queue.dead_letter_name} back to {queue.name}", file=sys.stderr)
        return 0
    for letter in asyncio.run(list_dead_letters(settings.amqp_url, queue, limit)):
        print(json.dumps(letter))
    return 0


def with_root_credentials(settings: Settings) -> Settings:
    """Generate root credentials once and keep them in the data dir, unless configured.
    The file is private (0600) from its first byte, and written whole before it
    appears, so a second process starting at the same time reads it complete."""
    if settings.root_client_id and settings.root_access_token:
        return settings
    path = private_dir(settings.data_dir) / ROOT_CREDENTIALS
    if not path.exists():
        _write_private_once(path, json.dumps({"clientId": "root", "accessToken": secrets.token_urlsafe(32)}))
    saved = json.loads(path.read_text())
    return replace(settings, root_client_id=saved["clientId"], root_access_token=saved["accessToken"])


def _write_private_once(path, text: str) -> None:
    """Write a 0600 file unless it exists (then the first writer wins)."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)  # fails if another process got there first
        except FileExistsError:
            pass
    finally:
        os.unlink(temporary)


def describe(settings: Settings, roles, announce: bool, processes: str = "one") -> None:
    broker = settings.amqp_url or "in-process bus"
    log.info("taskjournal started", extra=logs.fields(
        services=list(roles), rootUrl=settings.public_root_url, listen=f"{settings.host}:{settings.port}",
        store=describe_store(settings.database_url, settings.data_dir), broker=_redacted(broker)))
    if announce:
        # a token we generated is news to the user; one they configured stays off the terminal and logs
        token = settings.root_access_token if _generated_here(settings) else '"$TASKJOURNAL_ROOT_ACCESS_TOKEN"'
        print(f"taskjournal is running ({', '.join(roles)})\n"
              f"  listening: {settings.host}:{settings.port}\n"
              f"  root URL:  {settings.public_root_url}   (API: {settings.public_root_url}/api/queue/v1/)\n"
              f"  store:     {describe_store(settings.database_url, settings.data_dir)}\n"
              f"  broker:    {_redacted(broker)}\n"
              f"  processes: {processes}\n"
              f"  root credentials (scope *):\n"
              f"    export TASKCLUSTER_ROOT_URL={settings.public_root_url}\n"
              f"    export TASKCLUSTER_CLIENT_ID={settings.root_client_id}\n"
              f"    export TASKCLUSTER_ACCESS_TOKEN={token}\n"
              f"  stop with Ctrl-C", file=sys.stderr, flush=True)


def _generated_here(settings: Settings) -> bool:
    """Whether the root credentials are the ones with_root_credentials generated."""
    try:
        saved = json.loads((settings.data_dir / ROOT_CREDENTIALS).read_text())
    except (OSError, ValueError):
        return False
    return (saved.get("clientId"), saved.get("accessToken")) == (settings.root_client_id, settings.root_access_token)


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
