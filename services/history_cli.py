"""`taskjournal history | status --as-of | export | audit` (ADR 0015): what
happened, read straight from the configured store (no server needed).

  history <taskId>            the task's events: when, what, which run, why, who
  status <taskId> --as-of T   the task's status as it was at T (JSON, as `status` answers)
  export --since T|POSITION   the log after a position (or from a time) as JSON lines
  audit                       replay the whole log, check invariants and read models; exit 1 if wrong"""

import argparse
import json
import sys
import time

from taskjournal.shared.actor import describe as describe_actor
from taskjournal.shared.config import Settings
from taskjournal.shared.domain.errors import InputError
from taskjournal.shared.domain.ids import is_slugid
from taskjournal.shared.domain.time import now_ms, parse_ms
from taskjournal.shared.store.audit import Report, audit

COMMANDS = ("history", "status", "export", "audit")
EXPORT_PAGE = 1000


def add_commands(sub) -> None:
    """Add the subcommands to `taskjournal`'s parser."""
    history = sub.add_parser("history", help="a task's history: what happened, when, and who did it")
    history.add_argument("task_id", metavar="taskId")
    history.add_argument("--json", action="store_true", help="one JSON object a line")
    status = sub.add_parser("status", help="a task's status as it was at a past time")
    status.add_argument("task_id", metavar="taskId")
    status.add_argument("--as-of", required=True, metavar="TIME", help="an ISO 8601 date-time (or `now`)")
    export = sub.add_parser("export", help="the event log as JSON lines, for an audit system")
    export.add_argument("--since", default="0", metavar="TIME|POSITION",
                        help="a log position (events after it) or an ISO 8601 date-time (events from it)")
    sub.add_parser("audit", help="replay the log; check the state machine's invariants and the read models")


def run(args: argparse.Namespace, settings: Settings) -> int:
    from . import bootstrap

    journal = bootstrap.journal_for(settings)
    try:
        if args.command == "history":
            return history(journal, args.task_id, args.json)
        if args.command == "status":
            return status_as_of(journal, args.task_id, args.as_of)
        if args.command == "export":
            return export(journal, args.since)
        return run_audit(journal)
    except InputError as error:
        print(f"taskjournal {args.command}: {error.message}", file=sys.stderr)
        return 2
    finally:
        journal.close()


def _task_id(task_id: str) -> str:
    if not is_slugid(task_id):
        raise InputError(f"`{task_id}` is not a taskId")
    return task_id


def _time(text: str) -> int:
    if text == "now":
        return now_ms()
    try:
        return parse_ms(text)
    except ValueError:
        raise InputError(f"`{text}` is not an ISO 8601 date-time") from None


def history(journal, task_id: str, as_json: bool) -> int:
    entries = journal.views.task_history(_task_id(task_id))
    if not entries:
        print(f"taskjournal history: no task `{task_id}`", file=sys.stderr)
        return 1
    for entry in entries:
        print(json.dumps(entry) if as_json else history_line(entry))
    return 0


def history_line(entry: dict) -> str:
    """`12  2026-…Z  Task.RunClaimed  run 0  completed  by root  {changes}`, for people."""
    run = "" if entry["runId"] is None else f"run {entry['runId']}"
    changes = json.dumps(entry["changes"], separators=(",", ":")) if entry["changes"] else ""
    return (f"{entry['position']:>8}  {entry['time']}  {entry['event']:<20} {run:<7} {entry['reason'] or '':<18} "
            f"by {describe_actor(entry['actor']):<28} {changes}").rstrip()


def status_as_of(journal, task_id: str, as_of: str) -> int:
    found = journal.views.task_status_as_of(_task_id(task_id), _time(as_of))
    if found is None:
        print(f"taskjournal status: no task `{task_id}` at {as_of}", file=sys.stderr)
        return 1
    print(json.dumps({"status": found}, indent=2))
    return 0


def export(journal, since: str) -> int:
    """Events after a position, or recorded at or after a time, one JSON line each."""
    after, not_before = (int(since), 0) if since.isdigit() else (0, _time(since))
    while True:
        page = journal.views.log_page(after, EXPORT_PAGE)
        if not page:
            return 0
        for entry in page:
            if not_before == 0 or parse_ms(entry["time"]) >= not_before:
                sys.stdout.write(json.dumps(entry, separators=(",", ":")) + "\n")
        after = page[-1]["position"]


def run_audit(journal) -> int:
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        filled = 30 * done // total if total else 30
        print(f"\raudit [{'#' * filled}{'.' * (30 - filled)}] {done}/{total} events", end="", file=sys.stderr)

    report = audit(journal, progress)
    seconds = time.monotonic() - started
    print(file=sys.stderr)
    print(audit_summary(report, seconds))
    return 0 if report.ok else 1


def audit_summary(report: Report, seconds: float) -> str:
    lines = [f"audited {report.events} events of {report.tasks} tasks in {seconds:.2f}s "
             f"({report.events / max(seconds, 1e-9):.0f} events/s)"]
    for v in report.violations:
        lines.append(f"VIOLATION {v.rule} at position {v.position}, task {v.task_id}: {v.detail}")
    for projection, rows in report.differences.items():
        lines += [f"READ MODEL {projection} differs from the log: {row}" for row in rows]
    lines.append("ok: every invariant holds and every read model equals the replayed one" if report.ok else
                 f"FAILED: {len(report.violations)} invariant violations, "
                 f"{len(report.differences)} read models differ")
    return "\n".join(lines)
