"""Garbage collection for our processes (issue 12). A full (generation-2)
collection walks every object that can hold references; in a process with
thousands of cached aggregates one took ~60 ms on the bench machine, and it
landed on whichever request allocated last: that was the p99 of a task's
history. CPython's default young threshold (700 allocations) also promotes
the live part of every large response into the old generation, which is what
makes full collections come round again and again."""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNG = 50_000  # container allocations between young collections (CPython's default: 700)


def settle() -> None:
    """Once a process has started: what start-up made (modules, settings,
    connections) is kept apart, never walked again by a collection, and young
    collections come less often, so short-lived objects die before them."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG, middle, old)


@contextmanager
def paused() -> Iterator[None]:
    """No collection while a batch job (the audit) builds a large structure
    of long-lived objects: each full collection would walk all of it again,
    and such a job makes next to no cyclic garbage (measured: a dozen objects
    for a 26,000-event audit)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
