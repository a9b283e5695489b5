"""A PostgreSQL primary and a hot standby fed by streaming replication, for the replica tests.

Built from the server binaries on the machine (Debian's ``postgresql-15`` under
``/usr/lib/postgresql/15/bin``, or ``NAMMA_TEST_PG_BIN``) in a temporary directory, on free
loopback ports: ``initdb`` a primary, start it, copy it with ``pg_basebackup -R`` (which writes
``standby.signal`` and the ``primary_conninfo`` to stream from), start the copy as a standby.

PostgreSQL refuses to run as root. Run as root (CI), the servers run as the ``postgres`` system
user the Debian package creates (the embedded wheel makes its own user for the same reason);
the directories are handed to that user first.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

# Debian's server package (postgresql-15 here and in CI); any other installed version next.
PG_BIN_CANDIDATES = ("/usr/lib/postgresql/15/bin",)
SYSTEM_USER = "postgres"


def pg_bin() -> Path | None:
    """The folder of initdb, pg_ctl and pg_basebackup, or None when there is none."""
    given = os.environ.get("NAMMA_TEST_PG_BIN")
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for folder in [Path(given)] if given else [*map(Path, PG_BIN_CANDIDATES), *installed]:
        if (folder / "pg_basebackup").is_file() and (folder / "initdb").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class StreamingPair:
    """``start()`` a primary and its hot standby; ``stop()`` both and remove their files."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.base = Path(tempfile.mkdtemp(prefix="namma-replica-"))
        self.primary_dir = self.base / "primary"
        self.standby_dir = self.base / "standby"
        self.primary_port = _free_port()
        self.standby_port = _free_port()
        self._user = SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, *, standby: bool = False, database: str = "postgres") -> str:
        port = self.standby_port if standby else self.primary_port
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run(
            [str(self.bin / tool), *args],
            user=self._user,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=self.base,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def _options(self, port: int) -> str:
        # Loopback only, sockets in our own folder; durability off (a test cluster thrown away
        # afterwards); replay conflicts never cancel a test's read on the standby.
        return (
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} "
            "-c fsync=off -c full_page_writes=off "
            "-c max_standby_streaming_delay=-1 -c hot_standby_feedback=on "
            "-c wal_receiver_status_interval=1"
        )

    def start(self) -> StreamingPair:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self.base.chmod(0o700)
        self._run(
            "initdb",
            "-D",
            str(self.primary_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.primary_dir),
            "-l",
            str(self.base / "primary.log"),
            "-o",
            self._options(self.primary_port),
            "-w",
            "start",
        )
        # -R: standby.signal and primary_conninfo; -X stream: the WAL written while copying.
        self._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary_port),
            "-U",
            "postgres",
            "-D",
            str(self.standby_dir),
            "-R",
            "-X",
            "stream",
            "--checkpoint=fast",
            "--no-sync",
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.standby_dir),
            "-l",
            str(self.base / "standby.log"),
            "-o",
            self._options(self.standby_port),
            "-w",
            "start",
        )
        return self

    def stop(self) -> None:
        for folder in (self.standby_dir, self.primary_dir):
            if (folder / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                    self._run("pg_ctl", "-D", str(folder), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.url(), autocommit=True) as primary:
            row = primary.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        target = row[0]
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url(standby=True), autocommit=True) as standby:
            while True:
                done = standby.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)
                ).fetchone()
                if done and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {target}")
                time.sleep(0.05)
