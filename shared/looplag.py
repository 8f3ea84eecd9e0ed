"""Event-loop lag: how late the loop runs a callback that asked to run now.
Anything that holds the loop (a big JSON encode, a burst of publishes, a
blocking call) shows here before it shows in request latency. Exported as
gauges over a sliding window, per process (`pid` label: gateways share a
port, so a scrape says which one answered)."""

import asyncio
import os
import time
from collections import deque

from taskjournal.shared.metrics import REGISTRY

LAG = "taskjournal_event_loop_lag_seconds"
INFO = "taskjournal_process_info"
REGISTRY.describe(LAG, "gauge", "event-loop delay over the last window, by quantile (1: the max) and process",
                  labels=("pid", "quantile"))
REGISTRY.describe(INFO, "gauge", "this process: its pid and the roles it runs", labels=("pid", "roles"))

INTERVAL_S = 0.02  # how often the loop is asked to run the probe
WINDOW_S = 10.0  # what the exported max and p99 cover
QUANTILES = (0.5, 0.99, 1.0)


def quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of sorted samples (0 when none)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class LoopLag:
    """Samples the running loop's delay every `interval` seconds and exports
    the window's quantiles once a second."""

    def __init__(self, interval: float = INTERVAL_S, window: float = WINDOW_S):
        self.interval = interval
        self.samples: deque[float] = deque(maxlen=max(1, int(window / interval)))
        self.pid = str(os.getpid())

    def quantiles(self) -> dict[float, float]:
        ordered = sorted(self.samples)
        return {q: quantile(ordered, q) for q in QUANTILES}

    def export(self) -> None:
        for q, value in self.quantiles().items():
            REGISTRY.set(LAG, round(value, 6), quantile=f"{q:g}", pid=self.pid)

    async def run(self) -> None:
        exported = time.monotonic()
        while True:
            asked = time.monotonic()
            await asyncio.sleep(self.interval)
            now = time.monotonic()
            self.samples.append(max(0.0, now - asked - self.interval))
            if now - exported >= 1.0:
                self.export()
                exported = now


def start(roles) -> asyncio.Task:
    """Watch this process's loop (call on it); the task runs until cancelled."""
    REGISTRY.set(INFO, 1, pid=str(os.getpid()), roles=" ".join(sorted(roles)))
    return asyncio.ensure_future(LoopLag().run())
