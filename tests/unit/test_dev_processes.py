"""How many gateway processes `taskjournal dev` runs (ADR 0016), and that
`taskjournal run` takes several services for one process."""

import os

import pytest

from taskjournal.services import cli
from taskjournal.shared.config import Settings, SettingError


def test_dev_runs_one_gateway_per_core_but_one_unless_told():
    assert cli.dev_gateway_processes(Settings()) == max(1, len(os.sched_getaffinity(0)) - 1)
    assert cli.dev_gateway_processes(Settings.from_env({"TASKJOURNAL_GATEWAY_PROCESSES": "3"})) == 3


def test_a_bad_gateway_count_is_a_setting_error():
    with pytest.raises(SettingError, match="^TASKJOURNAL_GATEWAY_PROCESSES: "):
        Settings.from_env({"TASKJOURNAL_GATEWAY_PROCESSES": "many"})


def test_the_back_office_and_the_gateways_cover_every_role():
    assert set(cli.DEV_GATEWAY_ROLES) | set(cli.DEV_BACK_OFFICE_ROLES) == set(cli.ROLES)
    assert "relay" not in cli.DEV_GATEWAY_ROLES  # no publishing on a loop that serves requests
