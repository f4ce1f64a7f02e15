"""Backoff maths of retry_delay and the RetryPolicy value (validation, protobuf form)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from durable import RetryPolicy
from durable._retry import retry_delay
from durable.v1 import common_pb2


def policy(**kwargs: object) -> RetryPolicy:
    defaults: dict[str, object] = {
        "max_attempts": 10,
        "initial_delay": timedelta(seconds=1),
        "max_delay": timedelta(minutes=5),
        "jitter": 0.0,
    }
    return RetryPolicy(**{**defaults, **kwargs})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("fixed", [1, 1, 1, 1]),
        ("linear", [1, 2, 3, 4]),
        ("exponential", [1, 2, 4, 8]),
    ],
)
def test_delay_without_jitter(backoff: str, expected: list[float]) -> None:
    p = policy(backoff=backoff)
    delays = [retry_delay(p, n).total_seconds() for n in range(1, 5)]
    assert delays == expected


def test_exponential_uses_the_multiplier() -> None:
    p = policy(backoff="exponential", multiplier=3.0, initial_delay=timedelta(seconds=0.5))
    assert [retry_delay(p, n).total_seconds() for n in (1, 2, 3)] == [0.5, 1.5, 4.5]


@pytest.mark.parametrize("backoff", ["fixed", "linear", "exponential"])
def test_delay_is_capped_at_max_delay(backoff: str) -> None:
    p = policy(
        backoff=backoff, initial_delay=timedelta(seconds=10), max_delay=timedelta(seconds=15)
    )
    assert retry_delay(p, 50) <= timedelta(seconds=15)
    assert retry_delay(policy(backoff="exponential"), 10_000) == timedelta(minutes=5)


@pytest.mark.parametrize(
    ("rand", "expected"),
    [(0.0, 8.0), (0.5, 10.0), (0.75, 11.0)],
)
def test_jitter_spreads_over_the_band(rand: float, expected: float) -> None:
    p = policy(backoff="fixed", initial_delay=timedelta(seconds=10), jitter=0.2)
    assert retry_delay(p, 1, rand=lambda: rand).total_seconds() == pytest.approx(expected)


def test_jitter_never_exceeds_max_delay() -> None:
    p = policy(
        backoff="fixed",
        initial_delay=timedelta(seconds=10),
        max_delay=timedelta(seconds=10),
        jitter=0.5,
    )
    assert retry_delay(p, 1, rand=lambda: 0.999).total_seconds() == 10.0
    assert retry_delay(p, 1, rand=lambda: 0.0).total_seconds() == 5.0


@pytest.mark.parametrize("backoff", ["fixed", "linear", "exponential"])
def test_jitter_stays_within_bounds(backoff: str) -> None:
    p = policy(backoff=backoff, jitter=0.3, max_delay=timedelta(seconds=6))
    rng = random.Random(1234)
    for failures in range(1, 8):
        base = retry_delay(policy(backoff=backoff, max_delay=timedelta(seconds=6)), failures)
        low, high = base * 0.7, min(base * 1.3, timedelta(seconds=6))
        for _ in range(200):
            assert low <= retry_delay(p, failures, rand=rng.random) <= high


def test_failures_must_be_positive() -> None:
    with pytest.raises(ValueError, match="failures must be >= 1, got 0"):
        retry_delay(policy(), 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1, got 0"),
        ({"backoff": "random"}, "backoff must be one of"),
        ({"initial_delay": timedelta(seconds=-1)}, "delays must not be negative"),
        ({"max_delay": timedelta(seconds=-1)}, "delays must not be negative"),
        ({"multiplier": 0.5}, "multiplier must be >= 1.0, got 0.5"),
        ({"jitter": 1.5}, "jitter must be within 0..1, got 1.5"),
        ({"jitter": -0.1}, "jitter must be within 0..1"),
    ],
)
def test_policy_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_non_retryable_errors_become_a_tuple() -> None:
    assert RetryPolicy(non_retryable_errors=["KeyError"]).non_retryable_errors == ("KeyError",)


@pytest.mark.parametrize(
    "p",
    [
        RetryPolicy(),
        RetryPolicy(
            max_attempts=7,
            backoff="linear",
            initial_delay=timedelta(milliseconds=250),
            max_delay=timedelta(seconds=30),
            multiplier=1.5,
            jitter=0.0,
            non_retryable_errors=("ValueError", "KeyError"),
        ),
        RetryPolicy(max_attempts=1, backoff="fixed", jitter=1.0),
    ],
)
def test_policy_proto_round_trip(p: RetryPolicy) -> None:
    assert RetryPolicy.from_proto(p.to_proto()) == p


def test_policy_from_empty_proto_fills_defaults() -> None:
    p = RetryPolicy.from_proto(common_pb2.RetryPolicy())
    assert p == RetryPolicy(max_attempts=1, backoff="exponential", jitter=0.0)
    assert p.initial_delay == timedelta(seconds=1)
    assert p.max_delay == timedelta(minutes=5)
    assert p.multiplier == 2.0


def test_policy_proto_fields() -> None:
    msg = RetryPolicy(backoff="fixed", initial_delay=timedelta(seconds=2)).to_proto()
    assert msg.backoff == common_pb2.BACKOFF_FIXED
    assert msg.initial_delay.ToTimedelta() == timedelta(seconds=2)
