"""Hardening checked against real `namma serve` processes: security headers and login
throttling over HTTP, the plain-HTTP warning, the API reference in Chromium under the
Content-Security-Policy, a closed terminal (SIGHUP) stopping the embedded PostgreSQL, and the
check commands finding (or plainly not finding) the project's database."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from namma.demo import DEMO_PASSWORD
from namma.kit.embedded import create_database, drop_database
from namma.kit.security_headers import CONTENT_SECURITY_POLICY
from tests.conftest import _with_database
from tests.e2e.support import CHROMIUM, CHROMIUM_FLAGS, IN_CI
from tests.e2e.test_serve_embedded import _free_port, _postgres_processes, _wait_ready

pytestmark = pytest.mark.slow
SERVE = [sys.executable, "-m", "namma", "serve"]
CONCURRENCY = 6  # the module's server: connections it takes at once (one process)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env.update(extra)
    return env


class Server:
    def __init__(self, process: subprocess.Popen[str], base: str) -> None:
        self.process = process
        self.base = base
        self.output = ""

    def stop(self) -> str:
        self.process.send_signal(signal.SIGTERM)
        out, _ = self.process.communicate(timeout=30)
        self.output = out or ""
        return self.output


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`namma serve --demo` on every address (0.0.0.0), plain HTTP, trusting the local proxy
    (so tests can name client addresses in X-Forwarded-For)."""
    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    port = _free_port()
    env = _clean_env(
        NAMMA_DATABASE_URL=_with_database(postgres_server_url, name),
        NAMMA_TRUSTED_PROXIES='["127.0.0.1"]',
        NAMMA_SERVER_CONCURRENCY=str(CONCURRENCY),
    )
    process = subprocess.Popen(
        [*SERVE, "--demo", "--host", "0.0.0.0", "--port", str(port), "--no-job-worker"],
        env=env,
        cwd=tmp_path_factory.mktemp("serve"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    srv = Server(process, f"http://127.0.0.1:{port}")
    try:
        _wait_ready(port, process)
        yield srv
    finally:
        if process.poll() is None:
            srv.stop()
        drop_database(postgres_server_url, name)


def _login(base: str, login: str, password: str, address: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/auth/login",
        json={"login": login, "password": password, "token_delivery": "body"},
        headers={"X-Forwarded-For": address},
        timeout=30,
    )


def _address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def test_security_headers_over_http(server: Server) -> None:
    token = _login(server.base, "manager@example.com", DEMO_PASSWORD, _address()).json()
    bearer = {"Authorization": f"Bearer {token['access_token']}"}
    checked = {
        "/login": httpx.get(f"{server.base}/login"),
        "/api/auth/me": httpx.get(f"{server.base}/api/auth/me", headers=bearer),
        "/api/auth/me (401)": httpx.get(f"{server.base}/api/auth/me"),
        "/static/app.css": httpx.get(f"{server.base}/static/app.css"),
        "/api/docs": httpx.get(f"{server.base}/api/docs"),
    }
    for name, response in checked.items():
        assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, name
        assert response.headers["x-frame-options"] == "DENY", name
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["referrer-policy"] == "same-origin", name
        assert "strict-transport-security" not in response.headers, name
    assert checked["/api/auth/me"].status_code == 200
    assert checked["/api/auth/me"].headers["cache-control"] == "no-store"
    assert checked["/login"].headers["cache-control"] == "no-store"
    assert "no-store" not in checked["/static/app.css"].headers.get("cache-control", "")
    # Behind the trusted TLS proxy: HSTS.
    proxied = httpx.get(f"{server.base}/health", headers={"X-Forwarded-Proto": "https"})
    assert proxied.headers["strict-transport-security"] == "max-age=31536000"


def test_login_throttling_over_http(server: Server) -> None:
    office, elsewhere = _address(), _address()
    for _ in range(5):
        wrong = _login(server.base, "agent1@example.com", "not the password at all", office)
        assert wrong.status_code == 401
    refused = _login(server.base, "agent1@example.com", DEMO_PASSWORD, office)
    assert refused.status_code == 429
    wait = int(refused.headers["Retry-After"])
    assert wait >= 1 and refused.json()["error"]["details"]["retry_after_seconds"] == wait
    # A colleague at the same office, and the owner elsewhere, sign in at once; successes are
    # never counted, however many.
    for _ in range(12):
        assert _login(server.base, "agent2@example.com", DEMO_PASSWORD, office).status_code == 200
    assert _login(server.base, "agent1@example.com", DEMO_PASSWORD, elsewhere).status_code == 200


def test_a_process_past_its_bound_answers_503_at_once_and_recovers(server: Server) -> None:
    """NAMMA_SERVER_CONCURRENCY (D-206): with as many requests in progress as the bound (each
    waiting for the rest of its body), another is refused with 503 and Retry-After straight
    away, not queued, while /health still answers; once they end, requests are served. Idle
    keep-alive connections do not count."""
    port = int(server.base.rsplit(":", 1)[1])
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONCURRENCY * 2)]
    with httpx.Client(base_url=server.base, timeout=10) as client:
        assert client.get("/login").status_code == 200  # idle connections are not requests
    held = []
    for _ in range(CONCURRENCY):
        connection = socket.create_connection(("127.0.0.1", port))
        connection.sendall(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        held.append(connection)
    try:
        time.sleep(0.3)  # the server is in each request, waiting for its body
        started = time.monotonic()
        refused = httpx.get(f"{server.base}/login", timeout=10)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["code"] == "busy"
        assert time.monotonic() - started < 1.0
        assert httpx.get(f"{server.base}/health", timeout=10).status_code == 200
    finally:
        for connection in held + idle:
            connection.close()
    deadline = time.monotonic() + 5
    while (answer := httpx.get(f"{server.base}/login", timeout=10)).status_code == 503:
        assert time.monotonic() < deadline, "still refusing after the requests ended"
        time.sleep(0.1)
    assert answer.status_code == 200


def test_serve_warns_when_sign_in_cannot_work_over_plain_http(server: Server) -> None:
    # Last in this module: it stops the server to read its output.
    output = server.stop()
    assert "listening on 0.0.0.0 over plain HTTP" in output, output
    assert "signing in will fail" in output


def test_the_api_reference_runs_in_chromium_under_the_csp(
    postgres_server_url: str, tmp_path: Path
) -> None:
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("CI must have Debian's chromium at /usr/bin/chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "namma", "serve", "--demo", "--port", str(port), "--no-job-worker"],
        env=_clean_env(NAMMA_DATABASE_URL=_with_database(postgres_server_url, name)),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(port, process)  # type: ignore[arg-type]
        access = _login(base, "manager@example.com", DEMO_PASSWORD, "-").json()["access_token"]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
            page = browser.new_page()
            violations: list[str] = []
            page.on(
                "console",
                lambda m: (
                    violations.append(m.text)
                    if "Content Security Policy" in m.text or "Refused to" in m.text
                    else None
                ),
            )
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith(base) else None,
            )
            page.goto(f"{base}/api/docs")
            page.wait_for_selector(".opblock-summary", timeout=30_000)
            # Authorize with a Bearer token, then call GET /api/auth/me from the page.
            page.click(".auth-wrapper button.authorize")
            bearer = page.locator(".auth-container").filter(has_text="bearer").first
            bearer.locator("input").fill(access)
            bearer.locator("button.authorize").click()
            bearer.locator("button.btn-done").click()
            operation = page.locator("#operations-auth-me_api_auth_me_get")
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            operation.locator("button.execute").click()
            status = operation.locator(".live-responses-table tr.response .response-col_status")
            status.wait_for()
            assert (status.text_content() or "").strip() == "200"
            assert "manager@example.com" in operation.locator(".live-responses-table").inner_text()
            browser.close()
        assert violations == []
        assert outside == []
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        drop_database(postgres_server_url, name)


@contextlib.contextmanager
def _in_a_terminal(
    command: list[str], cwd: Path, env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], int, list[bytes]]]:
    """Run ``command`` as the session leader of a new pseudo-terminal (like a shell's window);
    its output is drained into the list. Closing the returned master fd hangs the terminal up."""
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        import fcntl
        import termios

        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    chunks: list[bytes] = []
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    return
                if not data:
                    return
                chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        yield process, master, chunks
    finally:
        stop.set()
        reader.join(5)
        with contextlib.suppress(OSError):
            os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait(10)


def _namma(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "namma", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_closing_the_terminal_stops_the_embedded_database_and_checks_attach(
    tmp_path: Path,
) -> None:
    pgdata = (tmp_path / "var" / "pgdata").resolve()
    port = _free_port()
    env = _clean_env()
    command = [sys.executable, "-m", "namma", "serve", "--port", str(port), "--no-job-worker"]
    with _in_a_terminal(command, tmp_path, env) as (process, master, chunks):
        _wait_ready(port, process)  # type: ignore[arg-type]
        assert _postgres_processes(pgdata)

        # The checks, run from a sub-folder of the project while the server runs, find the
        # project's database and attach to the running PostgreSQL (never "Starting" it).
        docs = tmp_path / "docs"
        docs.mkdir()
        for check in (("ledger", "check"), ("audit", "verify")):
            result = _namma(*check, cwd=docs, env=env)
            assert result.returncode == 0, result.stdout + result.stderr
            assert "Starting" not in result.stderr
            assert f"Using the project's database in {tmp_path / 'var'}" in result.stderr
            assert "Using the embedded PostgreSQL running in" in result.stderr
            assert "OK" in result.stdout
        assert not (docs / "var").exists()

        # The terminal window closes: the server stops, and so does its PostgreSQL.
        os.close(master)
        process.wait(60)
        deadline = time.monotonic() + 10
        while _postgres_processes(pgdata) and time.monotonic() < deadline:
            time.sleep(0.25)
        assert _postgres_processes(pgdata) == [], b"".join(chunks).decode(errors="replace")


def test_checks_outside_the_project_say_plainly_what_is_missing(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = _clean_env(NAMMA_DATA_DIR=str(elsewhere / "var"))
    for check in (("ledger", "check"), ("audit", "verify"), ("jobs", "failed")):
        result = _namma(*check, cwd=elsewhere, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert "No database found" in result.stderr and "NAMMA_DATA_DIR" in result.stderr
        assert "Starting" not in result.stderr
    assert list(elsewhere.iterdir()) == [], "no empty database may be created"
