"""Every RPC, fuzzed: arbitrary and malformed requests always get a proper gRPC status.

Requests are drawn by hypothesis from each method's request descriptor (so a new RPC or
field is covered without touching this file): random and "near-valid" values mixed (real
execution ids, workflow names, worker ids and leases, so that validation past the first
field and the engine behind it run), huge strings, invalid and deeply nested JSON, NUL
characters, negative and huge numbers, unknown enum numbers, odd durations and timestamps.
Some requests are sent as raw bytes instead: not a protobuf at all, truncated, or with a
string field holding invalid UTF-8; some with a deadline that is zero or already spent.

For every call: the status is never INTERNAL or UNKNOWN (what a crash becomes), the
orchestrator still answers its health check, and a refused call (any status but OK and
DEADLINE_EXCEEDED after a deadline that passed during the call, whose outcome is unknown
by definition) changed no row of any table.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2, message_factory, text_format, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import DecodeError, Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from durable import Workflow
from durable.v1 import (
    common_pb2,
    operations_service_pb2,
    schedule_service_pb2,
    worker_service_pb2,
    workflow_service_pb2,
)
from durable.v1 import schedule_service_pb2 as spb
from durable.v1 import worker_service_pb2 as wpb
from durable_server.app import Orchestrator
from durable_server.clock import ManualClock
from tests.helpers import db
from tests.helpers.orchestrator import running_orchestrator
from tests.helpers.raw import RawClient

pytestmark = pytest.mark.asyncio(loop_scope="module")

Code = grpc.StatusCode
LIMIT = 2 * 1024 * 1024  # the default max_payload_bytes
EXAMPLES = 20  # per RPC
TIMEOUT = 10.0  # seconds, for a call without a fuzzed deadline

# -- every RPC, from the generated descriptors ----------------------------------------------

_MODULES = (workflow_service_pb2, worker_service_pb2, schedule_service_pb2, operations_service_pb2)
METHODS: list[MethodDescriptor] = [
    method
    for module in _MODULES
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


def _path(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _id(method: MethodDescriptor) -> str:
    return f"{method.containing_service.name}.{method.name}"


# -- the orchestrator and what near-valid requests refer to ----------------------------------

single = Workflow("single")


@single.step
def only(data: object) -> object:
    return data


pair = Workflow("pair")


@pair.step
def first(data: object) -> object:
    return data


@pair.step
def second(data: object) -> object:
    return data


WORKER = "fuzz-worker"
KEEPER = "fuzz-keeper"  # leases tasks for the fuzzed calls to use; no fuzzed value names it
KEEPER_QUEUE = "fuzz_keeper_queue"


@dataclass
class Known:
    """Real ids and names in the database, for near-valid values (filled by the fixture)."""

    execution_ids: list[str] = field(default_factory=list)
    leases: list[tuple[int, str]] = field(default_factory=list)
    workflow_names: tuple[str, ...] = ("single", "pair")
    worker_ids: tuple[str, ...] = (WORKER, KEEPER)
    names: tuple[str, ...] = (
        "single",
        "pair",
        "only",
        "first",
        "second",
        "nightly",
        "go",
        "approve",
        "default",
    )
    queues: tuple[str, ...] = ("default", "other")


KNOWN = Known()


def _known(get: Callable[[], list[Any]]) -> st.SearchStrategy[Any]:
    """One of a pool that changes during the run, by index (so draws stay reproducible)."""
    return st.integers(0, 63).map(lambda i: get()[i % len(get())])


@dataclass(repr=False)
class Fuzz:
    """The orchestrator under test, a channel to it, and a connection to its database."""

    orch: Orchestrator
    channel: grpc.aio.Channel
    conn: asyncpg.Connection
    health: health_pb2_grpc.HealthStub
    tables: list[str]

    async def snapshot(self) -> dict[str, tuple[int, str]]:
        """Row count and a content hash of every table of the schema."""
        await self.orch.engine.presence.flush()  # last-seen times are written behind
        query = " UNION ALL ".join(
            f"SELECT '{t}' AS t, count(*) AS n, "
            f"coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '') AS h "
            f"FROM durable.{t} x"
            for t in self.tables
        )
        return {r["t"]: (r["n"], r["h"]) for r in await self.conn.fetch(query)}

    async def keep_a_lease(self) -> None:
        """Make sure a leased task exists, so fuzzed lease tokens can be real ones."""
        leased = {
            r["id"]
            for r in await self.conn.fetch(
                "SELECT id FROM durable.tasks WHERE status = 'leased' AND queue = $1",
                KEEPER_QUEUE,
            )
        }
        KNOWN.leases[:] = [lease for lease in KNOWN.leases if lease[0] in leased]
        if KNOWN.leases:
            return
        keeper = RawClient(self.channel, worker_id=KEEPER)
        await keeper.register(single, pair)
        KNOWN.execution_ids.append(await keeper.start("pair", '{"n": 1}', queue=KEEPER_QUEUE))
        tasks = await keeper.poll(queues=[KEEPER_QUEUE])
        assert tasks, "the keeper got no task to lease"
        KNOWN.leases.extend((t.task_id, t.lease_token) for t in tasks)


async def _setup(raw: RawClient) -> None:
    """Executions in several states, a pending input and event wait, a schedule."""
    await raw.register(single, pair)
    ids = [await raw.start("single", f'{{"i": {i}}}') for i in range(4)]
    tasks = {t.execution_id: t for t in await raw.poll(10)}
    waiting_input, waiting_event, failed, done = (tasks[i] for i in ids)

    def lease(t: wpb.Task) -> wpb.TaskLease:
        return wpb.TaskLease(task_id=t.task_id, lease_token=t.lease_token)

    await raw.workers.SuspendTasks(
        wpb.SuspendTasksRequest(
            worker_id=WORKER,
            suspensions=[
                wpb.TaskSuspension(
                    lease=lease(waiting_input),
                    input=wpb.InputWait(
                        index=0, name="approve", kind=common_pb2.INPUT_KIND_APPROVAL
                    ),
                ),
                wpb.TaskSuspension(
                    lease=lease(waiting_event),
                    events=wpb.EventWait(
                        index=0, names=["go"], mode=common_pb2.EVENT_WAIT_MODE_ONE
                    ),
                ),
            ],
        )
    )
    await raw.fail(failed, non_retryable=True)
    await raw.complete(done, '"done"')
    ids.append(await raw.start("pair", "[1, 2]"))  # ready, never polled by the setup
    await raw.schedules.CreateSchedule(
        spb.CreateScheduleRequest(
            schedule=spb.Schedule(
                name="nightly", workflow_name="single", cron="0 3 * * *", enabled=True
            )
        )
    )
    KNOWN.execution_ids[:] = ids


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fuzz(_template: None) -> AsyncIterator[Fuzz]:
    name = await db.create_database()
    url = db.url_for(name)
    try:
        async with running_orchestrator(
            url,
            clock=ManualClock(),
            # A poll with nothing to lease returns at once (its wait is still parsed).
            default_poll_wait_secs=0.05,
            max_poll_wait_secs=0.05,
        ) as orch:
            options = [("grpc.max_receive_message_length", -1)]
            async with grpc.aio.insecure_channel(orch.address, options=options) as channel:
                conn = await asyncpg.connect(url)
                try:
                    tables = [
                        r["tablename"]
                        for r in await conn.fetch(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'durable' "
                            "ORDER BY tablename"
                        )
                    ]
                    await _setup(RawClient(channel, worker_id=WORKER))
                    f = Fuzz(orch, channel, conn, health_pb2_grpc.HealthStub(channel), tables)
                    await f.keep_a_lease()
                    yield f
                finally:
                    await conn.close()
    finally:
        await db.drop_database(name)


# -- values -------------------------------------------------------------------------------

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=24)  # protobuf needs UTF-8
HUGE = st.builds(
    lambda char, size: char.encode() * size,
    st.sampled_from(["x", "\x00", "[", "é"]),
    # Over the payload limit, and (rarely) over the transport's limit.
    st.sampled_from([LIMIT + 1, LIMIT + 1, 3 * 1024 * 1024, 7 * 1024 * 1024]),
)
JSON_TEXT = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
).map(lambda v: json.dumps(v))
JSON_ODD = st.sampled_from(
    [
        "",
        "null",
        "{}",
        '{"a": 1}',
        "[1, 2, 3]",
        '"x"',
        "1e400",
        "-0",
        "NaN",
        "Infinity",
        "{",
        '{"a": 1,',
        "{'a': 1}",
        '"\\u0000"',
        '{"a": "\\ud800"}',
        "\ufeff{}",
        " ",
        '{"a":1}{"b":2}',
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
    ]
)
NAME_ODD = st.sampled_from(["", "a" * 129, "1abc", "a b", "ü", "a\x00b", "-", ".", "_"])


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each ``weight`` times as likely (``st.one_of`` weighs all alike
    and merges duplicates)."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(lambda s: s)


def _strings(name: str) -> st.SearchStrategy[str]:
    """Values for a string field, by its name: mostly near-valid ones, else junk."""
    names = st.sampled_from(KNOWN.names)
    if name.endswith("execution_id"):
        near = [
            _known(lambda: KNOWN.execution_ids),
            st.uuids().map(str),
            st.just("not-a-uuid"),
        ]
    elif name == "lease_token":
        near = [_known(lambda: [t for _, t in KNOWN.leases]), st.uuids().map(str)]
    elif name == "worker_id":
        near = [st.sampled_from(KNOWN.worker_ids), st.just("w" * 256)]
    elif name.endswith("_json"):
        return weighted((3, JSON_TEXT), (3, JSON_ODD), (1, TEXT), (1, NAME_ODD))
    elif name == "workflow_name":
        near = [st.sampled_from(KNOWN.workflow_names)]
    elif name in ("queue", "queues"):
        near = [st.sampled_from(KNOWN.queues)]
    elif name == "cron":
        near = [
            st.sampled_from(
                ["* * * * *", "0 3 * * *", "@daily", "@every 5m", "61 * * * *", "* * * * * * *"]
            )
        ]
    elif name == "timezone":
        near = [st.sampled_from(["", "UTC", "Europe/Paris", "Mars/Olympus", "../../etc/passwd"])]
    elif name == "page_token":
        near = [st.sampled_from(["", "!!", "bmFtZXx4", "eA", "bmFtZXw", "AAAA"])]
    elif name == "update_mask":
        near = [st.sampled_from([*_UPDATABLE, "name", "next_fire_at", "bogus", ""])]
    elif name == "goto_target":
        near = [st.sampled_from(["", "only", "first", "second"])]
    elif name in ("name", "step_name", "logger", "level", "type"):
        near = [names, names]
    else:
        near = [names]
    # The first near-valid kind is the most likely: it is the real thing, mostly. (Huge
    # strings are put in whole requests, one at a time: see ``requests``.)
    return weighted((4, near[0]), (2, st.one_of(*near)), (1, TEXT), (1, NAME_ODD))


_UPDATABLE = (
    "workflow_name",
    "cron",
    "timezone",
    "input_json",
    "queue",
    "priority",
    "enabled",
    "catch_up",
    "catch_up_limit",
    "overlap",
    "max_failures",
)


def _ints(name: str, bounds: tuple[int, int]) -> st.SearchStrategy[int]:
    lo, hi = bounds
    edges = st.sampled_from([0, 1, -1, 2, 1000, 1001, 5001, lo, hi])
    anywhere = st.integers(lo, hi)
    if name == "task_id":
        return st.one_of(_known(lambda: [i for i, _ in KNOWN.leases]), edges, anywhere)
    if name == "index":
        return st.one_of(st.integers(-2, 3), edges)
    return st.one_of(edges, st.integers(-5, 60), anywhere)


DURATION = st.builds(
    lambda s, n: duration_pb2.Duration(seconds=s, nanos=n),
    st.one_of(
        st.sampled_from([0, 1, -1, 5, 3600, 315_576_000_000, 315_576_000_001, 2**62, -(2**62)]),
        st.integers(*INT64),
    ),
    st.sampled_from([0, 1, -1, 500_000_000, 999_999_999, 10**9, -(10**9), 2**31 - 1]),
)
TIMESTAMP = st.builds(
    lambda s, n: timestamp_pb2.Timestamp(seconds=s, nanos=n),
    st.one_of(
        st.sampled_from(
            [
                0,
                -1,
                1_893_456_000,  # 2030-01-01, the manual clock's now
                253_402_300_799,  # 9999-12-31T23:59:59
                253_402_300_800,
                -62_135_596_800,  # 0001-01-01
                -62_135_596_801,
                2**62,
            ]
        ),
        st.integers(*INT64),
    ),
    st.sampled_from([0, 1, -1, 999_999_999, 10**9, 2**31 - 1]),
)

_SCALARS: dict[int, Callable[[FieldDescriptor], st.SearchStrategy[Any]]] = {
    FieldDescriptor.TYPE_STRING: lambda f: _strings(f.name),
    FieldDescriptor.TYPE_BYTES: lambda f: st.binary(max_size=32),
    FieldDescriptor.TYPE_BOOL: lambda f: st.booleans(),
    FieldDescriptor.TYPE_INT32: lambda f: _ints(f.name, INT32),
    FieldDescriptor.TYPE_SINT32: lambda f: _ints(f.name, INT32),
    FieldDescriptor.TYPE_SFIXED32: lambda f: _ints(f.name, INT32),
    FieldDescriptor.TYPE_INT64: lambda f: _ints(f.name, INT64),
    FieldDescriptor.TYPE_SINT64: lambda f: _ints(f.name, INT64),
    FieldDescriptor.TYPE_SFIXED64: lambda f: _ints(f.name, INT64),
    FieldDescriptor.TYPE_UINT32: lambda f: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: lambda f: st.integers(0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: lambda f: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: lambda f: st.integers(0, 2**64 - 1),
    FieldDescriptor.TYPE_DOUBLE: lambda f: st.floats(),
    FieldDescriptor.TYPE_FLOAT: lambda f: st.floats(width=32),
    FieldDescriptor.TYPE_ENUM: lambda f: st.one_of(
        st.sampled_from([v.number for v in f.enum_type.values]),
        st.sampled_from([-1, 99, 2**31 - 1, -(2**31)]),  # numbers the enum does not have
    ),
}
MAX_DEPTH = 4


def _value(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.type != FieldDescriptor.TYPE_MESSAGE:
        return _SCALARS[f.type](f)
    if f.message_type.full_name == "google.protobuf.Duration":
        return DURATION
    if f.message_type.full_name == "google.protobuf.Timestamp":
        return TIMESTAMP
    return messages(f.message_type, depth + 1)


_CACHE: dict[tuple[str, int], st.SearchStrategy[Message]] = {}


def messages(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of type ``desc``: each field left unset or given a fuzzed value."""
    key = (desc.full_name, depth)
    if key in _CACHE:
        return _CACHE[key]
    cls = message_factory.GetMessageClass(desc)
    if depth >= MAX_DEPTH:
        _CACHE[key] = st.builds(cls)
        return _CACHE[key]
    size = 3 if depth < 2 else 1
    parts: dict[str, st.SearchStrategy[Any]] = {}
    for f in desc.fields:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            entry = f.message_type.fields_by_name
            parts[f.name] = st.dictionaries(
                _value(entry["key"], depth), _value(entry["value"], depth), max_size=size
            )
        elif f.is_repeated:
            parts[f.name] = st.lists(_value(f, depth), max_size=size)
        else:
            parts[f.name] = _value(f, depth)
    # Most fields are set (None leaves one unset), so that calls get past the first check.
    fields = st.fixed_dictionaries(
        {name: weighted((3, value), (1, st.none())) for name, value in parts.items()}
    )

    def build(values: dict[str, Any]) -> Message:
        msg = cls()
        for name, value in values.items():
            if value is None:
                continue
            f = desc.fields_by_name[name]
            target = getattr(msg, name)
            if f.message_type is not None and f.message_type.GetOptions().map_entry:
                for k, v in value.items():
                    if isinstance(v, Message):
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif f.is_repeated:
                target.extend(value)
            elif isinstance(value, Message):
                target.CopyFrom(value)
            else:
                setattr(msg, name, value)
        return msg

    _CACHE[key] = fields.map(build)
    return _CACHE[key]


# -- wire-level damage ----------------------------------------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


BAD_UTF8 = b"ok\xc3\x28\xff\xfe"


def string_fields(
    desc: Descriptor, depth: int = 0
) -> Iterator[tuple[str, Callable[[bytes], bytes]]]:
    """(field path, encoder) for every string field, nested ones included.

    ``encoder(text)`` is the wire form of a message whose field at that path holds ``text``
    as it is (not checked as UTF-8). Appended to a serialized message, it sets that field (a
    message field merges, a repeated one gets one more element).
    """
    for f in desc.fields:
        if f.type == FieldDescriptor.TYPE_STRING:
            yield f.name, lambda text, n=f.number: _delimited(n, text)
        elif f.type == FieldDescriptor.TYPE_MESSAGE and depth < 2:
            for path, inner in string_fields(f.message_type, depth + 1):
                yield (
                    f"{f.name}.{path}",
                    lambda text, n=f.number, inner=inner: _delimited(n, inner(text)),
                )


def invalid_utf8(desc: Descriptor) -> Iterator[tuple[str, bytes]]:
    """(field path, bytes to append): each string field holding invalid UTF-8."""
    for path, encode in string_fields(desc):
        yield path, encode(BAD_UTF8)


def _damaged(method: MethodDescriptor) -> st.SearchStrategy[bytes]:
    """Request bytes that are not a valid request: garbage, truncated, bad UTF-8."""
    serialized = messages(method.input_type).map(lambda m: m.SerializeToString())
    bad_strings = [b for _, b in invalid_utf8(method.input_type)]
    options = [
        st.binary(min_size=1, max_size=64),
        st.builds(lambda b, cut: b[: max(0, len(b) - cut)], serialized, st.integers(1, 8)),
        st.builds(lambda b, junk: b + junk, serialized, st.binary(min_size=1, max_size=16)),
    ]
    if bad_strings:
        options.append(st.builds(lambda b, bad: b + bad, serialized, st.sampled_from(bad_strings)))
    return st.one_of(*options)


@dataclass(frozen=True)
class Request:
    """The bytes of one request to a method."""

    method: MethodDescriptor
    body: bytes

    def __repr__(self) -> str:  # cheap: hypothesis takes it for every draw
        return f"<{len(self.body)} bytes>"

    def describe(self) -> str:
        """What was sent, readably (long runs of one character shortened)."""
        try:
            msg = message_factory.GetMessageClass(self.method.input_type).FromString(self.body)
        except DecodeError:
            return f"raw bytes {self.body[:200]!r} ({len(self.body)} bytes)"
        text = text_format.MessageToString(msg, as_one_line=True)
        text = _RUN.sub(lambda m: f"{m[1] * 3}...({len(m[0])} times)", text)
        return f"{self.method.input_type.name} {text[:3000]} ({len(self.body)} bytes)"


_RUN = re.compile(r"(.)\1{15,}", re.DOTALL)  # a long run of one character, shortened


def requests(method: MethodDescriptor) -> st.SearchStrategy[Request]:
    """One request to ``method``: mostly a fuzzed message; else one with a huge string, or
    bytes that are no valid request."""
    good = messages(method.input_type).map(lambda m: m.SerializeToString())
    options = [(6, good), (1, _damaged(method))]
    fields = [encode for _, encode in string_fields(method.input_type)]
    if fields:
        huge = st.builds(
            lambda b, encode, text: b + encode(text), good, st.sampled_from(fields), HUGE
        )
        options.append((1, huge))
    return weighted(*options).map(lambda body: Request(method, body))


DEADLINES = st.sampled_from([TIMEOUT] * 17 + [0.0, 1e-6, 0.002])


# -- the calls ---------------------------------------------------------------------------------


async def _call(
    fuzz: Fuzz, method: MethodDescriptor, body: bytes, timeout: float
) -> tuple[Code, str]:
    call = fuzz.channel.unary_unary(
        _path(method), request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    try:
        await call(body, timeout=timeout)
    except grpc.aio.AioRpcError as err:
        return err.code(), err.details() or ""
    return Code.OK, ""


async def check(fuzz: Fuzz, method: MethodDescriptor, request: Request, timeout: float) -> Code:
    """Send one request; assert a proper status, a healthy server, and no change if refused."""
    await fuzz.keep_a_lease()
    before = await fuzz.snapshot()
    code, details = await _call(fuzz, method, request.body, timeout)

    def where() -> str:  # only when an assertion fails: describing a huge request is slow
        return f"{_id(method)} (deadline {timeout}s) with {request.describe()}"

    assert code not in (Code.INTERNAL, Code.UNKNOWN), f"{code.name}: {details}\n{where()}"
    health = await fuzz.health.Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    # A deadline that passes during the call leaves its outcome unknown; one spent before
    # the call was sent means nothing may be done.
    if code != Code.OK and (code != Code.DEADLINE_EXCEEDED or timeout <= 0):
        after = await fuzz.snapshot()
        changed = sorted(t for t in after if after[t] != before.get(t))
        assert not changed, f"{code.name} ({details}) changed {changed}\n{where()}"
    return code


@pytest.mark.parametrize("method", METHODS, ids=_id)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests on every run, here and in CI
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)
@given(data=st.data())
async def test_fuzzed_requests_get_a_proper_status(
    fuzz: Fuzz, method: MethodDescriptor, data: st.DataObject
) -> None:
    request = data.draw(requests(method), label="request")
    timeout = data.draw(DEADLINES, label="deadline")
    await check(fuzz, method, request, timeout)


@pytest.mark.parametrize("method", METHODS, ids=_id)
async def test_malformed_bytes_and_spent_deadlines(fuzz: Fuzz, method: MethodDescriptor) -> None:
    # Not a protobuf at all, and each string field (nested ones too) holding invalid UTF-8:
    # the request cannot be parsed, so INVALID_ARGUMENT.
    cases = [("garbage", b"\xff\xff\xff\xff\xff"), ("a truncated field", b"\x0a\x05ab")]
    cases += [(f"invalid UTF-8 in {path}", body) for path, body in invalid_utf8(method.input_type)]
    for what, body in cases:
        code = await check(fuzz, method, Request(method, body), TIMEOUT)
        assert code == Code.INVALID_ARGUMENT, what
    # An empty request with a deadline that is already spent.
    for timeout in (0.0, -1.0):
        code = await check(fuzz, method, Request(method, b""), timeout)
        assert code == Code.DEADLINE_EXCEEDED
