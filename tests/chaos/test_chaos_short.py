"""The fault campaign, short: bench/chaos.py runs a few hundred tasks over the
services as separate processes on a private PostgreSQL cluster and RabbitMQ
node (the machine's servers when it cannot make its own), SIGKILLs services
about a dozen times and restarts the broker and the database, then checks the
invariants from the event log and the Pulse messages. Run alone with
`pytest -m chaos`; `make chaos` runs the long version."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.amqp import AMQP_URL

CAMPAIGN = Path(__file__).resolve().parents[2] / "bench" / "chaos.py"
ARGS = ["--tasks", "250", "--kills", "12", "--broker-restarts", "1", "--db-restarts", "1",
        "--duration", "20", "--settle", "45", "--seed", "20261130"]


@pytest.mark.chaos
def test_short_fault_campaign_keeps_every_invariant(postgres_base_url):
    env = {**os.environ, "TASKJOURNAL_AMQP_URL": AMQP_URL}  # used only without a private broker
    if postgres_base_url:
        env["TASKJOURNAL_DATABASE_URL"] = postgres_base_url  # likewise without a private cluster
    process = subprocess.Popen([sys.executable, str(CAMPAIGN), *ARGS], env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the campaign stops its servers on SIGTERM
        output, _ = process.communicate(timeout=60)
        pytest.fail(f"the campaign did not finish:\n{output[-4000:]}")
    summary = output[output.rfind("chaos campaign summary"):]
    assert process.returncode == 0, f"the campaign found violations:\n{summary or output[-4000:]}"
    assert re.search(r"^  kills 12: ", summary, re.MULTILINE), summary
    assert "violations 0 (all invariants hold)" in summary
