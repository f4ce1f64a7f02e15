"""Cron schedules on a time zone's wall clock: parse one, find its next slot, list its slots.

Pure computation (no I/O), on top of croniter::

    cron = CronSchedule.parse("0 9 * * MON-FRI", "America/New_York")
    cron.next_after(now)                      # the first slot strictly after now
    cron.slots(last_fire, now, limit=10)      # the (at most 10) latest slots in (last_fire, now]

Expressions:

- five fields, ``minute hour day-of-month month day-of-week``;
- six fields, with **seconds first**: ``second minute hour day-of-month month day-of-week``;
- or an alias: ``@yearly`` (= ``@annually``), ``@monthly``, ``@weekly``, ``@daily``
  (= ``@midnight``), ``@hourly``.

A field is ``*``, a number, a range ``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of
those; months and days of the week also take names (``JAN``, ``MON-FRI``; Sunday is 0 or
7), day-of-month takes ``L`` (last) and ``15W`` (nearest weekday), day-of-week ``5#2``
(second Friday) and ``L5`` (last Friday). When both day-of-month and day-of-week are
restricted, a day matching either fires (as in classic cron). Hashed and random values
(``H``, ``R``) and a seventh (year) field are refused, as is an expression that never fires
(``0 0 30 2 *``). Names and aliases are case-insensitive.

The time zone is an IANA name (``"Europe/Berlin"``); ``""`` means UTC.

Slots and daylight saving time. Slots are computed on the zone's wall clock: croniter
iterates over naive local times, and each local time is then turned into UTC with
:mod:`zoneinfo`, reading it with ``fold=0``:

- a local time that does not exist (clocks go forward) is read with the offset from
  before the jump, so it fires once, at that time plus the jump: a daily ``30 2 * * *`` in
  America/New_York fires on 2026-03-08 at 07:30 UTC, which is 03:30 EDT;
- a local time that happens twice (clocks go back) fires once, at its first occurrence:
  a daily ``30 1 * * *`` fires on 2026-11-01 at 05:30 UTC (01:30 EDT), not again at
  01:30 EST;
- slots are strictly increasing in UTC and never duplicated: a slot whose UTC time is not
  after the previous slot's is dropped. That happens after a jump forward, when the
  shifted slots of the missing hour land on the slots of the hour after it: an hourly
  schedule in New York fires at 01:00 EST, 03:00 EDT (the shifted 02:00), 04:00 EDT.

This defines one sequence of slots per schedule, the same whatever window it is looked at
through: :meth:`CronSchedule.next_after` is the first slot after a time, and
``slots(a, c) == slots(a, b) + slots(b, c)`` for any ``a <= b <= c``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

__all__ = ["ALIASES", "CronError", "CronSchedule"]

ALIASES: Final = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
"""The aliases an expression may be instead of fields."""

_FIELDS_5: Final = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_6: Final = ("second", *_FIELDS_5)
_ALLOWED: Final = {
    "second": "0-59",
    "minute": "0-59",
    "hour": "0-23",
    "day-of-month": "1-31, L, nW",
    "month": "1-12 or JAN-DEC",
    "day-of-week": "0-7 or SUN-SAT (0 and 7 are Sunday), d#n, Ld",
}
# Split as croniter does: ASCII whitespace only.
_FIELD_RE: Final = re.compile(r"\S+", re.ASCII)
# croniter's hashed (H) and random (R) values: not reproducible here, so refused.
_HASHED_RE: Final = re.compile(r"^[hr](\(\d+-\d+\))?(/\d+)?$", re.ASCII | re.IGNORECASE)
# Where to look for a first slot when checking that an expression fires at all; croniter
# searches 50 years from it, which covers every 5- or 6-field expression that ever fires.
_PROBE_START: Final = datetime(2000, 1, 1)
# Offsets are sampled this far back (hourly) to find where iteration must start: no
# zone's clock ever jumped forward by more than a day.
_LOOKBACK_HOURS: Final = 26
_ONE_MICROSECOND: Final = timedelta(microseconds=1)


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says what is wrong."""


def _zone(timezone: str) -> tzinfo:
    if timezone == "":
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"unknown time zone {timezone!r}: use an IANA name such as "
            "'America/New_York' or 'UTC', or '' for UTC"
        ) from None


def _check_fields(expression: str) -> bool:
    """Validate the expression's shape and each field; True when seconds come first."""
    if not expression:
        raise CronError("the cron expression is empty")
    if expression.startswith("@"):
        if expression.lower() not in ALIASES:
            raise CronError(
                f"invalid cron expression {expression!r}: unknown alias; "
                f"use one of {', '.join(ALIASES)}"
            )
        return False
    fields = _FIELD_RE.findall(expression)
    if len(fields) not in (5, 6):
        raise CronError(
            f"invalid cron expression {expression!r}: it has {len(fields)} field(s); "
            "use 5 (minute hour day-of-month month day-of-week), 6 with seconds first, "
            f"or an alias ({', '.join(ALIASES)})"
        )
    seconds = len(fields) == 6
    names = _FIELDS_6 if seconds else _FIELDS_5
    for index, (name, value) in enumerate(zip(names, fields, strict=True)):
        if _HASHED_RE.match(value):
            raise CronError(
                f"invalid cron expression {expression!r}: {name} field {value!r}: "
                "hashed and random values (H, R) are not supported"
            )
        # The field alone, every other one '*': an error here is this field's.
        probe = ["*"] * len(fields)
        probe[index] = value
        try:
            croniter.expand(" ".join(probe), second_at_beginning=seconds)
        except (ValueError, TypeError, KeyError, IndexError):
            raise CronError(
                f"invalid cron expression {expression!r}: {name} field {value!r} is not "
                f"valid (allowed: {_ALLOWED[name]}; '*', lists a,b, ranges a-b, steps /n)"
            ) from None
    return seconds


@dataclass(frozen=True)
class CronSchedule:
    """A validated cron expression in a time zone (see the module's documentation).

    Build it with :meth:`parse`; constructing it directly validates the same way.

    Attributes:
        expression: The cron expression, as given (without surrounding whitespace).
        timezone: The IANA time zone; ``""`` means UTC.
    """

    expression: str
    timezone: str
    _zone: tzinfo = field(init=False, repr=False, compare=False)
    _seconds: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.expression, str):
            raise CronError(f"the cron expression must be a string, got {self.expression!r}")
        if not isinstance(self.timezone, str):
            raise CronError(f"the time zone must be a string, got {self.timezone!r}")
        seconds = _check_fields(self.expression)
        zone = _zone(self.timezone)
        try:
            croniter(self.expression, _PROBE_START, second_at_beginning=seconds).get_next(datetime)
        except CroniterBadDateError:
            raise CronError(
                f"invalid cron expression {self.expression!r}: it never fires "
                "(no such date, e.g. day 30 of February)"
            ) from None
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise CronError(f"invalid cron expression {self.expression!r}: {exc}") from None
        object.__setattr__(self, "_zone", zone)
        object.__setattr__(self, "_seconds", seconds)

    @classmethod
    def parse(cls, expression: str, timezone: str = "") -> CronSchedule:
        """Validate ``expression`` and ``timezone`` (surrounding whitespace is ignored).

        Raises:
            CronError: The expression is empty, has the wrong number of fields, a field is
                invalid (the message names it), it never fires, or the zone is unknown.
        """
        if not isinstance(expression, str):
            raise CronError(f"the cron expression must be a string, got {expression!r}")
        if not isinstance(timezone, str):
            raise CronError(f"the time zone must be a string, got {timezone!r}")
        return cls(expression.strip(), timezone.strip())

    def next_after(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (timezone-aware), as an aware UTC datetime."""
        return next(self._slots_after(_aware("after", after)))

    def slots(
        self, after: datetime, until: datetime, *, limit: int | None = None
    ) -> list[datetime]:
        """Every slot in ``(after, until]``, ascending, as aware UTC datetimes.

        With ``limit``, only the last ``limit`` of them. Those are found by walking back
        from ``until``, so a schedule that missed a year of minutes costs ``limit`` steps,
        not half a million.
        """
        after = _aware("after", after)
        until = _aware("until", until)
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"limit must be an int >= 0 or None, got {limit!r}")
        if until <= after or limit == 0:
            return []
        if limit is None:
            return self._between(after, until)
        wanted = limit
        while True:
            lower = self._lower_bound(after, until, wanted)
            found = self._between(lower, until)
            if len(found) >= limit or lower <= after:
                return found[-limit:]
            wanted *= 2  # slots dropped around a clock change: look further back

    # -- internals -----------------------------------------------------------------------

    def _iter(self, start: datetime) -> Any:
        """A croniter over naive local times, from the naive local time ``start``."""
        return croniter(self.expression, start, second_at_beginning=self._seconds)

    def _to_utc(self, local: datetime) -> datetime:
        """A naive local time as aware UTC; a missing time takes the offset before the jump."""
        return local.replace(tzinfo=self._zone, fold=0).astimezone(UTC)

    def _offsets(self, instant: datetime) -> list[timedelta]:
        """The zone's UTC offsets at ``instant`` and each hour of the day before it."""
        offsets = []
        for hours in range(_LOOKBACK_HOURS + 1):
            offset = (instant - timedelta(hours=hours)).astimezone(self._zone).utcoffset()
            assert offset is not None
            offsets.append(offset)
        return offsets

    def _slots_after(self, after: datetime) -> Iterator[datetime]:
        """The slots strictly after ``after`` (aware UTC), forever.

        Iteration starts at a local time early enough that every local time before it is
        at or before ``after`` in UTC: ``after`` on the smallest offset of the day before
        it. A slot of a missing hour maps to later UTC times than the local times just
        after the jump, so the start must reach back before the jump; and since no local
        time before the start maps after ``after``, keeping the slots above the running
        maximum (starting from ``after``) gives exactly the slots of the whole sequence.
        """
        if self._zone is UTC:
            start = after.replace(tzinfo=None)
        else:
            start = after.replace(tzinfo=None) + min(self._offsets(after))
        it = self._iter(start)
        latest = after
        while True:
            slot = self._to_utc(it.get_next(datetime))
            if slot > latest:
                latest = slot
                yield slot

    def _between(self, after: datetime, until: datetime) -> list[datetime]:
        found = []
        for slot in self._slots_after(after):
            if slot > until:
                break
            found.append(slot)
        return found

    def _lower_bound(self, after: datetime, until: datetime, count: int) -> datetime:
        """A time from which ``(time, until]`` likely holds ``count`` slots; at least ``after``.

        Walks back ``count`` local slots from ``until``; only an estimate (the exact slots
        are then computed forward from it, and the caller looks further back if short).
        """
        if self._zone is UTC:
            start = until.replace(tzinfo=None)
        else:
            start = until.replace(tzinfo=None) + max(self._offsets(until))
        it = self._iter(start + timedelta(seconds=1))
        earliest = until
        for _ in range(count):
            slot = self._to_utc(it.get_prev(datetime))
            if slot <= after:
                return after
            earliest = min(earliest, slot)
        return earliest - _ONE_MICROSECOND


def _aware(name: str, value: datetime) -> datetime:
    """``value`` in UTC; ValueError for a naive datetime (its zone is unknown)."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)
