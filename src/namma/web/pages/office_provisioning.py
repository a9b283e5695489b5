"""``/office/provisioning`` (Admin): the provisioning rate of each prudential class, the class
boundaries, and the form that changes one rate (``provisioning.service.provisioning_rate_set``,
as ``PUT /api/provisioning/rates/{class}``: audited, effective at the next close of business).
The provision itself is in the report ``/office/reports/provisioning``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ConfigDict, Field

from namma.auth.permissions import Permission
from namma.finance.provisioning import DOUBTFUL_AFTER_MONTHS, LOSS_AFTER_MONTHS
from namma.kit.apitypes import RequestModel
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError
from namma.kit.money import Rate
from namma.models import ProvisionClass
from namma.provisioning.service import provisioning_rate_set, provisioning_rates
from namma.web import labels
from namma.web.forms import Form, form_parse
from namma.web.i18n import gettext
from namma.web.office import ADMIN
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/provisioning", include_in_schema=False)

Reader = Annotated[Viewer, Depends(viewer_of(Permission.PROVISIONING_MANAGE, roles=ADMIN))]
Editor = Annotated[
    Viewer, Depends(viewer_of(Permission.PROVISIONING_MANAGE, roles=ADMIN, limit="writes"))
]


class RateForm(RequestModel):
    model_config = ConfigDict(extra="forbid")
    asset_class: ProvisionClass
    rate: Rate = Field(description="Percent of the outstanding principal")


async def _page(
    request: Request, session: SessionDep, form: Form[Any], *, status_code: int = 200
) -> Response:
    rates = await provisioning_rates(session)
    return render(
        request,
        "office/provisioning.html",
        {
            "rates": rates,
            "form": form,
            "classes": [
                (c.value, gettext(labels.provision_class[c.value])) for c in ProvisionClass
            ],
            "saved": request.query_params.get("saved"),
            "doubtful_after": DOUBTFUL_AFTER_MONTHS,
            "loss_after": LOSS_AFTER_MONTHS,
        },
        status_code=status_code,
    )


@router.get("")
async def provisioning_page(request: Request, session: SessionDep, viewer: Reader) -> Response:
    return await _page(request, session, Form(values={}))


@router.post("")
async def provisioning_rate_change(
    request: Request, session: SessionDep, viewer: Editor
) -> Response:
    form = await form_parse(request, RateForm)
    if form.ok:
        assert form.data is not None
        try:
            await provisioning_rate_set(
                session,
                actor=viewer.principal.audit_actor,
                asset_class=form.data.asset_class,
                rate=form.data.rate,
            )
        except AppError as exc:
            await form.failed(session, exc)
    if not form.ok:
        return await _page(request, session, form, status_code=422)
    await session.commit()
    assert form.data is not None
    return RedirectResponse(
        f"/office/provisioning?saved={form.data.asset_class.value}", status_code=303
    )
