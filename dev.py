#!/usr/bin/env python3
"""Development entry point: needs nothing but Python 3.11+.

    python3 dev.py run     # the application on the embedded PostgreSQL, with demo data
    python3 dev.py test    # the whole test suite on every core (extra arguments go to pytest)
    python3 dev.py test --fast   # the unit tests only, in seconds
    python3 dev.py check   # ruff, mypy, the import layers (lint-imports)

The first call creates .venv/ and installs the pinned dependencies (requirements.lock); later
calls reinstall only when pyproject.toml or requirements.lock changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".namma-installed"


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "requirements.lock"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    if not (BIN / "python").exists():
        print("Creating .venv …", file=sys.stderr)
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    print("Installing dependencies into .venv (pinned by requirements.lock) …", file=sys.stderr)
    subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "requirements.lock"),
            "-e",
            f"{ROOT}[dev]",
        ],
        check=True,
    )
    STAMP.write_text(_fingerprint())


# Workers for the suite: one per core, at least 2 (a worker also waits on PostgreSQL and on the
# servers it starts), at most 8 (each has its own database and Redis database; Redis has 16).
TEST_WORKERS = max(2, min(os.cpu_count() or 2, 8))


def pytest_command(args: list[str]) -> list[str]:
    """``dev.py test [--fast] [pytest arguments]`` as a pytest command line."""
    if "--fast" in args:
        # The money core and other pure code: no database, no server, few hypothesis examples.
        os.environ.setdefault("HYPOTHESIS_PROFILE", "fast")
        rest = [arg for arg in args if arg != "--fast"]
        return ["pytest", "-p", "no:xdist", "tests/unit", *rest]
    chosen = any(
        arg in ("-n", "--numprocesses", "no:xdist") or arg.startswith(("-n", "--numprocesses="))
        for arg in args
    )
    workers = [] if chosen else ["-n", str(TEST_WORKERS), "--dist", "loadgroup"]
    return ["pytest", *workers, *args]


def run(*command: str) -> int:
    return subprocess.run([str(BIN / command[0]), *command[1:]], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "check"):
        print(__doc__)
        return 2
    ensure_environment()
    action, rest = argv[0], argv[1:]
    if action in ("run", "test"):
        # Become the server / pytest, so signals (Ctrl+C, SIGTERM) reach it directly.
        command = ["namma", "serve", "--demo", *rest] if action == "run" else pytest_command(rest)
        os.chdir(ROOT)
        os.execv(BIN / command[0], command)
    status = 0
    for command in (
        ("ruff", "check", "src", "tests", "bench", "dev.py", "deploy/local-cluster"),
        ("ruff", "format", "--check", "src", "tests", "bench", "dev.py", "deploy/local-cluster"),
        ("mypy",),
        ("mypy", "--strict", "--scripts-are-modules", "deploy/local-cluster"),
        ("lint-imports",),  # the layers and no cycles: [tool.importlinter] in pyproject.toml
    ):
        print("$", " ".join(command), flush=True)
        status |= run(*command)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
