"""docs/protocol.md stays true to the code: RPCs, task kinds, fields, error types, numbers.

The reference is written by hand; these checks catch the drift that is cheap to catch: a
new RPC, task kind or Task field it does not mention, an error type the code emits that it
does not list (or one it lists that the code no longer uses), and the constants it quotes.
"""

from __future__ import annotations

import re
from pathlib import Path

from durable import _context, _json_profile
from durable.v1 import common_pb2, worker_service_pb2
from durable_server import ids
from durable_server.api import reports as server_reports
from durable_server.api import validate
from durable_server.api import worker_service as server_worker_service
from durable_server.config import Settings
from durable_server.engine import engine as server_engine
from durable_worker import heartbeat, poller, reporter, rpc, runner

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
SERVER = ROOT / "server" / "src" / "durable_server"
WORKER = ROOT / "worker" / "src" / "durable_worker"

# The error types a wait's memo outcome can carry (the orchestrator's names).
MEMO_ERROR_TYPES = {
    "ChildWorkflowFailed",
    "ChildTimeout",
    "ChildWorkflowMissing",
    "EventTimeout",
    "InputTimeout",
}


def _section(title: str) -> str:
    """The text of the doc's section whose heading is ``title``, up to the next heading."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ |\Z)", DOC, re.M | re.S)
    assert match is not None, f"docs/protocol.md has no section {title!r}"
    return match.group(1)


def _table_names(text: str) -> set[str]:
    """The backquoted names in the first cell of each table row of ``text``."""
    names: set[str] = set()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("| `"):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Za-z]+)`", first))
    return names


def _sources(root: Path, pattern: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(root.rglob(pattern)))


def _server_error_types() -> set[str]:
    """Every error type the orchestrator builds: StepError("X", ...), waits and SQL."""
    py = _sources(SERVER, "*.py")
    found = set(re.findall(r'StepError\(\s*"([A-Z]\w+)"', py))
    for pair in re.findall(r'"([A-Z]\w+)" if isinstance\(node, \w+\) else "([A-Z]\w+)"', py):
        found |= set(pair)  # BranchError / ForeachItemsError, ParallelFailed / ForeachFailed
    found |= set(re.findall(r'_error\(\s*"([A-Z]\w+)"', py))
    waits = (SERVER / "engine" / "waits.py").read_text(encoding="utf-8")
    found |= set(re.findall(r'"([A-Z]\w*Timeout)"', waits))
    found |= set(re.findall(r"'type', '([A-Z]\w+)'", _sources(SERVER, "*.sql")))
    return found


def _worker_error_types() -> set[str]:
    """Every error type the worker decides itself (worker_failure and ErrorInfo(type=...))."""
    py = _sources(WORKER, "*.py")
    found = set(re.findall(r'worker_failure\(\s*task,\s*"([A-Z]\w+)"', py))
    found |= set(re.findall(r'\btype="([A-Z]\w+)"', py))
    found |= set(re.findall(r'outcome\.worker_failure\(\s*task,\s*"([A-Z]\w+)"', py))
    return found


def test_every_worker_rpc_is_documented() -> None:
    service = worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"]
    methods = [m.name for m in service.methods]
    assert len(methods) == 7
    for name in methods:
        assert f"`{name}`" in DOC, name


def test_every_task_kind_is_documented() -> None:
    kinds = _section("Task kinds")
    for value in common_pb2.TaskKind.DESCRIPTOR.values:
        if value.number != 0:
            assert f"`{value.name}`" in kinds, value.name


def test_every_task_field_is_documented() -> None:
    table = _section("The Task")
    for field in worker_service_pb2.Task.DESCRIPTOR.fields:
        assert f"`{field.name}`" in table, field.name


def test_memo_error_types_are_the_orchestrators() -> None:
    emitted = _server_error_types()
    assert emitted >= MEMO_ERROR_TYPES  # the code still emits each one
    assert _table_names(_section("Memo outcomes")) == MEMO_ERROR_TYPES


def test_orchestrator_error_types_are_listed() -> None:
    listed = _table_names(_section("Errors")) | _table_names(_section("Memo outcomes"))
    missing = _server_error_types() - listed
    assert not missing, f"docs/protocol.md does not list error type(s) {sorted(missing)}"


def test_worker_error_types_are_listed() -> None:
    listed = _table_names(_section("Errors"))
    emitted = _worker_error_types() | {"InputDecodeError", "GotoError"}  # exception classes
    assert emitted <= listed, sorted(emitted - listed)


def test_every_listed_error_type_is_used_by_the_code() -> None:
    code = _sources(SERVER, "*.py") + _sources(SERVER, "*.sql") + _sources(WORKER, "*.py")
    listed = _table_names(_section("Errors")) | _table_names(_section("Memo outcomes"))
    for name in listed:
        assert re.search(rf"[\"']{name}[\"']|class {name}\b", code), name


def test_the_error_trailer_is_the_one_both_sides_use() -> None:
    assert rpc.ERROR_TRAILER == server_engine.ERROR_TRAILER == "durable-error"
    assert server_engine.WORKER_UNKNOWN == "worker-unknown"
    assert f"**`{rpc.ERROR_TRAILER}`**: `{server_engine.WORKER_UNKNOWN}`" in DOC


def test_the_stale_trailer_key_is_the_one_both_sides_use() -> None:
    assert rpc.STALE_TRAILER == server_engine.STALE_TRAILER == "durable-stale-task-ids"
    assert f"**`{rpc.STALE_TRAILER}`**" in DOC


def test_child_ids_namespace() -> None:
    namespace = "6ba7b811-9dad-11d1-80b4-00c04fd430c8"
    assert str(_context.CHILD_NAMESPACE) == str(ids.CHILD_NAMESPACE) == namespace
    assert f"uuid5({namespace}, " in DOC
    assert '"<parent execution_id>/<sequence>/<index>"' in DOC


def test_quoted_numbers_match_the_code() -> None:
    settings = Settings()
    facts = [
        (settings.lease_secs == 30, "`DURABLE_LEASE_SECONDS` (30 s)"),
        (settings.timeout_grace_secs == 5, "timeout + 5 s"),
        (settings.poll_heartbeat_secs == 10, "(10 s)"),
        (runner.DEFAULT_HEARTBEAT_INTERVAL == 10, "(10 s)"),
        (settings.default_poll_wait_secs == 30, "unset means 30 s"),
        (settings.max_poll_wait_secs == 60, "cut to 60 s"),
        (poller.POLL_DEADLINE_MARGIN == 10, "`wait_timeout + 10 s`"),
        (server_worker_service.MAX_TASKS == 1000, "1..1000"),
        (server_reports.MAX_BATCH == 5000, "up to 5,000"),
        (heartbeat.MAX_LEASES_PER_CALL == 5000, "up to 5,000 leases"),
        (reporter.MAX_ITEMS_PER_CALL == 1000, "1,000 items per call"),
        (validate.MAX_QUEUES == 100, "at most 100"),
        (validate.MAX_KEY_LENGTH == 255, "1-255 characters"),
        (_json_profile.MAX_DEPTH == 64, "at most 64 arrays"),
        (settings.max_lost_attempts == 10, "`DURABLE_MAX_LOST_ATTEMPTS` (10)"),
    ]
    for holds, phrase in facts:
        assert holds, f"the code changed: update {phrase!r} in docs/protocol.md"
        assert phrase in DOC, phrase


def test_readme_links_the_protocol() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/protocol.md)" in readme
