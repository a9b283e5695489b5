"""Who wrote in the last few seconds (read your writes): a person whose request has just
committed a write must see it in their next reads, even where others are served a copy that
may be a little behind — the replica's reads (D-219) and the dashboards' kept answers (D-221).

A committed request with an unsafe method marks its person in the shared cache for
``NAMMA_REPLICA_STICKY_SECONDS`` (`RecentWriters.wrote`, from `namma.auth.deps.require`), so
every instance behind the load balancer sees the mark.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from fastapi import Request

log = structlog.get_logger(__name__)


class RecentWriters:
    def __init__(
        self, cache: Any, *, seconds: int, person: Callable[[Request], str | None]
    ) -> None:
        self.cache = cache
        self.seconds = seconds
        # Who is asking, from the request alone (the access token's subject; no database).
        # Given by the application (the kit knows no authentication).
        self.person = person

    @staticmethod
    def _key(person: str) -> str:
        return f"wrote:{person}"

    async def wrote(self, person: str) -> None:
        """``person`` has just committed a write."""
        if self.seconds > 0:
            await self.cache.set(self._key(person), 1, self.seconds)

    async def recently_wrote(self, person: str) -> bool:
        try:
            return await self.cache.get(self._key(person)) is not None
        except Exception:
            # The shared cache is down: the person's last write cannot be known, so nothing
            # that may be behind is risked on them.
            log.warning("recent_writes.unknown", exc_info=True)
            return True

    async def asked_by_recent_writer(self, request: Request) -> bool:
        """Whether the person asking (if known) wrote in the last seconds."""
        person = self.person(request)
        return person is not None and await self.recently_wrote(person)


def recent_writers(request: Request) -> RecentWriters | None:
    writers: RecentWriters | None = getattr(request.app.state, "writers", None)
    return writers
