"""A minimal Prometheus registry: counters and latency summaries with labels,
rendered in the text exposition format."""

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

    def observe(self, name: str, seconds: float, **labels) -> None:
        self.inc(name + "_sum", seconds, **labels)
        self.inc(name + "_count", 1, **labels)

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
