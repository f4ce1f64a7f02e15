"""Calendar helpers for ``ctx.sleep_until``: the next business day, weekday or end of day.

Each takes a time zone (an IANA name such as ``"Europe/Paris"``, or a ``tzinfo``) and
returns a timezone-aware datetime in it::

    ctx.sleep_until(next_business_day(9, tz="America/New_York"))  # 09:00 Mon-Fri
    ctx.sleep_until(next_weekday("friday", 17, 30, tz="Europe/Paris"))
    ctx.sleep_until(end_of_day(tz="Asia/Tokyo"))

"Next" means strictly after ``now``: at 08:00 on a Monday the next business day at 9 is
that Monday at 09:00; at 09:00 sharp it is Tuesday at 09:00. Local times follow the
zone's daylight saving rules: a time that does not exist that day (in the gap when
clocks go forward) moves forward by the gap (02:30 becomes 03:30), and a time that
exists twice (when clocks go back) is the first of the two.

Time zones come from the system's time zone database through :mod:`zoneinfo` (on a
system without one, install the ``tzdata`` package). Note that a step that computes a
time from the clock is not deterministic: on its re-runs the waits it already passed
return from their recorded outcomes, whatever the time is then.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["end_of_day", "next_business_day", "next_weekday"]

_WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_BUSINESS_DAYS: Final = frozenset(range(5))  # Monday to Friday


def _zone(tz: str | tzinfo) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    if not isinstance(tz, str) or not tz:
        raise ValueError(f"tz must be a time zone name or a tzinfo, got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {tz!r}: use an IANA name such as 'Europe/Paris' or 'UTC'"
        ) from None


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime) or now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"now must be a timezone-aware datetime, got {now!r}")
    return now


def _check_clock(hour: int, minute: int) -> None:
    for what, value, limit in (("hour", hour, 24), ("minute", minute, 60)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
            raise ValueError(f"{what} must be an int from 0 to {limit - 1}, got {value!r}")


def _local(day: date, at: time, zone: tzinfo) -> datetime:
    """``day`` at wall time ``at`` in ``zone``, resolved for daylight saving time.

    An ambiguous time is the first of the two (``fold=0``). A time in a gap is read with
    the offset before the gap (``fold=0`` again), which puts it that far past the gap's
    end once normalised: 02:30 on a spring-forward night becomes 03:30.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0)
    return first.astimezone(UTC).astimezone(zone)


def _next_matching(
    hour: int, minute: int, zone: tzinfo, now: datetime, days: frozenset[int]
) -> datetime:
    """The first time at hour:minute local on one of ``days`` strictly after ``now``."""
    at = time(hour, minute)
    start = now.astimezone(zone).date() - timedelta(days=1)  # a gap may push a day forward
    for offset in range(16):
        day = start + timedelta(days=offset)
        if day.weekday() not in days:
            continue
        candidate = _local(day, at, zone)
        if candidate > now:
            return candidate
    raise AssertionError("unreachable: every week has the day")  # pragma: no cover


def _weekday(day: str | int) -> int:
    if isinstance(day, bool):
        raise ValueError(f"day must be a weekday name or 0-6 (Monday is 0), got {day!r}")
    if isinstance(day, int):
        if 0 <= day <= 6:
            return day
        raise ValueError(f"day must be a weekday name or 0-6 (Monday is 0), got {day!r}")
    if isinstance(day, str):
        key = day.strip().lower()
        matches = [i for i, name in enumerate(_WEEKDAYS) if len(key) >= 2 and name.startswith(key)]
        if len(matches) == 1:
            return matches[0]
    raise ValueError(
        f"day must be a weekday name ('monday', 'mon', ...) or 0-6 (Monday is 0), got {day!r}"
    )


def next_business_day(
    hour: int = 9,
    minute: int = 0,
    *,
    tz: str | tzinfo = "UTC",
    now: datetime | None = None,
) -> datetime:
    """The next Monday-to-Friday time ``hour:minute`` in ``tz``, strictly after ``now``.

    Holidays are not known: every Monday to Friday is a business day. Today counts if
    the time has not come yet.

    Args:
        hour: The local hour, 0-23.
        minute: The local minute, 0-59.
        tz: An IANA time zone name, or a ``tzinfo``.
        now: The time to count from (timezone-aware); ``None`` means the current time.

    Returns:
        A timezone-aware datetime in ``tz``.

    Raises:
        ValueError: A bad hour, minute, time zone or ``now``.
    """
    _check_clock(hour, minute)
    return _next_matching(hour, minute, _zone(tz), _now(now), _BUSINESS_DAYS)


def next_weekday(
    day: str | int,
    hour: int = 9,
    minute: int = 0,
    *,
    tz: str | tzinfo = "UTC",
    now: datetime | None = None,
) -> datetime:
    """The next ``day`` at ``hour:minute`` in ``tz``, strictly after ``now``.

    Today counts if it is ``day`` and the time has not come yet; otherwise it is up to
    a week away.

    Args:
        day: ``"monday"`` to ``"sunday"`` (any case; a prefix of two or more letters such
            as ``"mon"`` or ``"th"`` will do), or 0-6 with Monday as 0 (like
            :meth:`datetime.weekday`).
        hour: The local hour, 0-23.
        minute: The local minute, 0-59.
        tz: An IANA time zone name, or a ``tzinfo``.
        now: The time to count from (timezone-aware); ``None`` means the current time.

    Returns:
        A timezone-aware datetime in ``tz``.

    Raises:
        ValueError: A bad day, hour, minute, time zone or ``now``.
    """
    weekday = _weekday(day)
    _check_clock(hour, minute)
    return _next_matching(hour, minute, _zone(tz), _now(now), frozenset({weekday}))


def end_of_day(*, tz: str | tzinfo = "UTC", now: datetime | None = None) -> datetime:
    """The last moment of ``now``'s day in ``tz``: 23:59:59.999999 local time.

    Precisely, one microsecond before the next day starts, so it is the day's last
    moment even on a day whose clocks change around midnight.

    Args:
        tz: An IANA time zone name, or a ``tzinfo``.
        now: The time whose day it is (timezone-aware); ``None`` means the current time.

    Returns:
        A timezone-aware datetime in ``tz``.

    Raises:
        ValueError: A bad time zone or ``now``.
    """
    zone = _zone(tz)
    tomorrow = _now(now).astimezone(zone).date() + timedelta(days=1)
    next_start = _local(tomorrow, time(0), zone).astimezone(UTC)
    return (next_start - timedelta(microseconds=1)).astimezone(zone)
