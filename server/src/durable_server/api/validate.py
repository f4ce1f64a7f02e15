"""Request validation: names, sizes, ids, page sizes — each failure says what to fix."""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence

from durable.v1 import definition_pb2
from durable_server.errors import InvalidArgumentError, InvalidJsonError

__all__ = [
    "check_definition",
    "check_execution_id",
    "check_name",
    "check_page_size",
    "check_payload",
    "check_worker_id",
    "naming_bad_json",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
MAX_KEY_LENGTH = 255


def check_name(field: str, value: str) -> str:
    """A workflow, step or queue name."""
    if not value:
        raise InvalidArgumentError(f"{field} is required")
    if not _NAME.match(value):
        raise InvalidArgumentError(
            f"{field} {value!r} is invalid: use 1-128 characters from letters, digits, '_', "
            "'-', '.', starting with a letter or '_'"
        )
    return value


def check_payload(field: str, text: str, max_bytes: int) -> str:
    """JSON text within the size limit; empty means null.

    Well-formedness is checked by PostgreSQL as the text becomes ``jsonb`` (user data is
    not parsed in Python on the hot path); :func:`naming_bad_json` names the field then.
    """
    size = len(text.encode())
    if size > max_bytes:
        raise InvalidArgumentError(
            f"{field} is {size} bytes, over the limit of {max_bytes} bytes: store large data "
            "elsewhere and pass a reference"
        )
    return text or "null"


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


@contextlib.contextmanager
def naming_bad_json(payloads: Mapping[str, str]) -> Iterator[None]:
    """When PostgreSQL refuses a payload, say which of ``payloads`` (field -> text) it was."""
    try:
        yield
    except InvalidJsonError as exc:
        for field, text in payloads.items():
            try:
                json.loads(text, parse_constant=_reject_constant)
            except ValueError as bad:
                raise InvalidArgumentError(f"{field} is not valid JSON: {bad}") from exc
        raise


def check_execution_id(value: str, field: str = "execution_id") -> str:
    """A UUID in canonical form."""
    if not value:
        raise InvalidArgumentError(f"{field} is required")
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidArgumentError(
            f"{field} {value!r} is not a valid execution id (a UUID)"
        ) from exc


def check_worker_id(value: str) -> str:
    """A non-empty worker id of reasonable length."""
    if not value or len(value) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(f"worker_id is required (1-{MAX_KEY_LENGTH} characters)")
    return value


def check_idempotency_key(value: str) -> str | None:
    """An optional idempotency key."""
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(f"idempotency_key is longer than {MAX_KEY_LENGTH} characters")
    return value or None


def check_page_size(value: int) -> int:
    """A page size: 0 means the default."""
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"page_size must be within 0..{MAX_PAGE_SIZE}, got {value}")
    return value or DEFAULT_PAGE_SIZE


def check_definition(d: definition_pb2.WorkflowDefinition) -> None:
    """A definition the engine can run."""
    check_name("workflow name", d.name)
    if not d.steps:
        raise InvalidArgumentError(f"workflow {d.name!r} has no steps")
    seen: set[str] = set()
    for step in d.steps:
        check_name(f"step name in workflow {d.name!r}", step.name)
        if step.name in seen:
            raise InvalidArgumentError(f"workflow {d.name!r} has two steps named {step.name!r}")
        seen.add(step.name)
        if step.retry.max_attempts < 0:
            raise InvalidArgumentError(f"step {step.name!r}: retry.max_attempts must be >= 0")
        if step.timeout.ToTimedelta().total_seconds() < 0:
            raise InvalidArgumentError(f"step {step.name!r}: timeout must not be negative")
    if d.queue:
        check_name(f"queue of workflow {d.name!r}", d.queue)


def check_queues(queues: Sequence[str]) -> list[str]:
    """Queue names to poll; empty means ``default``."""
    return [check_name("queue", q) for q in queues] or ["default"]
