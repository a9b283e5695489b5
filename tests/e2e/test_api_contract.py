"""The API against its own OpenAPI document (schemathesis), as every role, against a real
`namma serve` with the demo data.

One run does two things:
- fuzzing: whatever arrives, from any role, the answer is never a 5xx and the ledger stays
  consistent (``namma ledger check`` before and after);
- conformance: every answer has a status the document lists for that operation, a body that
  validates against its schema, the documented content type and headers — all of
  schemathesis' checks, for the Admin and the Manager (the two roles that reach every route's
  success path) and also for the Agent and the Customer.

Each operation is called as each role in three modes (valid input, invalid input, valid input
on demo records' ids); a role refused an operation (every call of the first mode a 403: the
permission is checked before any input is read) skips the other modes. Examples per operation,
role and mode: ``NAMMA_FUZZ_EXAMPLES`` (default 6; raise it locally for a deeper search). About
3 minutes of CPU, on 2 cores; it replaced a fuzz test of 2 minutes that checked only for 5xx.

A property test then sends every JSON write route a schema-valid body with one text field
replaced by any string — NUL, lone surrogates, text-direction overrides, a megabyte, Hypothesis'
own text (``NAMMA_FUZZ_TEXT_EXAMPLES`` per route and role, default 10): never a 5xx.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from namma.demo import DEMO_ADMIN_TOTP_SECRET, DEMO_PASSWORD

# Wall time depends on the machine's load (a few minutes on 2 shared cores): a generous timeout.
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
# Schema-valid input that breaks a business rule (a phone number's format, a date in the
# future, a product's limits) is a 422 naming the field (docs/api.md): valid by the schema is not
# the same as acceptable. The other defaults of `positive_data_acceptance` stay.
SCHEMATHESIS_CONFIG = {
    # The calls carry a real token (below): no generated Authorization header or cookie.
    "generation": {"with-security-parameters": False},
    "checks": {
        "positive_data_acceptance": {
            "expected-statuses": ["2xx", "401", "403", "404", "409", "422", "429"]
        },
    },
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


def _token(base: str, role: str, *, retry: bool = True) -> str:
    response = httpx.post(
        f"{base}/api/auth/login",
        json={"login": LOGINS[role], "password": DEMO_PASSWORD, "token_delivery": "body"},
        timeout=30,
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
            timeout=30,
        )
        body = response.json()
        if "access_token" not in body and retry:
            # A TOTP code is good once: the previous test may have used this window's.
            time.sleep(31 - time.time() % 30)
            return _token(base, role, retry=False)
    return str(body["access_token"])


def _real_ids(base: str, admin: dict[str, str]) -> dict[str, str]:
    """Ids of demo records, so that generated calls also reach existing rows (not only 404s)."""

    def first(path: str, key: str) -> dict[str, Any] | None:
        rows = httpx.get(f"{base}{path}", headers=admin, timeout=30).json()[key]
        return rows[0] if rows else None

    loans = httpx.get(f"{base}/api/loans", headers=admin, timeout=30).json()["loans"]
    active = next(loan for loan in loans if loan["status"] == "active")
    # Not the agent the run logs in as: the staff routes would end that agent's session (a
    # password reset, a deactivation), and every later call of the role would be a 401.
    agents = httpx.get(f"{base}/api/staff?role=agent", headers=admin, timeout=30).json()["staff"]
    agent = next(a for a in agents if a["email"] != LOGINS["agent"])
    ids = {
        "loan_id": active["id"],
        "customer_id": active["customer"]["id"],
        "user_id": agent["id"],
        "agent_id": agent["id"],
    }
    for name, path, key in (
        ("product_id", "/api/products", "products"),
        ("account_id", "/api/ledger/accounts", "accounts"),
        ("document_id", "/api/documents", "documents"),
        ("notification_id", "/api/notifications", "notifications"),
    ):
        row = first(path, key)
        if row is not None:
            ids[name] = row["id"]
    return ids


def _exercise(
    strategy: Any,
    *,
    base: str,
    role: str,
    auth: dict[str, str],
    session: requests.Session,
    errors: list[str],
    violations: dict[str, str],
    statuses: Counter[int],
    auth_enforced: set[str],
) -> int:
    """Send the strategy's examples as ``role``: record every 5xx and every answer that does not
    conform to the document. Returns the number of calls."""
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import ignored_auth

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
        response = case.call(base_url=base, session=session, headers=auth, timeout=30)
        statuses[response.status_code] += 1
        label = f"{role} {case.method} {case.path}"
        if response.status_code >= 500:
            errors.append(
                f"{role} {case.method} {case.formatted_path} "
                f"query={case.query} body={str(case.body)[:200]} -> "
                f"{response.status_code} {response.text[:200]}"
            )
        else:
            # `ignored_auth` calls again without credentials and with wrong ones: once per
            # operation is proof enough (schemathesis' own runner does the same).
            operation = f"{case.method} {case.path}"
            try:
                case.validate_response(
                    response,
                    headers=auth,
                    excluded_checks=[ignored_auth] if operation in auth_enforced else None,
                    transport_kwargs={
                        "base_url": base,
                        "session": session,
                        "headers": auth,
                        "timeout": 30,
                    },
                )
            except FailureGroup as failure:  # every failed check
                title = str(failure).strip().splitlines()[0]
                violations.setdefault(f"{label}: {title}", str(failure)[:1500])
            else:
                if 200 <= response.status_code < 300:
                    auth_enforced.add(operation)

    # Unsatisfiable: nothing to generate in this mode (e.g. no negative input for a bare GET).
    with contextlib.suppress(Unsatisfiable):
        run()
    return calls


def test_the_api_keeps_its_contract_and_never_errs(server) -> None:  # type: ignore[no-untyped-def]
    import schemathesis
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    base, log_path, database_url = server
    # The demo data is consistent with its ledger before the calls ...
    assert _ledger_check(database_url).returncode == 0
    headers = {role: {"Authorization": f"Bearer {_token(base, role)}"} for role in LOGINS}
    ids = _real_ids(base, headers["admin"])
    sessions = {role: requests.Session() for role in LOGINS}  # kept-alive connections
    schema = schemathesis.openapi.from_url(
        f"{base}/api/openapi.json", config=SchemathesisConfig.from_dict(SCHEMATHESIS_CONFIG)
    )
    errors: list[str] = []
    violations: dict[str, str] = {}
    statuses: Counter[int] = Counter()
    auth_enforced: set[str] = set()
    calls = operations = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        operations += 1
        path_ids = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
        modes: list[tuple[GenerationMode, dict[str, str] | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if path_ids:  # the same operation again, on demo records (not only unknown ids)
            modes.append((GenerationMode.POSITIVE, path_ids))
        for role, auth in headers.items():
            for mode, fixed in modes:
                denied = statuses[403]
                before = calls
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed)
                calls += _exercise(
                    strategy,
                    base=base,
                    role=role,
                    auth=auth,
                    session=sessions[role],
                    errors=errors,
                    violations=violations,
                    statuses=statuses,
                    auth_enforced=auth_enforced,
                )
                if calls > before and statuses[403] - denied == calls - before:
                    break  # the role may not call it: refused before any input is read

    print(f"{calls} calls; statuses: {dict(sorted(statuses.items()))}")  # shown on failure
    assert calls > 500, f"only {calls} calls were made"
    assert operations > 80, operations
    # The calls reached the application, not only its validation: some succeeded.
    assert sum(n for code, n in statuses.items() if 200 <= code < 300) > 50, dict(statuses)
    # ... and whatever the calls managed to change, still is.
    after = _ledger_check(database_url)
    assert after.returncode == 0, after.stdout + after.stderr
    assert not errors, (
        f"{len(errors)} server errors in {calls} calls:\n"
        + "\n".join(errors[:20])
        + f"\n(server log: {Path(log_path)})"
    )
    assert not violations, (
        f"{len(violations)} answers break the OpenAPI document:\n\n"
        + "\n\n".join(list(violations.values())[:15])
    )


# --- any text in any field of a write route -------------------------------------------------

TEXT_EXAMPLES = int(os.environ.get("NAMMA_FUZZ_TEXT_EXAMPLES", "10"))
WRITES = {"POST", "PUT", "PATCH"}
# What has broken servers: NUL (PostgreSQL refuses it), lone surrogates (JSON can carry them,
# UTF-8 cannot), text-direction overrides, escapes, other scripts' digits, a megabyte.
NASTY = [
    "\x00",
    "client\x00id",
    "\ud800",
    "x\udfffy",
    "\u202eevil\u202c",
    "\u2066isolate\u2069",
    "\x1b[31mred",
    "\x7f\x85\x9f",
    "\ufeffbom",
    "\uffff",
    "\r\n\t",
    "",
    " ",
    "१२३.००",
    "１２３",
    "'; DROP TABLE loans; --",
    "%(x)s {{7*7}} ${x}",
    "ಕನ್ನಡ",
    "😀" * 300,
    "x" * 1_000_000,
]


def _string_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Where ``value`` (a JSON body) holds text: dict keys and list indexes to each string."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return []


def _leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaf_paths(v, (*path, k))]
    if isinstance(value, list) and value:
        return [p for i, v in enumerate(value) for p in _leaf_paths(v, (*path, i))]
    return [path] if path else []


def _replaced(body: Any, path: tuple[Any, ...], text: str) -> Any:
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(body, dict):
        return {**body, head: _replaced(body[head], rest, text)}
    copy = list(body)
    copy[head] = _replaced(copy[head], rest, text)
    return copy


def test_any_text_in_any_field_of_a_write_route_is_never_a_server_error(server) -> None:  # type: ignore[no-untyped-def]
    """Property: for every JSON write route, a schema-valid body (generated from the document,
    on demo records' ids) with any one of its text fields — or, without text, any one of its
    values — replaced by any string (NUL, surrogates, text-direction overrides, 1 MB, or
    Hypothesis' own text) gets a 2xx or 4xx, never a 5xx; as the Admin (every route) and the
    Agent (the collection routes' usual caller)."""
    import schemathesis
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.config import SchemathesisConfig

    base, log_path, database_url = server
    headers = {
        role: {"Authorization": f"Bearer {_token(base, role)}"} for role in ("admin", "agent")
    }
    ids = _real_ids(base, headers["admin"])
    schema = schemathesis.openapi.from_url(
        f"{base}/api/openapi.json", config=SchemathesisConfig.from_dict(SCHEMATHESIS_CONFIG)
    )
    texts = st.one_of(st.sampled_from(NASTY), st.text(max_size=200))
    errors: list[str] = []
    statuses: Counter[int] = Counter()
    routes = 0
    http = httpx.Client(base_url=base, timeout=60)

    for result in schema.get_all_operations():
        operation = result.ok()
        method = operation.method.upper()
        if method not in WRITES or (method, operation.path) in SKIPPED:
            continue
        if operation.body is None or not any(
            body.media_type == "application/json" for body in operation.body
        ):
            continue
        routes += 1
        fixed = {p.name: ids[p.name] for p in operation.path_parameters if p.name in ids}
        roles = ("admin", "agent") if "collection" in operation.path else ("admin",)
        strategy = operation.as_strategy(
            generation_mode=GenerationMode.POSITIVE, path_parameters=fixed or None
        )

        def exercise(role: str, strategy: Any = strategy) -> None:
            @settings(
                max_examples=TEXT_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy, data=st.data())
            def run(case: Any, data: Any) -> None:
                body = case.body
                paths = _string_paths(body) or _leaf_paths(body)
                if paths:
                    path = data.draw(st.sampled_from(paths), label="field")
                    body = _replaced(body, path, data.draw(texts, label="text"))
                # json.dumps escapes a lone surrogate ("\ud800"), as a client's encoder may.
                response = http.request(
                    case.method.upper(),
                    case.formatted_path,
                    params=case.query,
                    content=json.dumps(body),
                    headers={
                        **headers[role],
                        "Content-Type": "application/json",
                        "Idempotency-Key": str(uuid.uuid4()),
                    },
                )
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    errors.append(
                        f"{role} {case.method.upper()} {case.formatted_path} "
                        f"body={json.dumps(body)[:300]} -> {response.status_code} "
                        f"{response.text[:200]}"
                    )

            with contextlib.suppress(Unsatisfiable):
                run()

        for role in roles:
            exercise(role)

    calls = sum(statuses.values())
    print(f"{routes} write routes, {calls} calls; statuses: {dict(sorted(statuses.items()))}")
    assert routes > 30, routes
    assert calls > routes * 5
    assert not errors, (
        f"{len(errors)} server errors in {calls} calls:\n"
        + "\n".join(errors[:20])
        + f"\n(server log: {Path(log_path)})"
    )
    after = _ledger_check(database_url)
    assert after.returncode == 0, after.stdout + after.stderr
