"""CronSchedule: parsing, next slots, slot windows, and the daylight saving time rule."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from durable_server.engine.cron import ALIASES, CronError, CronSchedule

NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
SYDNEY = ZoneInfo("Australia/Sydney")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc]


def wall_clock(slots: list[datetime], zone: ZoneInfo) -> list[str]:
    return [s.astimezone(zone).strftime("%H:%M %Z") for s in slots]


def assert_strictly_increasing_utc(slots: list[datetime]) -> None:
    assert all(s.tzinfo is UTC for s in slots)
    assert all(a < b for a, b in itertools.pairwise(slots))


# -- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "the cron expression is empty"),
        ("   ", "the cron expression is empty"),
        ("* * * *", "it has 4 field(s); use 5"),
        ("* * * * * * *", "it has 7 field(s)"),
        ("61 * * * *", "minute field '61' is not valid (allowed: 0-59"),
        ("0 24 * * *", "hour field '24' is not valid (allowed: 0-23"),
        ("0 0 0 * *", "day-of-month field '0' is not valid"),
        ("0 0 32 * *", "day-of-month field '32' is not valid"),
        ("0 0 1 13 *", "month field '13' is not valid (allowed: 1-12 or JAN-DEC"),
        ("0 0 * * 8", "day-of-week field '8' is not valid"),
        ("0 0 * * FUNDAY", "day-of-week field 'FUNDAY' is not valid"),
        ("0 0 * JANUARY *", "month field 'JANUARY' is not valid"),
        ("*/0 * * * *", "minute field '*/0' is not valid"),
        ("1,,2 * * * *", "minute field '1,,2' is not valid"),
        ("-5 * * * *", "minute field '-5' is not valid"),
        ("x * * * *", "minute field 'x' is not valid"),
        ("60 0 * * * *", "second field '60' is not valid (allowed: 0-59"),
        ("0 60 * * * *", "minute field '60' is not valid"),
        ("0 0 * * 1#6", "day-of-week field '1#6' is not valid"),
        ("H * * * *", "minute field 'H': hashed and random values (H, R) are not supported"),
        ("0 R * * *", "hour field 'R': hashed and random values"),
        ("@every_minute", "unknown alias; use one of @yearly"),
        ("@reboot", "unknown alias"),
        ("0 0 30 2 *", "it never fires"),
        ("0 0 31 4,6,9,11 *", "it never fires"),
    ],
)
def test_invalid_expressions_say_what_is_wrong(expression: str, message: str) -> None:
    with pytest.raises(CronError) as info:
        CronSchedule.parse(expression)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "america/new_york_city", "../etc/passwd"])
def test_unknown_time_zones(zone: str) -> None:
    with pytest.raises(CronError, match=rf"unknown time zone {zone!r}"):
        CronSchedule.parse("0 9 * * *", zone)


def test_parse_strips_and_keeps_the_expression() -> None:
    cron = CronSchedule.parse("  0 9 * * MON-FRI ", " Europe/Berlin ")
    assert (cron.expression, cron.timezone) == ("0 9 * * MON-FRI", "Europe/Berlin")
    assert cron == CronSchedule("0 9 * * MON-FRI", "Europe/Berlin")
    assert hash(cron) == hash(CronSchedule("0 9 * * MON-FRI", "Europe/Berlin"))
    assert repr(cron) == "CronSchedule(expression='0 9 * * MON-FRI', timezone='Europe/Berlin')"


def test_direct_construction_validates_too() -> None:
    with pytest.raises(CronError, match="it has 3 field"):
        CronSchedule("* * *", "")
    with pytest.raises(CronError, match="must be a string"):
        CronSchedule.parse(None)  # type: ignore[arg-type]


def test_tabs_separate_fields_and_names_are_case_insensitive() -> None:
    cron = CronSchedule.parse("0\t9 * jan-mar mon,Wed,FRI")
    assert cron.next_after(utc(2026, 1, 1)) == utc(2026, 1, 2, 9)  # a Friday


@pytest.mark.parametrize(
    ("alias", "after", "expected"),
    [
        ("@yearly", utc(2026, 5, 5, 5), utc(2027, 1, 1)),
        ("@annually", utc(2026, 12, 31, 23, 59), utc(2027, 1, 1)),
        ("@monthly", utc(2026, 1, 31, 12), utc(2026, 2, 1)),
        ("@weekly", utc(2026, 1, 1), utc(2026, 1, 4)),  # Sunday midnight
        ("@daily", utc(2026, 1, 1), utc(2026, 1, 2)),
        ("@midnight", utc(2026, 2, 28, 0, 0, 1), utc(2026, 3, 1)),
        ("@hourly", utc(2026, 1, 1, 10, 59, 59, 999999), utc(2026, 1, 1, 11)),
        ("@DAILY", utc(2026, 1, 1), utc(2026, 1, 2)),
    ],
)
def test_aliases(alias: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(alias).next_after(after) == expected


def test_every_alias_parses() -> None:
    assert {CronSchedule.parse(alias).expression for alias in ALIASES} == set(ALIASES)


def test_six_fields_put_seconds_first() -> None:
    cron = CronSchedule.parse("*/15 30 9 * * *")  # 09:30:00, :15, :30, :45
    assert cron.slots(utc(2026, 1, 1), utc(2026, 1, 2)) == [
        utc(2026, 1, 1, 9, 30, s) for s in (0, 15, 30, 45)
    ]
    assert CronSchedule.parse("30 * * * * *").next_after(utc(2026, 1, 1, 0, 0, 30)) == utc(
        2026, 1, 1, 0, 1, 30
    )


# -- next_after --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 1 * *", utc(2026, 1, 31, 23, 59), utc(2026, 2, 1)),
        ("0 0 31 * *", utc(2026, 1, 31), utc(2026, 3, 31)),  # February has no 31st
        ("59 23 31 12 *", utc(2026, 12, 31, 23, 59), utc(2027, 12, 31, 23, 59)),
        ("0 0 1 1 *", utc(2026, 12, 31, 23, 59, 59), utc(2027, 1, 1)),
        ("0 0 29 2 *", utc(2026, 1, 1), utc(2028, 2, 29)),
        ("0 0 L * *", utc(2026, 2, 1), utc(2026, 2, 28)),
        ("0 9 * * MON-FRI", utc(2026, 1, 2, 9), utc(2026, 1, 5, 9)),  # Fri -> Mon
        ("0 12 * * 5#2", utc(2026, 1, 1), utc(2026, 1, 9, 12)),  # second Friday
        ("0 0 13 * FRI", utc(2026, 1, 1), utc(2026, 1, 2)),  # day 13 or any Friday
        ("* * * * *", utc(2026, 1, 1, 0, 0, 0, 1), utc(2026, 1, 1, 0, 1)),
    ],
)
def test_next_after_across_month_and_year_ends(
    expression: str, after: datetime, expected: datetime
) -> None:
    got = CronSchedule.parse(expression).next_after(after)
    assert got == expected
    assert got.tzinfo is UTC


def test_next_after_is_strictly_after_and_takes_any_aware_time() -> None:
    cron = CronSchedule.parse("0 9 * * *", "Europe/Berlin")
    assert cron.next_after(utc(2026, 1, 5, 8)) == utc(2026, 1, 6, 8)  # exactly on a slot
    plus_five = timezone(timedelta(hours=5))
    assert cron.next_after(datetime(2026, 1, 5, 12, tzinfo=plus_five)) == utc(2026, 1, 5, 8)


def test_naive_times_are_refused() -> None:
    cron = CronSchedule.parse("* * * * *")
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        cron.next_after(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="until must be a timezone-aware datetime"):
        cron.slots(utc(2026, 1, 1), datetime(2026, 1, 2))


def test_a_time_zone_moves_the_slots() -> None:
    cron = CronSchedule.parse("0 9 * * *", "America/New_York")
    assert cron.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 14)  # EST
    assert cron.next_after(utc(2026, 7, 1)) == utc(2026, 7, 1, 13)  # EDT
    assert CronSchedule.parse("0 9 * * *", "Asia/Kolkata").next_after(utc(2026, 1, 1)) == utc(
        2026, 1, 1, 3, 30
    )


# -- daylight saving time ----------------------------------------------------------------


def test_a_missing_local_time_fires_once_after_the_jump() -> None:
    # 2026-03-08 02:00 EST -> 03:00 EDT: 02:30 does not exist, so it fires at 03:30 EDT.
    cron = CronSchedule.parse("30 2 * * *", "America/New_York")
    slots = cron.slots(utc(2026, 3, 7), utc(2026, 3, 10))
    assert slots == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)]
    assert slots[1] == local(NY, 2026, 3, 8, 3, 30)
    assert cron.next_after(utc(2026, 3, 8, 7, 15)) == utc(2026, 3, 8, 7, 30)  # 03:15 EDT
    assert cron.next_after(utc(2026, 3, 8, 7, 30)) == utc(2026, 3, 9, 6, 30)


def test_an_ambiguous_local_time_fires_once_at_its_first_occurrence() -> None:
    # 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice; it fires at 01:30 EDT only.
    cron = CronSchedule.parse("30 1 * * *", "America/New_York")
    slots = cron.slots(utc(2026, 10, 31), utc(2026, 11, 3))
    assert slots == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert wall_clock(slots, NY) == ["01:30 EDT", "01:30 EDT", "01:30 EST"]
    # Between the two 01:30s, the next slot is the next day's.
    assert cron.next_after(utc(2026, 11, 1, 5, 45)) == utc(2026, 11, 2, 6, 30)


def test_hourly_across_the_new_york_clock_changes() -> None:
    cron = CronSchedule.parse("0 * * * *", "America/New_York")
    spring = cron.slots(local(NY, 2026, 3, 8, 0), local(NY, 2026, 3, 8, 5))
    assert wall_clock(spring, NY) == ["01:00 EST", "03:00 EDT", "04:00 EDT", "05:00 EDT"]
    autumn = cron.slots(local(NY, 2026, 11, 1, 0), local(NY, 2026, 11, 1, 4))
    assert wall_clock(autumn, NY) == ["01:00 EDT", "02:00 EST", "03:00 EST", "04:00 EST"]
    # Every hour fires on the spring day (the shifted 02:00 is 03:00 EDT); on the autumn
    # day the repeated 01:00 does not fire again.
    spring_days = cron.slots(utc(2026, 3, 7), utc(2026, 3, 10))
    autumn_days = cron.slots(utc(2026, 10, 31), utc(2026, 11, 3))
    assert_strictly_increasing_utc(spring_days)
    assert_strictly_increasing_utc(autumn_days)
    assert (len(spring_days), len(autumn_days)) == (72, 71)


def test_every_half_hour_in_the_missing_hour() -> None:
    # 02:00 and 02:30 fire at 03:00 and 03:30 EDT; the real 03:00 and 03:30 then fall on
    # the same instants and are not fired again.
    cron = CronSchedule.parse("*/30 * * * *", "America/New_York")
    slots = cron.slots(local(NY, 2026, 3, 8, 1), local(NY, 2026, 3, 8, 4, 30))
    assert wall_clock(slots, NY) == [
        "01:30 EST",
        "03:00 EDT",
        "03:30 EDT",
        "04:00 EDT",
        "04:30 EDT",
    ]


def test_europe_berlin() -> None:
    # 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
    cron = CronSchedule.parse("0 * * * *", "Europe/Berlin")
    spring = cron.slots(local(BERLIN, 2026, 3, 29, 0), local(BERLIN, 2026, 3, 29, 4))
    assert wall_clock(spring, BERLIN) == ["01:00 CET", "03:00 CEST", "04:00 CEST"]
    autumn = cron.slots(local(BERLIN, 2026, 10, 25, 1), local(BERLIN, 2026, 10, 25, 4))
    assert wall_clock(autumn, BERLIN) == ["02:00 CEST", "03:00 CET", "04:00 CET"]
    daily = CronSchedule.parse("30 2 * * *", "Europe/Berlin")
    assert daily.slots(utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [utc(2026, 3, 29, 1, 30)]
    assert daily.slots(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12)) == [utc(2026, 10, 25, 0, 30)]
    assert_strictly_increasing_utc(cron.slots(utc(2026, 1, 1), utc(2027, 1, 1)))
    assert len(cron.slots(utc(2026, 1, 1), utc(2027, 1, 1))) == 365 * 24 - 1


def test_australia_sydney() -> None:
    # 2026-04-05 03:00 AEDT -> 02:00 AEST; 2026-10-04 02:00 AEST -> 03:00 AEDT.
    daily = CronSchedule.parse("30 2 * * *", "Australia/Sydney")
    autumn = daily.slots(utc(2026, 4, 3, 12), utc(2026, 4, 5, 12))
    assert autumn == [utc(2026, 4, 3, 15, 30), utc(2026, 4, 4, 15, 30)]
    assert wall_clock(autumn, SYDNEY) == ["02:30 AEDT", "02:30 AEDT"]  # the first of the two
    spring = daily.slots(utc(2026, 10, 2, 12), utc(2026, 10, 4, 12))
    assert spring == [utc(2026, 10, 2, 16, 30), utc(2026, 10, 3, 16, 30)]
    assert wall_clock(spring, SYDNEY) == ["02:30 AEST", "03:30 AEDT"]
    hourly = CronSchedule.parse("0 * * * *", "Australia/Sydney")
    assert_strictly_increasing_utc(hourly.slots(utc(2026, 1, 1), utc(2027, 1, 1)))


def test_a_change_at_midnight() -> None:
    # Santiago moves from 24:00 to 01:00 (2026-09-06): midnight fires at 01:00 that day.
    santiago = ZoneInfo("America/Santiago")
    cron = CronSchedule.parse("@daily", "America/Santiago")
    slots = cron.slots(utc(2026, 9, 4, 12), utc(2026, 9, 7, 12))
    assert wall_clock(slots, santiago) == ["00:00 -04", "01:00 -03", "00:00 -03"]


def test_a_missing_day() -> None:
    # Samoa skipped 2011-12-30 (-10 -> +14): its noon fires at what was the 31st's noon,
    # also when asked from a time after the jump (which is 30 December only in UTC).
    cron = CronSchedule.parse("0 12 30 12 *", "Pacific/Apia")
    assert cron.slots(utc(2011, 12, 1), utc(2012, 1, 1)) == [utc(2011, 12, 30, 22)]
    assert cron.next_after(utc(2011, 12, 30, 12)) == utc(2011, 12, 30, 22)
    assert cron.next_after(utc(2011, 12, 30, 22)) == utc(2012, 12, 29, 22)  # +14 (DST)


@pytest.mark.parametrize(
    ("expression", "zone", "start"),
    [
        ("0 * * * *", "America/New_York", utc(2026, 3, 6)),
        ("*/20 * * * *", "America/New_York", utc(2026, 10, 30)),
        ("*/10 * * * *", "Australia/Lord_Howe", utc(2026, 4, 3)),  # a 30-minute change
        ("7,37 1-3 * * *", "Europe/Berlin", utc(2026, 3, 27)),
        ("0 */5 * * * *", "Europe/London", utc(2026, 10, 24)),
        ("0 */2 * * *", "Pacific/Apia", utc(2011, 12, 28)),  # Samoa skipped 2011-12-30
        ("0 0 * * *", "America/Santiago", utc(2026, 9, 1)),
    ],
)
def test_every_window_sees_the_same_slots(expression: str, zone: str, start: datetime) -> None:
    cron = CronSchedule.parse(expression, zone)
    end = start + timedelta(days=5)
    reference = cron.slots(start, end)
    assert_strictly_increasing_utc(reference)
    rand = random.Random(f"{expression}{zone}")
    seconds = int((end - start).total_seconds())
    for _ in range(40):
        a, b = sorted(start + timedelta(seconds=rand.randrange(seconds)) for _ in range(2))
        expected = [s for s in reference if a < s <= b]
        assert cron.slots(a, b) == expected
        limit = rand.randrange(1, 8)
        assert cron.slots(a, b, limit=limit) == expected[-limit:]
        following = [s for s in reference if s > a]
        if following:
            assert cron.next_after(a) == following[0]
        if expected:
            assert cron.next_after(expected[-1] - timedelta(microseconds=1)) == expected[-1]


# -- slots ---------------------------------------------------------------------------------


def test_slots_are_a_half_open_window() -> None:
    cron = CronSchedule.parse("0 * * * *")
    assert cron.slots(utc(2026, 1, 1, 0), utc(2026, 1, 1, 3)) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 2),
        utc(2026, 1, 1, 3),
    ]
    assert cron.slots(utc(2026, 1, 1, 3), utc(2026, 1, 1, 3)) == []
    assert cron.slots(utc(2026, 1, 1, 5), utc(2026, 1, 1, 3)) == []
    assert cron.slots(utc(2026, 1, 1, 0, 1), utc(2026, 1, 1, 0, 59)) == []


def test_slots_with_a_limit_keep_the_latest() -> None:
    cron = CronSchedule.parse("0 * * * *")
    assert cron.slots(utc(2026, 1, 1), utc(2026, 1, 2), limit=3) == [
        utc(2026, 1, 1, 22),
        utc(2026, 1, 1, 23),
        utc(2026, 1, 2, 0),
    ]
    assert cron.slots(utc(2026, 1, 1), utc(2026, 1, 1, 2), limit=10) == [
        utc(2026, 1, 1, 1),
        utc(2026, 1, 1, 2),
    ]
    assert cron.slots(utc(2026, 1, 1), utc(2026, 1, 2), limit=0) == []


@pytest.mark.parametrize("limit", [-1, 1.5, True, "3"])
def test_bad_limits(limit: object) -> None:
    with pytest.raises(ValueError, match="limit must be an int >= 0 or None"):
        CronSchedule.parse("* * * * *").slots(utc(2026, 1, 1), utc(2026, 1, 2), limit=limit)  # type: ignore[arg-type]


def test_a_limit_on_a_long_window_keeps_its_last_slots() -> None:
    # How long these take is measured by bench/cron_slots.py.
    cron = CronSchedule.parse("* * * * *", "America/New_York")
    slots = cron.slots(utc(2025, 6, 1), utc(2026, 6, 1, 0, 0, 30), limit=10)
    assert slots == [utc(2026, 5, 31, 23, 51) + timedelta(minutes=i) for i in range(10)]
    seconds = CronSchedule.parse("* * * * * *", "Europe/Berlin")
    slots = seconds.slots(utc(2025, 1, 1), utc(2026, 1, 1), limit=100)
    assert slots == [utc(2025, 12, 31, 23, 58, 21) + timedelta(seconds=i) for i in range(100)]


def test_a_limit_reaching_over_a_clock_change() -> None:
    # The shifted 02:xx slots hide the real 03:xx ones, so 6 slots back from 04:00 EDT
    # reach 01:30 EST.
    cron = CronSchedule.parse("*/15 * * * *", "America/New_York")
    slots = cron.slots(utc(2026, 3, 1), local(NY, 2026, 3, 8, 4), limit=6)
    assert wall_clock(slots, NY) == [
        "01:45 EST",
        "03:00 EDT",
        "03:15 EDT",
        "03:30 EDT",
        "03:45 EDT",
        "04:00 EDT",
    ]
