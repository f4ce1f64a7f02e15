"""The orchestrator's per-attempt log cap, and reading a stored log back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from durable_server.engine.logs import LogEntry, cap_entries, entries_from_row
from durable_server.store.step_logs import LogSize, StepLogRow

T = datetime(2030, 1, 1, tzinfo=UTC)


def entries(*messages: str) -> list[LogEntry]:
    return [LogEntry(T, "INFO", "app", m) for m in messages]


def test_lines_fit_until_one_does_not_then_none_do() -> None:
    kept, size, dropped, dropped_bytes, cap = cap_entries(
        entries("aaaa", "bbbbbb", "cc", "d"), None, max_bytes=10, max_lines=100
    )
    assert [e.message for e in kept] == ["aaaa", "bbbbbb"]
    assert (size, dropped, dropped_bytes, cap) == (10, 2, 3, "10 bytes")


def test_the_cap_counts_what_earlier_runs_stored() -> None:
    kept, _, dropped, _, cap = cap_entries(
        entries("a", "b", "c"),
        LogSize(lines=2, bytes=0, dropped_lines=0),
        max_bytes=99,
        max_lines=3,
    )
    assert [e.message for e in kept] == ["a"]
    assert (dropped, cap) == (2, "3 lines")


def test_a_log_that_dropped_lines_keeps_no_later_ones() -> None:
    kept, _, dropped, dropped_bytes, _ = cap_entries(
        entries("é"), LogSize(lines=1, bytes=1, dropped_lines=4), max_bytes=99, max_lines=99
    )
    assert (kept, dropped, dropped_bytes) == ([], 1, 2)  # bytes are UTF-8 bytes


def test_a_stored_log_reads_back_with_its_marker() -> None:
    row = StepLogRow(
        sequence=1,
        attempt=2,
        lines_json=json.dumps(
            [{"time": T.isoformat(), "level": "PRINT", "logger": "stdout", "message": "hi"}]
        ),
        dropped_lines=1_234,
        dropped_bytes=56_789,
        cap="262,144 bytes",
        updated_at=T,
    )

    assert entries_from_row(row) == [
        LogEntry(T, "PRINT", "stdout", "hi"),
        LogEntry(
            T,
            "WARNING",
            "durable",
            "… 1,234 log line(s) (56,789 bytes) dropped: over the per-step cap of 262,144 bytes",
        ),
    ]
