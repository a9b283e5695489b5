"""What `/api/documents…` and `POST /api/customers/{id}/statements` answer (the PDFs
themselves are bytes)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field

from namma.kit.schemas import ApiModel, Timestamp, from_row
from namma.models import Document, DocumentKind, DocumentStatus


class DocumentOut(ApiModel):
    id: uuid.UUID
    kind: DocumentKind
    status: DocumentStatus = Field(description="`ready` once its PDF can be downloaded")
    customer_id: uuid.UUID
    customer_name: str
    loan_id: uuid.UUID | None
    collection_id: uuid.UUID | None
    receipt_number: str | None
    month: str | None = Field(examples=["2026-10"], description="A statement's month")
    period_start: dt.date | None
    period_end: dt.date | None
    filename: str
    size: int | None = Field(description="Bytes of the PDF")
    sha256: str | None
    error: str | None = Field(description="Why it could not be made")
    requested_by_id: uuid.UUID | None
    created_at: Timestamp | None
    generated_at: Timestamp | None
    download: str = Field(description="The PDF's URL")

    @classmethod
    def of(
        cls, doc: Document, *, customer_name: str, receipt_number: str | None, filename: str
    ) -> DocumentOut:
        return from_row(
            cls,
            doc,
            customer_name=customer_name,
            receipt_number=receipt_number,
            month=f"{doc.period_start:%Y-%m}" if doc.period_start else None,
            filename=filename,
            download=f"/api/documents/{doc.id}/pdf",
        )


class DocumentPage(ApiModel):
    documents: list[DocumentOut] = Field(description="Newest first")
    next: str | None = Field(description="Pass as `after` for the next page; null at the end")


class DocumentPendingOut(ApiModel):
    """202: the document is being made; ask again after ``Retry-After`` seconds."""

    status: Literal["pending"]
    message: str
    document: DocumentOut


class StatementRequestedOut(ApiModel):
    document_id: uuid.UUID
    status: DocumentStatus
    document: DocumentOut
