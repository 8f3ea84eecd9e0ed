"""Continuation tokens: opaque to clients, in upstream's two formats (offset
tokens as Hashids, keyset tokens as base64 JSON); a bad token restarts."""

import base64

import orjson
from hashids import Hashids

MAX_LIMIT = 1000
_HASHIDS = Hashids(salt="salt", min_length=10)


def page_size(query: dict) -> int:
    return min(int(query.get("limit", MAX_LIMIT)), MAX_LIMIT)


def offset_of(query: dict) -> int:
    token = query.get("continuationToken")
    decoded = _HASHIDS.decode(token) if token else ()
    return decoded[0] if decoded else 0


def offset_token(offset: int) -> str:
    return _HASHIDS.encode(offset)


def keyset_of(query: dict) -> tuple[int, str]:
    token = query.get("continuationToken")
    try:
        ms, task_id = orjson.loads(base64.b64decode(token))
        return int(ms), str(task_id)
    except Exception:  # any undecodable token means "from the start"
        return -1, ""


def keyset_token(ms: int, task_id: str) -> str:
    return base64.b64encode(orjson.dumps([ms, task_id])).decode()
