"""The JSON boundary: what values become, and what is refused."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import math
import uuid

import pytest

from durable._serde import JSONSerializationError, dumps, loads


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def round_trip(value: object) -> object:
    return loads(dumps(value))


def test_plain_values_round_trip() -> None:
    value = {"s": "é", "i": 1, "f": 1.5, "b": True, "n": None, "l": [1, {"k": []}]}
    assert round_trip(value) == value


def test_output_is_compact() -> None:
    assert dumps({"a": [1, 2]}) == '{"a":[1,2]}'


def test_tuples_become_lists() -> None:
    assert round_trip((1, (2, 3))) == [1, [2, 3]]


def test_dates_become_iso_strings() -> None:
    moment = datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC)
    assert round_trip({"at": moment, "on": datetime.date(2024, 5, 6)}) == {
        "at": "2024-05-06T07:08:09+00:00",
        "on": "2024-05-06",
    }


def test_other_known_types() -> None:
    u = uuid.UUID(int=1)
    assert round_trip([u, decimal.Decimal("1.10"), Colour.RED, Point(1, 2)]) == [
        str(u),
        "1.10",
        "red",
        {"x": 1, "y": 2},
    ]
    assert sorted(round_trip({3, 1, 2})) == [1, 2, 3]  # type: ignore[call-overload]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, {"x": [math.nan]}])
def test_nan_and_infinity_are_refused(bad: object) -> None:
    with pytest.raises(JSONSerializationError, match="not valid JSON"):
        dumps(bad)


def test_unknown_type_has_a_clear_message() -> None:
    class Opaque:
        pass

    with pytest.raises(JSONSerializationError) as info:
        dumps({"x": Opaque()})
    assert "value of type Opaque is not JSON serializable" in str(info.value)
    assert "return dicts, lists, strings, numbers, booleans or None" in str(info.value)
    assert isinstance(info.value, TypeError)


def test_a_class_is_not_taken_for_a_dataclass_instance() -> None:
    with pytest.raises(JSONSerializationError, match="type type"):
        dumps(Point)


def test_empty_text_is_none() -> None:
    assert loads("") is None
    assert loads("null") is None
