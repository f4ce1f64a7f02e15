"""Request validation: names, sizes, ids, page sizes — each failure says what to fix."""

from __future__ import annotations

import base64
import binascii
import contextlib
import math
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from durable._shared import json_problem
from durable.v1 import common_pb2, definition_pb2
from durable_server.engine.definitions import canonical_key
from durable_server.errors import InvalidArgumentError, InvalidJsonError

__all__ = [
    "check_definition",
    "check_duration",
    "check_enum",
    "check_execution_id",
    "check_json",
    "check_name",
    "check_page_size",
    "check_payload",
    "check_text",
    "check_time",
    "check_worker_id",
    "naming_bad_json",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,127}")  # the whole name (fullmatch)
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50
MAX_KEY_LENGTH = 255
MAX_QUEUES = 100  # per call: the queues a poll names are matched and probed one by one
# A longer timeout, delay or wait is a mistake (and would overflow the dates computed from it).
MAX_DURATION_SECS = 100 * 366 * 24 * 3600


def check_name(field: str, value: str) -> str:
    """A workflow, step, queue, event or input name (the SDK's ``check_name`` rule)."""
    if not value:
        raise InvalidArgumentError(f"{field} is required")
    if not _NAME.fullmatch(value):
        raise InvalidArgumentError(
            f"{field} {value!r} is invalid: use 1-128 characters from ASCII letters, digits, "
            "'_', '-', '.', starting with a letter or '_'"
        )
    return value


def check_payload(field: str, text: str, max_bytes: int) -> str:
    """JSON text within the size limit and the JSON profile; empty means null.

    The profile (``durable._json_profile``: nesting depth, numbers, strings) is what every
    SDK can decode and PostgreSQL can store; checking it here means no reader ever meets a
    stored payload it cannot read.
    """
    size = len(text) if text.isascii() else len(text.encode())
    if size > max_bytes:
        raise InvalidArgumentError(
            f"{field} is {size} bytes, over the limit of {max_bytes} bytes: store large data "
            "elsewhere and pass a reference"
        )
    return check_json(field, text or "null")


def check_json(field: str, text: str) -> str:
    """JSON text within the JSON profile (see :func:`check_payload`)."""
    bad = json_problem(text)
    if bad is not None:
        raise InvalidArgumentError(f"{field} {bad}")
    return text


def check_text(field: str, value: str, max_chars: int | None = None) -> str:
    """Free text stored as such: without the NUL character, which PostgreSQL cannot store.

    (A lone surrogate cannot arrive in a protobuf string: the request would not parse.)
    """
    if "\x00" in value:
        raise InvalidArgumentError(f"{field} must not contain the NUL character (U+0000)")
    if max_chars is not None and len(value) > max_chars:
        raise InvalidArgumentError(f"{field} is longer than {max_chars} characters")
    return value


@contextlib.contextmanager
def naming_bad_json(payloads: Mapping[str, str]) -> Iterator[None]:
    """When PostgreSQL refuses a payload, say which of ``payloads`` (field -> text) it was.

    Payloads are checked against the profile first, so this is a last guard: the
    database's own words never reach the caller.
    """
    try:
        yield
    except InvalidJsonError as exc:
        for field, text in payloads.items():
            bad = json_problem(text)
            if bad is not None:
                raise InvalidArgumentError(f"{field} {bad}") from exc
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


def check_duration(field: str, value: duration_pb2.Duration) -> timedelta:
    """A Duration within a century either way, as a timedelta."""
    if abs(value.seconds) > MAX_DURATION_SECS or abs(value.nanos) > 999_999_999:
        raise InvalidArgumentError(
            f"{field} is not a valid duration of at most 100 years "
            f"(seconds={value.seconds}, nanos={value.nanos})"
        )
    return value.ToTimedelta()


def check_time(field: str, value: timestamp_pb2.Timestamp) -> datetime:
    """A valid Timestamp (years 1 to 9999, nanos within a second), as an aware datetime."""
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgumentError(f"{field} is not a valid timestamp: {exc}") from exc


def check_enum(field: str, enum: Any, value: int) -> int:
    """A number that ``enum`` (a protobuf enum wrapper) has; proto3 lets any int32 through."""
    if value not in enum.values():
        raise InvalidArgumentError(f"{field} {value} is not one of {', '.join(enum.keys())}")
    return value


def check_goto(value: str) -> str:
    """A goto target: empty (none) or a node name."""
    return check_name("goto_target", value) if value else ""


def check_worker_id(value: str) -> str:
    """A non-empty worker id of reasonable length, without NUL (PostgreSQL cannot store it)."""
    if not value or len(value) > MAX_KEY_LENGTH:
        raise InvalidArgumentError(f"worker_id is required (1-{MAX_KEY_LENGTH} characters)")
    return check_text("worker_id", value)


def check_idempotency_key(value: str) -> str | None:
    """An optional idempotency key."""
    return check_text("idempotency_key", value, MAX_KEY_LENGTH) or None


def check_event_id(value: str) -> str | None:
    """An optional event id (SendEvent's idempotency key)."""
    return check_text("event_id", value, MAX_KEY_LENGTH) or None


def check_page_size(value: int) -> int:
    """A page size: 0 means the default."""
    if value < 0 or value > MAX_PAGE_SIZE:
        raise InvalidArgumentError(f"page_size must be within 0..{MAX_PAGE_SIZE}, got {value}")
    return value or DEFAULT_PAGE_SIZE


_KEY_JSON = re.compile(r'^(true|false|-?(0|[1-9][0-9]*)|"([^"\\]|\\.)*")$')


def check_definition(d: definition_pb2.WorkflowDefinition) -> None:
    """A definition the engine can run and reads as it was meant.

    Every node named once, no empty sequences, and nothing the engine would otherwise
    ignore or guess at: an enum number the proto does not define, a default without
    ``has_default``.
    """
    check_name("workflow name", d.name)
    wf = f"workflow {d.name!r}"
    if d.max_step_runs < 0:
        raise InvalidArgumentError(f"{wf}: max_step_runs must not be negative")
    if check_duration(f"{wf}: timeout", d.timeout) < timedelta(0):
        raise InvalidArgumentError(f"{wf}: timeout must not be negative")
    for schedule in d.schedules:
        _check_declared_schedule(wf, schedule)
    if d.queue:
        check_name(f"queue of {wf}", d.queue)
    seen: set[str] = set()

    def named(kind: str, name: str) -> None:
        check_name(f"{kind} name in {wf}", name)
        if name in seen:
            raise InvalidArgumentError(
                f"{wf} has two nodes named {name!r}: step, branch, parallel, foreach and "
                "compensation names must be unique in the workflow"
            )
        seen.add(name)

    def sequence(nodes: Sequence[definition_pb2.Node], where: str) -> None:
        if not nodes:
            raise InvalidArgumentError(f"{wf}: {where} has no steps")
        for n in nodes:
            node(n)

    def node(n: definition_pb2.Node) -> None:
        kind = n.WhichOneof("kind")
        if kind == "step":
            step = n.step
            named("step", step.name)
            _check_step_options(f"{wf}: step {step.name!r}", step)
            if step.HasField("compensation"):
                named("compensation", step.compensation.name)
                _check_step_options(
                    f"{wf}: compensation {step.compensation.name!r}", step.compensation
                )
        elif kind == "branch":
            b = n.branch
            named("branch", b.name)
            if not b.cases:
                raise InvalidArgumentError(f"{wf}: branch {b.name!r} has no cases")
            keys: set[str] = set()
            for case in b.cases:
                if not _KEY_JSON.match(case.key_json):
                    raise InvalidArgumentError(
                        f"{wf}: branch {b.name!r} has case key {case.key_json!r}: keys are "
                        'compact JSON strings, integers or booleans, e.g. ""invoice"", "3"'
                    )
                check_json(f"{wf}: branch {b.name!r} case key", case.key_json)
                key = canonical_key(case.key_json)
                if key in keys:
                    raise InvalidArgumentError(
                        f"{wf}: branch {b.name!r} has two cases of the key {key} (keys are "
                        "compared in canonical form: see docs/protocol.md, Branch keys)"
                    )
                keys.add(key)
                sequence(case.nodes, f"case {case.key_json} of branch {b.name!r}")
            if b.has_default:
                sequence(b.default_nodes, f"the default of branch {b.name!r}")
            elif b.default_nodes:
                raise InvalidArgumentError(
                    f"{wf}: branch {b.name!r} has default_nodes but not has_default: set "
                    "has_default for a default case (without it the nodes would never run)"
                )
        elif kind == "parallel":
            p = n.parallel
            named("parallel", p.name)
            check_enum(f"{wf}: parallel {p.name!r}: on_error", definition_pb2.ErrorMode, p.on_error)
            if not p.branches:
                raise InvalidArgumentError(f"{wf}: parallel {p.name!r} has no branches")
            names: set[str] = set()
            for br in p.branches:
                check_name(f"branch name in parallel {p.name!r}", br.name)
                if br.name in names:
                    raise InvalidArgumentError(
                        f"{wf}: parallel {p.name!r} has two branches named {br.name!r}"
                    )
                names.add(br.name)
                sequence(br.nodes, f"branch {br.name!r} of parallel {p.name!r}")
        elif kind == "foreach":
            f = n.foreach
            named("foreach", f.name)
            check_enum(f"{wf}: foreach {f.name!r}: on_error", definition_pb2.ErrorMode, f.on_error)
            if f.concurrency < 0:
                raise InvalidArgumentError(
                    f"{wf}: foreach {f.name!r} concurrency must not be negative"
                )
            sequence(f.nodes, f"the body of foreach {f.name!r}")
        else:
            raise InvalidArgumentError(f"{wf} has a node with no kind")

    sequence(d.nodes, "the workflow")


def _check_step_options(what: str, step: definition_pb2.Step | definition_pb2.Compensation) -> None:
    if step.retry.max_attempts < 0:
        raise InvalidArgumentError(f"{what}: retry.max_attempts must be >= 0")
    if check_duration(f"{what}: timeout", step.timeout) < timedelta(0):
        raise InvalidArgumentError(f"{what}: timeout must not be negative")
    _check_retry(what, step.retry)


def _check_declared_schedule(wf: str, s: definition_pb2.DeclaredSchedule) -> None:
    what = f"{wf}: schedule {s.name!r}"
    check_name(f"schedule name in {wf}", s.name)
    check_text(f"cron of {what}", s.cron)
    check_text(f"timezone of {what}", s.timezone)
    if s.queue:
        check_name(f"queue of {what}", s.queue)
    check_enum(f"{what}: catch_up", common_pb2.CatchUp, s.catch_up)
    check_enum(f"{what}: overlap", common_pb2.Overlap, s.overlap)
    if s.catch_up_limit < 0:
        raise InvalidArgumentError(f"{what}: catch_up_limit must not be negative")
    if s.input_json:
        check_json(f"input_json of {what}", s.input_json)


def _check_retry(what: str, retry: common_pb2.RetryPolicy) -> None:
    check_enum(f"{what}: retry.backoff", common_pb2.Backoff, retry.backoff)
    for name in ("initial_delay", "max_delay"):
        if check_duration(f"{what}: retry.{name}", getattr(retry, name)) < timedelta(0):
            raise InvalidArgumentError(f"{what}: retry.{name} must not be negative")
    if retry.multiplier and not (math.isfinite(retry.multiplier) and retry.multiplier >= 1.0):
        raise InvalidArgumentError(f"{what}: retry.multiplier must be >= 1 (0 means 2)")
    if not 0.0 <= retry.jitter <= 1.0:
        raise InvalidArgumentError(f"{what}: retry.jitter must be within 0..1")


def check_queues(queues: Sequence[str]) -> list[str]:
    """Queue names to poll, each once, at most ``MAX_QUEUES``; empty means ``default``."""
    if len(queues) > MAX_QUEUES:
        raise InvalidArgumentError(f"queues: at most {MAX_QUEUES} per call, got {len(queues)}")
    return list(dict.fromkeys(check_name("queue", q) for q in queues)) or ["default"]


def encode_name_token(name: str) -> str:
    """An opaque cursor after the row named ``name``."""
    return base64.urlsafe_b64encode(f"name|{name}".encode()).decode().rstrip("=")


def decode_name_token(token: str) -> str:
    """The name in a token from :func:`encode_name_token`."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(
            "page_token is not valid: pass next_page_token from a previous response"
        ) from exc
    tag, _, name = raw.partition("|")
    if tag != "name" or "\x00" in name:
        raise InvalidArgumentError(
            "page_token is not valid: pass next_page_token from a previous response"
        )
    return name
