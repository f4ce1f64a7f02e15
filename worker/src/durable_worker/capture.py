"""Capture what one step attempt logs and prints, and nothing else.

Each run of a task gets a :class:`StepLog`, made current (in a
:class:`~contextvars.ContextVar`) for the code that runs the step: an async step runs in
the runner's own asyncio task for that task, a sync step in a worker thread inside a
copy of that task's context (``loop.run_in_executor`` copies no context by itself). So
a line lands in the buffer of the step whose code wrote it, however many steps run at
once; code with no current buffer (the worker itself, other threads) is not captured.

- **logging**: one :class:`logging.Handler` on the root logger takes every record
  that reaches it (records below a logger's level never do: the ``durable-worker``
  command sets the root level from ``--log-level``, INFO by default; in-process,
  configure logging, e.g. ``logging.basicConfig(level=logging.INFO)``). The worker's own
  records (``durable_worker.*``) are not captured. When that handler is the only one
  a record meets, the record still goes to :data:`logging.lastResort`, as it would
  without the capture.
- **print**: ``sys.stdout`` and ``sys.stderr`` are wrapped once (again if something
  replaced them); what a step writes still goes to the real stream, and each completed
  line is captured with level ``PRINT`` and logger ``stdout`` or ``stderr``. Writes made
  by a logging handler (a ``StreamHandler`` on stderr) are not captured twice.

Per attempt at most ``max_bytes`` of message text (UTF-8) and ``max_lines`` lines are
kept, each line cut at :data:`MAX_LINE_CHARS`. The first line that does not fit is
dropped with every line after it, and the attempt's lines end with one ``WARNING``
line of logger ``durable`` saying how many were dropped. Threads a step starts itself
are captured only when they run in a copy of its context
(``contextvars.copy_context().run``).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO, cast

from durable.secrets import marked_secrets, redact, secret_scope
from durable.v1 import common_pb2
from durable.v1 import worker_service_pb2 as pb

Report = pb.TaskCompletion | pb.TaskFailure | pb.TaskSuspension

__all__ = [
    "DEFAULT_MAX_LOG_BYTES",
    "DEFAULT_MAX_LOG_LINES",
    "MAX_LINE_CHARS",
    "StepLog",
    "attach",
    "capturing",
    "current",
    "install",
]

DEFAULT_MAX_LOG_BYTES = 64 * 1024
"""Message text kept per attempt, in UTF-8 bytes."""
DEFAULT_MAX_LOG_LINES = 1000
"""Lines kept per attempt."""
MAX_LINE_CHARS = 16 * 1024
"""Longer lines are cut (and end with ``[... cut]``)."""

_OWN_LOGGERS = ("durable_worker",)
_SURROGATE = re.compile("[\ud800-\udfff]")
_CURRENT: ContextVar[StepLog | None] = ContextVar("durable_step_log", default=None)


@dataclass(frozen=True)
class _Line:
    created: float
    level: str
    logger: str
    message: str


def _clean(text: str) -> str:
    """Text protobuf can send: lone surrogates (from surrogateescape) become U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)
    return text


def _size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


class StepLog:
    """The captured lines of one run of one task, capped, and the secrets it marked.

    Thread-safe: a timed-out sync step may still write while its report is made;
    after :meth:`close` further lines are ignored.
    """

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_LOG_BYTES, max_lines: int = DEFAULT_MAX_LOG_LINES
    ) -> None:
        self.max_bytes = max_bytes
        self.max_lines = max_lines
        self.secrets: set[str] = set()
        self._lines: list[_Line] = []
        self._bytes = 0
        self._full: str | None = None  # which cap was hit: "bytes" or "lines"
        self._dropped = 0
        self._dropped_bytes = 0
        self._partial: dict[str, list[str]] = {}
        self._closed = False
        self._lock = threading.Lock()

    def add(self, level: str, logger: str, message: str, created: float | None = None) -> None:
        """Keep one line, unless a cap is reached (then count it as dropped)."""
        message = _clean(message)
        if len(message) > MAX_LINE_CHARS:
            message = message[:MAX_LINE_CHARS] + " [... cut]"
        size = _size(message)
        line = _Line(time.time() if created is None else created, level, _clean(logger), message)
        with self._lock:
            self._add(line, size)

    def _add(self, line: _Line, size: int) -> None:
        if self._closed:
            return
        if self._full is None:
            if len(self._lines) >= self.max_lines:
                self._full = "lines"
            elif self._bytes + size > self.max_bytes:
                self._full = "bytes"
        if self._full is not None:
            self._dropped += 1
            self._dropped_bytes += size
            return
        self._lines.append(line)
        self._bytes += size

    def write(self, stream: str, text: str) -> None:
        """Printed text: each completed line becomes a ``PRINT`` line of logger ``stream``."""
        with self._lock:
            if self._closed:
                return
            pending = self._partial.setdefault(stream, [])
            *complete, rest = text.split("\n")
            if complete:
                first = "".join([*pending, complete[0]])
                pending.clear()
                for piece in [first, *complete[1:]]:
                    self._print_line(stream, piece)
            if rest:
                pending.append(rest)

    def _print_line(self, stream: str, text: str) -> None:
        text = _clean(text.removesuffix("\r"))
        if len(text) > MAX_LINE_CHARS:
            text = text[:MAX_LINE_CHARS] + " [... cut]"
        self._add(_Line(time.time(), "PRINT", stream, text), _size(text))

    def close(self) -> list[common_pb2.LogLine]:
        """End the capture: the lines kept (secrets masked), then the drop marker if any."""
        with self._lock:
            if not self._closed:
                for stream, pending in self._partial.items():
                    if pending:
                        self._print_line(stream, "".join(pending))
                self._partial.clear()
                self._closed = True
            lines = list(self._lines)
        secrets = marked_secrets() | self.secrets
        out = [_to_proto(x.created, x.level, x.logger, redact(x.message, secrets)) for x in lines]
        marker = self.marker()
        if marker is not None:
            out.append(_to_proto(time.time(), "WARNING", "durable", marker))
        return out

    def marker(self) -> str | None:
        """The text of the drop marker, or None when nothing was dropped."""
        if not self._dropped:
            return None
        cap = f"{self.max_lines:,} lines" if self._full == "lines" else f"{self.max_bytes:,} bytes"
        return (
            f"… {self._dropped:,} log line(s) ({self._dropped_bytes:,} bytes) dropped: "
            f"over the per-step cap of {cap}"
        )


def _to_proto(created: float, level: str, logger: str, message: str) -> common_pb2.LogLine:
    line = common_pb2.LogLine(level=level, logger=logger, message=message)
    line.time.FromNanoseconds(int(created * 1_000_000_000))
    return line


def current() -> StepLog | None:
    """The buffer of the step attempt running in this context, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def capturing(step_log: StepLog) -> Iterator[StepLog]:
    """Make ``step_log`` (and its secrets) current for the block; installs the capture.

    Code run in a copy of the block's context (``contextvars.copy_context()``, a new
    asyncio task) captures into the same buffer.
    """
    install()
    token = _CURRENT.set(step_log)
    try:
        with secret_scope(step_log.secrets):
            yield step_log
    finally:
        _CURRENT.reset(token)


def attach(report: Report, step_log: StepLog) -> None:
    """Close ``step_log`` into ``report.logs``, and mask secrets in the report's errors."""
    report.logs.extend(step_log.close())
    secrets = marked_secrets() | step_log.secrets
    errors: Iterable[common_pb2.ErrorInfo] = ()
    if isinstance(report, pb.TaskFailure):
        errors = (report.error,)
    elif isinstance(report, pb.TaskCompletion):
        errors = (e.error for e in report.evaluations.values() if e.HasField("error"))
    for error in errors:
        error.message = redact(error.message, secrets)
        error.traceback = redact(error.traceback, secrets)


# -- the hooks ---------------------------------------------------------------------------


class _Handler(logging.Handler):
    """Appends each record to the current step's buffer (if any)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(message)s"))  # adds exc_info and stack_info

    def emit(self, record: logging.LogRecord) -> None:
        step_log = _CURRENT.get()
        if step_log is not None and not record.name.startswith(_OWN_LOGGERS):
            try:
                message = self.format(record)
            except Exception:
                self.handleError(record)
            else:
                step_log.add(record.levelname, record.name, message, record.created)
        if logging.root.handlers == [self]:
            self._last_resort(record)

    def _last_resort(self, record: logging.LogRecord) -> None:
        """Do what logging does for a record no other handler took: lastResort."""
        logger: logging.Logger | None = (
            logging.root if record.name == "root" else logging.getLogger(record.name)
        )
        while logger is not None:
            if any(h is not self for h in logger.handlers):
                return
            if not logger.propagate:
                break
            logger = logger.parent
        resort = logging.lastResort
        if resort is not None and record.levelno >= resort.level:
            resort.handle(record)


class _Tee:
    """A text stream that passes writes through and captures them for the current step."""

    def __init__(self, stream: TextIO, name: str) -> None:
        self._durable_stream = stream
        self._durable_name = name

    def write(self, text: str) -> int:
        step_log = _CURRENT.get()
        if step_log is not None and text and not _from_logging():
            step_log.write(self._durable_name, text)
        return self._durable_stream.write(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._durable_stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._durable_stream, name)


def _from_logging() -> bool:
    """True when the write comes straight from a logging handler (already captured)."""
    caller = sys._getframe(2)  # 0: here, 1: _Tee.write, 2: its caller
    return str(caller.f_globals.get("__name__", "")).startswith("logging")


_HANDLER = _Handler()
_INSTALL_LOCK = threading.Lock()


def install() -> None:
    """Put the handler on the root logger and wrap stdout/stderr, unless already done.

    Cheap when nothing changed; called at the start of every attempt, so a
    ``logging.basicConfig(force=True)`` or a replaced ``sys.stdout`` is undone.
    """
    root = logging.getLogger()
    if _HANDLER in root.handlers and isinstance(sys.stdout, _Tee) and isinstance(sys.stderr, _Tee):
        return
    with _INSTALL_LOCK:
        if _HANDLER not in root.handlers:
            root.addHandler(_HANDLER)
        if sys.stdout is not None and not isinstance(sys.stdout, _Tee):
            sys.stdout = cast(TextIO, _Tee(sys.stdout, "stdout"))
        if sys.stderr is not None and not isinstance(sys.stderr, _Tee):
            sys.stderr = cast(TextIO, _Tee(sys.stderr, "stderr"))
