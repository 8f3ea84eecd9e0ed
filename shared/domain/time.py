"""Instants are integer milliseconds since the epoch; the API shows them as
ISO 8601 with milliseconds and a `Z`, the one format used everywhere."""

import datetime as _dt
import time as _time
from functools import lru_cache

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def now_ms() -> int:
    return int(_time.time() * 1000)


def format_ms(ms: int) -> str:
    return f"{_second(ms // 1000)}.{ms % 1000:03d}Z"


@lru_cache(maxsize=4096)
def _second(seconds: int) -> str:
    """`2026-01-01T00:00:00` (cached: a history or a replay formats many instants of the same second)."""
    m = _EPOCH + _dt.timedelta(seconds=seconds)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"


def parse_ms(text: str) -> int:
    """Parse an RFC 3339 date-time; digits below the millisecond are dropped."""
    moment = _dt.datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def add_one_year(ms: int) -> int:
    """Same month, day and time one calendar year later (29 Feb -> 1 Mar)."""
    moment = _EPOCH + _dt.timedelta(milliseconds=ms)
    try:
        later = moment.replace(year=moment.year + 1)
    except ValueError:
        later = moment.replace(year=moment.year + 1, month=3, day=1)
    return int((later - _EPOCH) / _dt.timedelta(milliseconds=1))
