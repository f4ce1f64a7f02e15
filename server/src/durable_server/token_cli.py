"""``durable token create|list|revoke``: manage API tokens, straight in the database.

It works without the orchestrator's API (the first admin token cannot be made through
an API that needs one), like ``durable migrate``. The secret of a new token is printed
once, on stdout; only its hash is stored.

Examples::

    durable token create --role worker --queue emails --expires-in 90d --name mailer
    durable token create --role admin --name ops
    durable token list
    durable token revoke 3f2a9c0d1e2b4a5c
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import asyncpg

from durable_server.auth.tokens import Role, issue_token, parse_token
from durable_server.store import tokens as token_store
from durable_server.store.migrate import migrate, quote_ident

__all__ = ["add_token_commands", "parse_duration", "run_token_command"]

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``45m``, ``12h``, ``30d`` or ``2w`` as a timedelta."""
    match = _DURATION.match(text.strip())
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a positive number and s, m, h, d or w (e.g. 30d)"
        )
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def add_token_commands(
    parser: argparse.ArgumentParser, add_options: Callable[[argparse.ArgumentParser], None]
) -> None:
    """The ``create``, ``list`` and ``revoke`` subcommands of ``token``.

    ``add_options`` adds the database options every command of ``durable-server`` has.
    """
    commands = parser.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = commands.add_parser("create", help="create a token; print it (once) on stdout")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument(
        "--queue",
        action="append",
        dest="queues",
        default=[],
        metavar="Q",
        help="worker tokens: a queue it may use, repeatable (default: every queue)",
    )
    create.add_argument("--name", default="", help="what the token is for, shown by list")
    create.add_argument(
        "--expires-in", type=parse_duration, metavar="DURATION", help="e.g. 30d (default: never)"
    )
    listing = commands.add_parser("list", help="list tokens (never their secrets)")
    revoke = commands.add_parser("revoke", help="revoke a token: calls with it are refused")
    revoke.add_argument("token_id", metavar="ID", help="the id (dur_<id>_...) shown by list")
    for command in (create, listing, revoke):
        add_options(command)


def run_token_command(dsn: str, schema: str, args: argparse.Namespace) -> int:
    """Run one ``token`` subcommand against the database; returns the exit status."""
    if args.token_command == "create" and args.queues and args.role != Role.WORKER:
        print("error: --queue applies to worker tokens only", file=sys.stderr)
        return 2
    return asyncio.run(_run(dsn, schema, args))


async def _run(dsn: str, schema: str, args: argparse.Namespace) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn, schema)  # the first token may come before the first start
        await conn.execute(f"SET search_path TO {quote_ident(schema)}")
        now = datetime.now(UTC)
        if args.token_command == "create":
            return await _create(conn, args, now)
        if args.token_command == "list":
            return await _list(conn, now)
        return await _revoke(conn, args.token_id, now)
    finally:
        await conn.close()


async def _create(conn: asyncpg.Connection, args: argparse.Namespace, now: datetime) -> int:
    issued = await issue_token(
        conn,
        role=Role(args.role),
        name=args.name,
        queues=args.queues,
        now=now,
        expires_at=now + args.expires_in if args.expires_in else None,
    )
    print(issued.token)
    scope = f" on queue(s) {', '.join(issued.queues)}" if issued.queues else ""
    until = f", expires {_time(issued.expires_at)}" if issued.expires_at else ""
    print(
        f"created {issued.role.value} token {issued.id}{scope}{until}: keep the line above "
        "secret and safe, it is not shown again",
        file=sys.stderr,
    )
    return 0


def _time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


async def _list(conn: asyncpg.Connection, now: datetime) -> int:
    rows = [("ID", "NAME", "ROLE", "QUEUES", "CREATED (UTC)", "EXPIRES (UTC)", "STATE")]
    for r in await token_store.token_list(conn):
        state = (
            "revoked"
            if r["revoked_at"]
            else "expired"
            if r["expires_at"] and r["expires_at"] <= now
            else "active"
        )
        rows.append(
            (
                r["id"],
                r["name"] or "-",
                r["role"],
                ",".join(r["queues"]) or ("*" if r["role"] == Role.WORKER else "-"),
                _time(r["created_at"]),
                _time(r["expires_at"]),
                state,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def _revoke(conn: asyncpg.Connection, token_id: str, now: datetime) -> int:
    parsed = parse_token(token_id)  # a whole token pasted: its id
    token_id = parsed[0] if parsed else token_id
    revoked_at = await token_store.token_revoke(conn, token_id=token_id, now=now)
    if revoked_at is None:
        print(f"error: no token {token_id}", file=sys.stderr)
        return 1
    print(f"token {token_id} revoked at {_time(revoked_at)}")
    return 0
