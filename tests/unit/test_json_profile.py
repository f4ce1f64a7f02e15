"""The JSON profile (durable._json_profile) and the SDK's side of it: what it refuses, what
readers do with a payload outside it, and what a worker does with an input it cannot read."""

from __future__ import annotations

import json

import pytest

from durable import UndecodableJSON, _serde
from durable._json_profile import MAX_DEPTH, problem
from durable_worker.outcome import InputDecodeError, decode, error_from_exception


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.mark.parametrize(
    "text",
    [
        "null",
        '{"a": [1, 2.5, "x", true]}',
        nested(MAX_DEPTH),
        "1e308",
        "-1e-400",
        str(2**64),  # beyond 2**53: kept (documented: doubles round it)
        '"\\\\u0000"',  # an escaped backslash, then the text u0000
        '"\\ud83d\\ude00"',  # a surrogate pair: one character
        '["[[[[", ' + nested(MAX_DEPTH - 1) + "]",  # brackets in strings do not count
        '["\\"[", ' + nested(MAX_DEPTH - 1) + "]",
    ],
)
def test_inside_the_profile(text: str) -> None:
    assert problem(text) is None
    assert problem(json.dumps(json.loads(text)), well_formed=True) is None


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (nested(MAX_DEPTH + 1), f"nested too deeply: {MAX_DEPTH + 1} levels"),
        ('["\\\\", ' + nested(MAX_DEPTH) + "]", "nested too deeply"),
        (nested(100_000), "nested too deeply"),
        ("NaN", "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        ("1e400", "IEEE 754 double"),
        ("-1E+400", "IEEE 754 double"),
        ("9" * 309, "IEEE 754 double"),
        ("9" * 5000, "IEEE 754 double"),
        ('{"a": "\\u0000"}', "U+0000"),
        ('{"\\ud800": 1}', "lone surrogate (\\ud800"),
        ('"\\udc00\\ud800"', "lone surrogate"),
        ('{"a": 1,', "is not valid JSON"),
    ],
)
def test_outside_the_profile(text: str, rule: str) -> None:
    assert rule in (problem(text) or "")


@pytest.mark.parametrize(
    "value",
    [json.loads(nested(MAX_DEPTH + 1)), "a\x00b", "\ud800", 10**400, float("nan")],
    ids=["deep", "nul", "surrogate", "huge", "nan"],
)
def test_the_sdk_refuses_to_encode_what_the_orchestrator_would_refuse(value: object) -> None:
    with pytest.raises(_serde.JSONSerializationError):
        _serde.dumps(value)


def test_the_sdk_encodes_deep_python_values_without_crashing() -> None:
    value: list[object] = []
    for _ in range(100_000):
        value = [value]
    with pytest.raises(_serde.JSONSerializationError, match="nested too deeply"):
        _serde.dumps(value)


def test_readers_get_undecodable_payloads_as_raw_text() -> None:
    deep = nested(5000)
    value = _serde.loads_or_raw(deep)
    assert isinstance(value, UndecodableJSON)
    assert value == deep
    assert "nested too deeply" in value.error
    assert isinstance(_serde.loads_or_raw("{oops"), UndecodableJSON)
    assert _serde.loads_or_raw('{"a": 1}') == {"a": 1}
    assert _serde.loads_or_raw("") is None


def test_a_step_input_too_deep_to_decode_fails_the_attempt_for_good() -> None:
    with pytest.raises(InputDecodeError, match="nested too deeply") as info:
        decode(nested(100_000), "input")
    assert error_from_exception(info.value).non_retryable
