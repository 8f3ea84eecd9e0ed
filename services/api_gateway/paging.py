"""Continuation tokens: opaque to clients, in upstream's two formats (offset
tokens as Hashids, keyset tokens as base64 JSON); a bad token restarts."""

import base64

import orjson
from hashids import Hashids

MAX_LIMIT = 1000
MAX_OFFSET = 2**31  # larger decoded offsets are forged tokens: start from the beginning
_HASHIDS = Hashids(salt="salt", min_length=10)


def page_size(query: dict) -> int:
    """`limit` (digits only, checked by the router), capped. Upstream caps
    parseInt(limit) so any number of digits is fine; Python's int() refuses
    over 4300 digits, so a number longer than the cap is the cap."""
    digits = query.get("limit", str(MAX_LIMIT)).lstrip("0") or "0"
    return MAX_LIMIT if len(digits) > len(str(MAX_LIMIT)) else min(int(digits), MAX_LIMIT)


def offset_of(query: dict) -> int:
    token = query.get("continuationToken")
    decoded = _HASHIDS.decode(token) if token else ()
    return decoded[0] if decoded and decoded[0] < MAX_OFFSET else 0


def offset_token(offset: int) -> str:
    return _HASHIDS.encode(offset)


def keyset_of(query: dict) -> tuple[int, str]:
    token = query.get("continuationToken")
    try:
        ms, task_id = orjson.loads(base64.b64decode(token or ""))
        if isinstance(ms, int) and isinstance(task_id, str) and -1 <= ms < 2**62:
            return ms, task_id
    except Exception:
        pass
    return -1, ""  # an undecodable token means "from the start"


def keyset_token(ms: int, task_id: str) -> str:
    return base64.b64encode(orjson.dumps([ms, task_id])).decode()


def offset_page(rows: list, offset: int, limit: int) -> tuple[list, str | None]:
    """A page of at most `limit` rows fetched from `offset` (the query asked
    for limit + 1, so an extra row means there is more)."""
    page = rows[:limit]
    more = limit > 0 and len(rows) > limit
    return page, offset_token(offset + limit) if more else None
