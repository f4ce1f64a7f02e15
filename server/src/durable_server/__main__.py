"""``python -m durable_server`` / ``durable server``: run the orchestrator, migrate, or demo.

``durable-server token ...`` (``durable token ...``) manages API tokens in the database.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from durable._shared import configure_from_env
from durable_server.app import Orchestrator, run_migrations
from durable_server.config import Settings, parse_queue_limits
from durable_server.embedded import resolve_database_url
from durable_server.tls import TLSConfigError
from durable_server.token_cli import add_token_commands, run_token_command

__all__ = ["main"]


def _add_database_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--database-url",
        help="PostgreSQL URL (default: DURABLE_DATABASE_URL, else an embedded PostgreSQL)",
    )
    cmd.add_argument("--schema", help="schema holding the tables (default: durable)")
    cmd.add_argument("--data-dir", help="embedded PostgreSQL data folder (default: .durable)")
    cmd.add_argument("--log-level", help="log level (default: INFO)")


def _add_options(cmd: argparse.ArgumentParser) -> None:
    _add_database_options(cmd)
    cmd.add_argument("--listen", help="gRPC listen address (default: 127.0.0.1:7411)")
    cmd.add_argument("--queue-limits", help="per-queue concurrency limits, e.g. a=5,b=2")
    cmd.add_argument(
        "--metrics-listen",
        help="serve Prometheus /metrics on HOST:PORT (default: DURABLE_METRICS_LISTEN, off)",
    )
    cmd.add_argument(
        "--manual-clock",
        action="store_true",
        default=None,
        help="test mode: time starts now and moves only through TestingService "
        "(default: DURABLE_MANUAL_CLOCK, off)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="durable-server", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    for name, help_text in (
        ("serve", "run the orchestrator (the default)"),
        ("migrate", "apply database migrations and exit"),
        ("demo", "run an orchestrator, a worker and the example workflow, then exit"),
    ):
        _add_options(sub.add_parser(name, help=help_text))
    tokens = sub.add_parser("token", help="create, list or revoke API tokens (token --help)")
    add_token_commands(tokens, _add_database_options)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    queue_limits = getattr(args, "queue_limits", None)  # `token` has the database options only
    return Settings.from_env(
        database_url=args.database_url,
        schema=args.schema,
        listen=getattr(args, "listen", None),
        data_dir=args.data_dir,
        log_level=args.log_level,
        metrics_listen=getattr(args, "metrics_listen", None),
        manual_clock=getattr(args, "manual_clock", None),
        queue_limits=parse_queue_limits(queue_limits) if queue_limits else None,
    )


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    provider = configure_from_env("durable-orchestrator")
    orchestrator = Orchestrator(settings, resolve_database_url(settings), tracer_provider=provider)
    await orchestrator.start()
    print(f"durable server ready address={orchestrator.address}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logging.getLogger("durable_server").info("shutting down")
    await orchestrator.stop()
    if provider is not None and hasattr(provider, "shutdown"):
        provider.shutdown()  # flush the spans still batched


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv) or ["serve"])
    try:
        settings = _settings(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "migrate":
        applied = asyncio.run(run_migrations(resolve_database_url(settings), settings.schema))
        print(f"migrations applied: {applied or 'none (up to date)'}")
        return 0
    if args.command == "token":
        return run_token_command(resolve_database_url(settings), settings.schema, args)
    if args.command == "demo":
        from durable_server.demo import run_demo

        return run_demo(settings)
    try:
        asyncio.run(serve(settings))
    except TLSConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
