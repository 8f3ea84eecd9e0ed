"""Request schemas of the Queue API (our own files; field rules as upstream's),
compiled once to fast validators."""

import json
import re
from functools import cache
from pathlib import Path

import fastjsonschema

from taskjournal.shared.domain.time import parse_ms

_HERE = Path(__file__).parent
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _date_time(value: str) -> bool:
    """RFC 3339 date-time, as JSON Schema's `format: date-time` means it."""
    if not _RFC3339.match(value):
        return False
    try:
        parse_ms(value)
        return True
    except ValueError:
        return False


FORMATS = {"date-time": _date_time}


class SchemaError(ValueError):
    def __init__(self, schema_id: str, message: str):
        super().__init__(message)
        self.schema_id, self.message = schema_id, message


@cache
def _compiled(name: str):
    schema = json.loads((_HERE / f"{name}.json").read_text())
    return schema["$id"], fastjsonschema.compile(schema, formats=FORMATS, use_default=True)


def validate(name: str, body):
    """The body with schema defaults filled in, or SchemaError."""
    schema_id, check = _compiled(name)
    try:
        return check(body)
    except fastjsonschema.JsonSchemaException as err:
        raise SchemaError(schema_id, str(err)) from None


@cache
def published(prefix: str = "/schemas/journal/v1/") -> dict[str, bytes]:
    """Our own API's output schemas, by the name their `$id` gives under
    `prefix` (what the journal reference's `output` names): served as they are."""
    found = {}
    for path in _HERE.glob("*.json"):
        schema_id = json.loads(path.read_text()).get("$id", "")
        if schema_id.startswith(prefix):
            found[schema_id[len(prefix):].removesuffix("#")] = path.read_bytes()
    return found
