"""A process whose database goes away says so: `/ready` and `/__heartbeat__`
answer 503 with JSON naming the store (never a 500 with a traceback), while
`/__lbheartbeat__` keeps answering (the process itself is alive)."""

import requests

from tests.support.postgres import drop_database_at
from tests.support.server import Server


def test_ready_and_heartbeat_name_a_database_that_went_away(tmp_path, postgres_url):
    server = Server(tmp_path, postgres_url, command=("run", "scheduler"), ready_path="/ready")
    try:
        assert requests.get(server.root_url + "/ready", timeout=10).json() == {"ready": True,
                                                                               "checks": {"store": "ok"}}
        drop_database_at(postgres_url)  # closes the process's connections, and nothing comes back
        ready = requests.get(server.root_url + "/ready", timeout=10)
        assert ready.status_code == 503 and ready.headers["Content-Type"].startswith("application/json")
        body = ready.json()
        assert body["ready"] is False and body["checks"]["store"] != "ok"
        heartbeat = requests.get(server.root_url + "/__heartbeat__", timeout=10)
        assert heartbeat.status_code == 503
        assert heartbeat.json()["status"] == "error" and heartbeat.json()["checks"] == {"store": "error"}
        assert heartbeat.json()["details"]["store"] == body["checks"]["store"]
        alive = requests.get(server.root_url + "/__lbheartbeat__", timeout=10)
        assert (alive.status_code, alive.json()) == (200, {})
    finally:
        server.stop()
