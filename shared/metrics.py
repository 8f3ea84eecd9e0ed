"""A minimal Prometheus registry: counters, latency summaries and histograms
with labels, rendered in the text exposition format."""

import threading
from collections import defaultdict


class Registry:
    def __init__(self):
        self.lock = threading.Lock()
        self.counters: dict[tuple, float] = defaultdict(float)
        self.help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, text: str) -> None:
        self.help[name] = (kind, text)

    def inc(self, name: str, value: float = 1.0, **labels) -> None:
        key = (name, tuple(sorted(labels.items())))
        with self.lock:
            self.counters[key] += value

    def set(self, name: str, value: float, **labels) -> None:
        """A gauge's current value."""
        with self.lock:
            self.counters[(name, tuple(sorted(labels.items())))] = value

    def observe(self, name: str, seconds: float, **labels) -> None:
        self.inc(name + "_sum", seconds, **labels)
        self.inc(name + "_count", 1, **labels)

    def histogram(self, name: str, value: float, buckets: tuple[float, ...], **labels) -> None:
        """One observation of a histogram: cumulative `_bucket{le=...}` counters, `_sum` and `_count`."""
        for bound in buckets:
            if value <= bound:
                self.inc(name + "_bucket", le=f"{bound:g}", **labels)
        self.inc(name + "_bucket", le="+Inf", **labels)
        self.observe(name, value, **labels)

    def render(self) -> str:
        lines = []
        for name, (kind, text) in sorted(self.help.items()):
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
        with self.lock:
            for (name, labels), value in sorted(self.counters.items()):
                label_text = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")
        return "\n".join(lines) + "\n"


REGISTRY = Registry()
REGISTRY.describe("taskjournal_http_requests_total", "counter", "API requests by endpoint and status")
REGISTRY.describe("taskjournal_http_request_seconds", "summary", "API request latency by endpoint")
# claimWork/claimTask: seconds from a run becoming pending to its claim
CLAIM_WAIT = "taskjournal_claim_wait_seconds"
CLAIM_WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 14400, 86400)
REGISTRY.describe(CLAIM_WAIT, "histogram", "seconds from pending to claimed, by task queue")
