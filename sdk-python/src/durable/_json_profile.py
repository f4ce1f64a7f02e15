r"""The JSON profile of every payload: what any SDK can decode and PostgreSQL can store.

Every ``*_json`` field of every RPC holds one JSON value (RFC 8259) that also keeps to
I-JSON (RFC 7493) and to what ``jsonb`` stores:

- **Depth**: at most :data:`MAX_DEPTH` (64) arrays and objects nested in one another.
  Deeper values break recursive decoders (Python's stops near 1,000 levels, Rust's
  serde_json at 128), so they are refused before they are stored.
- **Numbers**: finite and within the range of an IEEE 754 double (about ±1.8e308):
  ``NaN``, ``Infinity`` and ``1e400`` are refused. Integers beyond ±2**53 are accepted
  (Python keeps them exact), but an SDK that decodes numbers as doubles rounds them:
  send such ids as strings.
- **Strings** (keys included): Unicode text without U+0000 (``\u0000``; ``jsonb`` cannot
  hold it) and without a lone surrogate (``\ud800`` not followed by its low half).
- **Objects**: key order is not kept (``jsonb`` sorts keys), and of duplicate keys the
  last one wins.

The orchestrator applies :func:`problem` to every payload it receives; the SDK applies it
to what it encodes, so a value outside the profile fails where it was made. The check is
cheap: one parse in C, plus scans of the text that only look further when something in
it could break a rule.
"""

from __future__ import annotations

import json
import math
import re
import sys
from itertools import accumulate
from typing import Any

__all__ = ["MAX_DEPTH", "ProfileError", "decode", "problem"]

MAX_DEPTH = 64
"""The most arrays and objects a payload may nest (``[[1]]`` nests 2)."""

_MAX_INT = int(sys.float_info.max)
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
# Escapes that could be U+0000 or half of a surrogate pair. A match is only a suspicion
# (it may follow an escaped backslash): the decoded value decides.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
# Byte tables for scans at C speed (Python's re is slow at character classes).
_NUMBER_CLASS = {
    **dict.fromkeys(b"0123456789", ord("0")),
    **dict.fromkeys(b"eE", ord("e")),
    **dict.fromkeys(b"+-", ord("+")),
}
_NUMBERS = bytes(_NUMBER_CLASS.get(i, ord(" ")) for i in range(256))
_LONG_INTEGER = b"0" * 309  # 1e308 has 309 digits
_OUTLINE = bytes.maketrans(b"{}", b"[]")
_NOT_OUTLINE = bytes(b for b in range(256) if b not in b'"[]{}')
_STRING = re.compile(rb'"[^"]*"')
_STEP = {ord("["): 1, ord("]"): -1}


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


_UNDECODED = object()


class ProfileError(ValueError):
    """JSON text outside the profile; the message is a phrase to follow a field's name."""


def problem(text: str, *, well_formed: bool = False) -> str | None:
    """What keeps ``text`` out of the profile, as a phrase after a field name; None if fine.

    Args:
        text: One JSON value.
        well_formed: ``text`` came from ``json.dumps`` with ``allow_nan=False``: skip the
            parse (only the depth, the strings and the integers are left to check).
    """
    try:
        if well_formed:
            _check_text(text, _UNDECODED)
        else:
            decode(text)
    except ProfileError as exc:
        return str(exc)
    return None


def decode(text: str) -> Any:
    """The value of JSON ``text``; ProfileError when it is not JSON or not in the profile."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ProfileError(_too_deep(None)) from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            raise ProfileError(_NUMBER) from None
        raise ProfileError(f"is not valid JSON: {exc}") from None
    _check_text(text, value)
    return value


def _check_text(text: str, value: Any) -> None:
    """Check well-formed ``text``, decoded as ``value`` (or not decoded yet)."""
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise ProfileError(_too_deep(depth))
    if _suspect(text):
        bad = _decoded_problem(json.loads(text) if value is _UNDECODED else value)
        if bad is not None:
            raise ProfileError(bad)


def _suspect(text: str) -> bool:
    r"""Whether well-formed ``text`` could break a rule on strings or numbers.

    Looks for a \u0000 or surrogate escape, a run of 309 digits (an integer beyond a
    double's range) or a 3-digit exponent (1e400). A suspicion is confirmed on the
    decoded value: the escape may follow an escaped backslash, and 1e-300 is fine.
    """
    if "\\u" in text and _SUSPECT_ESCAPE.search(text):
        return True
    numbers = text.encode().translate(_NUMBERS)
    return _LONG_INTEGER in numbers or b"e000" in numbers or b"e+000" in numbers


def _too_deep(depth: int | None) -> str:
    levels = f"{depth} levels" if depth else "far more levels"
    return (
        f"is JSON nested too deeply: {levels} of arrays and objects, over the limit of {MAX_DEPTH}"
    )


_NUMBER = "holds a number beyond the range of an IEEE 754 double (about ±1.8e308)"


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects in well-formed JSON ``text``."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0  # cannot be too deep: no need to know how deep
    # Strings may hold brackets: drop their escaped backslashes and quotes (JSON reads a
    # run of backslashes in pairs, left to right, as str.replace does), keep only quotes
    # and brackets, then drop what is left of the strings.
    plain = text.replace("\\\\", "").replace('\\"', "") if "\\" in text else text
    outline = plain.encode().translate(_OUTLINE, _NOT_OUTLINE).replace(b'""', b"")
    if b'"' in outline:
        outline = _STRING.sub(b"", outline)
    return max(accumulate(map(_STEP.__getitem__, outline)), default=0)


def _decoded_problem(value: Any) -> str | None:
    """The first string or number of a decoded value that breaks the profile (no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            bad = _string_problem(item)
            if bad:
                return bad
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if abs(item) > _MAX_INT:
                return _NUMBER
        elif isinstance(item, float):
            if not math.isfinite(item):
                return _NUMBER
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return None


def _string_problem(text: str) -> str | None:
    found = _BAD_CHAR.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "holds the character U+0000 (\\u0000), which payloads must not contain"
    return (
        f"holds a lone surrogate (\\u{ord(found.group()):04x} without its pair), which is "
        "not a Unicode character"
    )
