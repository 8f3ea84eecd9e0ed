"""What the server's processes do during a phase: CPU per process (from /proc)
and event-loop lag per process (from each process's /metrics, the gauges of
shared/looplag.py). A server is one process (`dev` on SQLite), a supervisor
with children (`dev` on PostgreSQL, `stack`), gateways sharing a port."""

import os
import re
import threading
import time
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTED = re.compile(r"^started (\S+) \(pid (\d+), port (\d+)", re.MULTILINE)
LAG = re.compile(r'taskjournal_event_loop_lag_seconds\{pid="(\d+)",quantile="([\d.]+)"\} ([\d.e-]+)')
INFO = re.compile(r'taskjournal_process_info\{pid="(\d+)",roles="([^"]*)"\}')
SHORT = {"api-gateway": "gateway", "artifact-service": "artifacts", "dependency-resolver": "dependencies",
         "claim-resolver": "claims", "scheduler": "scheduler", "relay": "relay"}


# ------------------------------------------------------------------ CPU

def read_proc_stats():
    """Map pid -> (ppid, comm, cpu seconds) for every process we can read."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        stats[int(entry.name)] = (int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return stats


def label(pid: int, root: int) -> str:
    """A short name for one of the server's processes, from its command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "gone"
    if "run" in argv:
        roles = [a for a in argv[argv.index("run") + 1:] if a and not a.startswith("-")]
        if "relay" in roles and len(roles) > 1:
            return "back-office"
        return "+".join(SHORT.get(role, role) for role in roles if not (role == "artifact-service" and
                                                                          "api-gateway" in roles))
    return "supervisor" if pid == root and any(kid for kid in _children(pid)) else "server"


def _children(pid: int) -> list[int]:
    return [child for child, (ppid, _, _) in read_proc_stats().items() if ppid == pid]


def cpu_sample(server_pid):
    """CPU seconds used so far by each process of the server's tree and of PostgreSQL."""
    stats = read_proc_stats()
    tree, todo = set(), [server_pid]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += [child for child, (ppid, _, _) in stats.items() if ppid == pid]
    return {"t": time.monotonic(), "root": server_pid,
            "server": {pid: stats[pid][2] for pid in tree if pid in stats},
            "postgres": {pid: cpu for pid, (_, comm, cpu) in stats.items() if comm == "postgres"}}


def cpu_between(start, end):
    """CPU used between two samples, as seconds and as cores kept busy; and
    per server process (by label; several gateways: a list, busiest first).
    Counted per process: one that exited in between is left out."""
    wall = end["t"] - start["t"]
    result = {"wall_s": round(wall, 2)}
    for name in ("server", "postgres"):
        used = sum(cpu - start[name].get(pid, 0.0) for pid, cpu in end[name].items())
        result[f"{name}_cpu_s"] = round(used, 2)
        result[f"{name}_cores"] = round(used / wall, 2) if wall > 0 else None
    processes: dict[str, list[float]] = {}
    for pid, cpu in end["server"].items():
        if wall > 0:
            processes.setdefault(label(pid, end.get("root", 0)), []).append(
                round((cpu - start["server"].get(pid, 0.0)) / wall, 2))
    result["processes"] = {name: sorted(cores, reverse=True) for name, cores in sorted(processes.items())}
    return result


# ------------------------------------------------------------------ loop lag

def ops_urls(root_url: str, log_path) -> list[str]:
    """Where the server's processes answer /metrics: the API port (every
    gateway, reached by new connections) and each child's own port."""
    port = int(root_url.rsplit(":", 1)[1])
    ports = {int(p) for _, _, p in STARTED.findall(Path(log_path).read_text(errors="replace"))}
    return [root_url] + [f"http://127.0.0.1:{p}" for p in sorted(ports - {port})]


def scrape(url: str) -> dict[str, dict]:
    """pid -> {roles, quantile -> seconds} from one /metrics answer (a new connection)."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    found: dict[str, dict] = {}
    for pid, roles in INFO.findall(text):
        found.setdefault(pid, {})["roles"] = roles
    for pid, q, value in LAG.findall(text):
        found.setdefault(pid, {})[q] = float(value)
    return found


class LagSampler(threading.Thread):
    """Scrapes every process's loop-lag gauges each `interval` seconds and keeps,
    per phase and process, the worst p99 and max seen (the gauges cover the
    last 10 s: a phase's figure is its worst window)."""

    def __init__(self, urls: list[str], tries_per_port: int = 6, interval: float = 1.0):
        super().__init__(daemon=True)
        self.urls, self.tries, self.interval = urls, tries_per_port, interval
        self.phase: str | None = None
        self.by_phase: dict[str, dict[str, dict]] = {}
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.wait(self.interval):
            phase = self.phase
            if phase is None:
                continue
            seen = self.by_phase.setdefault(phase, {})
            for url in self.urls:
                for _ in range(self.tries if url == self.urls[0] else 1):  # gateways share the first port
                    try:
                        answers = scrape(url)
                    except OSError:
                        continue
                    for pid, figures in answers.items():
                        worst = seen.setdefault(pid, {"roles": figures.get("roles", "?"), "p99_ms": 0.0,
                                                      "max_ms": 0.0})
                        worst["p99_ms"] = max(worst["p99_ms"], round(figures.get("0.99", 0.0) * 1000, 1))
                        worst["max_ms"] = max(worst["max_ms"], round(figures.get("1", 0.0) * 1000, 1))

    def stop(self) -> dict:
        self.stopped.set()
        self.join(5)
        return self.by_phase


def lag_summary(by_pid: dict) -> str:
    """`gateway p99/max ms, ...`: the worst gateway and every other process."""
    parts, gateways = [], [f for f in by_pid.values() if "api-gateway" in f["roles"]]
    if gateways:
        worst = max(gateways, key=lambda f: f["max_ms"])
        parts.append(f"gateway {worst['p99_ms']:g}/{worst['max_ms']:g}")
    for figures in by_pid.values():
        if "api-gateway" not in figures["roles"]:
            name = "back-office" if "relay" in figures["roles"] and " " in figures["roles"] else figures["roles"]
            parts.append(f"{name} {figures['p99_ms']:g}/{figures['max_ms']:g}")
    return ", ".join(parts) + " ms (p99/max)" if parts else "n/a"
