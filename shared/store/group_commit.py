"""Group commit: saves from concurrent threads share one transaction.

The event store appends under a table lock, one transaction at a time, so a
commit's fixed cost bounds throughput. While one commit is in flight, later
saves queue up and the first of them commits them all together next; an idle
system commits each save at once, with no added wait."""

import threading
from typing import Any

from eventsourcing.persistence import RecordConflictError

from taskjournal.shared.metrics import REGISTRY


class _Save:
    def __init__(self, aggregates: list, changes: Any):
        self.aggregates = aggregates
        self.changes = changes  # what the commit writes besides the events, worked out by the saving thread
        self.turn = threading.Event()  # set when done, or when this save is to lead the next batch
        self.done = False
        self.error: BaseException | None = None

    def finish(self, error: BaseException | None) -> None:
        self.done, self.error = True, error
        self.turn.set()

    def result(self) -> None:
        if self.error is not None:
            raise self.error


class GroupCommit:
    def __init__(self, commit):
        self._commit = commit  # commit(aggregates, [changes of each save]): one transaction, raises on failure
        self._lock = threading.Lock()
        self._queue: list[_Save] = []
        self._busy = False

    def save(self, aggregates: list, changes: Any = None) -> None:
        mine = _Save(aggregates, changes)
        with self._lock:
            self._queue.append(mine)
            leading, self._busy = not self._busy, True
        if not leading:
            mine.turn.wait()
            if mine.done:
                return mine.result()
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            self._run(batch)
        finally:  # even if interrupted: nobody may wait forever
            for save in batch:
                if not save.done:
                    save.finish(RuntimeError("the shared commit was interrupted"))
            with self._lock:
                if self._queue:
                    self._queue[0].turn.set()  # it leads the next batch
                else:
                    self._busy = False
        return mine.result()

    def _run(self, batch: list[_Save]) -> None:
        REGISTRY.observe("taskjournal_group_commit_batch_size", len(batch))
        if len(batch) == 1:
            batch[0].finish(self._attempt([batch[0]]))
            return
        pending = [(a, list(a.pending_events)) for save in batch for a in save.aggregates]
        error = self._attempt(batch)
        if isinstance(error, RecordConflictError):
            # One save's conflict must not fail the others: each commits alone.
            for aggregate, events in pending:
                aggregate.pending_events.extend(events)
            for save in batch:
                save.finish(self._attempt([save]))
            return
        for save in batch:
            save.finish(error)

    def _attempt(self, saves: list[_Save]) -> BaseException | None:
        try:
            self._commit([a for save in saves for a in save.aggregates], [save.changes for save in saves])
            return None
        except Exception as error:  # handed to the thread whose save it was
            return error
