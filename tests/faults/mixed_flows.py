"""The mixed workload of the fault tests: workflows of every shape, and a driver for them.

Worker processes load this module (``python -m durable_worker tests.faults.mixed_flows``);
the test process uses the driver at the bottom (:class:`Driver`) to start executions, send
their events, wait for them to end and check their results.

Shapes (``SHAPES``), each a workflow of its own:

- ``fx_sequence``: three steps in a row; the middle one fails on its first run and succeeds
  on a retry (its retry policy has no delay, so it also runs on a manual clock).
- ``fx_parallel``: a parallel group, one branch of two steps and one of one step.
- ``fx_foreach``: a foreach over 3 to 6 items, two at a time.
- ``fx_wait``: a step that waits for the event ``go`` (sent by the driver: before the
  wait begins for some executions, after for the others).
- ``fx_child``: a step that calls the child workflow ``fx_child_work`` and waits for it.
- ``fx_nested``: a parallel group with a lane that waits for the event ``go`` and a lane
  that runs a nested foreach.

**The side-effect ledger.** Every step run (:func:`ledgered`) appends JSON lines to the
file named by ``$FAULT_LEDGER``: ``start`` when it begins (with its execution, sequence,
attempt, lane, how many wait outcomes its memo holds, and the worker's pid), then
``done`` when it returns or ``raised`` when it raises (a failure, or a suspension: a
waiting step raises out of its wait). A step's side effect is applied once per step run
however often it runs: a marker file named after ``ctx.idempotency_key``, holding the
applying run's token, is created only if it does not exist in ``$FAULT_MARKERS``
(``applied`` on the ``done`` line says whether this run created it). Each run returns a
fresh token under ``"run"``, so a recorded result says which run it came from.
:func:`tests.helpers.invariants.check_effects` holds the database against this ledger:
at-least-once execution, exactly-once recording.

``$FAULT_STEP_SECONDS`` (``"lo,hi"``) makes each run sleep a random time in that range
(so that a SIGKILL or a cut finds steps mid-run); ``$FAULT_BLOCK_STEPS`` (comma-separated
step names) makes those steps block until a line arrives on the worker's stdin, as in
:mod:`tests.faults.crash_flows`.

The definitions (names, steps, options) are what the workflow versions are hashed from,
so every worker process registers the same versions whatever its environment says.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import grpc

from durable import RetryPolicy, StepContext, Workflow, foreach
from durable.v1 import workflow_service_pb2 as pb
from durable.v1 import workflow_service_pb2_grpc as pbgrpc

LEDGER_ENV = "FAULT_LEDGER"
MARKERS_ENV = "FAULT_MARKERS"
STEP_SECONDS_ENV = "FAULT_STEP_SECONDS"
BLOCK_ENV = "FAULT_BLOCK_STEPS"

EVENT = "go"
WAIT_TIMEOUT = timedelta(hours=1)  # far: the waits end by their event, never by the timer


# -- the ledger (in the worker) --------------------------------------------------------------


def _append(line: dict[str, Any]) -> None:
    data = (json.dumps(line, sort_keys=True) + "\n").encode()
    fd = os.open(os.environ[LEDGER_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)  # one O_APPEND write: lines never interleave
    finally:
        os.close(fd)


def _marker(kind: str, key: str, content: str) -> bool:
    """Create the marker ``kind`` of a step run, holding ``content``; True if this call did.

    The marker appears with its content at once (a hard link of a written temporary file),
    so a SIGKILL never leaves an empty one.
    """
    folder = Path(os.environ[MARKERS_ENV])
    tmp = folder / f".tmp-{uuid.uuid4().hex}"
    tmp.write_text(content)
    try:
        os.link(tmp, folder / f"{kind}-{key}".replace("/", "_"))
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def _pause(ctx: StepContext) -> None:
    spec = os.environ.get(STEP_SECONDS_ENV, "")
    if spec:
        lo, hi = (float(x) for x in spec.split(","))
        time.sleep(random.uniform(lo, hi))
    if ctx.step_name in os.environ.get(BLOCK_ENV, "").split(",") and not sys.stdin.readline():
        raise RuntimeError(f"step {ctx.step_name!r}: stdin closed while blocked")


Step = Callable[[Any, StepContext], dict[str, Any]]


def ledgered(fn: Step) -> Step:
    """Write the run's ``start`` line, then ``done`` (applying the side effect once, and
    adding the run's token to the result) or ``raised`` (a failure, or a suspension: a
    step that waits raises out of its wait and runs again later)."""

    @functools.wraps(fn)
    def run(data: Any, ctx: StepContext) -> dict[str, Any]:
        token = uuid.uuid4().hex
        line = {
            "run": token,
            "exec": ctx.execution_id,
            "seq": ctx.sequence,
            "attempt": ctx.attempt,
            "step": ctx.step_name,
            "lane": ctx.lane_path,
            "memo": len(ctx.memo),
            "pid": os.getpid(),
        }
        _append({"ev": "start", **line, "t": time.time()})
        try:
            value = fn(data, ctx)
        except BaseException as exc:
            _append({"ev": "raised", **line, "error": type(exc).__name__, "t": time.time()})
            raise
        applied = _marker("effect", ctx.idempotency_key, token)
        _append({"ev": "done", **line, "applied": applied, "t": time.time()})
        return {**value, "run": token}

    return run


def _plain(data: Any) -> Any:
    """``data`` without the run tokens the steps add."""
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items() if k != "run"}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


# -- the workflows -------------------------------------------------------------------------

NO_DELAY_RETRY = RetryPolicy(max_attempts=3, backoff="fixed", initial_delay=timedelta(0), jitter=0)

sequence = Workflow("fx_sequence")


@sequence.step
@ledgered
def seq_begin(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"], "trail": ["begin"]}


@sequence.step(retry=NO_DELAY_RETRY)
@ledgered
def seq_flaky(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    if _marker("flaky", ctx.idempotency_key, "failed"):  # its first run fails
        raise RuntimeError("flaky: fails on its first run, succeeds on a retry")
    return {"n": data["n"], "trail": [*data["trail"], "flaky"]}


@sequence.step
@ledgered
def seq_end(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"], "total": data["n"] * 3, "trail": [*data["trail"], "end"]}


parallel_flow = Workflow("fx_parallel")


@parallel_flow.step
@ledgered
def par_load(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"]}


@ledgered
def par_left_a(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"], "a": data["n"] + 1}


@ledgered
def par_left_b(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"v": data["a"] * 10}


@ledgered
def par_right(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"v": -data["n"]}


parallel_flow.parallel("fan", {"left": [par_left_a, par_left_b], "right": [par_right]})


@parallel_flow.step
@ledgered
def par_join(results: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"left": results["left"]["v"], "right": results["right"]["v"]}


foreach_flow = Workflow("fx_foreach")


@foreach_flow.step
@ledgered
def fe_items(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"items": list(range(1, data["n"] % 4 + 4))}


@ledgered
def fe_square(item: int, ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"item": item, "square": item * item}


foreach_flow.foreach("each", items=lambda d: d["items"], steps=[fe_square], concurrency=2)


@foreach_flow.step
@ledgered
def fe_sum(results: list[dict[str, Any]], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"sum": sum(r["square"] for r in results), "items": len(results)}


wait_flow = Workflow("fx_wait")


@wait_flow.step
@ledgered
def wt_prepare(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"]}


@wait_flow.step
@ledgered
def wt_await(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    payload = ctx.wait_for_event(EVENT, timeout=WAIT_TIMEOUT)  # raises until the event came
    _pause(ctx)
    return {"n": data["n"], "got": payload["n"]}


@wait_flow.step
@ledgered
def wt_after(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"], "got": data["got"], "ok": data["got"] == data["n"]}


child_work = Workflow("fx_child_work")


@child_work.step
@ledgered
def cw_double(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"double": data["n"] * 2}


child_flow = Workflow("fx_child")


@child_flow.step
@ledgered
def ch_call(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    got = ctx.call_workflow("fx_child_work", {"n": data["n"]})  # raises until the child ended
    _pause(ctx)
    return {"n": data["n"], "child": got["double"]}


@child_flow.step
@ledgered
def ch_after(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"], "child": data["child"], "sum": data["n"] + data["child"]}


nested_flow = Workflow("fx_nested")


@ledgered
def ns_wait(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    payload = ctx.wait_for_event(EVENT, timeout=WAIT_TIMEOUT)
    _pause(ctx)
    return {"got": payload["n"]}


@ledgered
def ns_cube(item: int, ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"cube": item**3}


nested_flow.parallel(
    "lanes",
    {
        "waiter": [ns_wait],
        "worker": [foreach("inner", items=lambda d: d["items"], steps=[ns_cube], concurrency=2)],
    },
)


@nested_flow.step
@ledgered
def ns_join(results: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"got": results["waiter"]["got"], "cubes": [c["cube"] for c in results["worker"]]}


# The slow consumer of test 6: one step on a queue of its own.
slow_flow = Workflow("fx_slow", queue="fault_slow")


@slow_flow.step
@ledgered
def slow_step(data: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    _pause(ctx)
    return {"n": data["n"], "slow": True}


# -- what each shape is started with, and what it must return ---------------------------------

SHAPES: tuple[str, ...] = (
    "fx_sequence",
    "fx_parallel",
    "fx_foreach",
    "fx_wait",
    "fx_child",
    "fx_nested",
)
WAITING_SHAPES = frozenset({"fx_wait", "fx_nested"})


def input_for(shape: str, n: int) -> dict[str, Any]:
    """The input of execution ``n`` of ``shape``."""
    if shape == "fx_nested":
        return {"n": n, "items": list(range(1, n % 3 + 3))}
    return {"n": n}


def expected_result(shape: str, n: int) -> Any:
    """The result ``shape`` returns for ``input_for(shape, n)``, without run tokens."""
    if shape == "fx_sequence":
        return {"n": n, "total": 3 * n, "trail": ["begin", "flaky", "end"]}
    if shape == "fx_parallel":
        return {"left": (n + 1) * 10, "right": -n}
    if shape == "fx_foreach":
        items = range(1, n % 4 + 4)
        return {"sum": sum(i * i for i in items), "items": len(items)}
    if shape == "fx_wait":
        return {"n": n, "got": n, "ok": True}
    if shape == "fx_child":
        return {"n": n, "child": 2 * n, "sum": 3 * n}
    if shape == "fx_nested":
        return {"got": n, "cubes": [i**3 for i in range(1, n % 3 + 3)]}
    if shape == "fx_slow":
        return {"n": n, "slow": True}
    raise ValueError(shape)


# -- the driver (in the test) ----------------------------------------------------------------

TERMINAL = (
    "completed",
    "failed",
    "cancelled",
    "timed_out",
    "compensated",
    "compensation_failed",
)
RETRIED_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}
)


@dataclass
class Started:
    """One execution the driver started."""

    shape: str
    n: int
    execution_id: str
    early_event: bool  # the event is sent at once (kept until the wait), else once it waits
    signalled: bool = False


def signal_request(item: Started) -> pb.SendEventRequest:
    """The ``go`` event for ``item``; its event id makes a retried send harmless."""
    return pb.SendEventRequest(
        execution_id=item.execution_id,
        name=EVENT,
        payload_json=json.dumps({"n": item.n}),
        event_id=f"go-{item.n}",
    )


@dataclass
class Driver:
    """Starts the mixed workload, sends its events, waits for it and checks its results.

    Every call is retried while the orchestrator or the database is unreachable (the fault
    tests cut both): starts carry an idempotency key, so a start sent twice makes one
    execution. ``address`` may list several orchestrators (``ipv4:a:1,b:2``).
    """

    address: str
    database_url: str
    schema: str = "durable"
    started: list[Started] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    _channel: grpc.aio.Channel | None = None

    async def __aenter__(self) -> Driver:
        self._channel = grpc.aio.insecure_channel(
            self.address,
            options=[
                ("grpc.initial_reconnect_backoff_ms", 100),
                ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ],
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None:
            await self._channel.close(grace=None)

    def count(self, shape: str) -> int:
        """How many executions of ``shape`` the driver started."""
        return sum(1 for s in self.started if s.shape == shape)

    @property
    def stub(self) -> pbgrpc.WorkflowServiceStub:
        assert self._channel is not None, "use the driver in `async with`"
        return pbgrpc.WorkflowServiceStub(self._channel)

    async def _call(self, method: Any, request: Any, *, timeout: float = 30.0) -> Any:
        """Call until the orchestrator answers something else than "unreachable"."""
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            try:
                return await method(request, timeout=5.0)
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRIED_CODES or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def start(
        self,
        count: int,
        *,
        shapes: Sequence[str] = SHAPES,
        tag: str = "",
        early_events: float = 0.5,
        queue: str = "",
    ) -> list[Started]:
        """Start ``count`` executions, cycling through ``shapes``; send the early events.

        About ``early_events`` of the waiting shapes get their event at once (it is kept
        until the wait begins); the others get it from :meth:`pump_events` once they wait.
        """
        new: list[Started] = []
        for i in range(count):
            shape = shapes[i % len(shapes)]
            n = len(self.started) + 1
            reply = await self._call(
                self.stub.StartWorkflow,
                pb.StartWorkflowRequest(
                    workflow_name=shape,
                    input_json=json.dumps(input_for(shape, n)),
                    idempotency_key=f"mixed-{tag}-{n}-{uuid.uuid4().hex}",
                    queue=queue,
                ),
            )
            early = self.rng.random() < early_events
            item = Started(shape, n, reply.execution_id, early_event=early)
            self.started.append(item)
            new.append(item)
            if shape in WAITING_SHAPES and item.early_event:
                await self._signal(item)
        return new

    async def _signal(self, item: Started) -> None:
        await self._call(
            self.stub.SendEvent,
            signal_request(item),
        )
        item.signalled = True

    async def pump_events(self) -> None:
        """Send ``go`` to each waiting shape once it waits for it; until all have it.

        Run it as a background task; it tolerates an unreachable database or orchestrator.
        """
        while True:
            pending = [s for s in self.started if s.shape in WAITING_SHAPES and not s.signalled]
            if pending:
                try:
                    waiting = await self._event_waiters([s.execution_id for s in pending])
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    waiting = set()
                for item in pending:
                    if item.execution_id in waiting:
                        await self._signal(item)
            await asyncio.sleep(0.05)

    async def _event_waiters(self, ids: list[str]) -> set[str]:
        conn = await asyncpg.connect(self.database_url, timeout=2)
        try:
            rows = await conn.fetch(
                f"SELECT DISTINCT execution_id::text AS id FROM {self.schema}.waits"
                " WHERE kind = 'event' AND execution_id = ANY($1::uuid[])",
                ids,
            )
        finally:
            await conn.close()
        return {r["id"] for r in rows}

    async def unfinished(self) -> int | None:
        """How many executions (children too) have not ended; None if the database is down."""
        try:
            conn = await asyncpg.connect(self.database_url, timeout=2)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None
        try:
            count: int = await conn.fetchval(
                f"SELECT count(*) FROM {self.schema}.executions WHERE NOT status = ANY($1::text[])",
                list(TERMINAL),
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None
        finally:
            with contextlib.suppress(Exception):
                await conn.close()
        return count

    async def wait_finished(self, timeout: float = 60.0) -> None:
        """Wait until every execution has ended; sends the late events meanwhile."""
        pump = asyncio.create_task(self.pump_events())
        try:
            deadline = time.monotonic() + timeout
            while True:
                left = await self.unfinished()
                if left == 0 and all(
                    s.signalled for s in self.started if s.shape in WAITING_SHAPES
                ):
                    return
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{left} execution(s) still unfinished after {timeout}s:\n"
                        + await self.describe_unfinished()
                    )
                await asyncio.sleep(0.05)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def describe_unfinished(self) -> str:
        """The unfinished executions with their tasks and waits, for failure messages."""
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch(
                f"""SELECT e.id, e.workflow_name, e.status,
                      (SELECT json_agg(json_build_object('step', t.step_name, 'status', t.status,
                              'attempt', t.attempt, 'worker', t.worker_id,
                              'available_at', t.available_at, 'expires', t.lease_expires_at))
                       FROM {self.schema}.tasks t WHERE t.execution_id = e.id) AS tasks,
                      (SELECT json_agg(w.kind) FROM {self.schema}.waits w
                       WHERE w.execution_id = e.id) AS waits
                    FROM {self.schema}.executions e
                    WHERE NOT e.status = ANY($1::text[])""",
                list(TERMINAL),
            )
        finally:
            await conn.close()
        return "\n".join(str(dict(r)) for r in rows) or "(none)"

    async def check_results(self) -> list[str]:
        """What is wrong with the ended executions' statuses and results (empty: nothing)."""
        conn = await asyncpg.connect(self.database_url)
        try:
            rows = await conn.fetch(
                f"SELECT id::text AS id, status, result::text AS result, error::text AS error"
                f" FROM {self.schema}.executions WHERE id = ANY($1::uuid[])",
                [s.execution_id for s in self.started],
            )
        finally:
            await conn.close()
        by_id = {r["id"]: r for r in rows}
        problems = []
        for item in self.started:
            row = by_id.get(item.execution_id)
            if row is None:
                problems.append(f"{item.shape} #{item.n} ({item.execution_id}) does not exist")
                continue
            if row["status"] != "completed":
                problems.append(
                    f"{item.shape} #{item.n} ({item.execution_id}) ended {row['status']}: "
                    f"{row['error']}"
                )
                continue
            got = _plain(json.loads(row["result"]))
            want = expected_result(item.shape, item.n)
            if got != want:
                problems.append(
                    f"{item.shape} #{item.n} ({item.execution_id}) returned {got!r}, "
                    f"expected {want!r}"
                )
        return problems


# -- reading the ledger (in the test) --------------------------------------------------------


def read_ledger(path: Path) -> list[dict[str, Any]]:
    """Every line of the ledger, in order (a line cut by a SIGKILL mid-write is skipped)."""
    if not path.exists():
        return []
    lines = []
    for text in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(text))
    return lines


def read_effects(markers: Path) -> dict[str, str]:
    """The side effects applied: step run key (``ctx.idempotency_key``) -> the run's token."""
    prefix = "effect-"
    return {
        path.name[len(prefix) :]: path.read_text()
        for path in markers.iterdir()
        if path.name.startswith(prefix)
    }


def running_in(ledger: Iterable[dict[str, Any]], pid: int) -> list[dict[str, Any]]:
    """The runs started in process ``pid`` that have not ended (returned or raised)."""
    started: dict[str, dict[str, Any]] = {}
    for line in ledger:
        if line["pid"] != pid:
            continue
        if line["ev"] == "start":
            started[line["run"]] = line
        else:
            started.pop(line["run"], None)
    return list(started.values())
