"""Duration helpers: ``seconds(5)``, ``minutes(2)``, ``hours(1)``, ``days(7)``."""

from __future__ import annotations

from datetime import timedelta

__all__ = ["days", "hours", "minutes", "seconds"]


def seconds(n: float) -> timedelta:
    """A duration of ``n`` seconds."""
    return timedelta(seconds=n)


def minutes(n: float) -> timedelta:
    """A duration of ``n`` minutes."""
    return timedelta(minutes=n)


def hours(n: float) -> timedelta:
    """A duration of ``n`` hours."""
    return timedelta(hours=n)


def days(n: float) -> timedelta:
    """A duration of ``n`` days."""
    return timedelta(days=n)
