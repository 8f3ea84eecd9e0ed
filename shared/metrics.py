"""Prometheus metrics through prometheus_client (docs/adr/0020-metrics-and-drain.md).

Each process has its own registry and serves it on its own `/metrics`
(`taskjournal stack` and Kubernetes run one process per role, each with its
own port or pod): no multiprocess mode. Call sites name a metric and its
labels, as before:

    REGISTRY.inc("taskjournal_relay_errors_total")
    REGISTRY.observe("taskjournal_http_request_duration_seconds", 0.01, route="task", status="200")

Every metric is declared once (`describe`) with its type, help and label
names; the catalogue in docs/operations.md ("Metrics") lists the same (a unit
test compares them). Gauges read at scrape time (`scraped`) get their reader
from the process that can answer them (`read_with`)."""

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    Summary,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("taskjournal.metrics")
disable_created_metrics()  # no `_created` series: they double every counter's output for nothing we use

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KINDS = {"counter": Counter, "gauge": Gauge, "histogram": Histogram, "summary": Summary}
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
Reader = Callable[[], Iterable[tuple[tuple[str, ...], float]]]  # label values, value


class Registry:
    """Declared metrics by name over one prometheus_client CollectorRegistry."""

    def __init__(self, process_metrics: bool = False):
        self.registry = CollectorRegistry()
        self.metrics: dict[str, Any] = {}
        self.declared: dict[str, tuple[str, str, tuple[str, ...]]] = {}  # name -> (kind, help, labels)
        self.readers: dict[str, Reader] = {}
        self._lazy: dict[str, Iterable[float] | None] = {}  # buckets of metrics declared without labels
        self.children: dict[tuple, Any] = {}  # (name, label items) -> the metric's child for those labels
        self.lock = threading.Lock()
        self.registry.register(_Scraped(self))
        if process_metrics:  # process_* (CPU, memory, open files) and python_* (GC, version)
            for collector in (ProcessCollector, PlatformCollector, GCCollector):
                collector(registry=self.registry)

    def describe(self, name: str, kind: str, text: str, labels: Iterable[str] | None = None,
                 buckets: Iterable[float] | None = None) -> None:
        """Declare a metric (again: no change). `labels` None: the label names
        of its first use (prefer naming them: a declared metric is listed
        even before its first sample)."""
        with self.lock:
            if name in self.metrics or name in self.declared:
                return
            if labels is not None:
                self._create(name, kind, text, tuple(labels), buckets)
            else:
                self.declared[name] = (kind, text, ())
                self._lazy[name] = buckets

    def scraped(self, name: str, text: str, labels: Iterable[str] = ()) -> None:
        """Declare a gauge whose samples are read when scraped (see read_with)."""
        self.declared[name] = ("gauge", text, tuple(labels))

    def read_with(self, name: str, reader: Reader) -> None:
        """This process answers the scraped gauge `name` with `reader()`."""
        assert name in self.declared and name not in self.metrics, f"{name} is not a scraped gauge"
        self.readers[name] = reader

    def inc(self, name: str, value: float = 1.0, **labels: Any) -> None:
        self._child(name, "counter", labels).inc(value)

    def observe(self, name: str, value: float, **labels: Any) -> None:
        """One observation of a histogram (or summary)."""
        self._child(name, "histogram", labels).observe(value)

    def histogram(self, name: str, value: float, buckets: tuple[float, ...], **labels: Any) -> None:
        """One observation of a histogram, declared with `buckets` if it was not."""
        if name not in self.metrics and name not in self.declared:
            self.describe(name, "histogram", name.replace("_", " "), labels=sorted(labels), buckets=buckets)
        self.observe(name, value, **labels)

    def set(self, name: str, value: float, **labels: Any) -> None:
        self._child(name, "gauge", labels).set(value)

    def value(self, name: str, **labels: Any) -> float:
        """The current value of a sample (tests), 0 if it has none yet."""
        return self.registry.get_sample_value(name, {k: str(v) for k, v in labels.items()}) or 0.0

    def render(self) -> bytes:
        """The text exposition; runs the scrape-time readers (call it off the event loop)."""
        return generate_latest(self.registry)

    def catalogue(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Every declared metric: name -> (type, label names)."""
        return {name: (kind, labels) for name, (kind, _, labels) in self.declared.items()}

    # ------------------------------------------------------------ plumbing
    def _create(self, name: str, kind: str, text: str, labels: tuple[str, ...],
                buckets: Iterable[float] | None) -> Any:
        options: dict[str, Any] = {"registry": self.registry}
        if kind == "histogram":
            options["buckets"] = tuple(buckets or LATENCY_BUCKETS)
        metric = KINDS[kind](name, text, labels, **options)
        self.metrics[name] = metric
        self.declared[name] = (kind, text, labels)
        return metric

    def _child(self, name: str, wanted: str, labels: dict[str, Any]) -> Any:
        # the hot path (every request): a dict lookup; prometheus_client's labels() costs ~10x more
        key = (name, tuple(labels.items()))
        child = self.children.get(key)
        if child is None:
            child = self.children[key] = self._labelled(name, wanted, labels)
        return child

    def _labelled(self, name: str, wanted: str, labels: dict[str, Any]) -> Any:
        metric = self.metrics.get(name)
        if metric is None:
            with self.lock:
                metric = self.metrics.get(name)
                if metric is None:
                    kind, text, _ = self.declared.get(name, (wanted, name.replace("_", " "), ()))
                    metric = self._create(name, kind, text, tuple(sorted(labels)), self._lazy.pop(name, None))
        return metric.labels(**labels) if labels else metric


class _Scraped(Collector):
    """The scraped gauges this process has readers for. A reader that fails
    (the database is down) leaves its gauge out of this scrape, never fails it."""

    def __init__(self, registry: Registry):
        self.owner = registry

    def collect(self):
        for name, reader in list(self.owner.readers.items()):
            _, text, labels = self.owner.declared[name]
            family = GaugeMetricFamily(name, text, labels=list(labels))
            try:
                for values, value in reader():
                    family.add_metric(list(values), value)
            except Exception as error:
                log.warning("cannot read metric %s: %s", name, error)
                continue
            yield family

    def describe(self):
        return []  # read at scrape time only


REGISTRY = Registry(process_metrics=True)

# ------------------------------------------------------------------ the catalogue (docs/operations.md, "Metrics")
# HTTP: every request of every process's app (services/ops.py middleware)
HTTP_REQUESTS = "taskjournal_http_requests_total"
HTTP_DURATION = "taskjournal_http_request_duration_seconds"
HTTP_LONG_POLL = "taskjournal_http_long_poll_seconds"
REGISTRY.describe(HTTP_REQUESTS, "counter", "HTTP requests answered, by route name and status",
                  labels=("route", "status"))
REGISTRY.describe(HTTP_DURATION, "histogram",
                  "seconds to answer a request, by route name and status (long polls are in "
                  "taskjournal_http_long_poll_seconds)", labels=("route", "status"))
REGISTRY.describe(HTTP_LONG_POLL, "histogram", "seconds a long poll (claimWork) took, waiting included",
                  labels=("route", "status"), buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 15, 20, 25, 30, 60))
REGISTRY.scraped("taskjournal_http_in_flight_requests", "requests being answered now")
REGISTRY.describe("taskjournal_draining", "gauge", "1 once the process has begun to drain (SIGTERM)", labels=())
REGISTRY.describe("taskjournal_build_info", "gauge", "always 1: the build and the roles of this process",
                  labels=("version", "commit", "roles"))
# claimWork/claimTask: seconds from a run becoming pending to its claim (pickup latency)
CLAIM_WAIT = "taskjournal_claim_wait_seconds"
CLAIM_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400)
REGISTRY.describe(CLAIM_WAIT, "histogram", "seconds from pending to claimed, by task queue",
                  labels=("task_queue_id",), buckets=CLAIM_WAIT_BUCKETS)
# read from the read model at scrape time (scheduler)
REGISTRY.scraped("taskjournal_task_queue_pending", "pending tasks before their deadline, by task queue",
                 labels=("task_queue_id",))
REGISTRY.scraped("taskjournal_task_queue_claimed", "claimed (running) tasks, by task queue",
                 labels=("task_queue_id",))
# resolvers (scheduler, claim-resolver)
REGISTRY.describe("taskjournal_claims_expired_total", "counter", "runs ended exception/claim-expired", labels=())
REGISTRY.describe("taskjournal_deadlines_exceeded_total", "counter", "tasks ended exception/deadline-exceeded",
                  labels=())
REGISTRY.describe("taskjournal_resolver_lateness_seconds", "histogram",
                  "seconds from when an item fell due (takenUntil, deadline) to its resolution, by resolver",
                  labels=("resolver",), buckets=(0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5, 10, 30, 60, 300))
# dependency-resolver
REGISTRY.describe("taskjournal_dependency_events_total", "counter",
                  "internal events the dependency-resolver handled, by outcome (handled, failed)",
                  labels=("outcome",))
# relay (the scraped gauges read the log head and the relay's position)
REGISTRY.scraped("taskjournal_relay_lag_events", "events in the log the relay has not published yet")
REGISTRY.scraped("taskjournal_relay_lag_seconds", "age of the oldest event the relay has not published yet")
REGISTRY.describe("taskjournal_relay_events_total", "counter", "events relayed from the log", labels=())
REGISTRY.describe("taskjournal_relay_messages_total", "counter", "Pulse messages published, by exchange",
                  labels=("exchange",))
REGISTRY.describe("taskjournal_relay_publish_seconds", "histogram", "seconds to publish a batch until confirmed",
                  labels=())
REGISTRY.describe("taskjournal_relay_errors_total", "counter", "failed relay batches (retried)", labels=())
# the store: saves that shared one transaction (shared/store/group_commit.py)
REGISTRY.describe("taskjournal_group_commit_batch_size", "histogram", "saves committed by one transaction",
                  labels=(), buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
