"""Two app instances behind nginx, a PostgreSQL primary with a streaming hot standby (the
instances' read replica), one Redis, two job workers (issue 21, point 3): what a person does
holds whichever instance answers.

- a session opened on one instance works on the other (the signing key is the deployment's, not
  the process's);
- an idempotency key claimed on one instance is honoured on the other (it lives in PostgreSQL);
- the failed-sign-in throttle counts attempts on both (its windows live in Redis);
- a dashboard one instance cached is dropped by a collection the other recorded (Redis), and
  its kept copy answered while a new one is built (D-221);
- an instance killed mid-request loses no money: the client's retry through nginx, with the same
  key, reaches the other instance and records the collection once;
- a job worker killed mid-job loses no job: the other worker's stalled-job recovery puts it back
  and runs it.

The processes are the real ones (`namma serve`, nginx and PostgreSQL from Debian's packages, the
job worker), on loopback ports; outside CI the module is skipped when nginx or PostgreSQL's server
binaries are not installed (`.ci/run` installs nginx).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from namma.demo import DEMO_PASSWORD
from namma.jobs import job_app
from namma.kit.cache import KEY_PREFIX, REFRESHING_PREFIX
from namma.kit.db import libpq_url
from namma.kit.embedded import create_database
from namma.kit.jobs import job_app_opened
from tests.conftest import IN_CI
from tests.e2e.support import free_port, request_held_at_loan_lock
from tests.integration.job_tasks import PROBE_TABLE_SQL  # (also registers the test tasks)
from tests.streaming_pair import StreamingPair, pg_bin

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# A Redis database of this module's own: the instances' cache, rate limits and throttle, flushed
# before the cluster starts so that no earlier test's windows count here.
REDIS_DB = 15


@dataclass
class Process:
    """A child process in its own process group, its output in a log file."""

    name: str
    command: list[str]
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}-{self.starts}.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(30)
            self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(30)
        self.process = None


@dataclass
class Cluster:
    pair: StreamingPair
    database_url: str
    redis_url: str
    instances: dict[str, str]  # name -> base URL
    nginx: str  # base URL through nginx
    processes: dict[str, Process] = field(default_factory=dict)


def _wait_ready(base: str, process: Process, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.alive(), process.log()
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{process.name} did not become ready:\n{process.log()}")


def _nginx_config(workdir: Path, port: int, upstreams: list[int]) -> Path:
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=30s;" for p in upstreams
    )
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 256; }}
http {{
    log_format upstream '$request $status $upstream_addr';
    access_log {workdir}/nginx-access.log upstream;
    client_body_temp_path {workdir}/client_body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    upstream namma {{
{servers}
        keepalive 8;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://namma;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            # A POST that reached an instance is never sent to another (nginx's default for
            # non-idempotent requests); one refused at connect was never sent and moves on.
            proxy_next_upstream error timeout;
            proxy_read_timeout 60s;
        }}
    }}
}}
"""
    )
    return config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not Path(NGINX).exists():
        if IN_CI:
            pytest.fail("CI must have nginx (.ci/run installs Debian's package)")
        pytest.skip("nginx is not installed (apt-get install nginx; CI installs it)")
    base_redis = os.environ.get("NAMMA_TEST_REDIS_URL")
    if not base_redis:
        if IN_CI:
            pytest.fail("CI must set NAMMA_TEST_REDIS_URL: Redis tests are never skipped in CI")
        pytest.skip("NAMMA_TEST_REDIS_URL not set (Redis tests run in CI)")
    redis_url = make_url(base_redis).set(database=str(REDIS_DB)).render_as_string(False)
    redis.Redis.from_url(redis_url).flushdb()

    bin_dir = pg_bin()
    if bin_dir is None:
        if IN_CI:
            pytest.fail("CI needs PostgreSQL's server binaries (postgresql-15) for the replica")
        pytest.skip("no PostgreSQL server binaries (postgresql-15) to start a streaming replica")
    workdir = tmp_path_factory.mktemp("two-instances")
    # The database on a primary with a streaming hot standby: lists, dashboards and reports
    # read the standby (D-219).
    pair = StreamingPair(bin_dir).start()
    try:
        create_database(pair.url(), "namma")
    except BaseException:
        pair.stop()
        raise
    url = pair.url(database="namma")
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env.update(
        NAMMA_DATABASE_URL=url,
        NAMMA_DATABASE_REPLICA_URL=pair.url(standby=True, database="namma"),
        NAMMA_REDIS_URL=redis_url,
        NAMMA_SERVER_PROCESSES="1",
        NAMMA_TRUSTED_PROXIES='["127.0.0.1"]',
        NAMMA_RATE_LIMIT_MONEY="100000/minute",
        NAMMA_LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO_ROOT),
    )
    ports = {"a": free_port(), "b": free_port()}
    cluster = Cluster(
        pair=pair,
        database_url=url,
        redis_url=redis_url,
        instances={k: f"http://127.0.0.1:{p}" for k, p in ports.items()},
        nginx="",
    )
    try:
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            conn.execute(PROBE_TABLE_SQL)  # the test job's record of its runs
        # Instance a loads the demo data before serving; b starts once it is there.
        for key, extra in (("a", ["--demo"]), ("b", [])):
            process = Process(
                f"instance-{key}",
                [
                    sys.executable,
                    "-m",
                    "namma",
                    "serve",
                    "--no-job-worker",
                    "--port",
                    str(ports[key]),
                    *extra,
                ],
                env,
                workdir,
            )
            cluster.processes[process.name] = process
            process.start()
            _wait_ready(cluster.instances[key], process)
        for key in ("1", "2"):  # the second starts in the worker test
            worker = Process(
                f"worker-{key}",
                [sys.executable, "-m", "tests.integration.job_worker_process", url],
                env,
                workdir,
            )
            cluster.processes[worker.name] = worker
        cluster.processes["worker-1"].start()
        nginx_port = free_port()
        config = _nginx_config(workdir, nginx_port, list(ports.values()))
        nginx = Process(
            "nginx",
            [NGINX, "-e", str(workdir / "nginx-error.log"), "-c", str(config), "-g", "daemon off;"],
            env,
            workdir,
        )
        cluster.processes["nginx"] = nginx
        nginx.start()
        cluster.nginx = f"http://127.0.0.1:{nginx_port}"
        _wait_ready(cluster.nginx, nginx, 30)
        yield cluster
    finally:
        for process in cluster.processes.values():
            process.stop()
        pair.stop()


def _login(base: str, login: str, *, delivery: str = "body") -> httpx.Response:
    return httpx.post(
        f"{base}/api/auth/login",
        json={"login": login, "password": DEMO_PASSWORD, "token_delivery": delivery},
        timeout=30,
    )


def _bearer(base: str, login: str) -> dict[str, str]:
    response = _login(base, login)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _active_loan(base: str, headers: dict[str, str]) -> str:
    loans = httpx.get(f"{base}/api/loans", headers=headers, timeout=30).json()["loans"]
    return str(next(loan["id"] for loan in loans if loan["status"] == "active"))


def _collect(base: str, headers: dict[str, str], body: dict[str, Any], key: str) -> httpx.Response:
    return httpx.post(
        f"{base}/api/collections",
        json=body,
        headers={**headers, "Idempotency-Key": key},
        timeout=60,
    )


def _collections_with(url: str, remarks: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT count(*) FROM collections WHERE remarks = %s", (remarks,)
        ).fetchone()
    return int(row[0]) if row else 0


def test_nginx_spreads_requests_over_both_instances(cluster: Cluster) -> None:
    for _ in range(6):
        assert httpx.get(f"{cluster.nginx}/ready", timeout=10).status_code == 200
    log = cluster.processes["nginx"].workdir / "nginx-access.log"
    upstreams = {line.split()[-1] for line in log.read_text().splitlines() if "/ready" in line}
    assert upstreams == {base.removeprefix("http://") for base in cluster.instances.values()}
    # Both instances read from the standby, which is streaming.
    for base in cluster.instances.values():
        replica = httpx.get(f"{base}/ready", timeout=10).json()["checks"]["replica"]
        assert replica["reads"] == "replica", replica


def test_a_session_opened_on_one_instance_works_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    headers = _bearer(a, "agent1@example.com")
    assert httpx.get(f"{b}/api/loans", headers=headers, timeout=30).status_code == 200
    # The browser's session: cookies set by a, a page served by b.
    opened = _login(a, "manager@example.com", delivery="cookie")
    assert opened.status_code == 200, opened.text
    page = httpx.get(f"{b}/manager", cookies=opened.cookies, timeout=30, follow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.headers.get("location"))
    assert "BLR01" in page.text


def test_an_idempotency_key_claimed_on_one_instance_holds_on_the_other(cluster: Cluster) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    headers = _bearer(a, "agent1@example.com")
    loan_id = _active_loan(a, headers)
    key = str(uuid.uuid4())
    body = {"loan_id": loan_id, "amount": "13.00", "remarks": f"two-instances {key}"}
    first = _collect(a, headers, body, key)
    assert first.status_code == 201, first.text
    again = _collect(b, headers, body, key)
    assert again.status_code == 201, again.text
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.content == first.content
    assert _collections_with(cluster.database_url, body["remarks"]) == 1


def test_the_failed_sign_in_throttle_counts_on_both_instances(cluster: Cluster) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    login = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    # Five consecutive failures of one login from one address, alternating instances ...
    for i in range(5):
        base = a if i % 2 == 0 else b
        response = httpx.post(
            f"{base}/api/auth/login",
            json={"login": login, "password": "wrong-password-1"},
            timeout=30,
        )
        assert response.status_code == 401, response.text
    # ... and the sixth waits, on whichever instance it reaches.
    for base in (a, b, cluster.nginx):
        refused = httpx.post(
            f"{base}/api/auth/login",
            json={"login": login, "password": "wrong-password-1"},
            timeout=30,
        )
        assert refused.status_code == 429, refused.text


def test_a_dashboard_cached_by_one_instance_is_dropped_by_a_write_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster.instances["a"], cluster.instances["b"]
    manager = _bearer(a, "manager@example.com")
    agent = _bearer(b, "agent1@example.com")

    def dashboard() -> dict[str, Any]:
        response = httpx.get(f"{a}/api/dashboard", headers=manager, timeout=60)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def collected(answer: dict[str, Any]) -> Decimal:
        return Decimal(answer["today"]["collected_amount"])

    # From a dashboard built after the earlier tests' writes (their kept copy may be answered
    # first), and with no rebuild just done: at most one per 30 s (D-221).
    def fresh_dashboard() -> dict[str, Any]:
        deadline = time.monotonic() + 30
        answer = dashboard()
        while answer["stale"] and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = dashboard()
        assert answer["stale"] is False
        return answer

    def refresh_marks_clear() -> None:
        marks = redis.Redis.from_url(cluster.redis_url)
        for mark in marks.scan_iter(f"{KEY_PREFIX}{REFRESHING_PREFIX}*"):
            marks.delete(mark)

    refresh_marks_clear()
    first = fresh_dashboard()
    refresh_marks_clear()
    before = collected(first)
    assert dashboard()["figures_at"] == first["figures_at"]  # kept in Redis by a
    loan_id = _active_loan(b, agent)
    key = str(uuid.uuid4())
    recorded = _collect(b, agent, {"loan_id": loan_id, "amount": "17.00", "remarks": key}, key)
    assert recorded.status_code == 201, recorded.text
    # The Manager has not written: the dashboard they had is answered at once, marked stale,
    # while a builds a new one on the standby — once it has replayed the collection
    # (milliseconds; D-219 on a rebuild in between) — for their next request (D-221).
    cluster.pair.caught_up()
    kept = dashboard()
    assert kept["stale"] is True and collected(kept) == before
    assert collected(fresh_dashboard()) == before + Decimal("17.00")


def test_an_instance_killed_mid_request_loses_no_money(cluster: Cluster) -> None:
    a = cluster.instances["a"]
    headers = _bearer(a, "agent1@example.com")
    loan_id = _active_loan(a, headers)
    key = str(uuid.uuid4())
    body = {"loan_id": loan_id, "amount": "19.00", "remarks": f"killed mid-request {key}"}
    outcome: dict[str, Any] = {}

    def send() -> None:
        try:
            outcome["response"] = _collect(a, headers, body, key)
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    # a's request waits at the loan's lock inside its transaction (key claimed, nothing
    # committed): kill instance a then.
    with request_held_at_loan_lock(cluster.database_url, loan_id, send) as sender:
        cluster.processes["instance-a"].kill()
        sender.join(30)
        assert not sender.is_alive()
        assert "response" not in outcome, outcome  # the client never got an answer

    assert _collections_with(cluster.database_url, body["remarks"]) == 0
    # The phone retries with the same key, through nginx: a is gone, b answers, once.
    retried = _collect(cluster.nginx, headers, body, key)
    assert retried.status_code == 201, retried.text
    assert retried.headers.get("idempotent-replayed") is None
    again = _collect(cluster.nginx, headers, body, key)
    assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
    assert again.content == retried.content
    assert _collections_with(cluster.database_url, body["remarks"]) == 1

    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    check = subprocess.run(
        [sys.executable, "-m", "namma", "ledger", "check"],
        env={**env, "NAMMA_DATABASE_URL": cluster.database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_worker_killed_mid_job_loses_nothing(cluster: Cluster) -> None:
    url = cluster.database_url
    first, second = cluster.processes["worker-1"], cluster.processes["worker-2"]
    assert first.alive() and not second.alive()  # the fixture starts only the first

    async def defer() -> None:
        async with job_app_opened(job_app, url, max_size=1):
            await job_app.tasks["test:slow_once"].defer_async(key="two-workers")

    asyncio.run(defer())

    def probe(sql: str) -> Any:
        with psycopg.connect(libpq_url(url)) as conn:
            row = conn.execute(sql).fetchone()
        return row[0] if row else None

    runs = "SELECT count(*) FROM job_probe WHERE key = 'two-workers'"
    deadline = time.monotonic() + 30
    while probe(runs) != 1:
        assert time.monotonic() < deadline, f"the worker never started the job:\n{first.log()}"
        time.sleep(0.1)
    # The first worker hangs in the job; a second one comes up, and the first is killed.
    second.start()
    first.kill()
    # The survivor's stalled-job recovery (every minute; a heartbeat older than 3 s is a dead
    # worker) puts the job back, and the survivor runs it to the end.
    left = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'test:slow_once'"
    deadline = time.monotonic() + 150
    while probe(left) != 0:
        assert second.alive(), second.log()
        assert time.monotonic() < deadline, f"the job was never run again:\n{second.log()}"
        time.sleep(0.5)
    assert probe(runs) == 2
