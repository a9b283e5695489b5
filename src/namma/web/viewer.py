"""What every page needs: who is looking (``viewer``), in which language, with which CSRF token,
where each role lives, and what its navigation shows.

A page route declares its reader as the API does, plus the roles it is for::

    @router.get("/customer/loans")
    async def loans(request: Request, session: SessionDep,
                    viewer: Annotated[Viewer, Depends(viewer_of(Permission.LOAN_READ,
                                                               roles=(Role.CUSTOMER,)))]):

``viewer_of`` runs the API's own ``require`` (authenticated, CSRF on unsafe methods — header or
the form's hidden ``csrf_token`` field —, permission, rate limit) and then the role check: a
wrong role gets the 403 page, never another role's page.
"""

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import (
    CSRF_FORM_FIELD,
    Principal,
    RateClass,
    principal_authenticate,
    request_settings,
    require,
)
from namma.auth.permissions import Permission
from namma.auth.tokens import csrf_token_for
from namma.kit.db import db_session
from namma.kit.errors import AuthenticationError, PermissionDeniedError
from namma.kit.security_headers import cookies_secure
from namma.models import Customer, Role, User
from namma.web import i18n
from namma.web.i18n import N_

LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
# The CSRF token of forms shown before sign-in (login, language): a random value in a cookie
# that the form repeats (double submit); a cross-site page can read neither.
ANONYMOUS_CSRF_COOKIE = "form_csrf"

ROLE_HOME: dict[Role, str] = {
    Role.ADMIN: "/admin",
    Role.MANAGER: "/manager",
    Role.AGENT: "/agent",
    Role.CUSTOMER: "/customer",
}


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str  # an N_() marked message, translated when shown


# Each role's navigation. The back office (issue 18) lives under /office/<area> for both the
# Admin and the Manager (the queries scope a Manager to the branch); the field pages (issue 19)
# under /agent/<area>. A link here whose page is not built yet answers 404.
_OFFICE_SHARED: tuple[NavItem, ...] = (
    NavItem("/office/inbox", N_("Inbox")),
    NavItem("/office/loans", N_("Loans")),
    NavItem("/office/collections", N_("Collections")),
    NavItem("/office/customers", N_("Customers")),
    NavItem("/office/handovers", N_("Hand-overs")),
    NavItem("/office/staff", N_("Staff")),
    NavItem("/office/reports", N_("Reports")),
    NavItem("/office/calendar", N_("Calendar")),
)
NAVIGATION: dict[Role, tuple[NavItem, ...]] = {
    Role.ADMIN: (
        NavItem("/admin", N_("Dashboard")),
        *_OFFICE_SHARED,
        NavItem("/office/branches", N_("Branches")),
        NavItem("/office/products", N_("Products")),
        NavItem("/office/capital", N_("Capital")),
        NavItem("/office/provisioning", N_("Provisioning")),
        NavItem("/office/cob", N_("Close of business")),
        NavItem("/office/audit", N_("Audit log")),
        NavItem("/office/jobs", N_("Jobs")),
    ),
    Role.MANAGER: (NavItem("/manager", N_("Dashboard")), *_OFFICE_SHARED),
    Role.AGENT: (
        NavItem("/agent", N_("Dashboard")),
        NavItem("/agent/sheet", N_("Collection sheet")),
        NavItem("/agent/customers", N_("My customers")),
        NavItem("/agent/handover", N_("Hand-over")),
    ),
    Role.CUSTOMER: (
        NavItem("/customer", N_("Home")),
        NavItem("/customer/loans", N_("My loans")),
        NavItem("/customer/payments", N_("Payments")),
        NavItem("/customer/documents", N_("Documents")),
    ),
}


@dataclass(frozen=True)
class Viewer:
    """The signed-in person looking at a page."""

    principal: Principal
    name: str
    customer_id: uuid.UUID | None  # a customer's own record (customers only)
    lang: str
    csrf_token: str

    @property
    def role(self) -> Role:
        return self.principal.role

    @property
    def home(self) -> str:
        return ROLE_HOME[self.principal.role]

    @property
    def navigation(self) -> tuple[NavItem, ...]:
        return NAVIGATION[self.principal.role]


def language_of_request(request: Request) -> str:
    """Before sign-in (and for staff): the language cookie, then ``Accept-Language``."""
    return i18n.language_known(request.cookies.get(LANGUAGE_COOKIE)) or i18n.language_negotiate(
        request.headers.get("accept-language")
    )


def language_apply(request: Request, lang: str) -> None:
    request.state.lang = lang
    i18n.language_use(lang)


async def _viewer_load(request: Request, session: AsyncSession, principal: Principal) -> Viewer:
    row = (
        await session.execute(
            select(User.name, Customer.id, Customer.preferred_language)
            .outerjoin(Customer, Customer.user_id == User.id)
            .where(User.id == principal.user_id)
        )
    ).one()
    name, customer_id, saved = row
    # A customer's saved choice is the language of their messages too; staff choose per browser.
    lang = i18n.language_known(saved) or language_of_request(request)
    settings = request_settings(request)
    csrf = csrf_token_for(
        secret_key=settings.secret_key.get_secret_value(), session_id=principal.session_id
    )
    viewer = Viewer(
        principal=principal, name=name, customer_id=customer_id, lang=lang, csrf_token=csrf
    )
    language_apply(request, lang)
    request.state.viewer = viewer
    request.state.csrf_token = csrf
    return viewer


def viewer_of(
    permission: Permission,
    *,
    roles: tuple[Role, ...] = (),
    limit: RateClass = "reads",
) -> Callable[..., Awaitable[Viewer]]:
    """A page dependency: the API's ``require(permission)``, then one of ``roles`` (all if
    empty), then the person's name and language."""
    required = require(permission, limit=limit)

    async def dependency(
        request: Request,
        session: Annotated[AsyncSession, Depends(db_session, scope="function")],
        principal: Annotated[Principal, Depends(required)],
    ) -> Viewer:
        if roles and principal.role not in roles:
            # Shown in the person's language: the language is known before the refusal.
            await _viewer_load(request, session, principal)
            raise PermissionDeniedError("This page is not for your role.")
        return await _viewer_load(request, session, principal)

    dependency.__name__ = f"viewer_{permission.name.lower()}"
    return dependency


async def viewer_optional(request: Request, session: AsyncSession) -> Viewer | None:
    """The signed-in person if the request carries a valid session, else None (no CSRF check:
    for GET pages such as the sign-in page, which sends a signed-in person home)."""
    if not request.cookies.get("access_token"):
        return None
    try:
        principal = await principal_authenticate(request, session)
    except (AuthenticationError, PermissionDeniedError):
        return None
    return await _viewer_load(request, session, principal)


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site (never another site: no open redirect)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target


def login_url(next_path: str | None = None) -> str:
    if not next_path or next_path in ("/", "/login"):
        return "/login"
    return f"/login?next={quote(next_path, safe='/')}"


# --- CSRF of forms shown before sign-in ----------------------------------------------------------


def anonymous_csrf(request: Request) -> str:
    """The token for a form shown before sign-in (kept in the request; ``anonymous_csrf_set``
    puts it in the cookie of the response)."""
    token = request.cookies.get(ANONYMOUS_CSRF_COOKIE) or secrets.token_urlsafe(32)
    request.state.csrf_token = token
    return token


def anonymous_csrf_set(request: Request, response: Response) -> None:
    token = getattr(request.state, "csrf_token", None)
    if token and request.cookies.get(ANONYMOUS_CSRF_COOKIE) != token:
        response.set_cookie(
            ANONYMOUS_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=cookies_secure(request),
            path="/",
        )


async def anonymous_csrf_check(request: Request) -> None:
    """Refuse (403) a form posted before sign-in without the token of its cookie."""
    form = await request.form()
    sent = form.get(CSRF_FORM_FIELD)
    expected = request.cookies.get(ANONYMOUS_CSRF_COOKIE)
    if not (
        isinstance(sent, str)
        and expected
        and secrets.compare_digest(sent.encode(), expected.encode())
    ):
        raise PermissionDeniedError("The form has expired or did not come from this site.")


# --- where cookies work --------------------------------------------------------------------------
