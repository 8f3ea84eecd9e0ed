"""Named SQL statements kept in .sql files beside the code that runs them.

A statement starts at `-- name: <name>`; `-- name: <name> [postgres]` (or
`[sqlite]`) marks a statement for one dialect only. Parameters are written
`:name` and come out in the driver's style (`%(name)s` for psycopg)."""

import re
from functools import cache
from pathlib import Path

DIALECTS = ("postgres", "sqlite")
_HERE = Path(__file__).parent
_NAME = re.compile(r"^-- name: (\w+)(?: \[(\w+)\])?\s*$", re.M)
_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


@cache
def statements(file: str, dialect: str) -> dict[str, str]:
    """{name: statement} from `file` for `dialect`."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    parts = _NAME.split((_HERE / file).read_text())[1:]
    found = {}
    for name, only, body in zip(parts[::3], parts[1::3], parts[2::3]):
        if only is not None and only != dialect:
            continue
        sql = "\n".join(line for line in body.strip().splitlines() if not line.startswith("--"))
        sql = sql.rstrip(";")
        if dialect == "postgres":
            sql = _PARAM.sub(r"%(\1)s", sql)
        found[name] = sql
    return found
