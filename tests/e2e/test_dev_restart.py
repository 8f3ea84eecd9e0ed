"""`taskjournal dev` keeps its data and generated root credentials across restarts."""

import json

import taskcluster

from tests.support.server import Server, task_definition


def test_dev_keeps_tasks_and_generated_credentials_across_restarts(tmp_path):
    env = {"TASKJOURNAL_ROOT_CLIENT_ID": "", "TASKJOURNAL_ROOT_ACCESS_TOKEN": ""}
    first = Server(tmp_path, None, **env)
    saved = json.loads((tmp_path / "root-credentials.json").read_text())
    first.stop()
    printed = (tmp_path / "server.log").read_text()
    assert f"TASKCLUSTER_ACCESS_TOKEN={saved['accessToken']}" in printed
    assert "store:     sqlite" in printed

    second = Server(tmp_path, None, token=saved["accessToken"], **env)
    try:
        queue = taskcluster.Queue({"rootUrl": second.root_url, "credentials": saved, "maxRetries": 0})
        task_id = taskcluster.slugId()
        queue.createTask(task_id, task_definition())
    finally:
        second.stop()

    third = Server(tmp_path, None, token=saved["accessToken"], **env)
    try:
        queue = taskcluster.Queue({"rootUrl": third.root_url, "credentials": saved, "maxRetries": 0})
        assert queue.status(task_id)["status"]["state"] == "pending"
    finally:
        third.stop()
