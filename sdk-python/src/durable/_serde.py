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

from durable import _json_profile

__all__ = ["JSONSerializationError", "UndecodableJSON", "dumps", "loads", "loads_or_raw"]


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


class UndecodableJSON(str):
    """A payload the SDK could not decode, as the raw JSON text the orchestrator sent.

    Readers (``get_execution``, ``list_executions``, ``durable get``) put it in place of
    the value instead of failing for the whole page; ``error`` says why. The orchestrator
    refuses such payloads; it can only meet one stored by an older version.
    """

    error: str

    def __new__(cls, text: str, error: str) -> UndecodableJSON:
        """The raw ``text`` and why it could not be decoded."""
        self = super().__new__(cls, text)
        self.error = error
        return self

    def __reduce__(self) -> tuple[type[UndecodableJSON], tuple[str, str]]:
        """Copies and pickles keep the reason (``dataclasses.asdict`` deep-copies)."""
        return (UndecodableJSON, (str(self), self.error))


def dumps(value: Any) -> str:
    """Encode a value as compact JSON text within the JSON profile.

    NaN and infinities, nesting deeper than the profile's limit, integers beyond a
    double's range, NUL characters and lone surrogates are refused with
    JSONSerializationError: the orchestrator would refuse them.
    """
    try:
        text = json.dumps(value, default=_default, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:  # NaN/Infinity or a circular reference
        raise JSONSerializationError(f"value is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise JSONSerializationError(
            f"value is nested too deeply (the limit is {_json_profile.MAX_DEPTH} levels)"
        ) from exc
    bad = _json_profile.problem(text, well_formed=True)
    if bad is not None:
        raise JSONSerializationError(f"value {bad}")
    return text


def loads(text: str) -> Any:
    """Decode JSON text; empty text is ``None``."""
    if not text:
        return None
    return json.loads(text)


def loads_or_raw(text: str) -> Any:
    """Decode a payload the orchestrator returned; never raises.

    Text that is not JSON or not within the JSON profile (too deep to decode safely, say)
    comes back as :class:`UndecodableJSON`: the raw text, with the reason.
    """
    if not text:
        return None
    try:
        return _json_profile.decode(text)
    except ValueError as exc:
        return UndecodableJSON(text, f"the payload {exc}")
