"""The composition root (as cosmicpython's bootstrap.py): the one place that
builds a process from validated settings. It opens the store and the
Journal, the executor for blocking store calls, the commit wake-ups, the bus
and the authenticator, and hands each service what it needs; nothing is
patched onto an object after it is built. `taskjournal dev`, `taskjournal
run <service>`, the children of `taskjournal stack` and the tests start here."""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from taskjournal.shared import looplag
from taskjournal.shared.bus import InProcessBus, Publisher
from taskjournal.shared.bus.queues import ServiceQueue, service_queue
from taskjournal.shared.config import Settings
from taskjournal.shared.domain.time import now_ms
from taskjournal.shared.journal import CommitListener, Journal, open_journal
from taskjournal.shared.metrics import REGISTRY
from taskjournal.shared.storage import BlobStore
from taskjournal.shared.version import build_commit, package_version

from .api_gateway.claimwork import PendingSignal
from .ops import CHECK_TIMEOUT, Health, add_ops_routes, observe

log = logging.getLogger("taskjournal")
ROLES = ("api-gateway", "scheduler", "claim-resolver", "dependency-resolver", "relay", "artifact-service")
# Consumers exist before producers: a process starts its roles in this order. The
# artifact-service comes before the api-gateway: in one process it mounts its routes on the gateway's app.
START_ORDER = ("dependency-resolver", "scheduler", "claim-resolver", "relay", "artifact-service", "api-gateway")
HTTP_ROLES = {"api-gateway", "artifact-service"}  # the roles that serve an app of their own (with the ops routes)
# Draining (docs/adr/0020-metrics-and-drain.md): requests in flight get this long to finish (long polls
# answer at once), consumers the messages in hand (FastStream's graceful timeout), the relay its batch.
HTTP_GRACE_S = 30.0
CONSUMER_GRACE_S = 15.0
BACKGROUND_GRACE_S = 10.0


class Wakeups:
    """What a commit on a store thread tells the waiters on the event loop:
    the relay (new events in the log) and long-polling claimWork calls (new
    pending work, per task queue). The Journal calls it after each commit."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.log = asyncio.Event()
        self.pending_work = PendingSignal()

    def saved(self) -> None:
        self._soon(self.log.set)

    def pending(self, task_queue_ids: Iterable[str]) -> None:
        self._soon(self.pending_work.notify, list(task_queue_ids))

    def _soon(self, callback: Callable[..., Any], *args: Any) -> None:
        if not self.loop.is_closed():
            try:
                self.loop.call_soon_threadsafe(callback, *args)
            except RuntimeError:  # the loop closed meanwhile: nobody is waiting
                pass


@dataclass
class Process:
    """The parts one process shares between its roles."""

    settings: Settings
    journal: Journal
    executor: ThreadPoolExecutor
    wakeups: Wakeups
    bus: InProcessBus = field(default_factory=InProcessBus)  # the bus when no AMQP URL is set
    health: Health = None  # type: ignore[assignment]  # made from the journal when not given
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task] = field(default_factory=list)  # cancelled when the process stops
    finishing: list[asyncio.Task] = field(default_factory=list)  # end by themselves once `stop` is set
    intake: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # closed first: HTTP, consumers
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    roles: set[str] = field(default_factory=set)  # what this process runs (set by `start`)
    mounts: list[Callable[[web.Application], None]] = field(default_factory=list)  # routes for the gateway's app
    blobs: BlobStore | None = None  # see process_blobs
    sweeps: bool = True  # runs its roles' periodic sweeps (off in dev's extra gateways: the back office does them)

    def __post_init__(self) -> None:
        if self.health is None:
            self.health = Health(self.journal, self.executor)

    async def blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def background(self, coroutine: Awaitable[None], finishes: bool = False) -> None:
        """Run a loop of this process. `finishes`: it watches `stop` and ends
        by itself with its work in hand done; others are cancelled (a store call
        in flight still completes on its thread before the store closes)."""
        (self.finishing if finishes else self.tasks).append(asyncio.ensure_future(coroutine))


def journal_for(settings: Settings, listener: CommitListener | None = None) -> Journal:
    """The Journal over the configured store (also what `taskjournal replay` uses)."""
    return open_journal(settings.database_url, str(settings.data_dir), max_connections=settings.executor_threads,
                        listener=listener, schema_mode=settings.schema)


def bootstrap(settings: Settings, sweeps: bool = True) -> Process:
    """Build the shared parts of a process; call it on the running event loop."""
    wakeups = Wakeups(asyncio.get_running_loop())
    journal = journal_for(settings, wakeups)
    executor = ThreadPoolExecutor(settings.executor_threads, thread_name_prefix="store")
    return Process(settings, journal, executor, wakeups, sweeps=sweeps)


async def start(process: Process, roles: Iterable[str]) -> None:
    wanted = set(roles)
    process.roles = wanted
    REGISTRY.set("taskjournal_build_info", 1, version=package_version(), commit=build_commit(),
                  roles=",".join(role for role in ROLES if role in wanted))
    REGISTRY.set("taskjournal_draining", 0)
    process.tasks.append(looplag.start(wanted))
    for role in START_ORDER:
        if role in wanted:
            await STARTERS[role](process)
    if not wanted & HTTP_ROLES:
        await _serve_http(process, ops_app(process))


async def stop(process: Process) -> None:
    """Drain, then close. At once `/ready` fails and every claimWork long poll
    answers (with no tasks); the HTTP servers stop listening and finish the
    requests in flight; consumers stop taking messages and finish (and ack)
    the one in hand; the relay finishes its batch; then the rest closes."""
    process.health.start_draining()
    process.wakeups.pending_work.wake_all()
    await asyncio.gather(*(close() for close in process.intake))  # each waits for its own work in hand
    process.stop.set()
    for task in process.tasks:
        task.cancel()
    if process.finishing:
        _, late = await asyncio.wait(process.finishing, timeout=BACKGROUND_GRACE_S)
        for task in late:
            log.warning("a background loop did not finish within %.0f s; cancelled", BACKGROUND_GRACE_S)
            task.cancel()
    await asyncio.gather(*process.tasks, *process.finishing, return_exceptions=True)
    for close in reversed(process.closers):
        await close()
    process.executor.shutdown(wait=True)
    process.journal.close()


# ------------------------------------------------------------------ roles
async def _start_gateway(process: Process) -> None:
    if "artifact-service" not in process.roles and process.settings.artifact_service_url:
        from .artifact_service.forward import add_object_forwarding

        target = process.settings.artifact_service_url
        process.mounts.append(lambda app: add_object_forwarding(app, target))
    app = gateway_app(process.settings, process.journal, process.executor, process.wakeups.pending_work,
                      process_blobs(process), mounts=process.mounts, draining=process.health.draining)
    await _serve_http(process, app)


def gateway_app(settings: Settings, journal: Journal, executor: Executor, pending_work: PendingSignal,
                blobs: BlobStore | None = None,
                mounts: Iterable[Callable[[web.Application], None]] = (),
                draining: asyncio.Event | None = None) -> web.Application:
    """The api-gateway's aiohttp application with everything it needs (also
    what in-process tests serve). `blobs`: where s3 artifacts' bytes live;
    `mounts` add other services' routes to it (the artifact-service's, when
    one process runs both); `draining` ends claimWork's waits."""
    from .api_gateway.app import GatewayParts, build_auth, create_app
    from .api_gateway.claimwork import Claimer

    authenticator, issuer = build_auth(settings)
    claimer = Claimer(journal, executor, pending_work, wait_s=settings.claimwork_wait,
                      claim_timeout_ms=int(settings.claim_timeout * 1000), draining=draining)
    mounts = list(mounts)

    def mount_all(app: web.Application) -> None:
        for mount in mounts:
            mount(app)

    return create_app(GatewayParts(settings, journal, authenticator, issuer, executor, claimer, blobs), mount_all)


async def _start_artifact_service(process: Process) -> None:
    """The object service and the data plane. With the api-gateway in the same
    process (`taskjournal dev`) its routes join the gateway's app on one port;
    alone (`run`, `stack`, k8s) it serves its own."""
    from .artifact_service import expiry
    from .artifact_service.app import add_artifact_routes, create_app

    blobs = process_blobs(process)
    services = artifact_services(process.settings, process.journal, process.executor, blobs)
    if process.sweeps:
        process.background(expiry.run(process.journal, process.executor, blobs))
    if "api-gateway" in process.roles:
        process.mounts.append(lambda app: add_artifact_routes(app, services))
    else:
        await _serve_http(process, create_app(services))


def artifact_services(settings: Settings, journal: Journal, executor: Executor, blobs: BlobStore):
    """What the object service's handlers need (also what in-process tests use)."""
    from .api_gateway.app import build_auth
    from .artifact_service.app import ObjectServiceParts

    authenticator, _ = build_auth(settings)
    return ObjectServiceParts(settings, journal, authenticator, executor, blobs)


async def _start_scheduler(process: Process) -> None:
    from .scheduler import deadlines, expiry

    # the scheduler keeps the queues' books: it answers their pending and claimed counts
    views = process.journal.views
    REGISTRY.read_with("taskjournal_task_queue_pending", lambda: _per_queue(views.pending_counts(now_ms())))
    REGISTRY.read_with("taskjournal_task_queue_claimed", lambda: _per_queue(views.claimed_counts()))
    process.background(deadlines.run(process.journal, process.executor, process.settings.resolver_interval))
    process.background(expiry.run(process.journal, process.executor, blobs=process_blobs(process)))


async def _start_claim_resolver(process: Process) -> None:
    from .claim_resolver import resolver

    process.background(resolver.run(process.journal, process.executor, process.settings.resolver_interval))


async def _start_dependency_resolver(process: Process) -> None:
    from .dependency_resolver.batches import Batcher
    from .dependency_resolver.resolver import MAX_BATCH, ROUTING_KEYS, handled, on_tasks_resolved, received

    async def handle_batch(events: list[dict]) -> None:
        await process.blocking(on_tasks_resolved, process.journal, events)

    batcher = Batcher(handle_batch, MAX_BATCH, process.settings.executor_threads)

    async def handle(event: dict) -> None:
        arrival = received(event)
        try:
            await batcher.handle(event)
        except Exception:
            REGISTRY.inc("taskjournal_dependency_events_total", outcome="failed")
            raise
        REGISTRY.inc("taskjournal_dependency_events_total", outcome="handled")
        handled(arrival)

    settings = process.settings
    if not settings.amqp_url:
        process.bus.subscribe_internal(ROUTING_KEYS, handle)
        return
    # at most a batch of events in hand (messages carry up to PACK events each): the events beyond
    # stay in the queue, for other replicas
    from taskjournal.shared.bus.rabbit import PACK

    broker = dependency_consumer(settings.amqp_url, _dependency_queue(settings), handle, max(1, MAX_BATCH // PACK))
    await _retrying("RabbitMQ (dependency-resolver)", broker.start)
    process.intake.append(broker.stop)  # a drain stops consuming first, finishing the events in hand

    async def broker_answers() -> None:
        if not await broker.ping(timeout=CHECK_TIMEOUT):
            raise ConnectionError("not connected to RabbitMQ")

    process.health.add("broker", broker_answers)
    from .dependency_resolver import backlog

    queue_name = _dependency_queue(settings).name
    process.background(backlog.watch(settings.amqp_url, queue_name, settings.resolver_interval))


def dependency_consumer(amqp_url: str, queue: ServiceQueue, handle: Callable[[dict], Awaitable[None]],
                        in_flight: int):
    """A FastStream broker consuming `queue`. Its subscriber handles every
    message it is given at once, so the channel's prefetch (`in_flight`
    messages) bounds how many events a process holds: the rest wait in the
    queue, where other replicas take them and the backlog gauge counts them
    (ADR 0017)."""
    from faststream.rabbit import Channel, RabbitBroker

    from taskjournal.shared.bus.consumer import service_subscriber

    # graceful_timeout: stop() waits this long for the events in hand to be handled and acked
    broker = RabbitBroker(amqp_url, logger=None, default_channel=Channel(prefetch_count=in_flight),
                          graceful_timeout=CONSUMER_GRACE_S)
    service_subscriber(broker, queue, handle)
    return broker


async def _start_relay(process: Process) -> None:
    from .dependency_resolver.resolver import ROUTING_KEYS
    from .relay.relay import Relay

    publisher: Publisher = process.bus
    if process.settings.amqp_url:
        from taskjournal.shared.bus.rabbit import RabbitPublisher

        # the relay declares its consumers' queues before its first publish: no event can route nowhere
        rabbit = RabbitPublisher(process.settings.amqp_url, instance=process.settings.instance,
                                 queues=[_dependency_queue(process.settings)])
        await _retrying("RabbitMQ (relay)", rabbit.connect)
        process.closers.append(rabbit.close)
        process.health.add("broker", rabbit.check)
        publisher = rabbit
    # internal events go out only for the services that consume them (today: the dependency-resolver)
    relay = Relay(process.journal, publisher, executor=process.executor, internal_events=ROUTING_KEYS,
                  wake=process.wakeups.log)
    process.background(relay.run(process.stop), finishes=True)
    lag = RelayLag(process.journal, relay.name)
    REGISTRY.read_with("taskjournal_relay_lag_events", lag.events)
    REGISTRY.read_with("taskjournal_relay_lag_seconds", lag.seconds)


def _dependency_queue(settings: Settings) -> ServiceQueue:
    """The dependency-resolver's queue, as its consumers and the relay both declare it."""
    from .dependency_resolver.resolver import ROUTING_KEYS

    return service_queue(settings.instance, "dependency-resolver", ROUTING_KEYS)


STARTERS: dict[str, Callable[[Process], Awaitable[None]]] = {
    "api-gateway": _start_gateway, "scheduler": _start_scheduler, "claim-resolver": _start_claim_resolver,
    "dependency-resolver": _start_dependency_resolver, "relay": _start_relay,
    "artifact-service": _start_artifact_service}


def process_blobs(process: Process) -> BlobStore:
    """Where artifact and object bytes live (TASKJOURNAL_ARTIFACT_STORE),
    opened once per process and shared by its roles (one S3 client)."""
    if process.blobs is None:
        from taskjournal.shared.storage import open_blob_store

        process.blobs = open_blob_store(process.settings)
        process.closers.append(process.blobs.close)
    return process.blobs


# ------------------------------------------------------------------ plumbing
async def _retrying(what: str, connect: Callable[[], Awaitable[Any]], attempts: int = 30) -> None:
    for attempt in range(1, attempts + 1):
        try:
            await connect()
            return
        except Exception as err:
            if attempt == attempts:
                raise
            log.warning("cannot reach %s yet (%s); retrying", what, err)
            await asyncio.sleep(1)


async def _serve_http(process: Process, app: web.Application) -> None:
    from .api_gateway.app import RAW_BODIES

    observe(app, process.health)
    # an app with the artifact-service's data plane stores bodies as sent (gzip kept); its JSON calls decode themselves
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=HTTP_GRACE_S,
                           auto_decompress=not app.get(RAW_BODIES, False))
    await runner.setup()
    await web.TCPSite(runner, process.settings.host, process.settings.port, reuse_port=True).start()
    # stop listening and finish the requests in flight before anything else closes
    process.intake.insert(0, runner.cleanup)


def ops_app(process: Process) -> web.Application:
    """Health, readiness and metrics for a service without the API."""
    app = web.Application()
    add_ops_routes(app, process.journal, process.executor)
    return app


# ------------------------------------------------------------------ metrics read at scrape time
def _per_queue(rows: list[dict]) -> list[tuple[tuple[str, ...], float]]:
    return [((row["task_queue_id"],), row["n"]) for row in rows]


class RelayLag:
    """How far the relay is behind the log: events (the log's head minus the
    relay's recorded position) and seconds (age of the oldest unrelayed event)."""

    def __init__(self, journal: Journal, name: str):
        self.journal, self.name = journal, name

    def events(self) -> list[tuple[tuple[str, ...], float]]:
        head, position = self.journal.views.position(), self.journal.store.relay_position(self.name)
        return [((), max(0, head - position))]

    def seconds(self) -> list[tuple[tuple[str, ...], float]]:
        oldest = self.journal.events_after(self.journal.store.relay_position(self.name), 1)
        if not oldest:
            return [((), 0.0)]
        written: datetime = getattr(oldest[0][1], "timestamp")  # every domain event has its commit time
        return [((), max(0.0, (datetime.now(timezone.utc) - written).total_seconds()))]
