"""``/loans/{id}/kfs``: a loan's Key Facts Statement, printable, for anyone who may read the loan
(the same builder as ``GET /api/loans/{id}/kfs``, in the caller's scope)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from namma.auth.permissions import Permission
from namma.kit.deps import SessionDep
from namma.loans.queries import loan_kfs
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(include_in_schema=False)


@router.get("/loans/{loan_id}/kfs")
async def kfs_page(
    request: Request,
    loan_id: uuid.UUID,
    session: SessionDep,
    viewer: Annotated[Viewer, Depends(viewer_of(Permission.LOAN_READ))],
) -> Response:
    kfs: Any = await loan_kfs(
        session, viewer.principal, loan_id, settings=request.app.state.settings
    )
    back = f"/customer/loans/{loan_id}" if viewer.customer_id else viewer.home
    return render(request, "loans/kfs.html", {"kfs": kfs, "loan_id": loan_id, "back": back})
