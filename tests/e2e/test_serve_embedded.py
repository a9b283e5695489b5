"""The README's run command on a machine with nothing but Python: the embedded PostgreSQL starts,
the server answers, stopping it leaves no PostgreSQL behind, and a second start keeps the data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") == "postgres" and str(pgdata) in " ".join(cmdline):
            found.append(proc)
    return found


def _start(workdir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    return subprocess.Popen(
        [sys.executable, "-m", "namma", "serve", "--demo", "--port", str(port)],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(port: int, server: subprocess.Popen[str], timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if server.poll() is not None:
            raise AssertionError(
                f"server exited early:\n{server.stdout.read() if server.stdout else ''}"
            )
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)
            if health.status_code == 200 and ready.status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise AssertionError(f"not ready within {timeout}s")


def _stop(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(30)


def test_serve_on_embedded_postgres_starts_stops_cleanly_and_keeps_data(tmp_path: Path) -> None:
    pgdata = (tmp_path / "var" / "pgdata").resolve()
    port = _free_port()

    first = _start(tmp_path, port)
    try:
        assert _wait_ready(port, first) < 60
        assert _postgres_processes(pgdata), "the embedded PostgreSQL should be running"
        with psycopg.connect(
            f"postgresql://postgres@/namma?host={pgdata}", autocommit=True
        ) as conn:
            conn.execute("CREATE TABLE kept_across_restarts (note text)")
            conn.execute("INSERT INTO kept_across_restarts VALUES ('still here')")
    finally:
        _stop(first)
    assert first.returncode == 0 or first.returncode == 128 + signal.SIGTERM
    time.sleep(0.5)
    assert _postgres_processes(pgdata) == [], "stopping the server must stop PostgreSQL"

    second = _start(tmp_path, port)
    try:
        _wait_ready(port, second)
        with psycopg.connect(f"postgresql://postgres@/namma?host={pgdata}") as conn:
            assert conn.execute("SELECT note FROM kept_across_restarts").fetchall() == [
                ("still here",)
            ]
            # The demo data loads once, however often the server starts.
            (admins,) = conn.execute(
                "SELECT count(*) FROM users WHERE email = 'admin@example.com'"
            ).fetchone()
            assert admins == 1
    finally:
        _stop(second)
    time.sleep(0.5)
    assert _postgres_processes(pgdata) == []
