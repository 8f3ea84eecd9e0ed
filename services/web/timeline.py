"""Timelines of runs, computed on the server: one row per run, a waiting bar
from `scheduled` to `started` and a running bar from `started` to `resolved`
(or now, for a run not resolved yet). Pure: statuses in, geometry out."""

from dataclasses import dataclass

from taskjournal.shared.domain.time import parse_ms

WIDTH = 100  # bars are placed in percent of the timeline's width


@dataclass(frozen=True)
class Bar:
    task_id: str
    run_id: int
    state: str
    label: str
    row: int
    wait_x: float  # waiting: scheduled -> started (or resolved, for a run never started)
    wait_w: float
    run_x: float  # running: started -> resolved (width 0 for a run never started)
    run_w: float
    waited_ms: int
    ran_ms: int | None
    y: int  # pixels from the top, and the bar's height (a pixel less than its row's)
    height: int


@dataclass(frozen=True)
class Timeline:
    start_ms: int
    end_ms: int
    bars: list[Bar]
    row_height: int

    @property
    def height(self) -> int:
        return len(self.bars) * self.row_height

    def ticks(self, count: int = 5) -> list[tuple[float, str]]:
        """(percent across, offset from the start) for labels under the bars."""
        span = self.end_ms - self.start_ms
        return [(100 * i / count, duration(span * i // count)) for i in range(count + 1)]


def runs_of(status: dict, label: str) -> list[tuple[str, str, dict]]:
    """(taskId, label, run) for each run of a task status."""
    return [(status["taskId"], label, run) for run in status.get("runs", [])]


def timeline(runs: list[tuple[str, str, dict]], now_ms: int) -> Timeline:
    """One bar per run, ordered by when each run became pending."""
    spans = sorted(((_span(run, now_ms), task_id, label, run) for task_id, label, run in runs),
                   key=lambda item: (item[0][0], item[1], item[3]["runId"]))  # scheduled, then taskId and run
    if not spans:
        return Timeline(now_ms, now_ms, [], 0)
    start = min(span[0] for span, *_ in spans)
    end = max(span[2] for span, *_ in spans)
    scale = WIDTH / max(end - start, 1)
    row_height = _row_height(len(spans))
    bars = []
    for row, ((scheduled, started, resolved), task_id, label, run) in enumerate(spans):
        wait_end = started if started is not None else resolved
        bars.append(Bar(
            task_id, run["runId"], run["state"], label, row,
            round((scheduled - start) * scale, 3), round(max((wait_end - scheduled) * scale, 0.5), 3),
            round(((started or resolved) - start) * scale, 3),
            round((resolved - started) * scale, 3) if started is not None else 0.0,
            wait_end - scheduled, resolved - started if started is not None else None,
            row * row_height, row_height - 1))
    return Timeline(start, end, bars, row_height)


def _span(run: dict, now_ms: int) -> tuple[int, int | None, int]:
    """(scheduled, started or None, resolved or now) in epoch ms."""
    scheduled = parse_ms(run["scheduled"])
    started = parse_ms(run["started"]) if run.get("started") else None
    resolved = parse_ms(run["resolved"]) if run.get("resolved") else max(now_ms, started or scheduled)
    return scheduled, started, resolved


def durations(run: dict, now_ms: int) -> tuple[int, int | None]:
    """(ms waiting, ms running or None when it never started) of one run, so far."""
    scheduled, started, resolved = _span(run, now_ms)
    return (started if started is not None else resolved) - scheduled, \
        (resolved - started if started is not None else None)


def _row_height(rows: int) -> int:
    """Rows get thinner as there are more of them, so a big group stays one screen or two."""
    return 16 if rows <= 40 else 8 if rows <= 400 else 3


def duration(ms: int | None) -> str:
    """A short human duration: 850ms, 12.3s, 4m05s, 2h07m."""
    if ms is None:
        return ""
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(ms // 1000, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
