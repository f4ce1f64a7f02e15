"""Invariants of a Durable database, checked after a fault: what must hold whatever happened.

:func:`check_invariants` reads every state table in one snapshot (REPEATABLE READ, so it
may run while orchestrators work) and returns the violations it finds, one sentence each;
an empty list means the database is sound. :func:`check_effects` also holds the
database against the side-effect ledger the mixed workload writes
(:mod:`tests.faults.mixed_flows`).

**"Every unfinished execution has exactly one of a ready task, a leased task, a timer or a
wait."** In this schema an execution moves forward through *lanes*: its top level (the
root lane) and each running lane of a parallel group or foreach (``lanes`` rows). A lane
runs one thing at a time, so the precise rule is per lane, not per execution (a running
execution in a group with three lanes legitimately has three tasks):

- A1 **one holder per live lane.** For each execution that is ``pending``, ``running``,
  ``waiting`` or ``compensating``, the root lane and every lane whose status is
  ``running`` has exactly one *holder*: a task in that lane (``tasks.group_id/lane``; the
  root lane: ``group_id IS NULL``), or a group started from that lane
  (``groups.parent_group_id/parent_lane``; the root lane: ``parent_group_id IS NULL``).
  Lanes ``pending``, ``completed`` or ``failed`` have no holder, and no task or group
  points at a lane that does not exist.
- A2 **a holder task is exactly one of ready, leased or waiting on one wait.** ``ready``:
  no lease fields; ``leased``: lease token, lease times and worker set; ``waiting``: no
  lease and exactly one ``waits`` row (a task waits on one thing at a time). Every wait
  belongs to a waiting task of its own execution.
- A3 **every wait can end.** A sleep has a deadline; a wait with a deadline has exactly one
  ``wait_timeout`` timer, due at that deadline; a child wait names an existing child of
  its execution that has not ended (a child's end wakes its parent in the same
  transaction). Event and input waits end from outside (or by their timer).
- A4 **the status agrees with the tasks.** ``pending``: one ready root task and no
  recorded attempt; ``waiting``: no ready or leased task (something waits);
  ``compensating``: the only holder is a compensation task at the root and no group is
  left; otherwise no compensation task. The converse is not required: ``running`` with
  only waiting tasks happens (and is tolerated here, though it is inaccurate): the engine
  marks an execution ``waiting`` only when the step that parks leaves nothing ready or
  leased, and does not revisit it when another lane ends later (a parallel lane waiting
  for an event while its sibling finishes stays ``running``).
- A5 **groups count their lanes right.** ``total`` lanes exist; ``started``, ``finished``
  and ``failed`` match the lanes' statuses; a stored group is unfinished
  (``finished < total``); a ``fail_fast`` group has no failed lane (the first failure
  ends it); at most ``concurrency`` lanes run, and a foreach with pending lanes runs
  exactly ``concurrency`` of them (room is filled at once); a parallel group starts every
  lane.
- A6 **timers belong to unfinished executions**; an ``execution_timeout`` timer is due at
  the execution's ``deadline_at``. (An unfinished execution with a deadline may lack one:
  RetryExecution reopens a failed execution without a new timeout timer.)
- A7 (only with ``overdue_after``) **nothing the orchestrator must act on is overdue**: no
  timer due, and no lease expired, more than ``overdue_after`` ago (by ``now``, default
  the database's clock). Together A1-A3 and A7 mean no execution is stuck by the engine:
  every live lane holds a task that a worker can take, or a wait that a timer, a child,
  an event or an input ends.

**Terminal executions** (``completed``, ``failed``, ``cancelled``, ``timed_out``,
``compensated``, ``compensation_failed``):

- T1 nothing is left behind: no task, group, wait or timer.
- T2 ``finished_at`` is set; ``completed`` has a result and no error; every other end has
  an error.
- T3 **the history is complete.** ``completed``: every step run of the root lane ends with
  a completed attempt, and if no step run was given up for good (a lane of a group with
  ``on_error="collect"``), every step run ends completed; ``compensated``: every
  compensation ran to completion; ``compensation_failed``: some compensation was given up.

**Results are recorded once** (the design: steps run at least once, their results are
recorded exactly once; a report with a stale lease token changes nothing):

- R1 per step run (``execution_id, sequence``): the attempts are numbered 1..n without a
  gap, with one step name, kind and lane; at most one is ``completed`` and only the last;
  every earlier one is a failure that was retried (``failed``, ``timed_out`` or ``lost``,
  not given up).
- R2 a step run whose task is still stored has no completed or given-up attempt, and its
  task runs attempt n + 1; no sequence is past the execution's ``step_runs``.

:func:`check_effects` adds, against the ledger of what the workers really ran:

- E1 a recorded result (its ``"run"`` token) comes from a run of that very attempt
  (execution, sequence, attempt and step) that returned; E2 every completed workload step
  carries a token; E3 no token is recorded twice;
- E4 leases are exclusive: no attempt ran twice at the same point (its memo of wait
  outcomes: a step that waits runs again, with one more outcome, as the same attempt).
  A task given back unrun (ReleaseTasks, on a drain) legitimately runs again as the same
  attempt: do not check E4 over a workload whose workers drain;
- E5 every run belongs to an attempt the orchestrator recorded, or to a task that holds
  that attempt now;
- E6 at least once, applied once: every completed step run's side effect was applied, by
  one of its own runs, and no two runs of a step run both applied it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

__all__ = ["ACTIVE", "TERMINAL", "Snapshot", "check_effects", "check_invariants", "read_snapshot"]

ACTIVE = frozenset({"pending", "running", "waiting", "compensating"})
TERMINAL = frozenset(
    {"completed", "failed", "cancelled", "timed_out", "compensated", "compensation_failed"}
)
RETRIED_FAILURES = frozenset({"failed", "timed_out", "lost"})


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Snapshot:
    """The state tables at one instant, as lists of records."""

    now: datetime
    executions: list[asyncpg.Record]
    tasks: list[asyncpg.Record]
    waits: list[asyncpg.Record]
    timers: list[asyncpg.Record]
    groups: list[asyncpg.Record]
    lanes: list[asyncpg.Record]
    attempts: list[asyncpg.Record]


_QUERIES = {
    "executions": """SELECT id::text AS id, workflow_name, status, parent_id::text AS parent_id,
        step_runs, deadline_at, started_at, finished_at, result IS NOT NULL AS has_result,
        error IS NOT NULL AS has_error FROM {s}.executions""",
    "tasks": """SELECT id, execution_id::text AS execution_id, sequence, step_name, attempt,
        status, kind, group_id, lane, lane_path, lease_token::text AS lease_token, leased_at,
        lease_expires_at, worker_id, available_at FROM {s}.tasks""",
    "waits": """SELECT id, execution_id::text AS execution_id, task_id, wait_index, kind,
        child_id::text AS child_id, deadline_at FROM {s}.waits""",
    "timers": """SELECT id, execution_id::text AS execution_id, kind, due_at, wait_id
        FROM {s}.timers""",
    "groups": """SELECT id, execution_id::text AS execution_id, node_name, kind,
        parent_group_id, parent_lane, total, started, finished, failed, concurrency, fail_fast
        FROM {s}.groups""",
    "lanes": "SELECT group_id, index, status FROM {s}.lanes",
    "attempts": """SELECT execution_id::text AS execution_id, sequence, attempt, step_name,
        status, kind, lane_path, input IS NOT NULL AS given_up, worker_id,
        result::text AS result FROM {s}.step_attempts ORDER BY execution_id, sequence, attempt""",
}


async def read_snapshot(conn: asyncpg.Connection, schema: str = "durable") -> Snapshot:
    """Read every state table in one snapshot (inside the caller's transaction, if any)."""

    async def read() -> Snapshot:
        s = _ident(schema)
        tables = {name: await conn.fetch(sql.format(s=s)) for name, sql in _QUERIES.items()}
        now = await conn.fetchval("SELECT now()")
        return Snapshot(now=now, **tables)

    if conn.is_in_transaction():
        return await read()
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        return await read()


async def _connected(conn_or_dsn: asyncpg.Connection | str) -> tuple[asyncpg.Connection, bool]:
    if isinstance(conn_or_dsn, str):
        return await asyncpg.connect(conn_or_dsn), True
    return conn_or_dsn, False


async def check_invariants(
    conn_or_dsn: asyncpg.Connection | str,
    schema: str = "durable",
    *,
    overdue_after: timedelta | None = None,
    now: datetime | None = None,
) -> list[str]:
    """The violations of the invariants in the module docstring; empty when there are none.

    ``overdue_after`` turns on A7 (timers and leases overdue by more than that, by ``now``
    or else the database's clock); leave it off while the orchestrator is down or its clock
    is a manual one that does not move.
    """
    conn, owned = await _connected(conn_or_dsn)
    try:
        snap = await read_snapshot(conn, schema)
    finally:
        if owned:
            await conn.close()
    return _Checker(snap).run(overdue_after=overdue_after, now=now or snap.now)


class _Checker:
    def __init__(self, snap: Snapshot) -> None:
        self.s = snap
        self.problems: list[str] = []
        self.executions = {e["id"]: e for e in snap.executions}
        self.tasks_of: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for t in snap.tasks:
            self.tasks_of[t["execution_id"]].append(t)
        self.groups_of: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for g in snap.groups:
            self.groups_of[g["execution_id"]].append(g)
        self.groups = {g["id"]: g for g in snap.groups}
        self.lanes_of: dict[int, list[asyncpg.Record]] = defaultdict(list)
        for lane in snap.lanes:
            self.lanes_of[lane["group_id"]].append(lane)
        self.waits_of_task: dict[int, list[asyncpg.Record]] = defaultdict(list)
        self.waits_of: dict[str, list[asyncpg.Record]] = defaultdict(list)
        for w in snap.waits:
            self.waits_of_task[w["task_id"]].append(w)
            self.waits_of[w["execution_id"]].append(w)
        self.timers_of: dict[str, list[asyncpg.Record]] = defaultdict(list)
        self.timers_of_wait: dict[int, list[asyncpg.Record]] = defaultdict(list)
        for m in snap.timers:
            self.timers_of[m["execution_id"]].append(m)
            if m["wait_id"] is not None:
                self.timers_of_wait[m["wait_id"]].append(m)
        self.runs: dict[tuple[str, int], list[asyncpg.Record]] = defaultdict(list)
        for a in snap.attempts:
            self.runs[(a["execution_id"], a["sequence"])].append(a)
        self.runs_of: dict[str, list[list[asyncpg.Record]]] = defaultdict(list)
        for (eid, _), attempts in sorted(self.runs.items()):
            self.runs_of[eid].append(attempts)

    def bad(self, execution_id: str, message: str) -> None:
        e = self.executions.get(execution_id)
        who = f"{e['workflow_name']} {execution_id} ({e['status']})" if e else execution_id
        self.problems.append(f"execution {who}: {message}")

    def run(self, *, overdue_after: timedelta | None, now: datetime) -> list[str]:
        for e in self.s.executions:
            if e["status"] in ACTIVE:
                self.active(e)
            else:
                self.terminal(e)
        self.task_states()
        self.wait_rules()
        self.group_rules()
        self.timer_rules()
        self.recording()
        if overdue_after is not None:
            self.overdue(now - overdue_after)
        return self.problems

    # -- A1, A4: holders and statuses -----------------------------------------------------

    def active(self, e: asyncpg.Record) -> None:
        eid, status = e["id"], e["status"]
        tasks = self.tasks_of[eid]
        root_tasks = [t for t in tasks if t["group_id"] is None]
        root_groups = [g for g in self.groups_of[eid] if g["parent_group_id"] is None]
        holders = len(root_tasks) + len(root_groups)
        if holders != 1:
            what = [f"task {t['step_name']!r} ({t['status']})" for t in root_tasks] + [
                f"group {g['node_name']!r}" for g in root_groups
            ]
            self.bad(
                eid,
                f"its top level must have exactly one task or group moving it, has {holders}"
                + (f": {', '.join(what)}" if what else " (nothing can move it: stuck)"),
            )
        for g in self.groups_of[eid]:
            for lane in self.lanes_of[g["id"]]:
                lane_tasks = [
                    t for t in tasks if t["group_id"] == g["id"] and t["lane"] == lane["index"]
                ]
                lane_groups = [
                    c
                    for c in self.groups_of[eid]
                    if c["parent_group_id"] == g["id"] and c["parent_lane"] == lane["index"]
                ]
                count = len(lane_tasks) + len(lane_groups)
                want = 1 if lane["status"] == "running" else 0
                if count != want:
                    self.bad(
                        eid,
                        f"lane {lane['index']} ({lane['status']}) of {g['kind']} "
                        f"{g['node_name']!r} has {count} task(s) or group(s) moving it, "
                        f"must have {want}",
                    )
        by_status = Counter(t["status"] for t in tasks)
        compensations = [t for t in tasks if t["kind"] == "compensation"]
        if status == "pending":
            attempts = self.runs_of[eid]
            if len(tasks) != 1 or by_status["ready"] != 1 or root_groups or attempts:
                self.bad(
                    eid,
                    f"pending needs one ready top-level task and no history, has tasks "
                    f"{dict(by_status)}, {len(root_groups)} group(s), {len(attempts)} step run(s)",
                )
        if status == "waiting" and (by_status["ready"] or by_status["leased"]):
            self.bad(eid, f"is waiting but has ready or leased tasks: {dict(by_status)}")
        if status == "compensating":
            if self.groups_of[eid] or len(tasks) != 1 or len(compensations) != 1:
                self.bad(
                    eid,
                    "compensating needs exactly one task, a compensation, and no group; has "
                    f"{[(t['kind'], t['step_name']) for t in tasks]} and "
                    f"{len(self.groups_of[eid])} group(s)",
                )
        elif compensations:
            self.bad(eid, f"runs a compensation while {status}")

    # -- T1-T3 ----------------------------------------------------------------------------

    def terminal(self, e: asyncpg.Record) -> None:
        eid, status = e["id"], e["status"]
        left = {
            "task(s)": len(self.tasks_of[eid]),
            "group(s)": len(self.groups_of[eid]),
            "wait(s)": len(self.waits_of[eid]),
            "timer(s)": len(self.timers_of[eid]),
        }
        if any(left.values()):
            leftover = ", ".join(f"{n} {what}" for what, n in left.items() if n)
            self.bad(eid, f"ended but left {leftover} behind")
        if e["finished_at"] is None:
            self.bad(eid, "ended without finished_at")
        if status == "completed" and (not e["has_result"] or e["has_error"]):
            self.bad(eid, "completed needs a result and no error")
        if status != "completed" and not e["has_error"]:
            self.bad(eid, f"ended {status} without an error")
        runs = self.runs_of[eid]
        if status == "completed":
            gave_up = any(a["given_up"] for run in runs for a in run)
            for run in runs:
                last = run[-1]
                if last["status"] == "completed":
                    continue
                if last["lane_path"] == "" or not gave_up:
                    self.bad(
                        eid,
                        f"completed, but step run {last['sequence']} ({last['step_name']!r}"
                        f"{', lane ' + last['lane_path'] if last['lane_path'] else ''}) ends "
                        f"with attempt {last['attempt']} {last['status']}: its history is "
                        "incomplete",
                    )
        compensations = [run for run in runs if run[0]["kind"] == "compensation"]
        if status == "compensated":
            for run in compensations:
                if run[-1]["status"] != "completed":
                    self.bad(
                        eid,
                        f"compensated, but compensation {run[-1]['step_name']!r} ends "
                        f"{run[-1]['status']}",
                    )
        if status == "compensation_failed" and not any(
            run[-1]["given_up"] for run in compensations
        ):
            self.bad(eid, "compensation_failed, but no compensation was given up")

    # -- A2 -----------------------------------------------------------------------------

    def task_states(self) -> None:
        for t in self.s.tasks:
            eid, where = t["execution_id"], f"task {t['id']} ({t['step_name']!r})"
            lease = (t["lease_token"], t["leased_at"], t["lease_expires_at"], t["worker_id"])
            waits = self.waits_of_task[t["id"]]
            if t["status"] == "leased":
                if any(v is None for v in lease):
                    self.bad(eid, f"{where} is leased without a full lease {lease}")
            elif any(v is not None for v in lease):
                self.bad(eid, f"{where} is {t['status']} but keeps a lease {lease}")
            if t["status"] == "waiting" and len(waits) != 1:
                self.bad(eid, f"{where} is waiting on {len(waits)} waits, must be exactly 1")
            if t["status"] != "waiting" and waits:
                self.bad(eid, f"{where} is {t['status']} but has {len(waits)} wait(s)")
            if t["group_id"] is not None:
                group = self.groups.get(t["group_id"])
                lanes = {lane["index"] for lane in self.lanes_of[t["group_id"]]}
                if group is None or group["execution_id"] != eid or t["lane"] not in lanes:
                    self.bad(eid, f"{where} runs in lane {t['lane']} of a missing group/lane")

    # -- A3 -----------------------------------------------------------------------------

    def wait_rules(self) -> None:
        tasks = {t["id"]: t for t in self.s.tasks}
        for w in self.s.waits:
            eid, where = w["execution_id"], f"{w['kind']} wait {w['id']}"
            task = tasks.get(w["task_id"])
            if task is None or task["execution_id"] != eid or task["status"] != "waiting":
                state = task["status"] if task else "missing"
                self.bad(eid, f"{where} belongs to a task that is not waiting ({state})")
            if w["kind"] == "sleep" and w["deadline_at"] is None:
                self.bad(eid, f"{where} has no deadline: it never ends")
            if w["deadline_at"] is not None:
                timers = self.timers_of_wait[w["id"]]
                if len(timers) != 1 or timers[0]["due_at"] != w["deadline_at"]:
                    self.bad(
                        eid,
                        f"{where} has a deadline ({w['deadline_at']}) but "
                        f"{[str(m['due_at']) for m in timers]} as timers: needs exactly one, "
                        "due then",
                    )
            if w["kind"] == "child":
                child = self.executions.get(w["child_id"] or "")
                if child is None or child["parent_id"] != eid:
                    self.bad(eid, f"{where} waits for {w['child_id']}, not a child of it")
                elif child["status"] not in ACTIVE:
                    self.bad(
                        eid,
                        f"{where} waits for child {w['child_id']}, which ended "
                        f"{child['status']}: the wake-up was lost",
                    )

    # -- A5 -----------------------------------------------------------------------------

    def group_rules(self) -> None:
        for g in self.s.groups:
            eid, where = g["execution_id"], f"{g['kind']} {g['node_name']!r} (group {g['id']})"
            lanes = Counter(lane["status"] for lane in self.lanes_of[g["id"]])
            count = sum(lanes.values())
            started = count - lanes["pending"]
            finished = lanes["completed"] + lanes["failed"]
            running = lanes["running"]
            expected = (g["total"], g["started"], g["finished"], g["failed"])
            actual = (count, started, finished, lanes["failed"])
            if expected != actual:
                self.bad(
                    eid,
                    f"{where} counts (total, started, finished, failed) = {expected}, its "
                    f"lanes say {actual}",
                )
            if finished >= count:
                self.bad(eid, f"{where} finished every lane but is still stored")
            if g["fail_fast"] and lanes["failed"]:
                self.bad(eid, f"{where} is fail_fast but goes on with a failed lane")
            if running > g["concurrency"]:
                self.bad(eid, f"{where} runs {running} lanes, over its concurrency")
            if lanes["pending"] and running != g["concurrency"]:
                self.bad(
                    eid,
                    f"{where} has {lanes['pending']} pending lane(s) but runs only {running} "
                    f"of {g['concurrency']}",
                )
            if g["kind"] == "parallel" and lanes["pending"]:
                self.bad(eid, f"{where} left {lanes['pending']} branch(es) unstarted")
            parent = g["parent_group_id"]
            if parent is not None and (
                parent not in self.groups
                or g["parent_lane"] not in {lane["index"] for lane in self.lanes_of[parent]}
            ):
                self.bad(eid, f"{where} runs in a missing lane {g['parent_lane']} of {parent}")

    # -- A6 -----------------------------------------------------------------------------

    def timer_rules(self) -> None:
        for m in self.s.timers:
            e = self.executions[m["execution_id"]]
            if e["status"] not in ACTIVE:
                continue  # T1 says it
            if m["kind"] == "execution_timeout" and m["due_at"] != e["deadline_at"]:
                self.bad(
                    e["id"],
                    f"its timeout timer is due {m['due_at']}, its deadline is {e['deadline_at']}",
                )
            if m["kind"] == "wait_timeout" and m["wait_id"] is None:
                self.bad(e["id"], f"wait timer {m['id']} belongs to no wait")

    # -- A7 -----------------------------------------------------------------------------

    def overdue(self, before: datetime) -> None:
        for m in self.s.timers:
            if m["due_at"] < before:
                self.bad(
                    m["execution_id"], f"{m['kind']} timer {m['id']} is overdue ({m['due_at']})"
                )
        for t in self.s.tasks:
            expires = t["lease_expires_at"]
            if t["status"] == "leased" and expires is not None and expires < before:
                self.bad(
                    t["execution_id"],
                    f"the lease of task {t['id']} ({t['step_name']!r}) expired at {expires} "
                    "and was never reclaimed",
                )

    # -- R1, R2 ---------------------------------------------------------------------------

    def recording(self) -> None:
        task_at = {(t["execution_id"], t["sequence"]): t for t in self.s.tasks}
        for (eid, seq), run in sorted(self.runs.items()):
            e = self.executions[eid]
            where = f"step run {seq} ({run[-1]['step_name']!r})"
            numbers = [a["attempt"] for a in run]
            if numbers != list(range(1, len(run) + 1)):
                self.bad(eid, f"{where} has attempts {numbers}, not 1..{len(run)}")
            shapes = {(a["step_name"], a["kind"], a["lane_path"]) for a in run}
            if len(shapes) != 1:
                self.bad(eid, f"{where} mixes steps, kinds or lanes: {sorted(shapes)}")
            completed = [a["attempt"] for a in run if a["status"] == "completed"]
            if len(completed) > 1:
                self.bad(eid, f"{where} recorded a result {len(completed)} times: {completed}")
            for a in run[:-1]:
                if a["status"] not in RETRIED_FAILURES or a["given_up"]:
                    given = " (given up)" if a["given_up"] else ""
                    self.bad(
                        eid,
                        f"{where} attempt {a['attempt']} is {a['status']}{given}, yet attempt "
                        f"{run[-1]['attempt']} followed",
                    )
            task = task_at.get((eid, seq))
            if task is not None:
                if completed or run[-1]["given_up"]:
                    self.bad(eid, f"{where} finished but its task {task['id']} is still stored")
                if task["attempt"] != len(run) + 1:
                    self.bad(
                        eid,
                        f"{where} recorded {len(run)} attempt(s) but its task runs attempt "
                        f"{task['attempt']}",
                    )
            if seq > e["step_runs"]:
                self.bad(eid, f"{where} is past the {e['step_runs']} step runs handed out")
        for t in self.s.tasks:
            if (t["execution_id"], t["sequence"]) not in self.runs and t["attempt"] != 1:
                self.bad(
                    t["execution_id"],
                    f"task {t['id']} ({t['step_name']!r}) runs attempt {t['attempt']} with no "
                    "earlier attempt recorded",
                )
            if t["sequence"] > self.executions[t["execution_id"]]["step_runs"]:
                self.bad(t["execution_id"], f"task {t['id']} is past the step runs handed out")


# -- the ledger ------------------------------------------------------------------------------


def _token(result: str | None) -> str | None:
    if result is None:
        return None
    value = json.loads(result)
    token = value.get("run") if isinstance(value, dict) else None
    return token if isinstance(token, str) else None


async def check_effects(
    conn_or_dsn: asyncpg.Connection | str,
    ledger: Sequence[Mapping[str, Any]],
    schema: str = "durable",
    *,
    effects: Mapping[str, str] | None = None,
    workflows: Iterable[str] = (),
) -> list[str]:
    """The violations of E1-E6 (module docstring) for this ledger; empty when none.

    ``ledger`` holds the ``start`` and ``done`` lines of every step run; ``effects`` maps
    each applied side effect's key (``ctx.idempotency_key``: execution, sequence, step) to
    the token of the run that applied it. ``workflows`` are the workflows whose every
    step writes the ledger (E2 and E6 are checked for their completed steps).
    """
    conn, owned = await _connected(conn_or_dsn)
    try:
        snap = await read_snapshot(conn, schema)
    finally:
        if owned:
            await conn.close()
    names = {e["id"]: e["workflow_name"] for e in snap.executions}
    ledgered = set(workflows)
    problems: list[str] = []
    starts = {line["run"]: line for line in ledger if line["ev"] == "start"}
    done = {line["run"]: line for line in ledger if line["ev"] == "done"}

    recorded: Counter[str] = Counter()
    completed_keys: set[tuple[str, int, str]] = set()
    for a in snap.attempts:
        if a["status"] != "completed":
            continue
        where = (
            f"{names[a['execution_id']]} {a['execution_id']} step run {a['sequence']} "
            f"({a['step_name']!r}) attempt {a['attempt']}"
        )
        token = _token(a["result"])
        ledgered_step = a["kind"] == "step" and names[a["execution_id"]] in ledgered
        if ledgered_step:
            completed_keys.add((a["execution_id"], a["sequence"], a["step_name"]))
        if token is None:
            if ledgered_step:
                problems.append(f"{where}: completed without a run token (E2)")
            continue
        recorded[token] += 1
        run = done.get(token)
        if run is None:
            problems.append(f"{where}: its result names run {token}, which never returned (E1)")
            continue
        ran = (run["exec"], run["seq"], run["attempt"], run["step"])
        if ran != (a["execution_id"], a["sequence"], a["attempt"], a["step_name"]):
            problems.append(f"{where}: its result comes from another attempt's run {ran} (E1)")
    for token, n in recorded.items():
        if n > 1:
            problems.append(f"the result of run {token} was recorded {n} times (E3)")

    points = Counter((s["exec"], s["seq"], s["attempt"], s["memo"]) for s in starts.values())
    for (eid, seq, attempt, memo), n in sorted(points.items()):
        if n > 1:
            problems.append(
                f"{names.get(eid, '?')} {eid} step run {seq} attempt {attempt} ran {n} times "
                f"with {memo} wait outcome(s): two workers held one lease (E4)"
            )

    attempts = {(a["execution_id"], a["sequence"], a["attempt"]) for a in snap.attempts}
    attempts |= {(t["execution_id"], t["sequence"], t["attempt"]) for t in snap.tasks}
    for s in starts.values():
        if (s["exec"], s["seq"], s["attempt"]) not in attempts:
            problems.append(
                f"{names.get(s['exec'], '?')} {s['exec']} step run {s['seq']} "
                f"({s['step']!r}) attempt {s['attempt']} ran (pid {s['pid']}) but the "
                "orchestrator has no such attempt (E5)"
            )

    applied = Counter((line["exec"], line["seq"]) for line in done.values() if line["applied"])
    for (eid, seq), n in sorted(applied.items()):
        if n > 1:
            problems.append(
                f"{names.get(eid, '?')} {eid} step run {seq}: {n} runs applied its side "
                "effect: the idempotency check failed (E6)"
            )
    for eid, seq, step in sorted(completed_keys) if effects is not None else ():
        assert effects is not None
        token = effects.get(f"{eid}:{seq}:{step}")
        run = starts.get(token or "")
        if run is None or (run["exec"], run["seq"]) != (eid, seq):
            problems.append(
                f"{names[eid]} {eid} step run {seq} ({step!r}) completed, but its side effect "
                f"was {'applied by a stranger run' if token else 'never applied'} (E6)"
            )
    return problems
