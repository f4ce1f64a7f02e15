"""Exponential backoff with jitter for retrying calls to an unreachable orchestrator."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Delays that double from ``initial`` up to ``maximum``, each drawn from ``[d/2, d]``.

    The jitter ("equal jitter") keeps many workers that lost the same orchestrator from
    reconnecting in lockstep, while the lower bound keeps each one from hammering it.

    Args:
        initial: The first delay, in seconds, before jitter.
        maximum: The cap on any delay, in seconds.
        rng: A source of floats in ``[0, 1)``, injectable for tests.
    """

    def __init__(
        self,
        initial: float = 0.1,
        maximum: float = 5.0,
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial <= maximum, got {initial} and {maximum}")
        self._initial = initial
        self._maximum = maximum
        self._rng = rng
        self._current = initial

    def next_delay(self) -> float:
        """The next delay in seconds; each call doubles the next one, up to the cap."""
        delay = self._current
        self._current = min(self._current * 2, self._maximum)
        return delay * (0.5 + self._rng() / 2)

    def reset(self) -> None:
        """Start again from the initial delay (after a call succeeds)."""
        self._current = self._initial
