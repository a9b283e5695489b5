"""`/api/documents` (list, metadata, the PDF), `/api/collections/{id}/receipt.pdf` and
`POST /api/customers/{id}/statements`.

A receipt's PDF is rendered by the request that first downloads it and kept (later downloads
are served from storage). A statement is made by a job: while it is being made its PDF answers
202 (try again shortly, ``Retry-After``); one that could not be made answers 409 with the
reason. Scope is the customer's (see ``namma.documents.queries``): out of scope is 404.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.documents import queries, service
from namma.documents.schemas import (
    DocumentOut,
    DocumentPage,
    DocumentPendingOut,
    StatementRequestedOut,
)
from namma.kit.apitypes import QueryText, RequestModel
from namma.kit.deps import SessionDep
from namma.kit.errors import ConflictError
from namma.kit.openapi import error_responses
from namma.models import Document, DocumentKind, DocumentStatus

router = APIRouter(prefix="/api", tags=["documents"])

RETRY_AFTER_SECONDS = "2"


class StatementIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    month: str = Field(
        pattern=r"^\d{4}-\d{2}$", description='The calendar month, "YYYY-MM"', examples=["2026-10"]
    )


def _pending(doc: Document, customer_name: str, receipt_number: str | None) -> JSONResponse:
    body = DocumentPendingOut(
        status="pending",
        message="The document is being made; ask again in a moment.",
        document=queries.document_out(
            doc, customer_name=customer_name, receipt_number=receipt_number
        ),
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Retry-After": RETRY_AFTER_SECONDS, "Location": f"/api/documents/{doc.id}/pdf"},
    )


def document_pdf_response(
    doc: Document, customer_name: str, receipt_number: str | None
) -> Response:
    if doc.status is DocumentStatus.PENDING:
        return _pending(doc, customer_name, receipt_number)
    if doc.status is DocumentStatus.FAILED:
        raise ConflictError(
            "The document could not be made; ask for it again",
            details={"status": doc.status.value, "error": doc.error},
        )
    assert doc.content is not None
    filename = queries.document_filename(
        doc, customer_name=customer_name, receipt_number=receipt_number
    )
    return Response(
        doc.content,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "ETag": f'"{doc.sha256}"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/documents")
async def documents_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.DOCUMENT_READ))],
    customer_id: uuid.UUID | None = None,
    kind: DocumentKind | None = None,
    loan_id: uuid.UUID | None = None,
    after: Annotated[
        QueryText | None, Query(max_length=200, description="`next` of a page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> DocumentPage:
    """Receipts and statements in the caller's scope (a customer: their own), newest first."""
    return await queries.documents_list(
        session,
        principal,
        customer_id=customer_id,
        kind=kind,
        loan_id=loan_id,
        after=after,
        limit=limit,
    )


@router.get("/documents/{document_id}")
async def document_get(
    document_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.DOCUMENT_READ))],
) -> DocumentOut:
    doc, name, receipt = await queries.document_get(session, principal, document_id)
    return queries.document_out(doc, customer_name=name, receipt_number=receipt)


PENDING_202 = {
    "model": DocumentPendingOut,
    "description": "A statement still being made; ask again after Retry-After seconds",
    "headers": {
        "Retry-After": {"schema": {"type": "integer"}, "required": True},
        "Location": {"schema": {"type": "string"}, "required": True},
    },
}
PDF_200 = {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}


@router.get(
    "/documents/{document_id}/pdf",
    response_class=Response,
    responses={
        200: {**PDF_200, "description": "The PDF"},
        202: PENDING_202,
        **error_responses(409),
    },
)
async def document_pdf(
    request: Request,
    document_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.DOCUMENT_READ))],
) -> Response:
    """The PDF. A receipt is rendered now if it never was (or a reversal changed it); a
    statement answers 202 while its job has not made it, 409 if it could not be made."""
    doc, name, receipt = await service.document_with_content(
        session, principal, document_id, settings=request.app.state.settings
    )
    return document_pdf_response(doc, name, receipt)


@router.get(
    "/collections/{collection_id}/receipt.pdf",
    response_class=Response,
    responses={200: {**PDF_200, "description": "The receipt"}},
)
async def collection_receipt_pdf(
    request: Request,
    collection_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.DOCUMENT_READ))],
) -> Response:
    """The collection's receipt: rendered and kept on its first download (and on the first
    after a reversal changed it), served from storage after that."""
    doc = await service.receipt_for(
        session, principal, collection_id, settings=request.app.state.settings
    )
    found, name, receipt = await queries.document_get(session, principal, doc.id, with_content=True)
    return document_pdf_response(found, name, receipt)


@router.post(
    "/customers/{customer_id}/statements",
    status_code=202,
    response_model=StatementRequestedOut,
    responses={
        202: {
            "description": "The statement's document id; a job makes it",
            "headers": {"Location": {"schema": {"type": "string"}, "required": True}},
        }
    },
)
async def statement_request(
    customer_id: uuid.UUID,
    body: StatementIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.DOCUMENT_READ, limit="writes"))],
) -> JSONResponse:
    """Ask for the customer's statement of a month (made again if it exists). Download it from
    ``/api/documents/{document_id}/pdf`` once ``status`` is ``ready``."""
    doc = await service.statement_request(
        session,
        principal=principal,
        customer_id=customer_id,
        month=queries.parse_month(body.month),
    )
    found, name, receipt = await queries.document_get(session, principal, doc.id)
    answer = StatementRequestedOut(
        document_id=doc.id,
        status=found.status,
        document=queries.document_out(found, customer_name=name, receipt_number=receipt),
    )
    return JSONResponse(
        answer.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/documents/{doc.id}"},
    )
