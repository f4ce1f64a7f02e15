"""Human inputs: what a step may ask for, and whether an answer fits what it asked.

Pure functions: a spec is the JSON document stored with the pending input
({"kind", "prompt", "choices", "fields"}); an answer is the decoded JSON value.
"""

from __future__ import annotations

from typing import Any

from durable_server.errors import InvalidArgumentError

__all__ = ["KINDS", "check_answer", "check_spec"]

KINDS = ("approval", "single_choice", "multi_choice", "free_text", "form")
FIELD_TYPES = ("any", "string", "number", "integer", "boolean")


def check_spec(spec: dict[str, Any]) -> str | None:
    """Why ``spec`` cannot be asked, or None when it can."""
    kind = spec.get("kind")
    if kind not in KINDS:
        return f"input kind must be one of {', '.join(KINDS)}, got {kind!r}"
    choices = spec.get("choices") or []
    if kind in ("single_choice", "multi_choice"):
        if not choices:
            return f"a {kind} input needs choices"
        if len(set(choices)) != len(choices):
            return "input choices must be distinct"
    fields = spec.get("fields") or []
    if kind == "form":
        if not fields:
            return "a form input needs fields"
        names = [f.get("name") for f in fields]
        if not all(names) or len(set(names)) != len(names):
            return "form fields need distinct, non-empty names"
        for f in fields:
            if (f.get("type") or "any") not in FIELD_TYPES:
                return f"form field {f['name']!r} has type {f.get('type')!r}: use {FIELD_TYPES}"
    return None


def _fits(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def check_answer(name: str, spec: dict[str, Any], value: Any) -> None:
    """InvalidArgumentError, saying what is expected, when ``value`` does not fit ``spec``."""
    kind = spec["kind"]
    where = f"input {name!r} ({kind})"
    if kind == "approval":
        if isinstance(value, bool):
            return
        if (
            isinstance(value, dict)
            and isinstance(value.get("approved"), bool)
            and set(value) <= {"approved", "comment"}
            and isinstance(value.get("comment", ""), str)
        ):
            return
        raise InvalidArgumentError(
            f'{where} takes true or false, or {{"approved": bool, "comment": "..."}}; got {value!r}'
        )
    choices = spec.get("choices") or []
    if kind == "single_choice":
        if value not in choices or not isinstance(value, str):
            raise InvalidArgumentError(f"{where} takes one of {choices}; got {value!r}")
        return
    if kind == "multi_choice":
        if (
            not isinstance(value, list)
            or len(set(map(str, value))) != len(value)
            or any(not isinstance(v, str) or v not in choices for v in value)
        ):
            raise InvalidArgumentError(
                f"{where} takes a list of distinct choices from {choices}; got {value!r}"
            )
        return
    if kind == "free_text":
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{where} takes a string; got {value!r}")
        return
    fields = {f["name"]: f for f in spec.get("fields") or []}
    if not isinstance(value, dict):
        raise InvalidArgumentError(f"{where} takes an object with fields {sorted(fields)}")
    missing = sorted(n for n, f in fields.items() if f.get("required") and n not in value)
    if missing:
        raise InvalidArgumentError(f"{where} is missing required field(s) {missing}")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise InvalidArgumentError(f"{where} has no field(s) {unknown}; it has {sorted(fields)}")
    for n, v in value.items():
        expected = fields[n].get("type") or "any"
        if not _fits(expected, v):
            raise InvalidArgumentError(f"{where} field {n!r} must be {expected}; got {v!r}")
