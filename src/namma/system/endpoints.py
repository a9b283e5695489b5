"""Operational endpoints: liveness, readiness, metrics."""

from __future__ import annotations

import hmac
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from namma import __version__
from namma.kit.errors import AuthenticationError, NotFoundError
from namma.kit.migrations import migration_state
from namma.kit.replica import replica_measure
from namma.system.schemas import HealthOut, ReadyCheck, ReadyOut

router = APIRouter(tags=["system"])


@router.get("/health")
async def health() -> HealthOut:
    """The process is up and serving requests (it checks nothing else)."""
    return HealthOut(status="ok", version=__version__)


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Something it depends on does not answer"}},
)
async def ready(request: Request) -> JSONResponse:
    """Everything the application depends on answers: database, migrations, Redis, job engine;
    and, when one is configured, the replica's lag and where reads go (not counted)."""
    state = request.app.state
    checks: dict[str, dict[str, Any]] = {}

    try:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}

    if checks["database"]["ok"]:
        try:
            migrations = await anyio.to_thread.run_sync(migration_state, state.db.url)
            checks["migrations"] = {
                "ok": migrations.up_to_date,
                "current": list(migrations.current),
                "head": list(migrations.head),
            }
        except Exception as exc:
            checks["migrations"] = {"ok": False, "error": type(exc).__name__}
    else:
        checks["migrations"] = {"ok": False, "error": "database unreachable"}

    try:
        await state.cache.ping()
        checks["cache"] = {"ok": True, "backend": state.cache.backend}
    except Exception as exc:
        checks["cache"] = {"ok": False, "backend": state.cache.backend, "error": type(exc).__name__}

    try:
        await state.job_app.job_manager.check_connection_async()
        checks["jobs"] = {"ok": True}
    except Exception as exc:
        checks["jobs"] = {"ok": False, "error": type(exc).__name__}

    ok = all(check["ok"] for check in checks.values())
    router = getattr(state, "replica", None)
    if router is not None:
        # Shown, never counted: without the replica every read goes to the primary, so an
        # instance is as ready as it was (taking every instance out of the load balancer for a
        # replica's trouble would turn a slower primary into an outage). Measured now.
        measured = await replica_measure(router.db, max_lag=router.max_lag_seconds)
        checks["replica"] = measured.as_check(router.max_lag_seconds)
    answer = ReadyOut(
        status="ready" if ok else "not_ready",
        checks={name: ReadyCheck(**check) for name, check in checks.items()},
    )
    return JSONResponse(
        answer.model_dump(mode="json", exclude_unset=True), status_code=200 if ok else 503
    )


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus metrics. With NAMMA_METRICS_TOKEN only for `Authorization: Bearer <token>`;
    without it, served outside production only (docs/operations.md)."""
    settings = request.app.state.settings
    if not settings.serves_metrics:
        raise NotFoundError("Not Found")
    if settings.metrics_token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.get_secret_value()
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), expected.encode()
        ):
            raise AuthenticationError("The metrics need the metrics token (Bearer).")
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
