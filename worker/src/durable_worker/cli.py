"""The ``durable-worker`` command: load workflow modules and run a worker until signalled.

Example::

    durable-worker myapp.workflows --server orchestrator:7411 --concurrency 20

An orchestrator that requires a token or TLS is reached with ``DURABLE_TOKEN`` and
``DURABLE_TLS`` / ``DURABLE_TLS_CA`` / ``DURABLE_TLS_CLIENT_CERT`` / ``DURABLE_TLS_CLIENT_KEY``
(see ``durable_worker.config``).

SIGTERM or SIGINT starts a drain (a second one gives running steps back at once); the
command exits 0 once drained. It prints ``durable-worker ready ...`` on stdout when it
has registered and is polling. Exit status 2 means a usage or loading error, 1 that
the orchestrator refused the registration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from durable._shared import configure_from_env
from durable.errors import DurableError
from durable_worker import shutdown
from durable_worker.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DRAIN_TIMEOUT,
    DEFAULT_MAX_PAYLOAD_BYTES,
    WorkerSettings,
    default_address,
    default_connection,
    default_log_level,
)
from durable_worker.loader import LoaderError, load_workflows
from durable_worker.worker import Worker

__all__ = ["main", "parse_args"]

log = logging.getLogger("durable_worker")

_LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="durable-worker", description="Run the steps of durable workflows."
    )
    p.add_argument("modules", nargs="+", metavar="MODULE", help="module defining workflows")
    p.add_argument(
        "--server",
        metavar="ADDRESS",
        default=default_address(),
        help="orchestrator host:port (default: $DURABLE_SERVER_ADDRESS or 127.0.0.1:7411)",
    )
    p.add_argument(
        "--queue",
        action="append",
        dest="queues",
        default=[],
        metavar="Q",
        help="queue to poll, repeatable (default: every queue the workflows start on)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"steps run at once (default {DEFAULT_CONCURRENCY})",
    )
    p.add_argument("--worker-id", metavar="ID", help="default: <hostname>-<pid>-<random hex>")
    p.add_argument(
        "--drain-timeout",
        type=float,
        default=DEFAULT_DRAIN_TIMEOUT,
        metavar="SECONDS",
        help=f"on shutdown, wait this long for running steps (default {DEFAULT_DRAIN_TIMEOUT:g})",
    )
    p.add_argument(
        "--max-payload-bytes",
        type=int,
        default=DEFAULT_MAX_PAYLOAD_BYTES,
        metavar="N",
        help=f"largest step result, encoded (default {DEFAULT_MAX_PAYLOAD_BYTES})",
    )
    p.add_argument(
        "--allow-takeover",
        action="store_true",
        help="move workflows registered on another queue to the queue their definitions "
        "declare now (a token allowed on both queues is needed)",
    )
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=_LOG_LEVELS,
        default=default_log_level(),
        help="default: $DURABLE_LOG_LEVEL or INFO",
    )
    return p


def parse_args(argv: Sequence[str] | None = None) -> WorkerSettings:
    """The settings given on the command line; exits with status 2 on a usage error."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        token, tls = default_connection()
        return WorkerSettings(
            modules=tuple(args.modules),
            server_address=args.server,
            queues=tuple(args.queues),
            concurrency=args.concurrency,
            worker_id=args.worker_id,
            drain_timeout=args.drain_timeout,
            max_payload_bytes=args.max_payload_bytes,
            log_level=args.log_level,
            token=token,
            tls=tls,
            allow_takeover=args.allow_takeover,
        )
    except ValueError as exc:
        parser.error(str(exc))


async def _serve(worker: Worker) -> None:
    undo = shutdown.install_signal_handlers(worker.request_drain)
    try:
        await worker.run()
    finally:
        undo()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns its exit status."""
    settings = parse_args(argv)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        provider = configure_from_env("durable-worker")
        workflows = load_workflows(settings.modules)
        worker = Worker(
            settings.server_address,
            workflows,
            queues=settings.queues or None,
            concurrency=settings.concurrency,
            worker_id=settings.worker_id,
            drain_timeout=settings.drain_timeout,
            max_payload_bytes=settings.max_payload_bytes,
            announce=True,
            tracer_provider=provider,
            token=settings.token,
            tls=settings.tls,
            allow_takeover=settings.allow_takeover,
        )
    except (LoaderError, ValueError) as exc:
        print(f"durable-worker: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(worker))
    except DurableError as exc:
        print(f"durable-worker: registration failed: {exc.code.name}: {exc}", file=sys.stderr)
        return 1
    if provider is not None and hasattr(provider, "shutdown"):
        provider.shutdown()  # flush the spans still batched
    if worker.busy_threads:
        # Python joins pool threads at exit: a stuck step would keep the process alive.
        log.warning("exiting with %d step thread(s) still running", worker.busy_threads)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0
