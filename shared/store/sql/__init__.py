"""Named SQL statements kept in .sql files beside the code that runs them."""

import re
from functools import cache
from pathlib import Path

_HERE = Path(__file__).parent
_NAME = re.compile(r"^-- name: (\w+)\s*$", re.M)
_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)")


@cache
def statements(file: str, dialect: str) -> dict[str, str]:
    """{name: statement} from `file`, with :name parameters in the driver's style."""
    text = (_HERE / file).read_text()
    parts = _NAME.split(text)[1:]
    skip_locked = "FOR UPDATE SKIP LOCKED" if dialect == "postgres" else ""
    found = {}
    for name, body in zip(parts[::2], parts[1::2]):
        sql = "\n".join(line for line in body.strip().splitlines() if not line.startswith("--"))
        sql = sql.replace("{skip_locked}", skip_locked).rstrip(";")
        if dialect == "postgres":
            sql = _PARAM.sub(r"%(\1)s", sql)
        found[name] = sql
    return found
