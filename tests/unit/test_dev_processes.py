"""How many gateway processes `taskjournal dev` runs (ADR 0016), that
`taskjournal run` takes several services for one process, and the warning
when gateways sharing a port would reset connections on a restart."""

import logging
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


@pytest.mark.parametrize(("gateways", "setting", "warned"), [(2, "0\n", True), (2, "1\n", False), (1, "0\n", False)])
def test_gateways_sharing_a_port_warn_when_restarts_would_reset_waiting_connections(tmp_path, caplog, gateways,
                                                                                      setting, warned):
    path = tmp_path / "tcp_migrate_req"
    path.write_text(setting)
    with caplog.at_level(logging.WARNING, logger="taskjournal"):
        assert cli.warn_if_restarts_reset_connections(gateways, 8080, str(path)) is warned
    assert any("tcp_migrate_req" in r.getMessage() for r in caplog.records) is warned


def test_no_such_setting_no_warning(tmp_path):
    assert cli.warn_if_restarts_reset_connections(3, 8080, str(tmp_path / "absent")) is False
