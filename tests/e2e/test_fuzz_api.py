"""Fuzzing the API from its own OpenAPI description (schemathesis), as every role, against a real
`namma serve` with the demo data: whatever arrives, the answer is never a 5xx."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from namma.demo import DEMO_ADMIN_TOTP_SECRET, DEMO_PASSWORD

# ~130 s alone on 2 cores; beside the other xdist worker and a busy machine it can pass 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

EXAMPLES_PER_MODE = int(os.environ.get("NAMMA_FUZZ_EXAMPLES", "6"))
# These end the caller's own session; fuzzing them would only turn later calls into 401s.
SKIPPED = {("POST", "/api/auth/logout"), ("POST", "/api/auth/password")}
LOGINS = {
    "admin": "admin@example.com",
    "manager": "manager@example.com",
    "agent": "agent1@example.com",
    "customer": "kamala@example.com",
}


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    import uuid

    from sqlalchemy.engine import make_url

    from namma.kit.embedded import create_database
    from tests.conftest import drop_at_session_end

    name = f"namma_fuzz_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server_url, name)
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env.update(
        NAMMA_DATABASE_URL=url,
        NAMMA_LOGIN_RATE_LIMIT="1000/minute",
        NAMMA_RATE_LIMIT_READS="100000/minute",
        NAMMA_RATE_LIMIT_WRITES="100000/minute",
        NAMMA_RATE_LIMIT_MONEY="100000/minute",
        NAMMA_LOG_LEVEL="WARNING",
    )
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "namma", "serve", "--demo", "--port", str(port), "--no-job-worker"],
        env=env,
        cwd=log_path.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log_path.read_text()
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    yield base, log_path, url
    process.send_signal(signal.SIGTERM)
    process.wait(30)
    log.close()
    drop_at_session_end(name)


def _ledger_check(database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    return subprocess.run(
        [sys.executable, "-m", "namma", "ledger", "check"],
        env={**env, "NAMMA_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _token(base: str, role: str) -> str:
    response = httpx.post(
        f"{base}/api/auth/login",
        json={"login": LOGINS[role], "password": DEMO_PASSWORD, "token_delivery": "body"},
    )
    body = response.json()
    if body["status"] == "totp_required":
        response = httpx.post(
            f"{base}/api/auth/login/totp",
            json={
                "challenge": body["challenge"],
                "code": pyotp.TOTP(DEMO_ADMIN_TOTP_SECRET).now(),
                "token_delivery": "body",
            },
        )
        body = response.json()
    return str(body["access_token"])


def _real_ids(base: str, admin: dict[str, str]) -> dict[str, str]:
    """Ids of demo records, so that fuzzed calls also reach existing rows (not only 404s)."""
    loans = httpx.get(f"{base}/api/loans", headers=admin).json()["loans"]
    active = next(loan for loan in loans if loan["status"] == "active")
    staff = httpx.get(f"{base}/api/staff?role=agent", headers=admin).json()["staff"]
    products = httpx.get(f"{base}/api/products", headers=admin).json()["products"]
    accounts = httpx.get(f"{base}/api/ledger/accounts", headers=admin).json()["accounts"]
    return {
        "loan_id": active["id"],
        "customer_id": active["customer"]["id"],
        "user_id": staff[0]["id"],
        "agent_id": staff[0]["id"],
        "product_id": products[0]["id"],
        "account_id": accounts[0]["id"],
    }


def _fuzz(
    strategy: Any,
    *,
    base: str,
    role: str,
    auth: dict[str, str],
    failures: list[str],
    statuses: Counter[int],
) -> int:
    """Send the strategy's examples as ``role``; record every 5xx. Returns the number of calls."""
    calls = 0

    @settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        nonlocal calls
        calls += 1
        response = case.call(base_url=base, headers=auth, timeout=30)
        statuses[response.status_code // 100 * 100] += 1
        if response.status_code >= 500:
            failures.append(
                f"{role} {case.method} {case.formatted_path} "
                f"query={case.query} body={str(case.body)[:200]} -> "
                f"{response.status_code} {response.text[:200]}"
            )

    # Unsatisfiable: nothing to generate in this mode (e.g. no negative input for a bare GET).
    with contextlib.suppress(Unsatisfiable):
        run()
    return calls


def test_no_input_from_any_role_causes_a_server_error(server) -> None:  # type: ignore[no-untyped-def]
    import schemathesis
    from schemathesis import GenerationMode

    base, log_path, database_url = server
    # The demo data is consistent with its ledger before the fuzzing ...
    assert _ledger_check(database_url).returncode == 0
    headers = {role: {"Authorization": f"Bearer {_token(base, role)}"} for role in LOGINS}
    ids = _real_ids(base, headers["admin"])
    schema = schemathesis.openapi.from_url(f"{base}/api/openapi.json")
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    calls = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        path_ids = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
        for role, auth in headers.items():
            for mode, fixed in (
                (GenerationMode.POSITIVE, None),
                (GenerationMode.NEGATIVE, None),
                (GenerationMode.POSITIVE, path_ids or None),
            ):
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
                calls += _fuzz(
                    strategy, base=base, role=role, auth=auth, failures=failures, statuses=statuses
                )

    assert calls > 500, f"only {calls} calls were made"
    # The fuzzing reached the application, not only its validation: some calls succeeded.
    assert statuses[200] > 50, dict(statuses)
    # ... and whatever the fuzzing managed to change, still is.
    after = _ledger_check(database_url)
    assert after.returncode == 0, after.stdout + after.stderr
    assert not failures, (
        f"{len(failures)} server errors in {calls} calls:\n"
        + "\n".join(failures[:20])
        + f"\n(server log: {Path(log_path)})"
    )
