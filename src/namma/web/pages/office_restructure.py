"""Restructuring in the back office: the request form of a loan (on the loan page, action
"Restructure"), natural-calamity relief for a village (``/office/restructurings``), and a
request's page (``/office/restructurings/{id}``): its preview beside the current schedule, and
approve / reject for a checker who did not ask. The services are the API's
(`namma.loans.restructure`); nothing here computes money."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from namma.auth.permissions import Permission
from namma.finance import RestructureKind
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError
from namma.kit.money import Money, Rate
from namma.loans import restructure
from namma.loans.service import installment_rows
from namma.models import Branch, LoanScheduleRevision, RestructureStatus, Role, User
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office", include_in_schema=False)

OFFICE = (Role.ADMIN, Role.MANAGER)
Reader = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_READ, roles=OFFICE))]
Restructurer = Annotated[
    Viewer, Depends(viewer_of(Permission.LOAN_RESTRUCTURE, roles=OFFICE, limit="writes"))
]
Decider = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_DECIDE, roles=OFFICE, limit="money"))]

KINDS = (
    ("moratorium", N_("Moratorium (periods without installments)")),
    ("next-due-date", N_("New next due date")),
    ("rate", N_("New interest rate")),
    ("term", N_("New number of installments left")),
    ("installment", N_("New installment amount")),
)
KIND_LABELS = dict(KINDS)
PARAMS = ("next_due_on", "periods", "annual_rate", "installments", "installment_amount")


class RestructureForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: RestructureKind
    next_due_on: dt.date | None = None
    periods: int | None = Field(default=None, ge=1, le=520)
    annual_rate: Rate | None = None
    installments: int | None = Field(default=None, ge=1, le=10_000)
    installment_amount: Money | None = None
    reason: str = Field(min_length=1, max_length=1000)

    def params(self) -> dict[str, Any]:
        return self.model_dump(include=set(PARAMS), exclude_none=True)


class VillageForm(RestructureForm):
    village: str = Field(min_length=1, max_length=120)
    branch_id: uuid.UUID | None = None


class RejectForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def _see_other(location: str) -> Response:
    return RedirectResponse(location, status_code=303)


async def restructure_from_loan_page(
    request: Request, session: SessionDep, viewer: Viewer, loan_id: uuid.UUID
) -> tuple[Form[Any], Response | None]:
    """The loan page's "Restructure" form: the request, then its page; or the form with its
    errors (the caller shows the loan page)."""
    form = await form_parse(request, RestructureForm)
    if form.ok and form.data is not None:
        data = form.data
        try:
            made = await restructure.restructure_request(
                session,
                principal=viewer.principal,
                kind=data.kind,
                params=data.params(),
                reason=data.reason,
                loan_id=loan_id,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return form, _see_other(f"/office/restructurings/{made.id}")
    return form, None


async def _branches(session: SessionDep, viewer: Viewer) -> list[tuple[str, str]]:
    """An Admin's choice of branch for a village: (id, name) options."""
    if viewer.principal.role is not Role.ADMIN:
        return []
    rows = await session.scalars(
        select(Branch).where(Branch.is_head_office.is_(False)).order_by(Branch.code)
    )
    return [(str(b.id), b.name) for b in rows]


async def _list_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    *,
    form: Form[Any] | None = None,
    status_code: int = 200,
) -> Response:
    pending = await restructure.restructure_pending(session, viewer.principal)
    return render(
        request,
        "office/restructurings.html",
        {
            "pending": pending,
            "names": await _names(session, {r.requested_by_id for r in pending}),
            "kinds": KINDS,
            "kind_labels": KIND_LABELS,
            "form": form or empty_form(),
            "branches": await _branches(session, viewer),
            "can_ask": viewer.principal.can(Permission.LOAN_RESTRUCTURE),
        },
        status_code=status_code,
    )


async def _names(session: SessionDep, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows.all()}


@router.get("/restructurings")
async def restructurings(request: Request, session: SessionDep, viewer: Reader) -> Response:
    """Restructurings waiting for a decision, and natural-calamity relief for a village."""
    return await _list_page(request, session, viewer)


@router.post("/restructurings")
async def restructurings_village(
    request: Request, session: SessionDep, viewer: Restructurer
) -> Response:
    form = await form_parse(request, VillageForm)
    if form.ok and form.data is not None:
        data = form.data
        try:
            made = await restructure.restructure_request(
                session,
                principal=viewer.principal,
                kind=data.kind,
                params=data.params(),
                reason=data.reason,
                village=data.village,
                branch_id=data.branch_id,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return _see_other(f"/office/restructurings/{made.id}")
    return await _list_page(request, session, viewer, form=form, status_code=422)


async def _request_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    request_id: uuid.UUID,
    *,
    form: Form[Any] | None = None,
    status_code: int = 200,
) -> Response:
    made = await restructure.restructure_get(session, viewer.principal, request_id)
    # The schedule beside the preview: the installments as they stand (pending, rejected), or
    # as they were (approved: what its revision kept).
    current: dict[str, list[dict[str, Any]]] = {}
    if made.status == RestructureStatus.APPROVED.value:
        revisions = await session.scalars(
            select(LoanScheduleRevision).where(LoanScheduleRevision.restructure_id == made.id)
        )
        for r in revisions:
            current[str(r.loan_id)] = [
                {
                    "number": s["number"],
                    "due_date": dt.date.fromisoformat(s["due_date"]),
                    "principal": Decimal(s["principal_due"]),
                    "interest": Decimal(s["interest_due"]),
                    "total": sum(
                        (Decimal(s[k]) for k in ("principal_due", "interest_due", "fee_due")),
                        Decimal("0.00"),
                    ),
                }
                for s in r.replaced
            ]
    else:
        for key, loan in made.preview["loans"].items():
            rows = await installment_rows(session, uuid.UUID(key))
            current[key] = [
                {
                    "number": i.number,
                    "due_date": i.due_date,
                    "principal": i.principal_due,
                    "interest": i.interest_due,
                    "total": i.principal_due + i.interest_due + i.fee_due,
                }
                for i in rows
                if i.number >= loan["from_number"]
            ]
    names = await _names(session, {made.requested_by_id, made.decided_by_id})
    return render(
        request,
        "office/restructuring.html",
        {
            "made": made,
            "loans": made.preview["loans"],
            "skipped": made.preview.get("skipped", {}),
            "current": current,
            "names": names,
            "kind_label": KIND_LABELS[made.kind],
            "mine": made.requested_by_id == viewer.principal.user_id,
            "can_decide": viewer.principal.can(Permission.LOAN_DECIDE),
            "form": form or empty_form(),
        },
        status_code=status_code,
    )


@router.get("/restructurings/{request_id}")
async def restructuring(
    request: Request, request_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    """A request: what it changes, each loan's new schedule beside its current one, and the
    checker's decision."""
    return await _request_page(request, session, viewer, request_id)


@router.post("/restructurings/{request_id}/approve")
async def restructuring_approve(
    request: Request, request_id: uuid.UUID, session: SessionDep, viewer: Decider
) -> Response:
    form: Form[Any] = empty_form()
    try:
        await restructure.restructure_approve(
            session, principal=viewer.principal, request_id=request_id
        )
    except AppError as exc:
        await form.failed(session, exc)
        return await _request_page(request, session, viewer, request_id, form=form, status_code=409)
    return _see_other(f"/office/restructurings/{request_id}")


@router.post("/restructurings/{request_id}/reject")
async def restructuring_reject(
    request: Request, request_id: uuid.UUID, session: SessionDep, viewer: Decider
) -> Response:
    form = await form_parse(request, RejectForm)
    if form.ok and form.data is not None:
        try:
            await restructure.restructure_reject(
                session, principal=viewer.principal, request_id=request_id, reason=form.data.reason
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return _see_other(f"/office/restructurings/{request_id}")
    return await _request_page(request, session, viewer, request_id, form=form, status_code=422)
