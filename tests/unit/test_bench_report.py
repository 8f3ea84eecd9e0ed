"""The README's performance table is generated from the newest benchmark run
kept in bench/results/ (as the settings table is from SETTINGS), and the
event-loop lag monitor exports what it measured."""

import asyncio
import re
import sys
from pathlib import Path

import pytest

from taskjournal.shared import looplag
from taskjournal.shared.metrics import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import report  # noqa: E402  (bench/ is scripts, not a package)


def test_the_readme_table_is_the_newest_run():
    newest = report.newest_result()
    assert newest is not None, "bench/results/ keeps no run: run `make bench`"
    assert report.readme_table(newest) in report.README.read_text(), \
        "regenerate the README table: python bench/report.py --readme"


def test_the_newest_run_measured_what_users_run():
    newest = report.newest_result()
    assert newest is not None
    assert set(newest["setups"]) == {"dev", "dev-amqp", "stack"}, newest["file"]


def test_the_generated_section_replaces_only_itself():
    text = f"before\n{report.BEGIN}\nold\n{report.END}\nafter\n"
    assert report.with_table(text, "NEW") == "before\nNEW\nafter\n"


@pytest.mark.parametrize("q, expected", [(0.5, 2.0), (0.99, 4.0), (1.0, 4.0)])
def test_quantiles_are_nearest_rank(q, expected):
    assert looplag.quantile([1.0, 2.0, 3.0, 4.0], q) == expected


def test_a_blocked_loop_shows_in_the_exported_lag():
    async def blocked_once():
        lag = looplag.LoopLag(interval=0.01, window=5)
        probe = asyncio.ensure_future(lag.run())
        await asyncio.sleep(0.05)
        import time
        time.sleep(0.2)  # what a big synchronous encode would do to every request on this loop
        await asyncio.sleep(0.05)
        probe.cancel()
        lag.export()
        return lag.pid

    pid = asyncio.run(blocked_once())
    worst = re.search(rf'taskjournal_event_loop_lag_seconds{{pid="{pid}",quantile="1"}} ([\d.]+)',
                      REGISTRY.render().decode())
    assert worst and float(worst.group(1)) >= 0.15
