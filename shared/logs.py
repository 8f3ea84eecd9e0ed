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
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
                 + f".{int((record.created - seconds) * 1000):03d}Z",
                 "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage(),
                 "pid": os.getpid(), "role": self.role}
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(fmt: str = "json", level: str = "info", role: str = "") -> None:
    """`role`: what this process runs (`api-gateway`, `dev`, ...), on every line."""
    handler = logging.StreamHandler(sys.stderr)
    text = logging.Formatter(f"%(asctime)s %(levelname)s {role or '-'}[%(process)d] %(name)s: %(message)s")
    handler.setFormatter(JsonFormatter(role) if fmt == "json" else text)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # ours is taskjournal.access


def fields(**values) -> dict:
    """extra= for a log call: `log.info("claimed", extra=fields(taskId=...))`."""
    return {"fields": values}
