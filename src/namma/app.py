"""The FastAPI application: middleware, routers, and the resources it opens at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

import anyio.to_thread
import structlog
from fastapi import Depends, FastAPI

from namma import __version__
from namma.audit.endpoints import router as audit_router
from namma.auth.deps import token_subject
from namma.auth.endpoints import router as auth_router
from namma.calendars.endpoints import router as calendar_router
from namma.capital.endpoints import router as capital_router
from namma.cob.endpoints import router as cob_router
from namma.collections.endpoints import preclosure_router as loan_preclosure_router
from namma.collections.endpoints import router as collections_router
from namma.collections.endpoints import sheet_router as collection_sheet_router
from namma.config import Settings, get_settings
from namma.customers.endpoints import router as customers_router
from namma.documents.endpoints import router as documents_router
from namma.handover.endpoints import router as handover_router
from namma.jobs import job_app, runtime
from namma.kit.admission import AdmissionLimit
from namma.kit.background import background_settle
from namma.kit.cache import cache_from_url
from namma.kit.db import Database
from namma.kit.embedded import EmbeddedPostgres
from namma.kit.errors import errors_install
from namma.kit.jobs import job_app_opened, worker_options
from namma.kit.logging import logging_configure
from namma.kit.migrations import migrate_upgrade
from namma.kit.observability import Metrics, RequestContextMiddleware
from namma.kit.openapi import openapi_install
from namma.kit.passwords import password_hashing_configure
from namma.kit.ratelimit import RateLimiter
from namma.kit.recent_writes import RecentWriters
from namma.kit.replica import ReplicaRouter
from namma.kit.security_headers import SecurityHeadersMiddleware
from namma.ledger.endpoints import router as ledger_router
from namma.loans.endpoints import router as loans_router
from namma.loans.restructure_endpoints import router as restructure_router
from namma.notifications.endpoints import router as notifications_router
from namma.products.endpoints import router as products_router
from namma.provisioning.endpoints import router as provisioning_router
from namma.reports.dashboard import dashboards_stale_after_writes
from namma.reports.endpoints import dashboard_router
from namma.reports.endpoints import router as reports_router
from namma.system.apidocs import apidocs_install
from namma.system.endpoints import router as system_router
from namma.users.endpoints import router as users_router
from namma.web.views import pages_install

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logging_configure(json_lines=settings.logs_as_json, level=settings.log_level)
    password_hashing_configure(fast=settings.insecure_fast_password_hashing)
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            url = settings.database_url
            if not url:
                embedded = EmbeddedPostgres(settings.data_dir)
                url = await anyio.to_thread.run_sync(embedded.start)
                stack.callback(embedded.stop)
                log.info("database.embedded_started", data_dir=str(embedded.pgdata))
            if settings.migrate_on_start:
                # Under a session advisory lock: straight to the primary, never through a
                # transaction pooler.
                await anyio.to_thread.run_sync(migrate_upgrade, settings.database_direct_url or url)

            pooled = settings.behind_transaction_pooler
            db = Database.connect(url, pool_size=settings.db_pool_size, pooled=pooled)
            stack.push_async_callback(db.dispose)
            app.state.db = db
            runtime.db = db

            cache = cache_from_url(settings.redis_url)
            stack.push_async_callback(cache.close)
            app.state.cache = cache
            runtime.cache = cache
            db.cache = cache  # every transaction invalidates through it after its commit
            app.state.rate_limiter = RateLimiter.from_url(settings.redis_url)

            # Who wrote in the last seconds (read your writes): their reads skip the replica
            # and the dashboards' kept answers (D-219, D-221).
            writers = RecentWriters(
                cache, seconds=settings.replica_sticky_seconds, person=token_subject
            )
            app.state.writers = writers
            # A kept answer's refresh still running when the application stops is waited for
            # (a few seconds) before the pools close.
            stack.push_async_callback(background_settle)

            app.state.replica = None
            if settings.database_replica_url:
                # Dashboards, reports and lists read there (`kit/replica.py`, D-219).
                replica_db = Database.connect(
                    settings.database_replica_url,
                    pool_size=settings.db_pool_size,
                    connect_timeout=5,
                    # Through the same pooler as the primary's (deploy/: a pool of its own).
                    pooled=pooled,
                )
                stack.push_async_callback(replica_db.dispose)
                replica_db.cache = cache  # what a primary kept, read there (D-222)
                app.state.replica = ReplicaRouter(
                    replica_db,
                    max_lag_seconds=settings.replica_max_lag_seconds,
                    writers=writers,
                )

            await stack.enter_async_context(
                # Enqueuing, the failed jobs' pages and /ready: one transaction at a time, so
                # through the pooler too (no worker here behind one: Settings refuses it).
                job_app_opened(
                    job_app, url, max_size=settings.worker_concurrency + 2, pooled=pooled
                )
            )
            app.state.job_app = job_app

            if settings.demo:
                from namma.demo import demo_load

                await demo_load(db)

            if settings.runs_inprocess_worker:
                worker = asyncio.create_task(
                    job_app.run_worker_async(
                        **worker_options(
                            concurrency=settings.worker_concurrency,
                            poll_interval=settings.job_poll_interval,
                            stalled_worker_seconds=settings.stalled_worker_seconds,
                            name="namma-serve-worker",
                            install_signal_handlers=False,
                        )
                    )
                )
                stack.push_async_callback(_stop_worker, worker)

            if settings.env != "test":
                # What start-up made (modules, models, routes: most of the heap) leaves the
                # cyclic collector's generations, so that a full collection walks only what the
                # requests made, not the whole heap: a big page's objects set one off every few
                # requests, ~190 ms of CPU each (docs/benchmarks.md, the agent's pages). Tests
                # start an application per test: not there.
                gc.collect()
                gc.freeze()
            log.info("app.started", version=__version__, redis=bool(settings.redis_url))
            yield
        runtime.db = None
        runtime.cache = None

    app = FastAPI(
        title="Namma Finance",
        version=__version__,
        lifespan=lifespan,
        # Our own page (namma.system.apidocs): FastAPI's loads a CDN and runs an inline script.
        docs_url=None,
        openapi_url="/api/openapi.json" if settings.serves_api_docs else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    errors_install(app)
    openapi_install(app)
    # Innermost of the three (added first): a refused request is still logged with its id and
    # answered with the security headers.
    app.add_middleware(AdmissionLimit, limit=settings.server_concurrency)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeadersMiddleware, trusted_proxies=settings.trusted_proxies)
    if settings.serves_api_docs:
        apidocs_install(app, docs_url="/api/docs", openapi_url="/api/openapi.json")
    app.include_router(system_router)
    app.include_router(auth_router)
    # Staff and branches: the dashboards' agent counts and per-agent rows.
    app.include_router(users_router, dependencies=[Depends(dashboards_stale_after_writes)])
    app.include_router(customers_router)
    app.include_router(products_router)
    app.include_router(loans_router)
    app.include_router(restructure_router)
    app.include_router(loan_preclosure_router)
    app.include_router(collections_router)
    app.include_router(collection_sheet_router)
    # Their writes move dashboard figures (cash in hand, capital): cached dashboards go.
    app.include_router(handover_router, dependencies=[Depends(dashboards_stale_after_writes)])
    app.include_router(capital_router, dependencies=[Depends(dashboards_stale_after_writes)])
    app.include_router(documents_router)
    app.include_router(cob_router)
    app.include_router(ledger_router)
    app.include_router(reports_router)
    app.include_router(provisioning_router)
    app.include_router(dashboard_router)
    app.include_router(audit_router)
    app.include_router(notifications_router)
    app.include_router(calendar_router)
    pages_install(app)
    return app


async def _stop_worker(worker: asyncio.Task[Any]) -> None:
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
