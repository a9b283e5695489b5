"""Sign-in and the person's own settings, as server-rendered forms calling the same auth services
as ``/api/auth/*`` and setting the same cookies.

``/`` (each role to its home), ``/login`` (password, then the TOTP step or, for an Admin
without one, the enrolment with a QR code and recovery codes), ``/logout``, ``/password``
(forced or chosen change), ``/profile`` (language, password, authenticator app), ``/language``.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from namma.auth import service
from namma.auth.deps import (
    CSRF_COOKIE,
    Principal,
    principal_authenticate,
    request_audit_actor,
    request_settings,
)
from namma.auth.endpoints import (
    ChallengeConfirmBody,
    CodeBody,
    LoginBody,
    PasswordBody,
    TotpLoginBody,
    login_throttle,
    session_cookies_clear,
    session_cookies_set,
)
from namma.auth.permissions import Permission
from namma.auth.totp import totp_provisioning_uri, totp_qr_svg, totp_secret_decrypt
from namma.customers.service import customer_update
from namma.kit.apitypes import RequestModel
from namma.kit.deps import CacheDep, SessionDep
from namma.kit.errors import AppError, AuthenticationError
from namma.kit.security_headers import cookies_secure, cookies_will_be_refused
from namma.loans.cache import customer_and_loans_changed
from namma.models import Customer, Role, User
from namma.web import i18n
from namma.web.errors import session_lapsed
from namma.web.forms import FORM_ERROR, Form, empty_form, form_parse
from namma.web.i18n import N_, gettext
from namma.web.templating import render
from namma.web.viewer import (
    LANGUAGE_COOKIE,
    LANGUAGE_COOKIE_MAX_AGE,
    ROLE_HOME,
    Viewer,
    anonymous_csrf,
    anonymous_csrf_check,
    anonymous_csrf_set,
    language_apply,
    language_of_request,
    local_path,
    viewer_of,
    viewer_optional,
)

router = APIRouter(include_in_schema=False)
T = TypeVar("T", bound=BaseModel)

SelfViewer = Annotated[Viewer, Depends(viewer_of(Permission.SELF))]
SelfWriter = Annotated[Viewer, Depends(viewer_of(Permission.SELF, limit="writes"))]

_NOTICES = {
    "signed_out": N_("You have signed out."),
    "password": N_("Your password is changed. Sign in with the new one."),
}


@router.get("/")
async def home(request: Request, session: SessionDep) -> Response:
    """Each role to its dashboard (the original app's addresses)."""
    viewer = await viewer_optional(request, session)
    if viewer is not None:
        return RedirectResponse(viewer.home, status_code=303)
    if request.cookies.get(CSRF_COOKIE):
        language_apply(request, language_of_request(request))
        return session_lapsed(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/account")
async def account(request: Request) -> Response:
    """The first release's account page: its address now leads home."""
    return RedirectResponse("/", status_code=303)


# --- sign-in -------------------------------------------------------------------------------------


def _anonymous(request: Request) -> None:
    language_apply(request, language_of_request(request))
    anonymous_csrf(request)


def _login_page(
    request: Request,
    *,
    form: Form[Any] | None = None,
    status_code: int = 200,
    retry_after: int | None = None,
    step: str = "password",
    extra: dict[str, Any] | None = None,
) -> Response:
    notice = _NOTICES.get(request.query_params.get("done", ""))
    context = {
        "form": form or empty_form(),
        "next": local_path(request.query_params.get("next") or _posted_next(form), ""),
        "notice": gettext(notice) if notice else None,
        "retry_after": retry_after,
        "cookies_refused": cookies_will_be_refused(request),
        "step": step,
        **(extra or {}),
    }
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    response = render(request, "auth/login.html", context, status_code=status_code, headers=headers)
    anonymous_csrf_set(request, response)
    return response


def _posted_next(form: Form[Any] | None) -> str:
    return form.value("next") if form else ""


@router.get("/login")
async def login_page(request: Request, session: SessionDep) -> Response:
    viewer = await viewer_optional(request, session)
    if viewer is not None:
        return RedirectResponse(
            local_path(request.query_params.get("next"), viewer.home), status_code=303
        )
    _anonymous(request)
    return _login_page(request)


async def _rate_limited(request: Request) -> int | None:
    """Seconds to wait if this address has tried too often (the API's login limit)."""
    refusal = await login_throttle(request).address_refusal()
    return refusal.retry_after_seconds if refusal is not None else None


def _signed_in(request: Request, issued: service.IssuedSession, next_path: str) -> Response:
    target = "/password" if issued.user.must_change_password else None
    target = target or local_path(next_path, ROLE_HOME[issued.user.role])
    if target != "/password" and not _fits_role(target, issued.user.role):
        target = ROLE_HOME[issued.user.role]
    response = RedirectResponse(target, status_code=303)
    session_cookies_set(response, request, issued)
    return response


def _fits_role(path: str, role: Role) -> bool:
    """A ``next`` address inside another role's area is not followed (it would answer 403)."""
    areas = [home for r, home in ROLE_HOME.items() if r is not role]
    return not any(path == area or path.startswith(area + "/") for area in areas)


async def _outcome_page(
    request: Request,
    session: SessionDep,
    outcome: service.LoginOutcome,
    form: Form[Any],
    next_path: str,
) -> Response:
    if outcome.status == "ok":
        assert outcome.session is not None
        return _signed_in(request, outcome.session, next_path)
    if outcome.status == "throttled":
        assert outcome.refusal is not None
        form.add_error(
            FORM_ERROR,
            gettext(N_("Too many failed attempts on this account; wait before trying again.")),
        )
        return _login_page(
            request, form=form, status_code=429, retry_after=outcome.refusal.retry_after_seconds
        )
    if outcome.status == "totp_required":
        return _login_page(
            request,
            form=empty_form(),
            step="totp",
            extra={"challenge": outcome.challenge, "next": next_path},
        )
    if outcome.status == "totp_enrolment_required":
        assert outcome.challenge is not None
        return await _enrol_page(request, session, outcome.challenge, empty_form(), next_path)
    form.add_error(FORM_ERROR, gettext(N_("Wrong login or password.")))
    return _login_page(request, form=form, status_code=401)


async def _sign_in_step(request: Request, model: type[T]) -> tuple[Form[T], Response | None]:
    """The start of every sign-in post: the form's token, its fields, the address's limit (an
    answer to send at once if it is exceeded)."""
    _anonymous(request)
    await anonymous_csrf_check(request)
    form = await form_parse(request, model)
    wait = await _rate_limited(request)
    if wait is None:
        return form, None
    form.add_error(FORM_ERROR, gettext(N_("Too many sign-in attempts from here.")))
    return form, _login_page(request, form=form, status_code=429, retry_after=wait)


@router.post("/login")
async def login_submit(request: Request, session: SessionDep) -> Response:
    form, limited = await _sign_in_step(request, LoginBody)
    if limited is not None:
        return limited
    if not form.ok or form.data is None:
        return _login_page(request, form=form, status_code=422)
    settings = request_settings(request)
    outcome = await service.login_password(
        session,
        login=form.data.login,
        password=form.data.password,
        secret_key=settings.secret_key.get_secret_value(),
        actor=request_audit_actor(request),
        admin_totp_required=settings.admin_totp_required,
        throttle=login_throttle(request),
    )
    return await _outcome_page(request, session, outcome, form, form.value("next"))


@router.post("/login/totp")
async def login_totp_submit(request: Request, session: SessionDep) -> Response:
    form, limited = await _sign_in_step(request, TotpLoginBody)
    if limited is not None:
        return limited
    next_path = form.value("next")
    challenge = form.value("challenge")
    if form.data is None or not (form.data.code or form.data.recovery_code):
        form.add_error("code", gettext(N_("Enter the 6-digit code from your app.")))
        return _login_page(
            request,
            form=form,
            status_code=422,
            step="totp",
            extra={"challenge": challenge, "next": next_path},
        )
    settings = request_settings(request)
    outcome = await service.login_totp(
        session,
        challenge=form.data.challenge,
        code=form.data.code,
        recovery_code=form.data.recovery_code,
        secret_key=settings.secret_key.get_secret_value(),
        actor=request_audit_actor(request),
        throttle=login_throttle(request),
    )
    if outcome.status == "invalid":
        form.add_error(
            "code", gettext(N_("Wrong or expired code; sign in again if this keeps failing."))
        )
        return _login_page(
            request,
            form=form,
            status_code=401,
            step="totp",
            extra={"challenge": challenge, "next": next_path},
        )
    return await _outcome_page(request, session, outcome, form, next_path)


async def _enrol_page(
    request: Request,
    session: SessionDep,
    challenge: str,
    form: Form[Any],
    next_path: str,
    *,
    status_code: int = 200,
) -> Response:
    """The Admin's first sign-in: scan the code, then confirm with one from the app. A repeated
    page shows the same pending key (the one stored by the first)."""
    secret_key = request_settings(request).secret_key.get_secret_value()
    user = await service.challenge_user(
        session, challenge=challenge, purpose=service.CHALLENGE_TOTP_ENROL, secret_key=secret_key
    )
    if user is None:
        form.add_error(FORM_ERROR, gettext(N_("The sign-in step has expired; sign in again.")))
        return _login_page(request, form=form, status_code=401)
    if user.totp_secret_encrypted is None or form.data is None:
        enrolment = await service.totp_enrol_start(session, user=user, secret_key=secret_key)
        secret, uri, qr = enrolment.secret, enrolment.otpauth_uri, enrolment.qr_svg
    else:
        secret = totp_secret_decrypt(user.totp_secret_encrypted, secret_key=secret_key)
        uri = totp_provisioning_uri(secret, account=user.email or user.phone or str(user.id))
        qr = totp_qr_svg(uri)
    return _login_page(
        request,
        form=form,
        status_code=status_code,
        step="enrol",
        extra={"challenge": challenge, "next": next_path, "secret": secret, "qr_svg": qr},
    )


@router.post("/login/enrol")
async def login_enrol_submit(request: Request, session: SessionDep) -> Response:
    form, limited = await _sign_in_step(request, ChallengeConfirmBody)
    if limited is not None:
        return limited
    next_path = form.value("next")
    challenge = form.value("challenge")
    if form.data is None:
        return await _enrol_page(request, session, challenge, form, next_path, status_code=422)
    secret_key = request_settings(request).secret_key.get_secret_value()
    user = await service.challenge_user(
        session, challenge=challenge, purpose=service.CHALLENGE_TOTP_ENROL, secret_key=secret_key
    )
    if user is None:
        form.add_error(FORM_ERROR, gettext(N_("The sign-in step has expired; sign in again.")))
        return _login_page(request, form=form, status_code=401)
    actor = request_audit_actor(request)
    try:
        codes = await service.totp_enrol_confirm(
            session,
            user=user,
            code=form.data.code,
            secret_key=secret_key,
            actor=service.actor_as(actor, user),
        )
    except AppError as exc:
        await form.failed(session, exc)
        return await _enrol_page(request, session, challenge, form, next_path, status_code=422)
    issued = await service.session_issue(
        session, user=user, secret_key=secret_key, actor=actor, method="totp_enrolment"
    )
    response = render(
        request,
        "auth/recovery_codes.html",
        {"codes": codes, "continue_to": local_path(next_path, ROLE_HOME[user.role])},
    )
    session_cookies_set(response, request, issued)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, viewer: SelfWriter) -> Response:
    await service.logout(
        session,
        user_id=viewer.principal.user_id,
        session_id=viewer.principal.session_id,
        actor=viewer.principal.audit_actor,
    )
    response = RedirectResponse("/login?done=signed_out", status_code=303)
    session_cookies_clear(response)
    return response


# --- the person's own settings -------------------------------------------------------------------


class PasswordForm(PasswordBody):
    new_password_again: str = Field(min_length=1, max_length=1024)


@router.get("/password")
async def password_page(request: Request, viewer: SelfViewer) -> Response:
    return render(request, "auth/password.html", {"form": empty_form()})


@router.post("/password")
async def password_submit(request: Request, session: SessionDep, viewer: SelfWriter) -> Response:
    form = await form_parse(request, PasswordForm)
    if form.data is not None and form.data.new_password != form.data.new_password_again:
        form.add_error("new_password_again", gettext(N_("The two new passwords differ.")))
    if form.ok and form.data is not None:
        try:
            await service.password_change(
                session,
                user_id=viewer.principal.user_id,
                current_password=form.data.current_password,
                new_password=form.data.new_password,
                actor=viewer.principal.audit_actor,
                throttle=login_throttle(request),
            )
        except AppError as exc:
            await form.failed(session, exc)
    if not form.ok:
        return render(request, "auth/password.html", {"form": form}, status_code=422)
    # Every session of the person ends with the change (the service's rule): sign in again.
    response = RedirectResponse("/login?done=password", status_code=303)
    session_cookies_clear(response)
    return response


async def _profile(request: Request, session: SessionDep, viewer: Viewer) -> Response:
    user = await session.scalar(select(User).where(User.id == viewer.principal.user_id))
    assert user is not None
    return render(request, "auth/profile.html", {"user": user})


@router.get("/profile")
async def profile(request: Request, session: SessionDep, viewer: SelfViewer) -> Response:
    if viewer.role is Role.CUSTOMER:
        return RedirectResponse("/customer/profile", status_code=303)
    return await _profile(request, session, viewer)


@router.get("/customer/profile")
async def customer_profile(
    request: Request,
    session: SessionDep,
    viewer: Annotated[Viewer, Depends(viewer_of(Permission.SELF, roles=(Role.CUSTOMER,)))],
) -> Response:
    return await _profile(request, session, viewer)


async def _locked_user(session: SessionDep, principal: Principal) -> User:
    user = await session.scalar(select(User).where(User.id == principal.user_id).with_for_update())
    assert user is not None
    return user


@router.post("/profile/totp")
async def totp_start(request: Request, session: SessionDep, viewer: SelfWriter) -> Response:
    """Start enrolling an authenticator app (the API's ``POST /api/auth/totp/enrol``)."""
    user = await _locked_user(session, viewer.principal)
    secret_key = request_settings(request).secret_key.get_secret_value()
    enrolment = await service.totp_enrol_start(session, user=user, secret_key=secret_key)
    return render(
        request,
        "auth/totp_enrol.html",
        {"form": empty_form(), "secret": enrolment.secret, "qr_svg": enrolment.qr_svg},
    )


@router.post("/profile/totp/confirm")
async def totp_confirm(request: Request, session: SessionDep, viewer: SelfWriter) -> Response:
    form = await form_parse(request, CodeBody)
    user = await _locked_user(session, viewer.principal)
    secret_key = request_settings(request).secret_key.get_secret_value()
    if form.ok and form.data is not None:
        try:
            codes = await service.totp_enrol_confirm(
                session,
                user=user,
                code=form.data.code,
                secret_key=secret_key,
                actor=viewer.principal.audit_actor,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return render(
                request, "auth/recovery_codes.html", {"codes": codes, "continue_to": viewer.home}
            )
    user = await _locked_user(session, viewer.principal)
    if user.totp_secret_encrypted is None or user.totp_enabled:
        return RedirectResponse("/profile", status_code=303)
    secret = totp_secret_decrypt(user.totp_secret_encrypted, secret_key=secret_key)
    qr = totp_qr_svg(totp_provisioning_uri(secret, account=user.email or user.phone or ""))
    return render(
        request,
        "auth/totp_enrol.html",
        {"form": form, "secret": secret, "qr_svg": qr},
        status_code=422,
    )


class LanguageForm(RequestModel):
    lang: str = Field(pattern="^(en|kn)$")


@router.post("/language")
async def language_choose(request: Request, session: SessionDep, cache: CacheDep) -> Response:
    """The language switch. A customer's choice is saved on their record (it is the language
    of their messages too); everyone's is kept in a cookie of this browser."""
    principal: Principal | None = None
    if request.cookies.get("access_token"):
        try:
            principal = await principal_authenticate(request, session)  # checks the CSRF token too
        except AuthenticationError:
            return session_lapsed(request)
    else:
        await anonymous_csrf_check(request)
    form = await form_parse(request, LanguageForm)
    target = local_path(form.value("next"), "/")
    response = RedirectResponse(target, status_code=303)
    if form.data is None:
        return response
    lang = form.data.lang
    if principal is not None and principal.role is Role.CUSTOMER:
        customer_id = await session.scalar(
            select(Customer.id).where(Customer.user_id == principal.user_id)
        )
        if customer_id is not None:
            await customer_update(
                session, principal=principal, customer_id=customer_id, preferred_language=lang
            )
            await customer_and_loans_changed(session, cache, customer_id)
    i18n.language_use(lang)
    response.set_cookie(
        LANGUAGE_COOKIE,
        lang,
        max_age=LANGUAGE_COOKIE_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=cookies_secure(request),
        path="/",
    )
    return response
