"""The one JSON boundary: every value a step returns or receives crosses it.

Steps always receive values decoded from JSON, on the first run as on a retry, so
they see the same shapes every time: tuples arrive as lists, dates as ISO strings.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Any

__all__ = ["JSONSerializationError", "dumps", "loads"]


class JSONSerializationError(TypeError):
    """A value cannot be written as JSON."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset):
        return list(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise JSONSerializationError(
        f"value of type {type(value).__name__} is not JSON serializable; return dicts, "
        "lists, strings, numbers, booleans or None (dates, UUIDs, decimals, enums, sets "
        "and dataclasses are converted)"
    )


def dumps(value: Any) -> str:
    """Encode a value as compact JSON text; NaN and infinities are refused."""
    try:
        return json.dumps(value, default=_default, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:  # NaN/Infinity or a circular reference
        raise JSONSerializationError(f"value is not valid JSON: {exc}") from exc


def loads(text: str) -> Any:
    """Decode JSON text; empty text is ``None``."""
    if not text:
        return None
    return json.loads(text)
