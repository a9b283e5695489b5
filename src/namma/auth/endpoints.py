"""`/api/auth/*`: login (with TOTP as a second step), refresh, logout, me, password, TOTP.

Browsers get tokens in HttpOnly cookies and never see them; API clients (the agents' phone app)
ask for ``"token_delivery": "body"`` and send ``Authorization: Bearer``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import select

from namma.auth import service
from namma.auth.deps import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    Principal,
    RateLimitedError,
    request_audit_actor,
    request_settings,
    require,
)
from namma.auth.permissions import Permission
from namma.auth.schemas import (
    LoginOut,
    MeOut,
    RecoveryCodesOut,
    SessionOut,
    TotpEnrolmentOut,
    UserOut,
)
from namma.auth.throttle import LoginThrottle, Refusal
from namma.auth.tokens import ACCESS_TOKEN_LIFETIME, REFRESH_TOKEN_LIFETIME
from namma.kit.apitypes import RequestModel
from namma.kit.deps import SessionDep
from namma.kit.errors import AuthenticationError, error_body
from namma.kit.openapi import error_responses
from namma.kit.security_headers import cookies_secure
from namma.models import User

router = APIRouter(prefix="/api/auth", tags=["auth"])

REFRESH_PATH = "/api/auth/refresh"
TokenDelivery = Literal["cookie", "body"]
INVALID_LOGIN = "Wrong login or password."
# The public steps: a wrong answer is a 401 (returned, so that the failure is committed), too
# many attempts a 429. Their bodies are built from the declared models (JSONResponse: cookies).
LOGIN_ERRORS = error_responses(401, 429)


class LoginBody(RequestModel):
    login: str = Field(min_length=1, max_length=254, description="Email or mobile number")
    password: str = Field(min_length=1, max_length=1024)
    token_delivery: TokenDelivery = "cookie"


class TotpLoginBody(RequestModel):
    challenge: str = Field(min_length=1, max_length=2000)
    code: str | None = Field(default=None, max_length=12)
    recovery_code: str | None = Field(default=None, max_length=32)
    token_delivery: TokenDelivery = "cookie"


class ChallengeBody(RequestModel):
    challenge: str = Field(min_length=1, max_length=2000)


class ChallengeConfirmBody(ChallengeBody):
    code: str = Field(min_length=6, max_length=12)
    token_delivery: TokenDelivery = "cookie"


class CodeBody(RequestModel):
    code: str = Field(min_length=6, max_length=12)


class RefreshBody(RequestModel):
    refresh_token: str | None = Field(default=None, max_length=200)


class PasswordBody(RequestModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


def _cookie_secure(request: Request) -> bool:
    return cookies_secure(request)


def session_cookies_set(
    response: Response, request: Request, issued: service.IssuedSession
) -> None:
    secure = _cookie_secure(request)
    response.set_cookie(
        ACCESS_COOKIE,
        issued.access_token,
        max_age=int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path="/",
    )
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        max_age=int(REFRESH_TOKEN_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure,
        path=REFRESH_PATH,
    )
    # Readable by the page's script, which echoes it in X-CSRF-Token.
    response.set_cookie(
        CSRF_COOKIE,
        issued.csrf_token,
        max_age=int(REFRESH_TOKEN_LIFETIME.total_seconds()),
        httponly=False,
        samesite="lax",
        secure=secure,
        path="/",
    )


def session_cookies_clear(response: Response) -> None:
    response.delete_cookie(ACCESS_COOKIE, path="/")
    response.delete_cookie(REFRESH_COOKIE, path=REFRESH_PATH)
    response.delete_cookie(CSRF_COOKIE, path="/")


def _session_response(
    request: Request,
    issued: service.IssuedSession,
    delivery: TokenDelivery,
    *,
    recovery_codes: list[str] | None = None,
) -> JSONResponse:
    """The `SessionOut` body (the fields it leaves out are absent, not null), with the tokens
    in it or in cookies."""
    optional: dict[str, Any] = {}
    if recovery_codes is not None:
        optional["recovery_codes"] = recovery_codes
    if delivery == "body":
        optional |= {
            "access_token": issued.access_token,
            "refresh_token": issued.refresh_token,
            "token_type": "bearer",
            "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        }
    body = SessionOut(
        status="ok",
        user=UserOut.model_validate(issued.user),
        csrf_token=issued.csrf_token,
        **optional,
    )
    response = JSONResponse(body.model_dump(mode="json", exclude_unset=True))
    if delivery != "body":
        session_cookies_set(response, request, issued)
    return response


def _invalid(message: str = INVALID_LOGIN) -> JSONResponse:
    # Returned, not raised: the request still commits the failure count and its audit entry.
    return JSONResponse(error_body("unauthenticated", message), status_code=401)


def login_throttle(request: Request) -> LoginThrottle:
    """The failed-sign-in throttle (namma.auth.throttle) as this request's address sees it."""
    return LoginThrottle(
        limiter=request.app.state.rate_limiter,
        address_rule=request_settings(request).login_rate_limit,
        address=request_audit_actor(request).ip or "unknown",
    )


ThrottleDep = Annotated[LoginThrottle, Depends(login_throttle)]


async def _login_rate_limit(throttle: ThrottleDep) -> None:
    """The per-address limit of failed sign-ins, for the steps that count no failure
    themselves (TOTP enrolment at first login)."""
    refusal = await throttle.address_refusal()
    if refusal is not None:
        raise RateLimitedError(refusal.message, retry_after=refusal.retry_after_seconds)


def _throttled(refusal: Refusal) -> JSONResponse:
    # Returned, not raised: a refused guess still commits its audit entry.
    return JSONResponse(
        error_body(
            "rate_limited", refusal.message, {"retry_after_seconds": refusal.retry_after_seconds}
        ),
        status_code=429,
        headers={"Retry-After": str(refusal.retry_after_seconds)},
    )


def _outcome_response(
    request: Request, outcome: service.LoginOutcome, delivery: TokenDelivery
) -> JSONResponse:
    if outcome.status == "ok":
        assert outcome.session is not None
        return _session_response(request, outcome.session, delivery)
    if outcome.status == "throttled":
        assert outcome.refusal is not None
        return _throttled(outcome.refusal)
    if outcome.status in ("totp_required", "totp_enrolment_required"):
        return JSONResponse({"status": outcome.status, "challenge": outcome.challenge})
    return _invalid()


@router.post("/login", response_model=LoginOut, responses=LOGIN_ERRORS)
async def login(
    request: Request, body: LoginBody, session: SessionDep, throttle: ThrottleDep
) -> JSONResponse:
    """Password step. Answers `ok` with a session, or `totp_required` /
    `totp_enrolment_required` with a challenge for the second step. Failed attempts are
    throttled (429 with `Retry-After` and `details.retry_after_seconds`); successes never."""
    settings = request_settings(request)
    outcome = await service.login_password(
        session,
        login=body.login,
        password=body.password,
        secret_key=settings.secret_key.get_secret_value(),
        actor=request_audit_actor(request),
        admin_totp_required=settings.admin_totp_required,
        throttle=throttle,
    )
    return _outcome_response(request, outcome, body.token_delivery)


@router.post("/login/totp", response_model=LoginOut, responses=LOGIN_ERRORS)
async def login_totp(
    request: Request, body: TotpLoginBody, session: SessionDep, throttle: ThrottleDep
) -> JSONResponse:
    """Second step: the 6-digit code from the authenticator app, or a recovery code."""
    settings = request_settings(request)
    outcome = await service.login_totp(
        session,
        challenge=body.challenge,
        code=body.code,
        recovery_code=body.recovery_code,
        secret_key=settings.secret_key.get_secret_value(),
        actor=request_audit_actor(request),
        throttle=throttle,
    )
    if outcome.status == "invalid":
        return _invalid("Wrong or expired code; log in again if this keeps failing.")
    return _outcome_response(request, outcome, body.token_delivery)


@router.post(
    "/login/totp-enrol",
    dependencies=[Depends(_login_rate_limit)],
    responses=error_responses(401, 409, 429),
)
async def login_totp_enrol(
    request: Request, body: ChallengeBody, session: SessionDep
) -> TotpEnrolmentOut:
    """An Admin's first login: start TOTP enrolment with the challenge from `/login`."""
    settings = request_settings(request)
    user = await service.challenge_user(
        session,
        challenge=body.challenge,
        purpose=service.CHALLENGE_TOTP_ENROL,
        secret_key=settings.secret_key.get_secret_value(),
    )
    if user is None:
        raise AuthenticationError("The login step has expired; log in again.")
    enrolment = await service.totp_enrol_start(
        session, user=user, secret_key=settings.secret_key.get_secret_value()
    )
    return TotpEnrolmentOut.model_validate(enrolment)


@router.post(
    "/login/totp-enrol/confirm",
    dependencies=[Depends(_login_rate_limit)],
    response_model=SessionOut,
    responses=error_responses(401, 409, 429),
)
async def login_totp_enrol_confirm(
    request: Request, body: ChallengeConfirmBody, session: SessionDep
) -> JSONResponse:
    """Finish enrolment with a code from the app; returns the recovery codes and logs in."""
    settings = request_settings(request)
    secret_key = settings.secret_key.get_secret_value()
    user = await service.challenge_user(
        session,
        challenge=body.challenge,
        purpose=service.CHALLENGE_TOTP_ENROL,
        secret_key=secret_key,
    )
    if user is None:
        raise AuthenticationError("The login step has expired; log in again.")
    actor = request_audit_actor(request)
    codes = await service.totp_enrol_confirm(
        session,
        user=user,
        code=body.code,
        secret_key=secret_key,
        actor=service.actor_as(actor, user),
    )
    issued = await service.session_issue(
        session, user=user, secret_key=secret_key, actor=actor, method="totp_enrolment"
    )
    return _session_response(request, issued, body.token_delivery, recovery_codes=codes)


@router.post("/refresh", response_model=SessionOut, responses=error_responses(401))
async def refresh(
    request: Request, session: SessionDep, body: RefreshBody | None = None
) -> JSONResponse:
    """Exchange a refresh token (cookie, or `refresh_token` in the body) for new tokens."""
    settings = request_settings(request)
    from_body = body is not None and body.refresh_token is not None
    token = (
        body.refresh_token if body and body.refresh_token else request.cookies.get(REFRESH_COOKIE)
    )
    if not token:
        return _invalid("No refresh token; log in again.")
    issued = await service.refresh_rotate(
        session,
        refresh_token=token,
        secret_key=settings.secret_key.get_secret_value(),
        actor=request_audit_actor(request),
        grace=dt.timedelta(seconds=settings.refresh_grace_seconds),
    )
    if issued is None:
        response = _invalid("Your session has ended; log in again.")
        if not from_body:
            session_cookies_clear(response)
        return response
    # Tokens go back the way the refresh token came: a browser never sees them in a body.
    return _session_response(request, issued, "body" if from_body else "cookie")


@router.post("/logout", status_code=204)
async def logout(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.SELF, limit="writes"))],
) -> Response:
    await service.logout(
        session,
        user_id=principal.user_id,
        session_id=principal.session_id,
        actor=principal.audit_actor,
    )
    response = Response(status_code=204)
    session_cookies_clear(response)
    return response


@router.get("/me")
async def me(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.SELF))],
) -> MeOut:
    user = await session.scalar(select(User).where(User.id == principal.user_id))
    assert user is not None
    return MeOut(
        user=UserOut.model_validate(user),
        permissions=sorted(p.value for p in principal.permissions),
        session_id=principal.session_id,
    )


@router.post("/password", status_code=204)
async def password_change(
    body: PasswordBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.SELF, limit="writes"))],
    throttle: ThrottleDep,
) -> Response:
    """Change your own password. Every session of yours ends: log in again. Wrong current
    passwords are throttled like failed sign-ins (429 with `Retry-After`)."""
    await service.password_change(
        session,
        user_id=principal.user_id,
        current_password=body.current_password,
        new_password=body.new_password,
        actor=principal.audit_actor,
        throttle=throttle,
    )
    response = Response(status_code=204)
    session_cookies_clear(response)
    return response


@router.post("/totp/enrol", responses=error_responses(409))
async def totp_enrol(
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.SELF, limit="writes"))],
) -> TotpEnrolmentOut:
    """Start enrolling an authenticator app (optional for Managers and Agents)."""
    user = await _locked_user(session, principal.user_id)
    enrolment = await service.totp_enrol_start(
        session, user=user, secret_key=request_settings(request).secret_key.get_secret_value()
    )
    return TotpEnrolmentOut.model_validate(enrolment)


@router.post("/totp/confirm", responses=error_responses(409))
async def totp_confirm(
    request: Request,
    body: CodeBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.SELF, limit="writes"))],
) -> RecoveryCodesOut:
    """Turn TOTP on with a code from the app; returns 10 one-time recovery codes."""
    user = await _locked_user(session, principal.user_id)
    codes = await service.totp_enrol_confirm(
        session,
        user=user,
        code=body.code,
        secret_key=request_settings(request).secret_key.get_secret_value(),
        actor=principal.audit_actor,
    )
    return RecoveryCodesOut(recovery_codes=codes)


async def _locked_user(session: SessionDep, user_id: uuid.UUID) -> User:
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    assert user is not None
    return user
