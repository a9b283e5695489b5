"""``/loans/{id}/kfs``: a loan's Key Facts Statement, printable, for anyone who may read the loan
(the same builder as ``GET /api/loans/{id}/kfs``, in the caller's scope)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from namma.auth.permissions import Permission
from namma.kit.deps import SessionDep
from namma.loans.queries import loan_kfs
from namma.web import i18n
from namma.web.i18n import gettext, ngettext
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(include_in_schema=False)


def penal_words(penalty: Mapping[str, Any] | None) -> str:
    """A product's penalty rule as a sentence: "₹50.00 once, if unpaid more than 3 days after
    the due date" (the KFS must say it in words, not as a rule's fields)."""
    if not penalty:
        return gettext("No penal charges")
    basis, value = penalty.get("basis"), penalty.get("value") or "0"
    if basis == "percent-of-overdue-principal":
        charge = gettext("%(rate)s of the overdue principal") % {"rate": i18n.percent(value)}
    elif basis == "percent-of-overdue-total":
        charge = gettext("%(rate)s of the overdue principal and interest") % {
            "rate": i18n.percent(value)
        }
    else:
        charge = i18n.money(value)
    days = int(penalty.get("grace_days") or 0)
    if penalty.get("recurrence") == "daily":
        if days:
            text = ngettext(
                "%(charge)s for each day unpaid beyond %(days)s day after the due date",
                "%(charge)s for each day unpaid beyond %(days)s days after the due date",
                days,
            )
        else:
            text = gettext("%(charge)s for each day unpaid after the due date")
    elif days:
        text = ngettext(
            "%(charge)s once, if unpaid more than %(days)s day after the due date",
            "%(charge)s once, if unpaid more than %(days)s days after the due date",
            days,
        )
    else:
        text = gettext("%(charge)s once, if unpaid after the due date")
    words = text % {"charge": charge, "days": i18n.number(days)}
    if penalty.get("cap") not in (None, ""):
        words += gettext("; at most %(cap)s for an installment") % {
            "cap": i18n.money(penalty["cap"])
        }
    return words


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
    return render(
        request,
        "loans/kfs.html",
        {
            "kfs": kfs,
            "loan_id": loan_id,
            "back": back,
            "penal_charges": penal_words(kfs.penal_charges),
        },
    )
