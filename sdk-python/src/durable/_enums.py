"""One mapping between a Python string enum and the protobuf enum of the same members."""

from __future__ import annotations

import enum
from typing import Any, Generic, TypeVar

__all__ = ["ProtoEnum"]

E = TypeVar("E", bound=enum.Enum)


class ProtoEnum(Generic[E]):
    """``py`` member ``NAME`` is proto value ``<prefix>NAME``, both ways, with clear errors.

    Built at import, so a member the proto enum lacks fails at once. ``unspecified`` is
    what the proto's 0 (UNSPECIFIED) reads as, when it means a default rather than an error.
    """

    def __init__(
        self,
        py: type[E],
        proto: Any,
        prefix: str,
        what: str,
        unspecified: E | None = None,
        *,
        name: str | None = None,
    ) -> None:
        self.py = py
        self.what = what
        self.name = name or what
        self.unspecified = unspecified
        self._to: dict[E, int] = {m: int(proto.Value(f"{prefix}{m.name}")) for m in py}
        self._from: dict[int, E] = {v: m for m, v in self._to.items()}

    def to_proto(self, value: E | str) -> int:
        """The proto value of a member or its value (``"running"``); ValueError if unknown."""
        try:
            return self._to[self.py(value)]
        except ValueError:
            valid = ", ".join(str(m.value) for m in self.py)
            raise ValueError(f"unknown {self.name} {value!r}; expected one of {valid}") from None

    def from_proto(self, value: int) -> E:
        """The member of a proto value; ValueError for an unknown one (or UNSPECIFIED)."""
        if value == 0 and self.unspecified is not None:
            return self.unspecified
        try:
            return self._from[value]
        except KeyError:
            raise ValueError(
                f"the orchestrator sent an unknown {self.what} ({value}); "
                "is this SDK older than the orchestrator?"
            ) from None
