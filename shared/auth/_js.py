"""Small helpers that reproduce JavaScript value semantics upstream relies on."""

import math
import re

_LEADING_INT = re.compile(r"\s*([+-]?\d+)")


def is_number(value) -> bool:
    """True for JSON numbers (typeof === 'number'); bool is not a number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_truthy(value) -> bool:
    """JavaScript truthiness: [] and {} are truthy, 0, "", null, false are not."""
    if value is None or value is False:
        return False
    if is_number(value):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str):
        return value != ""
    return True


def number_str(value) -> str:
    """Render a number the way JavaScript's String(n) does for common values."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


def parse_int(text: str):
    """parseInt(text, 10): leading integer or None (NaN)."""
    match = _LEADING_INT.match(text)
    return int(match.group(1)) if match else None


def utf16_len(text: str) -> int:
    """String length as JavaScript counts it (UTF-16 code units)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le", "surrogatepass")) // 2
