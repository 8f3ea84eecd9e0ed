"""Request schemas of the Queue API (our own files; field rules as upstream's),
compiled once to fast validators."""

import json
import re
from functools import cache
from pathlib import Path

import fastjsonschema

from shared.domain.time import parse_ms

_HERE = Path(__file__).parent
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def _date_time(value: str) -> bool:
    try:
        parse_ms(value)
        return "T" in value
    except ValueError:
        return False


FORMATS = {"date-time": _date_time, "email": lambda v: bool(_EMAIL.match(v))}


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
        raise SchemaError(schema_id, err.message) from None
