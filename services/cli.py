"""The `taskjournal` command: `dev` runs everything in one process; `run
<service>` runs one service."""

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from aiohttp import web

from shared import logs
from shared.config import Settings
from shared.journal import open_journal
from shared.store.replay import PROJECTIONS, rebuild

log = logging.getLogger("taskjournal")
SERVICES = ("api-gateway", "claim-resolver", "scheduler")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="taskjournal", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("dev", help="run every service in one process (SQLite unless TASKJOURNAL_DATABASE_URL is set)")
    run = sub.add_parser("run", help="run one service")
    run.add_argument("service", choices=SERVICES)
    replay = sub.add_parser("replay", help="drop and rebuild read models from the event log")
    replay.add_argument("projections", nargs="*", choices=[[], *PROJECTIONS], metavar="projection",
                        help=f"one or more of: {', '.join(PROJECTIONS)}")
    replay.add_argument("--all", action="store_true", help="rebuild every projection")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    logs.configure(settings.log_format)
    if args.command == "replay":
        return run_replay(settings, list(PROJECTIONS) if args.all else args.projections)
    if args.command == "dev":
        settings = with_root_credentials(settings)
        return asyncio.run(serve(settings, SERVICES, announce=True))
    return asyncio.run(serve(settings, (args.service,), announce=False))


def run_replay(settings: Settings, names: list[str]) -> int:
    if not names:
        print("name a projection or use --all", file=sys.stderr)
        return 2
    journal = open_journal(settings.database_url, str(settings.data_dir))
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        print(f"\rreplay [{'#' * filled}{'.' * (width - filled)}] {done}/{total} events", end="", file=sys.stderr)

    position = rebuild(journal, names, progress)
    seconds = time.monotonic() - started
    rate = position / seconds if seconds else 0
    print(f"\nreplayed {position} events into {', '.join(names)} in {seconds:.1f}s ({rate:.0f} events/s)",
          file=sys.stderr)
    journal.close()
    return 0


def with_root_credentials(settings: Settings) -> Settings:
    """dev: generate root credentials once and keep them in the data dir."""
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


async def serve(settings: Settings, services: tuple, announce: bool) -> int:
    from services.api_gateway.app import Services, build_auth, create_app
    from services.claim_resolver import resolver as claim_resolver
    from services.scheduler import deadlines

    journal = open_journal(settings.database_url, str(settings.data_dir), pool_size=settings.executor_threads)
    executor = ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="store")
    background = []
    if "claim-resolver" in services:
        background.append(asyncio.create_task(claim_resolver.run(journal, executor, settings.resolver_interval)))
    if "scheduler" in services:
        background.append(asyncio.create_task(deadlines.run(journal, executor, settings.resolver_interval)))
    runner = None
    if "api-gateway" in services:
        authenticator, issuer = build_auth(settings)
        app = create_app(Services(settings, journal, authenticator, issuer, executor))
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port, reuse_port=True).start()
    describe(settings, services, announce)
    await wait_for_stop_signal()
    log.info("shutting down")
    for task in background:
        task.cancel()
    if runner:
        await runner.cleanup()
    executor.shutdown(wait=True)
    journal.close()
    return 0


def describe(settings: Settings, services: tuple, announce: bool) -> None:
    broker = settings.amqp_url or "in-process bus"
    log.info("taskjournal started", extra=logs.fields(
        services=list(services), rootUrl=settings.public_root_url, listen=f"{settings.host}:{settings.port}",
        store=settings.store_description, broker=broker))
    if announce:
        print(f"taskjournal dev is running\n"
              f"  root URL:  {settings.public_root_url}   (API: {settings.public_root_url}/api/queue/v1/)\n"
              f"  store:     {settings.store_description}\n"
              f"  broker:    {broker}\n"
              f"  root credentials (scope *):\n"
              f"    export TASKCLUSTER_ROOT_URL={settings.public_root_url}\n"
              f"    export TASKCLUSTER_CLIENT_ID={settings.root_client_id}\n"
              f"    export TASKCLUSTER_ACCESS_TOKEN={settings.root_access_token}\n"
              f"  stop with Ctrl-C", file=sys.stderr, flush=True)


async def wait_for_stop_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    sys.exit(main())
