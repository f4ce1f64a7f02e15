"""Cron schedules declared with a workflow: :class:`Cron`.

Example::

    report = Workflow(
        "report",
        schedule=Cron("0 9 * * MON-FRI", tz="America/New_York", input={"kind": "daily"}),
    )
    cleanup = Workflow(
        "cleanup",
        schedules=[
            Cron("0 * * * *", name="cleanup.hourly"),
            Cron("@daily", name="cleanup.nightly", input={"deep": True}),
        ],
    )

The schedules are part of the workflow's definition: the worker registers them with it
and the orchestrator creates, updates (by name) and deletes them to match, so changing a
schedule in code changes the definition's version. They fire on the orchestrator, with
no worker needed at the time.

Names. Schedule names are global: unique among all schedules, declared or created with
:meth:`Client.create_schedule`. A workflow's only schedule is called after the workflow
unless it has a ``name``; with several, each must have a ``name`` (a name taken from the
position in the list would change when the list is reordered, and the orchestrator
would see one schedule deleted and another created).

What is checked here, without the orchestrator's cron parser: the expression has 5
fields (6 with seconds first) of cron characters, or is an alias, and the time zone is
known to :mod:`zoneinfo`. The orchestrator checks the fields' values when the worker
registers the workflow.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from durable import _serde
from durable._models import CatchUp, CatchUpName, Overlap, OverlapName
from durable._nodes import check_name

__all__ = ["CRON_ALIASES", "Cron", "check_cron", "check_timezone", "resolve_schedules"]

CRON_ALIASES: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
"""The aliases a cron expression may be instead of fields (case-insensitive)."""

_FIELD_RE: Final = re.compile(r"\S+", re.ASCII)
# Digits, names (JAN, MON, L, W), and * , - / # ? : what a cron field is made of.
_FIELD_CHARS: Final = re.compile(r"^[0-9A-Za-z*,/#?\-]+$", re.ASCII)
_INT32_MAX: Final = 2**31 - 1


def check_cron(expression: str) -> str:
    """``expression`` without surrounding whitespace, if it looks like a cron expression.

    Five fields (minute hour day-of-month month day-of-week), six with seconds first, or
    an alias (``@daily``...); the fields' values are the orchestrator's to check.

    Raises:
        ValueError: It is empty, an unknown alias, has another number of fields, or a
            field has a character no cron field has.
    """
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"the cron expression must be a non-empty string, got {expression!r}")
    expression = expression.strip()
    if expression.startswith("@"):
        if expression.lower() not in CRON_ALIASES:
            raise ValueError(
                f"unknown cron alias {expression!r}; use one of {', '.join(sorted(CRON_ALIASES))}"
            )
        return expression
    fields = _FIELD_RE.findall(expression)
    if len(fields) not in (5, 6):
        raise ValueError(
            f"cron expression {expression!r} has {len(fields)} field(s); use 5 (minute hour "
            "day-of-month month day-of-week), 6 with seconds first, or an alias such as @daily"
        )
    for value in fields:
        if not _FIELD_CHARS.match(value):
            raise ValueError(
                f"cron expression {expression!r}: field {value!r} has a character no cron "
                "field has (use digits, names, and * , - / # ?)"
            )
    return expression


def check_timezone(tz: str) -> str:
    """``tz`` if it is ``""`` (UTC) or a time zone :mod:`zoneinfo` knows; else ValueError."""
    if not isinstance(tz, str):
        raise ValueError(f"tz must be an IANA time zone name, got {tz!r}")
    if tz:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {tz!r}: use an IANA name such as 'America/New_York', "
                "or '' for UTC"
            ) from None
    return tz


def _check_int(what: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= _INT32_MAX:
        raise ValueError(f"{what} must be an int from {low} to {_INT32_MAX}, got {value!r}")
    return value


@dataclass(frozen=True)
class Cron:
    """A cron schedule for a workflow: ``Workflow(name, schedule=Cron(...))``.

    Each slot starts an execution of the workflow with ``input``. Slots follow the wall
    clock of ``tz``: a time that does not exist when clocks go forward fires once, at
    that time plus the jump (02:30 becomes 03:30); a time that happens twice when clocks
    go back fires once, the first time.

    Args:
        expression: Five fields (minute hour day-of-month month day-of-week), six with
            seconds first, or an alias: ``@yearly``, ``@annually``, ``@monthly``,
            ``@weekly``, ``@daily``, ``@midnight``, ``@hourly``.
        tz: An IANA time zone (``"America/New_York"``); ``""`` means UTC.
        input: The input of each run; anything the client's ``start`` accepts.
        name: The schedule's name, unique among all schedules; ``None`` means the
            workflow's name, for a workflow's only schedule.
        queue: The queue of its runs; ``None`` means the workflow's.
        priority: The runs' priority.
        enabled: False to declare it switched off.
        catch_up: Slots missed while no orchestrator ran: ``"once"`` (one run for them
            all), ``"skip"`` or ``"all"`` (each, up to ``catch_up_limit``, the latest).
        catch_up_limit: With ``"all"``, at most this many missed slots run.
        overlap: A slot while the previous run still runs: ``"allow"`` (start anyway),
            ``"skip"`` (skip the slot) or ``"cancel_previous"``.

    Raises:
        ValueError: A bad expression, time zone, name, queue or option (see
            :func:`check_cron` for what is checked of the expression).
        JSONSerializationError: ``input`` cannot be written as JSON.
    """

    expression: str
    _: KW_ONLY
    tz: str = ""
    input: Any = field(default=None, hash=False)
    name: str | None = None
    queue: str | None = None
    priority: int = 0
    enabled: bool = True
    catch_up: CatchUp | CatchUpName = CatchUp.ONCE
    catch_up_limit: int = 10
    overlap: Overlap | OverlapName = Overlap.ALLOW
    input_json: str = field(init=False, repr=False, compare=False)
    """``input`` as JSON text, as registered."""

    def __post_init__(self) -> None:
        where = f"Cron({self.expression!r})"
        try:
            expression = check_cron(self.expression)
            tz = check_timezone(self.tz)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
        if self.name is not None:
            check_name("schedule", self.name)
        if self.queue is not None:
            check_name("queue", self.queue)
        _check_int(f"{where}: priority", self.priority, -(2**31))
        _check_int(f"{where}: catch_up_limit", self.catch_up_limit, 1)
        if not isinstance(self.enabled, bool):
            raise ValueError(f"{where}: enabled must be True or False, got {self.enabled!r}")
        try:
            catch_up = CatchUp(self.catch_up)
        except ValueError:
            valid = ", ".join(repr(c.value) for c in CatchUp)
            raise ValueError(
                f"{where}: catch_up must be one of {valid}, got {self.catch_up!r}"
            ) from None
        try:
            overlap = Overlap(self.overlap)
        except ValueError:
            valid = ", ".join(repr(o.value) for o in Overlap)
            raise ValueError(
                f"{where}: overlap must be one of {valid}, got {self.overlap!r}"
            ) from None
        object.__setattr__(self, "expression", expression)
        object.__setattr__(self, "tz", tz)
        object.__setattr__(self, "catch_up", catch_up)
        object.__setattr__(self, "overlap", overlap)
        object.__setattr__(self, "input_json", _serde.dumps(self.input))


def resolve_schedules(
    workflow_name: str, schedule: Cron | None, schedules: Iterable[Cron] | None
) -> tuple[Cron, ...]:
    """A workflow's schedules, each with its name (see the module's documentation).

    Raises:
        ValueError: Both ``schedule`` and ``schedules``, something not a :class:`Cron`,
            several schedules without a name, or a name used twice.
    """
    where = f"workflow {workflow_name!r}"
    if schedule is not None and schedules is not None:
        raise ValueError(f"{where}: give schedule= or schedules=, not both")
    if schedule is not None:
        given: list[object] = [schedule]
    elif schedules is None:
        return ()
    elif isinstance(schedules, Cron | str | bytes) or not isinstance(schedules, Iterable):
        raise ValueError(f"{where}: schedules must be a list of Cron, got {schedules!r}")
    else:
        given = list(schedules)
    crons: list[Cron] = []
    for cron in given:
        if not isinstance(cron, Cron):
            raise ValueError(f"{where}: a schedule must be a Cron, got {cron!r}")
        crons.append(cron)
    if len(crons) == 1 and crons[0].name is None:
        return (dataclasses.replace(crons[0], name=workflow_name),)
    seen: set[str] = set()
    for cron in crons:
        if cron.name is None:
            raise ValueError(
                f"{where}: with several schedules each needs a name= "
                f"(Cron({cron.expression!r}) has none)"
            )
        if cron.name in seen:
            raise ValueError(f"{where}: the schedule name {cron.name!r} is used twice")
        seen.add(cron.name)
    return tuple(crons)
