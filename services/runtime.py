"""Running services: each role is a coroutine over the shared pieces (the
Journal, a thread pool for blocking store calls, the bus). `taskjournal dev`
runs every role in one process; `taskjournal run <role>` runs one."""

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiohttp import web

from taskjournal.shared.bus import InProcessBus
from taskjournal.shared.config import Settings
from taskjournal.shared.journal import Journal, open_journal

from .ops import add_ops_routes

log = logging.getLogger("taskjournal")
ROLES = ("api-gateway", "scheduler", "claim-resolver", "dependency-resolver", "relay")
CONSUMERS_PER_PROCESS = 4


@dataclass
class Runtime:
    settings: Settings
    journal: Journal
    executor: ThreadPoolExecutor
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    bus: InProcessBus = field(default_factory=InProcessBus)  # used when no AMQP URL is set
    tasks: list = field(default_factory=list)
    closers: list = field(default_factory=list)

    async def blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)


def open_runtime(settings: Settings) -> Runtime:
    journal = open_journal(settings.database_url, str(settings.data_dir), max_connections=settings.executor_threads)
    return Runtime(settings, journal, ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="store"))


async def start_roles(runtime: Runtime, roles) -> None:
    """Start the roles in an order where consumers exist before producers."""
    ordered = [role for role in ("dependency-resolver", "scheduler", "claim-resolver", "relay", "api-gateway")
               if role in roles]
    for role in ordered:
        await STARTERS[role](runtime)
    if "api-gateway" not in roles:
        await _serve_http(runtime, ops_app(runtime))


async def stop_roles(runtime: Runtime) -> None:
    runtime.stop.set()
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    for close in reversed(runtime.closers):
        await close()
    runtime.executor.shutdown(wait=True)
    runtime.journal.close()


# ------------------------------------------------------------------ roles
async def _start_gateway(runtime: Runtime) -> None:
    from taskjournal.services.api_gateway.app import Services, build_auth, create_app

    authenticator, issuer = build_auth(runtime.settings)
    services = Services(runtime.settings, runtime.journal, authenticator, issuer, runtime.executor)
    await _serve_http(runtime, create_app(services))


async def _start_scheduler(runtime: Runtime) -> None:
    from taskjournal.services.scheduler import deadlines, expiry

    runtime.tasks.append(asyncio.create_task(
        deadlines.run(runtime.journal, runtime.executor, runtime.settings.resolver_interval)))
    runtime.tasks.append(asyncio.create_task(expiry.run(runtime.journal, runtime.executor)))


async def _start_claim_resolver(runtime: Runtime) -> None:
    from taskjournal.services.claim_resolver import resolver

    runtime.tasks.append(asyncio.create_task(
        resolver.run(runtime.journal, runtime.executor, runtime.settings.resolver_interval)))


async def _start_dependency_resolver(runtime: Runtime) -> None:
    from taskjournal.services.dependency_resolver.resolver import ROUTING_KEYS, on_task_resolved

    async def handle(event: dict) -> None:
        await runtime.blocking(on_task_resolved, runtime.journal, event)

    if not runtime.settings.amqp_url:
        runtime.bus.subscribe_internal(ROUTING_KEYS, handle)
        return
    from faststream.rabbit import RabbitBroker

    from taskjournal.shared.bus.consumer import service_subscriber
    from taskjournal.shared.bus.queues import service_queue

    # the relay's publisher declares the same queue (see _start_relay)
    queue = service_queue(runtime.settings.instance, "dependency-resolver", ROUTING_KEYS)
    # A FastStream subscriber handles one message at a time and the handler mostly
    # waits on the database, so a few consumers share the queue in one process.
    for _ in range(CONSUMERS_PER_PROCESS):
        broker = RabbitBroker(runtime.settings.amqp_url, logger=None)
        service_subscriber(broker, queue, handle)
        await _retrying("RabbitMQ (dependency-resolver)", broker.start)
        runtime.closers.append(broker.stop)


async def _start_relay(runtime: Runtime) -> None:
    from taskjournal.services.dependency_resolver.resolver import ROUTING_KEYS
    from taskjournal.services.relay.relay import run_relay

    publisher = runtime.bus
    if runtime.settings.amqp_url:
        from taskjournal.shared.bus.queues import service_queue
        from taskjournal.shared.bus.rabbit import RabbitPublisher

        # declared before the first publish, so no event is published before its queue exists
        queues = [service_queue(runtime.settings.instance, "dependency-resolver", ROUTING_KEYS)]
        publisher = RabbitPublisher(runtime.settings.amqp_url, instance=runtime.settings.instance, queues=queues)
        await _retrying("RabbitMQ (relay)", publisher.connect)
        runtime.closers.append(publisher.close)
    # internal events go out only for the services that consume them (today: the dependency-resolver)
    runtime.tasks.append(asyncio.create_task(run_relay(
        runtime.journal, publisher, runtime.stop, executor=runtime.executor, internal_events=ROUTING_KEYS)))


STARTERS = {"api-gateway": _start_gateway, "scheduler": _start_scheduler, "claim-resolver": _start_claim_resolver,
            "dependency-resolver": _start_dependency_resolver, "relay": _start_relay}


# ------------------------------------------------------------------ plumbing
async def _retrying(what: str, connect, attempts: int = 30) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await connect()
            return
        except Exception as err:
            if attempt == attempts:
                raise
            log.warning("cannot reach %s yet (%s); retrying", what, err)
            await asyncio.sleep(1)


async def _serve_http(runtime: Runtime, app: web.Application) -> None:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
    await runner.setup()
    await web.TCPSite(runner, runtime.settings.host, runtime.settings.port, reuse_port=True).start()
    runtime.closers.insert(0, runner.cleanup)  # stop taking requests before anything else closes


def ops_app(runtime: Runtime) -> web.Application:
    """Health, readiness and metrics for a service without the API."""
    app = web.Application()
    add_ops_routes(app, runtime.journal, runtime.executor)
    return app
