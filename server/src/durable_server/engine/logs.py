"""The captured logs of step attempts: capped, stored with the report, read back.

A worker sends what a step run logged with its report (a completion, failure or
suspension); the lines are stored in the report's transaction, appended to the
attempt's log (a step that suspends runs again under the same attempt). Workers cap
their lines per run; the orchestrator caps each attempt too (``max_log_bytes`` of
message text, ``max_log_lines`` lines, whatever the workers send): the first line that
does not fit is dropped with every line after it, and reading the log ends it with one
``WARNING`` line of logger ``durable`` saying how many lines were dropped. Nothing is
refused for its size.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from durable_server.store import step_logs as log_store
from durable_server.store.db import Conn
from durable_server.store.rows import LeasedTask
from durable_server.store.step_logs import AttemptKey, LogAppend, LogSize, StepLogRow

__all__ = [
    "LEVELS",
    "LogEntry",
    "append_logs",
    "cap_entries",
    "entries_from_row",
    "level_name",
    "marker",
]

MARKER_LOGGER = "durable"
MAX_LEVEL_CHARS = 32
MAX_LOGGER_CHARS = 256

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL", "PRINT")
"""The log levels every SDK's lines are stored with (``PRINT``: written to stdout/stderr)."""

_LEVEL_NAMES = {
    **{level: level for level in LEVELS},
    "TRACE": "DEBUG",
    "VERBOSE": "DEBUG",
    "LOG": "INFO",
    "NOTICE": "INFO",
    "WARN": "WARNING",
    "FATAL": "CRITICAL",
    "PANIC": "CRITICAL",
}


def level_name(level: str) -> str:
    """``level`` in the one vocabulary of :data:`LEVELS`, whatever language's name it has.

    Case is ignored and other languages' usual names map onto it (``warn``, ``trace``,
    ``fatal``, ...); a level outside both is kept as sent, upper-cased and cut.
    """
    upper = level.strip().upper()
    return _LEVEL_NAMES.get(upper) or upper[:MAX_LEVEL_CHARS]


@dataclass(frozen=True)
class LogEntry:
    """One captured line."""

    time: datetime | None
    level: str
    logger: str
    message: str

    def size(self) -> int:
        """The message's size in UTF-8 bytes (what the cap counts)."""
        text = self.message
        return len(text) if text.isascii() else len(text.encode("utf-8", "replace"))


def marker(dropped_lines: int, dropped_bytes: int, cap: str) -> str:
    """The text of the line that ends a capped log."""
    return (
        f"… {dropped_lines:,} log line(s) ({dropped_bytes:,} bytes) dropped: "
        f"over the per-step cap of {cap}"
    )


def cap_entries(
    entries: Sequence[LogEntry],
    stored: LogSize | None,
    *,
    max_bytes: int,
    max_lines: int,
) -> tuple[list[LogEntry], int, int, int, str]:
    """Which of ``entries`` fit after what is ``stored``.

    Returns (kept, kept bytes, dropped lines, dropped bytes, the cap that dropped them).
    Once a log has dropped a line it keeps no later one, so what it shows has no gap.
    """
    lines = stored.lines if stored else 0
    size = stored.bytes if stored else 0
    full = bool(stored and stored.dropped_lines)
    kept: list[LogEntry] = []
    kept_bytes = dropped = dropped_bytes = 0
    cap = ""
    for entry in entries:
        entry_size = entry.size()
        if not full:
            if lines + len(kept) >= max_lines:
                full, cap = True, f"{max_lines:,} lines"
            elif size + kept_bytes + entry_size > max_bytes:
                full, cap = True, f"{max_bytes:,} bytes"
        if full:
            dropped += 1
            dropped_bytes += entry_size
        else:
            kept.append(entry)
            kept_bytes += entry_size
    return kept, kept_bytes, dropped, dropped_bytes, cap


def _text(value: str, limit: int | None = None) -> str:
    """Text PostgreSQL's jsonb takes: no NUL character (it cannot hold one)."""
    if limit is not None and len(value) > limit:
        value = value[:limit]
    return value.replace("\x00", "\ufffd")


def _to_json(entries: Sequence[LogEntry], fallback: datetime) -> str:
    return json.dumps(
        [
            {
                "time": (e.time or fallback).isoformat(),
                "level": _text(level_name(e.level), MAX_LEVEL_CHARS),
                "logger": _text(e.logger, MAX_LOGGER_CHARS),
                "message": _text(e.message),
            }
            for e in entries
        ],
        ensure_ascii=False,
    )


async def append_logs(
    conn: Conn,
    reports: Sequence[tuple[LeasedTask, Sequence[LogEntry]]],
    *,
    max_bytes: int,
    max_lines: int,
    now: datetime | None,
    fallback_time: datetime,
) -> None:
    """Append each task's reported lines to its attempt's log, within the caps.

    Lines without a time get ``fallback_time``. Tasks that sent no lines are skipped.
    """
    reports = [(task, entries) for task, entries in reports if entries]
    if not reports:
        return
    keys: list[AttemptKey] = [(t.execution_id, t.sequence, t.attempt) for t, _ in reports]
    stored = await log_store.step_log_sizes(conn, keys=keys)
    appends = []
    for key, (_, entries) in zip(keys, reports, strict=True):
        kept, kept_bytes, dropped, dropped_bytes, cap = cap_entries(
            entries, stored.get(key), max_bytes=max_bytes, max_lines=max_lines
        )
        appends.append(
            LogAppend(key, _to_json(kept, fallback_time), kept_bytes, dropped, dropped_bytes, cap)
        )
    await log_store.step_log_append_many(conn, appends, now=now)


def entries_from_row(row: StepLogRow) -> list[LogEntry]:
    """An attempt's stored lines, ending with the drop marker when lines were dropped."""
    entries = [
        LogEntry(
            datetime.fromisoformat(doc["time"]) if doc.get("time") else None,
            str(doc.get("level", "")),
            str(doc.get("logger", "")),
            str(doc.get("message", "")),
        )
        for doc in json.loads(row.lines_json)
    ]
    if row.dropped_lines:
        entries.append(
            LogEntry(
                row.updated_at.astimezone(UTC),
                "WARNING",
                MARKER_LOGGER,
                marker(row.dropped_lines, row.dropped_bytes, row.cap),
            )
        )
    return entries
