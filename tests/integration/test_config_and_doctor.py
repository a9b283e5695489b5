"""Settings refuse unsafe production configurations; `namma doctor` names problems plainly."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from namma.config import DEFAULT_SECRET_KEY, Settings, SettingsError


def test_development_defaults_use_the_embedded_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(_env_file=None, data_dir=tmp_path)
    assert settings.uses_embedded_database
    assert settings.runs_inprocess_worker
    assert not settings.logs_as_json


def test_production_refuses_default_secret_and_missing_database() -> None:
    with pytest.raises(SettingsError) as refused:
        Settings(_env_file=None, env="production")
    message = str(refused.value)
    assert "NAMMA_SECRET_KEY is the development default" in message
    assert "NAMMA_DATABASE_URL is not set" in message


def test_production_refuses_a_short_secret() -> None:
    with pytest.raises(SettingsError, match="at least 32 characters"):
        Settings(
            _env_file=None, env="production", secret_key="short", database_url="postgresql://db/x"
        )


def test_a_replica_needs_a_server_and_a_postgresql_url() -> None:
    with pytest.raises(SettingsError, match="NAMMA_DATABASE_REPLICA_URL needs NAMMA_DATABASE_URL"):
        Settings(_env_file=None, database_replica_url="postgresql://replica/x")
    with pytest.raises(SettingsError, match="must be a PostgreSQL URL, not 'mysql'"):
        Settings(
            _env_file=None,
            database_url="postgresql://db/x",
            database_replica_url="mysql://replica/x",
        )
    settings = Settings(
        _env_file=None, database_url="postgresql://db/x", database_replica_url="postgresql://r/x"
    )
    assert settings.replica_max_lag_seconds == 5.0
    assert settings.replica_sticky_seconds == 5


def test_production_accepts_explicit_settings() -> None:
    settings = Settings(
        _env_file=None,
        env="production",
        secret_key="x" * 40,
        database_url="postgresql://namma@db.internal/namma",
    )
    assert settings.logs_as_json
    assert not settings.runs_inprocess_worker
    assert settings.secret_key.get_secret_value() != DEFAULT_SECRET_KEY


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NAMMA_PORT", "9001")
    monkeypatch.setenv("NAMMA_REDIS_URL", "redis://cache:6379/2")
    settings = Settings(_env_file=None)
    assert settings.port == 9001
    assert settings.redis_url == "redis://cache:6379/2"


def test_a_transaction_pooler_needs_a_direct_url_for_sessions() -> None:
    # Workers LISTEN and migrations hold advisory locks: neither passes a transaction pooler.
    with pytest.raises(SettingsError, match="needs NAMMA_DATABASE_DIRECT_URL"):
        Settings(
            _env_file=None,
            database_url="postgresql://namma@pooler:6432/namma",
            database_pooler="transaction",
        )
    with pytest.raises(SettingsError, match="needs NAMMA_DATABASE_URL"):
        Settings(_env_file=None, database_pooler="transaction")
    with pytest.raises(SettingsError, match="without NAMMA_DATABASE_URL"):
        Settings(_env_file=None, database_direct_url="postgresql://namma@db:5432/namma")
    with pytest.raises(SettingsError, match="NAMMA_INPROCESS_WORKER=true"):
        Settings(
            _env_file=None,
            database_url="postgresql://namma@pooler:6432/namma",
            database_direct_url="postgresql://namma@db:5432/namma",
            database_pooler="transaction",
            inprocess_worker=True,
        )
    settings = Settings(
        _env_file=None,
        database_url="postgresql://namma@pooler:6432/namma",
        database_direct_url="postgresql://namma@db:5432/namma",
        database_pooler="transaction",
    )
    assert settings.behind_transaction_pooler
    assert settings.session_database_url == "postgresql://namma@db:5432/namma"
    assert Settings(_env_file=None, database_url="postgresql://db/x").session_database_url == (
        "postgresql://db/x"
    )


def test_connections_through_a_pooler_prepare_nothing_and_send_no_options() -> None:
    from namma.kit.db import SESSION_OPTIONS, connect_arguments

    assert connect_arguments(pooled=False) == {"options": SESSION_OPTIONS}
    assert connect_arguments(pooled=True) == {"prepare_threshold": None}


def namma(
    *args: str, env: dict[str, str], cwd: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    return subprocess.run(
        [sys.executable, "-m", "namma", *args],
        input=stdin,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def test_serve_in_production_with_defaults_exits_with_a_plain_message() -> None:
    result = namma("serve", env={"NAMMA_ENV": "production"})
    assert result.returncode == 2
    assert "Configuration error" in result.stderr
    assert "NAMMA_SECRET_KEY is the development default" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_doctor_names_an_unreachable_database_and_redis() -> None:
    result = namma(
        "doctor",
        env={
            "NAMMA_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere",
            "NAMMA_REDIS_URL": "redis://127.0.0.1:1/0",
        },
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert (
        "FAIL  database: no PostgreSQL answers at postgresql://postgres@127.0.0.1:1/nowhere"
        in output
    )
    assert "FAIL  redis: no Redis answers at redis://127.0.0.1:1/0" in output
    assert "2 problem(s) found." in output
    assert "Traceback" not in output


def test_doctor_names_a_missing_database(postgres_server_url: str) -> None:
    from sqlalchemy.engine import make_url

    url = make_url(postgres_server_url).set(database="namma_no_such_db").render_as_string(False)
    result = namma("doctor", env={"NAMMA_DATABASE_URL": url})
    assert result.returncode == 1
    assert "does not exist" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_rejects_a_non_postgresql_url() -> None:
    result = namma("doctor", env={"NAMMA_DATABASE_URL": "sqlite:///namma.db"})
    assert result.returncode == 1
    assert "not a usable PostgreSQL URL" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_doctor_reports_unapplied_migrations(empty_database_url: str) -> None:
    result = namma("doctor", env={"NAMMA_DATABASE_URL": empty_database_url})
    assert result.returncode == 1
    assert "the database is empty: run `namma migrate`" in result.stdout


def test_doctor_passes_on_a_good_configuration(database_url: str) -> None:
    env = {"NAMMA_DATABASE_URL": database_url}
    redis_url = os.environ.get("NAMMA_TEST_REDIS_URL")
    if redis_url:
        env["NAMMA_REDIS_URL"] = redis_url
    result = namma("doctor", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    database: PostgreSQL" in result.stdout
    assert "ok    migrations: at head" in result.stdout
    assert "No problems found." in result.stdout


def test_migrate_and_create_admin(empty_database_url: str) -> None:
    env = {"NAMMA_DATABASE_URL": empty_database_url}
    migrated = namma("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "Database at revision" in migrated.stdout

    def create_admin(email: str, password: str) -> subprocess.CompletedProcess[str]:
        return namma(
            "create-admin", "--email", email, "--password-stdin", env=env, stdin=password + "\n"
        )

    weak = create_admin("Head@Example.com", "short")
    assert weak.returncode == 2
    assert "Password must be at least 12 characters" in weak.stderr

    created = create_admin("Head@Example.com", "a long enough passphrase")
    assert created.returncode == 0, created.stderr
    assert "Admin head@example.com created." in created.stdout

    again = create_admin("head@example.com", "a long enough passphrase")
    assert again.returncode == 2
    assert "already exists" in again.stderr


def test_help_texts_describe_every_command() -> None:
    result = namma("--help", env={})
    assert result.returncode == 0
    for command in ("serve", "worker", "migrate", "doctor", "create-admin", "jobs", "schedule"):
        assert command in result.stdout
    serve_help = namma("serve", "--help", env={"COLUMNS": "200"})
    for option in ("--host", "--port", "--demo", "--workers", "--no-job-worker"):
        assert option in serve_help.stdout
    # The defaults are in the help (brackets would be eaten as rich markup).
    for default in ("NAMMA_SERVER_PROCESSES", "one per CPU core (at most 4)", "NAMMA_PORT or 8000"):
        assert default in serve_help.stdout, serve_help.stdout
    worker_help = namma("worker", "--help", env={"COLUMNS": "200"})
    assert "(default: NAMMA_WORKER_CONCURRENCY, 2)" in worker_help.stdout, worker_help.stdout


def test_server_processes_and_worker_concurrency_are_chosen_for_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One server process per core (at most 4) once the processes share their state (an
    external database and Redis), else one; the job worker runs 2 jobs at once."""
    from namma import config
    from namma.cli import processes_warning

    assert config.cpu_cores() >= 1
    for name in ("DATABASE_URL", "REDIS_URL", "SERVER_PROCESSES", "WORKER_CONCURRENCY"):
        monkeypatch.delenv(f"NAMMA_{name}", raising=False)
    monkeypatch.setattr(config, "cpu_cores", lambda: 2)
    shared = {"database_url": "postgresql://namma@db/namma", "redis_url": "redis://cache/0"}
    assert Settings(_env_file=None, **shared).server_processes_default == 2
    assert Settings(_env_file=None).server_processes_default == 1  # the embedded database
    no_redis = Settings(_env_file=None, database_url=shared["database_url"])
    assert no_redis.server_processes_default == 1
    assert Settings(_env_file=None, server_processes=3).server_processes_default == 3
    monkeypatch.setattr(config, "cpu_cores", lambda: 16)
    assert (
        Settings(_env_file=None, **shared).server_processes_default == config.SERVER_PROCESSES_MAX
    )
    monkeypatch.setenv("NAMMA_SERVER_PROCESSES", "5")
    assert Settings(_env_file=None, **shared).server_processes_default == 5
    assert Settings(_env_file=None).worker_concurrency == 2
    # Several processes without Redis: each would keep its own cache; said at start.
    assert processes_warning(2, no_redis) is not None
    assert processes_warning(1, no_redis) is None
    assert processes_warning(2, Settings(_env_file=None, **shared)) is None


@pytest.mark.parametrize(
    ("env", "api_docs", "served"),
    [("development", None, True), ("production", None, False), ("production", True, True)],
)
async def test_the_api_reference_is_not_public_in_production_unless_asked(
    env: str, api_docs: bool | None, served: bool
) -> None:
    import httpx

    from namma.app import create_app

    settings = Settings(
        _env_file=None,
        env=env,  # type: ignore[arg-type]
        secret_key="x" * 40,
        database_url="postgresql://namma@db.internal/namma",
        api_docs=api_docs,
    )
    app = create_app(settings)  # not started: the two routes need no database
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        schema = await client.get("/api/openapi.json")
        page = await client.get("/api/docs")
    assert (schema.status_code, page.status_code) == ((200, 200) if served else (404, 404))
    if served:
        assert "/api/collections" in schema.json()["paths"]
