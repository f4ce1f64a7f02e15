"""next_business_day, next_weekday and end_of_day: time zones, "strictly after", DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from durable import end_of_day, next_business_day, next_weekday

NY = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
SANTIAGO = ZoneInfo("America/Santiago")  # clocks change at local midnight


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


# -- next_business_day -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 5, 4, 8, 0), utc(2026, 5, 4, 9, 0)),  # Monday before 9: today
        (utc(2026, 5, 4, 9, 0), utc(2026, 5, 5, 9, 0)),  # 9 sharp: strictly after, tomorrow
        (utc(2026, 5, 4, 9, 0, 0, 1), utc(2026, 5, 5, 9, 0)),
        (utc(2026, 5, 8, 17, 0), utc(2026, 5, 11, 9, 0)),  # Friday evening: Monday
        (utc(2026, 5, 9, 8, 0), utc(2026, 5, 11, 9, 0)),  # Saturday: Monday
        (utc(2026, 5, 10, 23, 59), utc(2026, 5, 11, 9, 0)),  # Sunday night: Monday
    ],
)
def test_next_business_day_in_utc(now: datetime, expected: datetime) -> None:
    got = next_business_day(now=now)
    assert got == expected
    assert got.utcoffset() == timedelta(0)
    assert got > now


def test_next_business_day_in_a_zone_uses_the_local_day_and_time() -> None:
    # Friday 23:30 UTC is already Saturday in Tokyo: the next business day is Monday there.
    got = next_business_day(10, 15, tz="Asia/Tokyo", now=utc(2026, 5, 8, 23, 30))
    assert got == datetime(2026, 5, 11, 10, 15, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert got.tzinfo == ZoneInfo("Asia/Tokyo")
    assert got.isoformat() == "2026-05-11T10:15:00+09:00"
    # Monday 06:00 UTC is Monday 08:00 in Paris (summer time): today at 9 Paris time.
    paris = next_business_day(tz=PARIS, now=utc(2026, 5, 11, 6, 0))
    assert paris.isoformat() == "2026-05-11T09:00:00+02:00"


def test_next_business_day_across_the_spring_forward_in_new_york() -> None:
    # 2026-03-08 (Sunday) 02:00 EST -> 03:00 EDT. Friday's 9:00 is 14:00 UTC, Monday's 13:00.
    friday = next_business_day(tz="America/New_York", now=ny(2026, 3, 6, 8, 0))
    assert friday.astimezone(UTC) == utc(2026, 3, 6, 14, 0)
    monday = next_business_day(tz="America/New_York", now=ny(2026, 3, 6, 10, 0))
    assert monday == ny(2026, 3, 9, 9, 0)
    assert monday.astimezone(UTC) == utc(2026, 3, 9, 13, 0)
    assert monday.isoformat() == "2026-03-09T09:00:00-04:00"


def test_next_business_day_across_the_fall_back_in_new_york() -> None:
    # 2026-11-01 (Sunday) 02:00 EDT -> 01:00 EST.
    monday = next_business_day(tz="America/New_York", now=ny(2026, 10, 30, 10, 0))
    assert monday.isoformat() == "2026-11-02T09:00:00-05:00"
    assert monday.astimezone(UTC) == utc(2026, 11, 2, 14, 0)


# -- next_weekday ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "weekday"),
    [
        ("monday", 0),
        ("Tuesday", 1),
        ("WED", 2),
        ("th", 3),
        ("fri", 4),
        (" saturday ", 5),
        ("su", 6),
        (0, 0),
        (6, 6),
    ],
)
def test_next_weekday_names_and_numbers(day: str | int, weekday: int) -> None:
    got = next_weekday(day, now=utc(2026, 5, 4, 12, 0))  # a Monday, after 9
    assert got.weekday() == weekday
    assert (got.hour, got.minute) == (9, 0)
    assert utc(2026, 5, 4, 12, 0) < got <= utc(2026, 5, 11, 9, 0)


def test_next_weekday_today_counts_only_before_the_time() -> None:
    monday_morning = utc(2026, 5, 4, 7, 0)
    assert next_weekday("monday", now=monday_morning) == utc(2026, 5, 4, 9, 0)
    assert next_weekday("monday", 7, 0, now=monday_morning) == utc(2026, 5, 11, 7, 0)
    assert next_weekday("friday", 17, 30, tz=PARIS, now=monday_morning).isoformat() == (
        "2026-05-08T17:30:00+02:00"
    )


def test_a_time_that_does_not_exist_moves_forward_by_the_gap() -> None:
    # 2026-03-08 02:30 never happens in New York: it becomes 03:30 EDT (07:30 UTC).
    got = next_weekday("sunday", 2, 30, tz="America/New_York", now=ny(2026, 3, 7, 12, 0))
    assert got.isoformat() == "2026-03-08T03:30:00-04:00"
    assert got.astimezone(UTC) == utc(2026, 3, 8, 7, 30)
    # The hour before the gap is untouched.
    before = next_weekday("sunday", 1, 30, tz="America/New_York", now=ny(2026, 3, 7, 12, 0))
    assert before.isoformat() == "2026-03-08T01:30:00-05:00"
    # A business day at 02:30 that Sunday does not exist either way: Monday is normal.
    assert next_business_day(2, 30, tz=NY, now=ny(2026, 3, 7, 12, 0)).isoformat() == (
        "2026-03-09T02:30:00-04:00"
    )


def test_a_gap_at_midnight_moves_midnight_forward() -> None:
    # Santiago, 2026-09-06: 00:00 -04 -> 01:00 -03.
    got = next_weekday("sunday", 0, 0, tz=SANTIAGO, now=datetime(2026, 9, 5, 12, tzinfo=SANTIAGO))
    assert got.isoformat() == "2026-09-06T01:00:00-03:00"


def test_an_ambiguous_time_is_the_first_of_the_two() -> None:
    # 2026-11-01 01:30 happens twice in New York: first EDT (05:30 UTC), then EST (06:30 UTC).
    got = next_weekday("sunday", 1, 30, tz="America/New_York", now=ny(2026, 10, 31, 12, 0))
    assert got.astimezone(UTC) == utc(2026, 11, 1, 5, 30)
    assert got.isoformat() == "2026-11-01T01:30:00-04:00"
    assert got.fold == 0
    # Once the first 01:30 has passed, the next is a week later (not the repeated hour).
    later = next_weekday("sunday", 1, 30, tz=NY, now=utc(2026, 11, 1, 5, 45))
    assert later.isoformat() == "2026-11-08T01:30:00-05:00"


def test_next_is_strictly_after_now_at_the_exact_instant() -> None:
    now = ny(2026, 3, 8, 3, 30)  # exactly the moved-forward 02:30
    got = next_weekday("sunday", 2, 30, tz=NY, now=now)
    assert got.isoformat() == "2026-03-15T02:30:00-04:00"


# -- end_of_day ------------------------------------------------------------------------


def test_end_of_day_in_utc_and_in_a_zone() -> None:
    now = utc(2026, 5, 4, 22, 0)
    assert end_of_day(now=now) == datetime(2026, 5, 4, 23, 59, 59, 999999, tzinfo=UTC)
    # 22:00 UTC is already Tuesday in Tokyo.
    tokyo = end_of_day(tz="Asia/Tokyo", now=now)
    assert tokyo.isoformat() == "2026-05-05T23:59:59.999999+09:00"


def test_end_of_day_on_dst_days_in_new_york() -> None:
    start_short = ny(2026, 3, 8, 0, 0).astimezone(UTC)
    short = end_of_day(tz=NY, now=ny(2026, 3, 8, 12, 0))
    assert short.isoformat() == "2026-03-08T23:59:59.999999-04:00"
    assert short.astimezone(UTC) - start_short == timedelta(hours=23, microseconds=-1)
    start_long = ny(2026, 11, 1, 0, 0).astimezone(UTC)
    long = end_of_day(tz=NY, now=ny(2026, 11, 1, 12, 0))
    assert long.isoformat() == "2026-11-01T23:59:59.999999-05:00"
    assert long.astimezone(UTC) - start_long == timedelta(hours=25, microseconds=-1)


def test_end_of_day_when_the_last_hour_repeats_is_the_very_end() -> None:
    # Santiago, 2026-04-05 00:00 -03 -> 2026-04-04 23:00 -04: the day's last hour repeats.
    got = end_of_day(tz=SANTIAGO, now=datetime(2026, 4, 4, 12, tzinfo=SANTIAGO))
    assert got.astimezone(UTC) == datetime(2026, 4, 5, 3, 59, 59, 999999, tzinfo=UTC)
    assert got.isoformat() == "2026-04-04T23:59:59.999999-04:00"


def test_the_default_now_is_the_current_time() -> None:
    before = datetime.now(UTC)
    assert next_business_day(tz="Europe/Paris") > before
    assert next_weekday("monday") > before
    assert end_of_day(tz="Pacific/Auckland") > before
    assert next_business_day().tzinfo == ZoneInfo("UTC")


def test_a_tzinfo_works_as_tz() -> None:
    fixed = timezone(timedelta(hours=5, minutes=30))
    got = next_business_day(tz=fixed, now=utc(2026, 5, 4, 0, 0))
    assert got == datetime(2026, 5, 4, 9, 0, tzinfo=fixed)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: next_business_day(24), "hour must be an int from 0 to 23, got 24"),
        (lambda: next_business_day(-1), "hour must be an int from 0 to 23"),
        (lambda: next_business_day(9, 60), "minute must be an int from 0 to 59, got 60"),
        (lambda: next_business_day(True), "hour must be an int"),
        (lambda: next_business_day(9.5), "hour must be an int"),
        (lambda: next_business_day(tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (lambda: next_business_day(tz="../etc/passwd"), "unknown time zone"),
        (lambda: next_business_day(tz=""), "tz must be a time zone name or a tzinfo"),
        (lambda: next_business_day(tz=5), "tz must be a time zone name or a tzinfo"),
        (
            lambda: next_business_day(now=datetime(2026, 1, 1)),
            "now must be a timezone-aware datetime",
        ),
        (lambda: end_of_day(now=datetime(2026, 1, 1)), "now must be a timezone-aware datetime"),
        (lambda: next_weekday("t"), "day must be a weekday name"),  # tuesday or thursday?
        (lambda: next_weekday("someday"), "day must be a weekday name"),
        (lambda: next_weekday(7), "day must be a weekday name or 0-6"),
        (lambda: next_weekday(True), "day must be a weekday name or 0-6"),
        (lambda: next_weekday(None), "day must be a weekday name"),
    ],
)
def test_bad_arguments_raise_value_error(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        call()
