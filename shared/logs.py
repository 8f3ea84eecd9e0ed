"""Structured logs: one JSON object per line (or plain text for humans).

Every JSON line carries the time in UTC with milliseconds, the level, the
logger, the message, the process id and the process's role(s) (set once by
`configure`), and the fields a call passes with `extra=fields(...)`."""

import logging
import os
import sys
import time

import orjson



class JsonFormatter(logging.Formatter):
    def __init__(self, role: str = ""):
        super().__init__()
        self.role, self.pid = role, os.getpid()
        self.second, self.second_text = -1, ""  # the last second formatted (lines come many per second)

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        if seconds != self.second:
            self.second, self.second_text = seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        entry = {"time": f"{self.second_text}.{int((record.created - seconds) * 1000):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                 "pid": self.pid, "role": self.role}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(fmt: str = "json", level: str = "info", role: str = "") -> None:
    """`role`: what this process runs (`api-gateway`, `dev`, ...), on every line."""
    # Every request logs a line: skip what no line shows (the logging HOWTO's "Optimization"); syscalls
    # such as getpid are dear on some VMs, so the pid is read once (these processes never fork).
    logging.logProcesses = False
    logging._srcfile = None  # no caller lookup: no funcName/lineno in our lines
    handler = logging.StreamHandler(sys.stderr)
    text = logging.Formatter(f"%(asctime)s %(levelname)s {role or '-'}[{os.getpid()}] %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter(role) if fmt == "json" else text)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # ours is taskjournal.access


def fields(**values) -> dict:
    """extra= for a log call: `log.info("claimed", extra=fields(taskId=...))`."""
    return {"fields": values}
