"""deploy/local-cluster's command line: its help, and what it refuses before touching anything.

Starting the cluster itself (apt-get, PostgreSQL, nginx) is not a unit test; see D-218.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "local-cluster"


def local_cluster(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_help_names_the_commands_and_the_defaults(tmp_path: Path) -> None:
    result = local_cluster("--help", state=tmp_path)
    assert result.returncode == 0
    for word in ("up", "down", "status", "NAMMA_CLUSTER_HTTP_PORT (8180)"):
        assert word in result.stdout
    up_help = local_cluster("up", "--help", state=tmp_path)
    for option in ("--demo", "--http-port", "--instances", "--workers", "--processes"):
        assert option in up_help.stdout


def test_bad_ports_and_sizes_are_refused_before_anything_starts(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for args, message in (
        (("--http-port", "80"), "http port 80 is not between 1024 and 65535"),
        (("--instances", "0"), "instances must be between 1 and 16"),
        (("--redis-port", "5433"), "two components would share a port"),
    ):
        result = local_cluster("up", *args, state=state)
        assert result.returncode == 1
        assert message in result.stderr
    assert not state.exists()


def test_status_and_down_without_a_cluster(tmp_path: Path) -> None:
    status = local_cluster("status", state=tmp_path / "none")
    assert status.returncode == 3
    assert "No cluster" in status.stdout
    down = local_cluster("down", state=tmp_path / "none")
    assert down.returncode == 0
