"""The TaskGroup aggregate: which scheduler owns a group, until when it is
kept, and whether it still accepts tasks (behaviour spec §6)."""

from eventsourcing.domain import Aggregate, event

from .errors import RequestConflict
from .ids import group_uuid
from .time import format_ms

GROUP_EXTENSION_MS = 3600 * 1000
LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant the API can write


def group_expiry(task_expires: int) -> int:
    """A group is kept an hour past its longest-lived task."""
    return min(task_expires + GROUP_EXTENSION_MS, LATEST_MS)


def admits_unchanged(scheduler_id: str, expires: int, sealed: int | None, task_scheduler_id: str,
                     task_expires: int) -> bool:
    """Whether a task joins a group in this state without changing it (see `admit`)."""
    return sealed is None and scheduler_id == task_scheduler_id and task_expires <= expires


class TaskGroup(Aggregate):
    @staticmethod
    def create_id(task_group_id: str):
        return group_uuid(task_group_id)

    @event("Defined")
    def __init__(self, task_group_id: str, scheduler_id: str, expires: int):
        self.task_group_id = task_group_id
        self.scheduler_id = scheduler_id
        self.expires = expires
        self.sealed: int | None = None
        self.resolved_through = 0  # log position up to which the group was seen resolved

    def public_body(self) -> dict:
        body = {"taskGroupId": self.task_group_id, "schedulerId": self.scheduler_id,
                "expires": format_ms(self.expires)}
        if self.sealed is not None:
            body["sealed"] = format_ms(self.sealed)
        return body

    def admit(self, scheduler_id: str, task_expires: int) -> None:
        """A task joins the group: same scheduler, group unsealed, group kept
        at least an hour past the task."""
        if scheduler_id != self.scheduler_id:
            raise RequestConflict(
                f"Task group `{self.task_group_id}` contains tasks with a schedulerId other than "
                f"`{scheduler_id}`. All tasks in the same task-group must have the same schedulerId.")
        if self.sealed is not None:
            raise RequestConflict(f"Task group `{self.task_group_id}` is sealed and does not accept new tasks.")
        if task_expires > self.expires:
            self._extended(group_expiry(task_expires))

    def seal(self, now: int) -> None:
        if self.sealed is None:
            self._sealed(now)

    def resolve(self, trigger: int, seen_through: int, now: int) -> bool:
        """Every task of the group was resolved when the read models stood at
        log position `seen_through`. A resolution at log position `trigger`
        that this already covers (a late or redelivered event) changes nothing;
        a later one (e.g. of a rerun) resolves the group again, as upstream."""
        if trigger <= self.resolved_through:
            return False
        self._resolved(max(trigger, seen_through), now)
        return True

    def priority_changed(self, new_priority: str, task_ids: list[str], now: int) -> None:
        """changeTaskGroupPriority done: `task_ids` took the new priority."""
        self._priority_changed(new_priority, len(task_ids), now)

    @event("PriorityChanged")
    def _priority_changed(self, new_priority: str, tasks_affected: int, at: int) -> None:
        pass  # the tasks carry the priority; this records the request (and its message)

    @event("Extended")
    def _extended(self, expires: int) -> None:
        self.expires = expires

    @event("Sealed")
    def _sealed(self, at: int) -> None:
        self.sealed = at

    @event("Resolved")
    def _resolved(self, through: int, at: int) -> None:
        self.resolved_through = through
