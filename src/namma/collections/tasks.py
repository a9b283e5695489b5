"""Collection jobs: what follows a posted collection outside its request — the customer's
receipt message (the receipt's PDF is rendered on its first download, not here). Enqueued in
the collection's own transaction, so it happens exactly when the collection commits, and the
request holds its locks (the loan row, the branch's receipt sequence) only for the posting
itself."""

from __future__ import annotations

import uuid
from decimal import Decimal

import procrastinate
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.jobs import job_defer, job_task

blueprint = procrastinate.Blueprint()

RECEIPTS_SEND = "collections:receipts_send"


async def collection_receipt_defer(
    session: AsyncSession, *, collection_id: uuid.UUID, remaining: Decimal
) -> None:
    """Enqueue the receipt of a collection being posted in this transaction, with what its loan
    still owes right after it (taken now: the job may run after later payments)."""
    from namma.jobs import job_app

    await job_defer(session, job_app, RECEIPTS_SEND, balances={str(collection_id): str(remaining)})


@job_task(blueprint, name="receipts_send")
async def receipts_send(balances: dict[str, str], session: AsyncSession) -> None:
    """Record the receipt messages (with their delivery jobs). Idempotent: a message is
    recorded once per collection and channel. No PDF: a receipt is rendered on its first
    download (``namma.documents.service.receipt_ready``)."""
    # It enqueues jobs of this application, which imports this module: imported when run.
    from namma.notifications.service import notify_receipts

    remaining = {uuid.UUID(c): Decimal(amount) for c, amount in balances.items()}
    await notify_receipts(session, remaining=remaining)
