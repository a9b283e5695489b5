"""A bound on the HTTP requests one server process works on at once (D-206).

Past its capacity a server that takes every request queues them all: each waits behind the
others for the same two cores, until the clients give up — and the process goes on working
through what they abandoned. Bounded, the process answers the excess ``503`` at once (with
``Retry-After``), so what it has taken finishes in time and a phone knows to try again (a
collection sent again with its idempotency key is posted once; a 503 moved no money).

Requests, not connections: uvicorn's own ``limit_concurrency`` counts open connections, idle
keep-alive ones included, so a client holding idle connections after a burst had every request
refused until they timed out (measured: 311 of 1,504 requests served at 50/s, against 1,366
unbounded). ``/health`` is never refused: a load balancer must not take a busy instance out.
"""

from __future__ import annotations

import json
from typing import Any

from namma.kit.errors import error_body

RETRY_AFTER_SECONDS = 1
BUSY = json.dumps(error_body("busy", "The server is busy. Please try again in a moment.")).encode()
NEVER_REFUSED = frozenset({"/health"})


class AdmissionLimit:
    """ASGI middleware: at most ``limit`` HTTP requests in progress in this process."""

    def __init__(self, app: Any, *, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_progress = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in NEVER_REFUSED:
            await self.app(scope, receive, send)
            return
        if self.in_progress >= self.limit:
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(BUSY)).encode()),
                        (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": BUSY})
            return
        self.in_progress += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_progress -= 1
