"""Live pages: the gateway follows the event log itself (ADR 0019). One
follower per process reads the events after its position while anybody
watches, names what each event changed, and tells the watchers of those
things; each watcher's server-sent-event stream then says `changed` and the
page fetches itself again. Positions are the log's, so a stream resumes
from the page's own position (and from Last-Event-ID after a reconnect)."""

import asyncio
import logging
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from taskjournal.shared.domain.ids import group_uuid, task_uuid

log = logging.getLogger("taskjournal.web")
POLL_S = 0.25  # how often the follower looks for new events while somebody watches
BATCH = 1000
MIN_GAP_S = 1.0  # a page refreshes at most this often, however busy the log
KEEPALIVE_S = 15.0


def changed_keys(event) -> set[str]:
    """What one event changes, as watch keys: its aggregate, plus the task
    (and group) it belongs to when the event says so."""
    keys = {f"id:{event.originator_id}"}
    task_id = getattr(event, "task_id", None) or (getattr(event, "task_status", None) or {}).get("taskId")
    if task_id:
        keys.add(f"task:{task_id}")
    definition = getattr(event, "definition", None)
    if isinstance(definition, dict) and "taskGroupId" in definition:
        keys.add(f"group:{definition['taskGroupId']}")  # a task joins its group
    return keys


@dataclass(eq=False)
class Watcher:
    """One page's interest: the keys that concern it (None: every change)."""

    keys: set[str] | None
    group_id: str | None = None  # a group page also watches the tasks that join the group
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    position: int = 0

    def offer(self, events: list[tuple[int, set[str]]]) -> None:
        for position, keys in events:
            if self.keys is None or not self.keys.isdisjoint(keys):
                self._note(position, keys)

    def _note(self, position: int, keys: set[str]) -> None:
        if self.keys is not None and self.group_id and f"group:{self.group_id}" in keys:
            self.keys |= {k for k in keys if k.startswith("id:")}  # the new member's later events
        self.position = position
        self.changed.set()


def task_watcher(task_id: str) -> Watcher:
    return Watcher({f"id:{task_uuid(task_id)}", f"task:{task_id}"})


def group_watcher(group_id: str, member_ids: Iterable[str]) -> Watcher:
    keys = {f"id:{group_uuid(group_id)}", f"group:{group_id}"} | {f"id:{task_uuid(t)}" for t in member_ids}
    return Watcher(keys, group_id)


def queue_watcher() -> Watcher:
    """Counts of a queue change with events that do not name it: any change (at most every MIN_GAP_S)."""
    return Watcher(None)


class LogFollower:
    """Reads the log from where it stood when the first watcher came, while any watcher stays."""

    def __init__(self, journal, executor: Executor):
        self.journal, self.executor = journal, executor
        self.watchers: set[Watcher] = set()
        self.position: int | None = None
        self._task: asyncio.Task | None = None

    async def watch(self, watcher: Watcher, seen: int) -> None:
        """Add a watcher of a page rendered at log position `seen`: told at once if the log moved since."""
        if self.position is None:
            self.position = await self._blocking(self.journal.store.last_event_position)
        self.watchers.add(watcher)
        if seen < self.position:
            watcher.position = self.position
            watcher.changed.set()
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._follow())

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    async def _follow(self) -> None:
        while self.watchers:
            try:
                count = await self._step()
            except Exception as err:  # the database went away: the next look retries
                log.warning("web view lost the event log: %s", err)
                count = 0
            if count < BATCH:
                await asyncio.sleep(POLL_S)
        self.position = None  # nobody watches: start from the then current end next time

    async def _step(self) -> int:
        assert self.position is not None
        events = await self._blocking(self.journal.events_after, self.position, BATCH)
        if events:
            self.position = events[-1][0]
            named = [(position, changed_keys(event)) for position, event in events]
            for watcher in list(self.watchers):
                watcher.offer(named)
        return len(events)

    async def _blocking(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def close(self) -> None:
        self.watchers.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
