"""The ``durable`` command: start, inspect, list and cancel executions; run the orchestrator.

Examples::

    durable start process_order --input '{"id": 1}' --wait
    durable get 0190c3e2-... --steps
    durable list --status running waiting
    durable children 0190c3e2-... --status failed
    durable cancel 0190c3e2-... --reason "customer asked"
    durable graph 0190c3e2-... --format dot | dot -Tsvg > execution.svg
    durable graph --workflow process_order
    durable send-event 0190c3e2-... payment_received --payload '{"amount": 30}'
    durable pending-inputs --workflow expenses
    durable provide-input 0190c3e2-... manager_approval --value true
    durable pending-events --name payment_received
    durable schedule create nightly process_order "0 2 * * *" --tz Europe/Paris
    durable schedule list --workflow process_order
    durable schedule update nightly --cron "0 3 * * *" --input '{"full": true}'
    durable schedule trigger nightly
    durable list --schedule nightly
    durable queues
    durable queue pause emails --reason "provider outage"
    durable queue resume emails
    durable retry 0190c3e2-...
    durable diagnose --limit 20
    durable server --database-url postgresql://...    # arguments go to durable-server
    durable token create --role client --expires-in 30d   # so do token and migrate

Client errors print ``error: <CODE>: <message>`` on stderr and exit with status 1.
An orchestrator that requires tokens or TLS is reached with the environment:
``DURABLE_TOKEN``, ``DURABLE_TLS=true`` (system CAs) or ``DURABLE_TLS_CA`` (a PEM file of
CAs), and ``DURABLE_TLS_CLIENT_CERT`` / ``DURABLE_TLS_CLIENT_KEY`` for mTLS.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from durable._channel import connection_from_env
from durable._client import DEFAULT_ADDRESS
from durable._models import (
    CatchUp,
    ExecutionPage,
    ExecutionStatus,
    Finding,
    Overlap,
    PendingEventPage,
    PendingInputPage,
    QueueInfo,
    SchedulePage,
)
from durable._requests import UNSET
from durable._sync_client import SyncClient
from durable.errors import DurableError

__all__ = ["default_address", "main"]

ADDRESS_ENV = "DURABLE_SERVER_ADDRESS"

# durable <subcommand> -> durable_server <command>: everything after it is passed through.
_ORCHESTRATOR_COMMANDS = {
    "server": "serve",
    "migrate": "migrate",
    "demo": "demo",
    "token": "token",
}
_NOT_INSTALLED = "the orchestrator is not installed: pip install durable-server"

Handler = Callable[[SyncClient, argparse.Namespace], int]


def default_address() -> str:
    """The orchestrator's address: ``$DURABLE_SERVER_ADDRESS``, else ``127.0.0.1:7411``.

    With ``main``'s token and TLS settings, the only place the SDK reads the environment.
    """
    return os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS


def _json_argument(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON: {exc}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _print_json(value: Any) -> None:
    # StrEnum statuses serialise as their values; input/result are JSON values already.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    print(json.dumps(value, indent=2, default=_json_default))


def _cmd_start(client: SyncClient, args: argparse.Namespace) -> int:
    execution_id = client.start(
        args.workflow,
        args.input,
        queue=args.queue,
        priority=args.priority,
        idempotency_key=args.idempotency_key,
    )
    if args.wait:
        _print_json(client.wait(execution_id, timeout=args.wait_timeout))
    else:
        print(execution_id)
    return 0


def _cmd_wait(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.wait(args.execution_id, timeout=args.wait_timeout))
    return 0


def _cmd_get(client: SyncClient, args: argparse.Namespace) -> int:
    execution = client.get_execution(
        args.execution_id, include_steps=args.steps or args.logs, include_logs=args.logs
    )
    _print_json(execution)
    return 0


def _format_time(value: datetime.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The header and rows as aligned columns."""
    table = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    ]


def _next_page(lines: list[str], token: str) -> str:
    if token:
        lines.append(f"next page: --page-token {token}")
    return "\n".join(lines)


def format_table(page: ExecutionPage) -> str:
    """The page as aligned columns, with a footer naming the next page."""
    header = ("ID", "WORKFLOW", "STATUS", "QUEUE", "CREATED (UTC)", "STEP")
    lines = _columns(
        header,
        [
            (
                e.id,
                e.workflow_name,
                e.status.value,
                e.queue,
                _format_time(e.created_at),
                e.current_step or "-",
            )
            for e in page.executions
        ],
    )
    if page.total_count is None:
        lines.append(f"{len(page.executions)} execution(s)")
    else:
        lines.append(f"{len(page.executions)} of {page.total_count} execution(s)")
    return _next_page(lines, page.next_page_token)


def format_pending_inputs(page: PendingInputPage) -> str:
    """Pending inputs as aligned columns, with a footer naming the next page."""
    header = ("EXECUTION", "WORKFLOW", "STEP", "INPUT", "KIND", "REQUESTED (UTC)", "DEADLINE")
    lines = _columns(
        header,
        [
            (
                i.execution_id,
                i.workflow_name,
                i.step_name,
                i.name,
                i.kind.value,
                _format_time(i.requested_at),
                _format_time(i.deadline_at),
            )
            for i in page.inputs
        ],
    )
    lines.append(f"{len(page.inputs)} pending input(s)")
    return _next_page(lines, page.next_page_token)


def format_pending_events(page: PendingEventPage) -> str:
    """Pending event waits as aligned columns, with a footer naming the next page."""
    header = ("EXECUTION", "WORKFLOW", "STEP", "MODE", "EVENTS", "RECEIVED", "SINCE (UTC)")
    lines = _columns(
        header,
        [
            (
                w.execution_id,
                w.workflow_name,
                w.step_name,
                w.mode.value,
                ",".join(w.names),
                ",".join(w.received) or "-",
                _format_time(w.waiting_since),
            )
            for w in page.waits
        ],
    )
    lines.append(f"{len(page.waits)} event wait(s)")
    return _next_page(lines, page.next_page_token)


def format_schedules(page: SchedulePage) -> str:
    """Schedules as aligned columns, with a footer naming the next page."""
    header = ("NAME", "WORKFLOW", "CRON", "TIMEZONE", "ENABLED", "NEXT (UTC)", "LAST (UTC)")
    lines = _columns(
        header,
        [
            (
                s.name,
                s.workflow_name,
                s.cron,
                s.timezone or "UTC",
                "yes" if s.enabled else "no",
                _format_time(s.next_fire_at),
                _format_time(s.last_fire_at),
            )
            for s in page.schedules
        ],
    )
    lines.append(f"{len(page.schedules)} schedule(s)")
    return _next_page(lines, page.next_page_token)


def _format_age(value: datetime.timedelta | None) -> str:
    if value is None:
        return "-"
    seconds = int(value.total_seconds())
    if seconds < 60:
        return f"{value.total_seconds():.1f}s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def format_queues(queues: Sequence[QueueInfo]) -> str:
    """Queues as aligned columns, with a count."""
    header = (
        "QUEUE",
        "STATE",
        "READY",
        "LEASED",
        "WAITING",
        "DELAYED",
        "OLDEST READY",
        "LIMIT",
        "REASON",
    )
    lines = _columns(
        header,
        [
            (
                q.name,
                q.state,
                str(q.ready),
                str(q.leased),
                str(q.waiting),
                str(q.delayed),
                _format_age(q.oldest_ready_age),
                str(q.concurrency_limit) if q.concurrency_limit else "-",
                q.reason or "-",
            )
            for q in queues
        ],
    )
    lines.append(f"{len(queues)} queue(s)")
    return "\n".join(lines)


def format_findings(findings: Sequence[Finding]) -> str:
    """Findings as aligned columns, each followed by its detail, with a count."""
    header = ("EXECUTION", "WORKFLOW", "STATUS", "PROBLEM", "SINCE (UTC)")
    rows = [
        (f.execution_id, f.workflow_name, f.status, f.problem, _format_time(f.since))
        for f in findings
    ]
    table = _columns(header, rows)
    lines = [table[0]]
    for line, finding in zip(table[1:], findings, strict=True):
        lines.append(line)
        if finding.detail:
            lines.append(f"    {finding.detail}")
    lines.append(f"{len(findings)} finding(s)")
    return "\n".join(lines)


def _cmd_queues(client: SyncClient, args: argparse.Namespace) -> int:
    queues = client.list_queues()
    if args.json:
        _print_json([dataclasses.asdict(q) for q in queues])
    else:
        print(format_queues(queues))
    return 0


def _cmd_queue_pause(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.pause_queue(args.name, reason=args.reason))
    return 0


def _cmd_queue_resume(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.resume_queue(args.name))
    return 0


def _cmd_queue_drain(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.drain_queue(args.name, reason=args.reason))
    return 0


def _cmd_retry(client: SyncClient, args: argparse.Namespace) -> int:
    print(client.retry_execution(args.execution_id))
    return 0


def _cmd_diagnose(client: SyncClient, args: argparse.Namespace) -> int:
    findings = client.diagnose(limit=args.limit)
    if args.json:
        _print_json([dataclasses.asdict(f) for f in findings])
    else:
        print(format_findings(findings))
    return 0


def _cmd_list(client: SyncClient, args: argparse.Namespace) -> int:
    page = client.list_executions(
        workflow=args.workflow,
        statuses=args.status,
        queue=args.queue,
        page_size=args.page_size,
        page_token=args.page_token,
        schedule=args.schedule,
    )
    print(format_table(page))
    return 0


def _cmd_children(client: SyncClient, args: argparse.Namespace) -> int:
    page = client.list_children(
        args.execution_id,
        statuses=args.status,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    print(format_table(page))
    return 0


def _cmd_cancel(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.cancel(args.execution_id, reason=args.reason))
    return 0


def _cmd_graph(client: SyncClient, args: argparse.Namespace) -> int:
    if (args.execution_id is None) == (args.workflow is None):
        print("error: give an execution ID or --workflow NAME (not both)", file=sys.stderr)
        return 2
    text = client.get_execution_graph(args.execution_id, workflow=args.workflow, format=args.format)
    sys.stdout.write(text)
    return 0


def _cmd_send_event(client: SyncClient, args: argparse.Namespace) -> int:
    delivered = client.send_event(
        args.execution_id, args.name, args.payload, event_id=args.event_id
    )
    _print_json({"delivered": delivered})
    return 0


def _cmd_provide_input(client: SyncClient, args: argparse.Namespace) -> int:
    client.provide_input(args.execution_id, args.name, args.value)
    return 0


def _cmd_pending_inputs(client: SyncClient, args: argparse.Namespace) -> int:
    page = client.list_pending_inputs(
        execution_id=args.execution,
        workflow=args.workflow,
        name=args.name,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    if args.json:
        _print_json(page)
    else:
        print(format_pending_inputs(page))
    return 0


def _cmd_pending_events(client: SyncClient, args: argparse.Namespace) -> int:
    page = client.list_pending_events(
        execution_id=args.execution,
        workflow=args.workflow,
        name=args.name,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    if args.json:
        _print_json(page)
    else:
        print(format_pending_events(page))
    return 0


def _cmd_schedule_create(client: SyncClient, args: argparse.Namespace) -> int:
    schedule = client.create_schedule(
        args.name,
        args.workflow,
        args.cron,
        timezone=args.timezone,
        input=args.input,
        queue=args.queue,
        priority=args.priority,
        enabled=not args.disabled,
        catch_up=args.catch_up,
        catch_up_limit=args.catch_up_limit,
        overlap=args.overlap,
        max_failures=args.max_failures,
    )
    _print_json(schedule)
    return 0


def _cmd_schedule_get(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.get_schedule(args.name))
    return 0


def _cmd_schedule_list(client: SyncClient, args: argparse.Namespace) -> int:
    page = client.list_schedules(
        enabled=args.enabled,
        workflow=args.workflow,
        queue=args.queue,
        page_size=args.page_size,
        page_token=args.page_token,
    )
    if args.json:
        _print_json(page)
    else:
        print(format_schedules(page))
    return 0


# `durable schedule update` options (dest) -> update_schedule keywords; unset options are
# absent from the namespace (argparse.SUPPRESS), so only the given ones are changed.
_UPDATE_OPTIONS = (
    "workflow",
    "cron",
    "timezone",
    "input",
    "queue",
    "priority",
    "catch_up",
    "catch_up_limit",
    "overlap",
    "max_failures",
)


def _cmd_schedule_update(client: SyncClient, args: argparse.Namespace) -> int:
    changes: dict[str, Any] = {k: getattr(args, k) for k in _UPDATE_OPTIONS if hasattr(args, k)}
    if not changes:
        print("error: nothing to update: give at least one option", file=sys.stderr)
        return 2
    _print_json(client.update_schedule(args.name, **changes))
    return 0


def _cmd_schedule_enable(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.enable_schedule(args.name))
    return 0


def _cmd_schedule_disable(client: SyncClient, args: argparse.Namespace) -> int:
    _print_json(client.disable_schedule(args.name))
    return 0


def _cmd_schedule_delete(client: SyncClient, args: argparse.Namespace) -> int:
    client.delete_schedule(args.name)
    return 0


def _cmd_schedule_trigger(client: SyncClient, args: argparse.Namespace) -> int:
    print(client.trigger_schedule(args.name, getattr(args, "input", UNSET)))
    return 0


def _add_status_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status",
        nargs="+",
        action="extend",
        choices=[s.value for s in ExecutionStatus],
        metavar="S",
        help="only these statuses: " + ", ".join(s.value for s in ExecutionStatus),
    )


def _add_page_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--page-size", type=int, default=50, help="at most this many (default 50)")
    parser.add_argument("--page-token", help="the token printed under the previous page")


def _add_client_commands(sub: Any) -> None:
    start = sub.add_parser("start", help="start an execution; print its id")
    start.add_argument("workflow", help="workflow name")
    start.add_argument("--input", type=_json_argument, help="input as JSON (default: null)")
    start.add_argument("--queue", help="queue to run on (default: the workflow's)")
    start.add_argument("--priority", type=int, default=0, help="higher runs first")
    start.add_argument("--idempotency-key", help="a second start with this key is a no-op")
    start.add_argument(
        "--wait", action="store_true", help="wait until it finishes; print it as JSON"
    )
    start.add_argument(
        "--wait-timeout", type=float, metavar="SECONDS", help="give up waiting after this"
    )
    start.set_defaults(handler=_cmd_start)

    get = sub.add_parser("get", help="print an execution as JSON")
    get.add_argument("execution_id", metavar="ID")
    get.add_argument("--steps", action="store_true", help="include step attempts")
    get.add_argument("--logs", action="store_true", help="include step logs (implies --steps)")
    get.set_defaults(handler=_cmd_get)

    wait = sub.add_parser("wait", help="wait until an execution finishes; print it as JSON")
    wait.add_argument("execution_id", metavar="ID")
    wait.add_argument(
        "--timeout",
        # Not "timeout": a subcommand's default would replace the global --timeout's value.
        dest="wait_timeout",
        type=float,
        metavar="SECONDS",
        help="give up after this (default: never)",
    )
    wait.set_defaults(handler=_cmd_wait)

    lst = sub.add_parser("list", help="list executions, newest first")
    lst.add_argument("--workflow", help="only this workflow")
    _add_status_argument(lst)
    lst.add_argument("--queue", help="only this queue")
    lst.add_argument("--schedule", metavar="NAME", help="only the runs of this schedule")
    _add_page_arguments(lst)
    lst.set_defaults(handler=_cmd_list)

    children = sub.add_parser("children", help="list an execution's children, oldest first")
    children.add_argument("execution_id", metavar="ID", help="the parent execution")
    _add_status_argument(children)
    _add_page_arguments(children)
    children.set_defaults(handler=_cmd_children)

    cancel = sub.add_parser("cancel", help="cancel an execution; print it as JSON")
    cancel.add_argument("execution_id", metavar="ID")
    cancel.add_argument("--reason", default="", help="why, kept with the execution")
    cancel.set_defaults(handler=_cmd_cancel)

    graph = sub.add_parser(
        "graph", help="print an execution's graph with its state (or a workflow's graph)"
    )
    graph.add_argument("execution_id", metavar="ID", nargs="?", help="the execution to draw")
    graph.add_argument("--workflow", metavar="NAME", help="draw this workflow's latest version")
    graph.add_argument(
        "--format", choices=("mermaid", "dot"), default="mermaid", help="default: mermaid"
    )
    graph.set_defaults(handler=_cmd_graph)
    _add_wait_commands(sub)
    _add_schedule_commands(sub)
    _add_operations_commands(sub)


def _add_pending_filters(parser: argparse.ArgumentParser, name_help: str) -> None:
    parser.add_argument("--execution", metavar="ID", help="only this execution")
    parser.add_argument("--workflow", help="only this workflow's executions")
    parser.add_argument("--name", help=name_help)
    parser.add_argument("--json", action="store_true", help="print the page as JSON")
    _add_page_arguments(parser)


def _add_wait_commands(sub: Any) -> None:
    send = sub.add_parser(
        "send-event", help='send an event to an execution; print {"delivered": ...}'
    )
    send.add_argument("execution_id", metavar="ID")
    send.add_argument("name", metavar="NAME", help="the event's name")
    send.add_argument("--payload", type=_json_argument, help="payload as JSON (default: null)")
    send.add_argument(
        "--event-id", help="makes a retry safe: a second send with this ID does nothing"
    )
    send.set_defaults(handler=_cmd_send_event)

    provide = sub.add_parser("provide-input", help="answer a human input an execution waits for")
    provide.add_argument("execution_id", metavar="ID")
    provide.add_argument("name", metavar="NAME", help="the input's name")
    provide.add_argument(
        "--value", type=_json_argument, required=True, help="the answer as JSON, e.g. true"
    )
    provide.set_defaults(handler=_cmd_provide_input)

    inputs = sub.add_parser("pending-inputs", help="list pending human inputs, oldest first")
    _add_pending_filters(inputs, "only inputs with this name")
    inputs.set_defaults(handler=_cmd_pending_inputs)

    events = sub.add_parser("pending-events", help="list pending event waits, oldest first")
    _add_pending_filters(events, "only waits that include this event")
    events.set_defaults(handler=_cmd_pending_events)


def _add_schedule_options(parser: argparse.ArgumentParser, *, update: bool) -> None:
    """The options of `schedule create` (with their defaults) and `schedule update`.

    For `update` an option not given is absent from the namespace: it is not changed.
    """

    def option(*flags: str, create_default: Any, **kwargs: Any) -> None:
        default = argparse.SUPPRESS if update else create_default
        parser.add_argument(*flags, default=default, **kwargs)

    option("--tz", dest="timezone", create_default="", help="IANA time zone (default: UTC)")
    option("--input", type=_json_argument, create_default=None, help="input of each run, JSON")
    option("--queue", create_default=None, help="queue of the runs ('': the workflow's)")
    option("--priority", type=int, create_default=0, help="priority of the runs")
    option(
        "--catch-up",
        choices=[c.value for c in CatchUp],
        create_default="once",
        help="missed slots: one run (once, the default), none (skip) or each (all)",
    )
    option(
        "--catch-up-limit",
        type=int,
        metavar="N",
        create_default=0,
        help="with --catch-up all, at most N missed slots (default 10)",
    )
    option(
        "--overlap",
        choices=[o.value for o in Overlap],
        create_default="allow",
        help="while the previous run runs: allow (the default), skip or cancel_previous",
    )
    option(
        "--max-failures",
        type=int,
        metavar="N",
        create_default=0,
        help="failed starts in a row before the schedule disables itself (default 5)",
    )


def _add_schedule_commands(sub: Any) -> None:
    schedule = sub.add_parser("schedule", help="manage cron schedules (schedule --help)")
    commands = schedule.add_subparsers(dest="schedule_command", required=True, metavar="COMMAND")

    create = commands.add_parser("create", help="create a schedule; print it as JSON")
    create.add_argument("name", metavar="NAME", help="the schedule's name")
    create.add_argument("workflow", metavar="WORKFLOW", help="the workflow each run starts")
    create.add_argument("cron", metavar="CRON", help='cron expression, e.g. "0 9 * * MON-FRI"')
    create.add_argument("--disabled", action="store_true", help="create it switched off")
    _add_schedule_options(create, update=False)
    create.set_defaults(handler=_cmd_schedule_create)

    get = commands.add_parser("get", help="print a schedule as JSON")
    get.add_argument("name", metavar="NAME")
    get.set_defaults(handler=_cmd_schedule_get)

    lst = commands.add_parser("list", help="list schedules by name")
    state = lst.add_mutually_exclusive_group()
    state.add_argument(
        "--enabled", action="store_const", const=True, dest="enabled", help="only enabled ones"
    )
    state.add_argument(
        "--disabled", action="store_const", const=False, dest="enabled", help="only disabled ones"
    )
    lst.add_argument("--workflow", help="only this workflow's schedules")
    lst.add_argument("--queue", help="only schedules with this queue")
    lst.add_argument("--json", action="store_true", help="print the page as JSON")
    _add_page_arguments(lst)
    lst.set_defaults(handler=_cmd_schedule_list)

    update = commands.add_parser(
        "update", help="change the given fields of a schedule; print it as JSON"
    )
    update.add_argument("name", metavar="NAME")
    update.add_argument("--workflow", default=argparse.SUPPRESS, help="the workflow to start")
    update.add_argument("--cron", default=argparse.SUPPRESS, help="the cron expression")
    _add_schedule_options(update, update=True)
    update.set_defaults(handler=_cmd_schedule_update)

    for name, handler, what in (
        ("enable", _cmd_schedule_enable, "turn a schedule on; print it as JSON"),
        ("disable", _cmd_schedule_disable, "turn a schedule off; print it as JSON"),
        ("delete", _cmd_schedule_delete, "delete a schedule (its executions stay)"),
    ):
        command = commands.add_parser(name, help=what)
        command.add_argument("name", metavar="NAME")
        command.set_defaults(handler=handler)

    trigger = commands.add_parser("trigger", help="start one run now; print the execution id")
    trigger.add_argument("name", metavar="NAME")
    trigger.add_argument(
        "--input",
        type=_json_argument,
        default=argparse.SUPPRESS,
        help="input of this run as JSON (default: the schedule's)",
    )
    trigger.set_defaults(handler=_cmd_schedule_trigger)


def _add_operations_commands(sub: Any) -> None:
    queues = sub.add_parser("queues", help="list queues: state, counts, oldest ready age")
    queues.add_argument("--json", action="store_true", help="print the queues as JSON")
    queues.set_defaults(handler=_cmd_queues)

    queue = sub.add_parser("queue", help="pause, resume or drain a queue (queue --help)")
    commands = queue.add_subparsers(dest="queue_command", required=True, metavar="COMMAND")
    for name, handler, what, has_reason in (
        ("pause", _cmd_queue_pause, "stop workers taking its tasks; print it as JSON", True),
        ("resume", _cmd_queue_resume, "take its tasks and new starts again; print it", False),
        ("drain", _cmd_queue_drain, "refuse new executions on it; print it as JSON", True),
    ):
        command = commands.add_parser(name, help=what)
        command.add_argument("name", metavar="NAME", help="the queue's name")
        if has_reason:
            command.add_argument("--reason", default="", help="why, shown with the queue")
        command.set_defaults(handler=handler)

    retry = sub.add_parser(
        "retry", help="run a failed execution again from the step that failed; print the step"
    )
    retry.add_argument("execution_id", metavar="ID")
    retry.set_defaults(handler=_cmd_retry)

    diagnose = sub.add_parser("diagnose", help="find executions that cannot move forward")
    diagnose.add_argument(
        "--limit", type=int, default=0, metavar="N", help="at most N findings (default 100)"
    )
    diagnose.add_argument("--json", action="store_true", help="print the findings as JSON")
    diagnose.set_defaults(handler=_cmd_diagnose)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="durable", description="Start, inspect, list and cancel workflow executions."
    )
    parser.add_argument(
        "--address",
        default=default_address(),
        help=f"orchestrator host:port (default: ${ADDRESS_ENV} or {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="deadline of each call"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_client_commands(sub)
    for name, target in _ORCHESTRATOR_COMMANDS.items():
        # No options of its own (not even --help): all arguments go to durable-server.
        sub.add_parser(name, add_help=False, help=f"durable-server {target} [ARGS...]")
    return parser


def _run_orchestrator(command: str, rest: Sequence[str]) -> int:
    try:
        from durable_server.__main__ import main as server_main
    except ImportError as exc:
        if exc.name not in ("durable_server", "durable_server.__main__"):
            raise  # installed but broken: show the real cause
        print(_NOT_INSTALLED, file=sys.stderr)
        return 2
    return server_main([command, *rest])


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``durable`` command line; return its exit status."""
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in _ORCHESTRATOR_COMMANDS:
        return _run_orchestrator(_ORCHESTRATOR_COMMANDS[args.command], rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    handler: Handler = args.handler
    try:
        token, tls = connection_from_env(os.environ)
        client = SyncClient(args.address, timeout=args.timeout, token=token, tls=tls)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with client:
            return handler(client, args)
    except DurableError as exc:
        print(f"error: {exc.code.name}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
