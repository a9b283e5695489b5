"""Idempotency across a crash: a real `namma serve` is SIGKILLed and restarted on the same
database, and the retried collection has exactly one effect and the first answer's body.

Two crashes (issue 6, acceptance "idempotency"):

1. *Between attempts*: the collection succeeded, the server dies before the client saw it (or
   the client simply retries later); after the restart the same key returns the stored body
   byte for byte (``Idempotent-Replayed: true``) and nothing is recorded twice.
2. *Mid-request*: this test holds the loan's row lock from its own connection, so the request
   is stuck inside its transaction (idempotency key claimed, not committed) — we see it waiting
   in ``pg_stat_activity`` — and then the server's process group is SIGKILLed. PostgreSQL rolls
   the orphaned transaction back; after the restart the retry records the collection once, and
   a further retry replays that answer.

The ledger check (`namma ledger check`) passes at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from namma.demo import DEMO_PASSWORD
from namma.kit.embedded import create_database
from tests.conftest import drop_at_session_end
from tests.e2e.support import request_held_at_loan_lock

pytestmark = pytest.mark.slow
SERVE = [sys.executable, "-m", "namma", "serve", "--demo", "--no-job-worker"]


class Server:
    """`namma serve --demo` on a database; `kill()` SIGKILLs its process group, `start()`
    starts it again (on a fresh port) against the same database."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.base = ""
        self.starts = 0

    def start(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
        env.update(
            NAMMA_DATABASE_URL=self.url,
            NAMMA_LOGIN_RATE_LIMIT="1000/minute",
            NAMMA_RATE_LIMIT_MONEY="100000/minute",
            NAMMA_LOG_LEVEL="WARNING",
        )
        self.starts += 1
        log = (self.workdir / f"server-{self.starts}.log").open("w")
        self.process = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() reaches any child too
        )
        log.close()
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if httpx.get(f"{self.base}/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return (self.workdir / f"server-{self.starts}.log").read_text()

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(30)
            self.process = None


@pytest.fixture
def server(postgres_server_url: str, tmp_path: Path) -> Iterator[Server]:
    name = f"namma_restart_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server_url, name)
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    srv = Server(url, tmp_path)
    try:
        srv.start()
        yield srv
    finally:
        if srv.process is not None:
            srv.kill()
        drop_at_session_end(name)


def _agent(base: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/api/auth/login",
        json={"login": "agent1@example.com", "password": DEMO_PASSWORD, "token_delivery": "body"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _post(base: str, headers: dict[str, str], body: dict[str, Any], key: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/collections",
        json=body,
        headers={**headers, "Idempotency-Key": key},
        timeout=60,
    )


def _with_remarks(base: str, headers: dict[str, str], loan_id: str, remarks: str) -> list[Any]:
    listed = httpx.get(
        f"{base}/api/collections",
        params={"loan_id": loan_id, "limit": 200},
        headers=headers,
    )
    assert listed.status_code == 200, listed.text
    return [c for c in listed.json()["collections"] if c["remarks"] == remarks]


def test_a_collection_survives_a_kill_between_attempts_and_mid_request(server: Server) -> None:
    agent = _agent(server.base)
    loans = httpx.get(f"{server.base}/api/loans", headers=agent).json()["loans"]
    loan_id = next(loan["id"] for loan in loans if loan["status"] == "active")

    # 1. Between attempts: the first answer is stored with the collection; a retry after the
    #    crash and restart gets it again, byte for byte.
    key1 = str(uuid.uuid4())
    body1 = {"loan_id": loan_id, "amount": "11.00", "remarks": f"restart-1 {key1}"}
    first = _post(server.base, agent, body1, key1)
    assert first.status_code == 201, first.text
    server.kill()
    server.start()
    agent = _agent(server.base)
    replay = _post(server.base, agent, body1, key1)
    assert replay.status_code == 201, replay.text
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.content == first.content
    assert len(_with_remarks(server.base, agent, loan_id, body1["remarks"])) == 1

    # 2. Mid-request: hold the loan's row lock so that the request waits inside its transaction.
    key2 = str(uuid.uuid4())
    body2 = {"loan_id": loan_id, "amount": "12.00", "remarks": f"restart-2 {key2}"}
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["response"] = _post(server.base, agent, body2, key2)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    with request_held_at_loan_lock(server.url, loan_id, send) as sender:
        # The request has claimed its key and is inside its transaction: crash now.
        server.kill()
        sender.join(30)
        assert not sender.is_alive()
        assert "response" not in outcome, outcome  # the client never got an answer

    server.start()
    agent = _agent(server.base)
    # Nothing of the killed request survived: the key is free, the retry records it once.
    assert _with_remarks(server.base, agent, loan_id, body2["remarks"]) == []
    retried = _post(server.base, agent, body2, key2)
    assert retried.status_code == 201, retried.text
    assert retried.headers.get("idempotent-replayed") is None
    again = _post(server.base, agent, body2, key2)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.content == retried.content
    assert len(_with_remarks(server.base, agent, loan_id, body2["remarks"])) == 1
    # Both keys, once more, after everything: still one collection each.
    assert _post(server.base, agent, body1, key1).content == first.content
    assert len(_with_remarks(server.base, agent, loan_id, body1["remarks"])) == 1

    check = subprocess.run(
        [sys.executable, "-m", "namma", "ledger", "check"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")},
            "NAMMA_DATABASE_URL": server.url,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
