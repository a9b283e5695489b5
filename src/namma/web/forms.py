"""Server-side forms: the posted fields validated by the same Pydantic model as the API's body,
each error next to its field in the person's language, the entered values kept.

    form = await form_parse(request, PasswordBody)
    if form.ok:
        try:
            await service.password_change(session, ..., new_password=form.data.new_password)
        except InvalidInputError as exc:
            await form.failed(session, exc)          # rolls back, errors by field
    if not form.ok:
        return render(request, "auth/password.html", {"form": form}, status_code=422)

A money action adds the confirmation step: the first valid post answers the confirmation page
(``form.confirmed`` is False: the macro ``confirm`` in ``macros/forms.html`` repeats the values
as hidden fields with ``confirmed=yes``); only the second post acts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import CSRF_FORM_FIELD
from namma.kit.errors import AppError
from namma.kit.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from namma.web.i18n import N_, gettext

T = TypeVar("T", bound=BaseModel)

CONFIRM_FIELD = "confirmed"
EDIT_FIELD = "edit"  # "go back and change" from the confirmation step
# The form's own fields that are not the model's.
_CONTROL_FIELDS = frozenset({CSRF_FORM_FIELD, CONFIRM_FIELD, EDIT_FIELD})
FORM_ERROR = "__all__"  # an error about the whole form, shown above it


@dataclass
class Form(Generic[T]):
    """A posted form: what was entered, the model if valid, the errors by field."""

    values: dict[str, str] = field(default_factory=dict)
    data: T | None = None
    errors: dict[str, str] = field(default_factory=dict)
    confirmed: bool = False
    editing: bool = False

    @property
    def ok(self) -> bool:
        return self.data is not None and not self.errors

    def value(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)

    def error(self, name: str) -> str | None:
        return self.errors.get(name)

    def add_error(self, name: str, message: str) -> None:
        """``message``: already translated."""
        self.errors.setdefault(name, message)

    async def failed(self, session: AsyncSession, exc: AppError) -> None:
        """A service refused: nothing it did is kept, its reasons go next to their fields."""
        await session.rollback()
        details = exc.details if isinstance(exc.details, list) else []
        for item in details:
            if isinstance(item, dict) and "field" in item:
                name = str(item["field"])
                self.add_error(
                    name if name in self.values else FORM_ERROR,
                    message_translate(str(item.get("message", exc.message))),
                )
        if not self.errors:
            self.add_error(FORM_ERROR, message_translate(exc.message))


def empty_form() -> Form[Any]:
    return Form()


async def form_parse(request: Request, model: type[T], **extra: Any) -> Form[T]:
    """Validate the posted form with ``model``. Empty inputs count as not given (the model's
    default applies, or "required"); ``extra`` adds fields the form does not carry."""
    posted = await request.form()
    values = {
        key: value if "password" in key else value.strip()
        for key, value in posted.items()
        if isinstance(value, str) and key not in _CONTROL_FIELDS
    }
    form: Form[T] = Form(
        values=values,
        confirmed=posted.get(CONFIRM_FIELD) == "yes",
        editing=posted.get(EDIT_FIELD) == "yes",
    )
    given = {k: v for k, v in values.items() if v != "" and k in model.model_fields} | extra
    try:
        form.data = model.model_validate(given)
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"]) or FORM_ERROR
            form.add_error(name if name in model.model_fields else FORM_ERROR, _message(error))
    return form


# --- messages ------------------------------------------------------------------------------------

_REQUIRED = N_("Please fill this in.")
_INVALID = N_("This value is not valid.")


def _message(error: ErrorDetails) -> str:
    return error_message(error)


def error_message(error: ErrorDetails) -> str:
    """A Pydantic error in the person's language, by its kind."""
    kind = error["type"]
    context: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and context.get("min_length") == 1):
        return gettext(_REQUIRED)
    if kind == "string_too_short":
        return gettext(N_("Too short: at least %(n)s characters.")) % {"n": context["min_length"]}
    if kind == "string_too_long":
        return gettext(N_("Too long: at most %(n)s characters.")) % {"n": context["max_length"]}
    if kind == "string_pattern_mismatch":
        return gettext(N_("This is not in the expected format."))
    if kind in ("int_parsing", "decimal_parsing", "float_parsing", "int_type", "decimal_type"):
        return gettext(N_("Enter a number."))
    if kind in ("greater_than_equal", "greater_than"):
        return gettext(N_("Too small.")) + f" (≥ {context.get('ge', context.get('gt'))})"
    if kind in ("less_than_equal", "less_than"):
        return gettext(N_("Too large.")) + f" (≤ {context.get('le', context.get('lt'))})"
    if kind.startswith("date") or kind.startswith("datetime"):
        return gettext(N_("Enter a date."))
    if kind == "text_refused":
        return gettext(N_("Remove the invisible or control characters from this text."))
    if kind in ("enum", "literal_error"):
        return gettext(N_("Choose one of the options."))
    return gettext(_INVALID)


# The services' English messages a page can show, translated through the catalogue. Messages with
# a number in them are listed as the service writes them.
_SERVICE_MESSAGES: dict[str, tuple[str, Mapping[str, object]]] = {
    f"Password must be at least {MIN_PASSWORD_LENGTH} characters": (
        N_("The password must have at least %(n)s characters."),
        {"n": MIN_PASSWORD_LENGTH},
    ),
    f"Password must be at most {MAX_PASSWORD_LENGTH} characters": (
        N_("The password must have at most %(n)s characters."),
        {"n": MAX_PASSWORD_LENGTH},
    ),
}
# Messages the services raise word for word (marked here so that the catalogue has them).
SERVICE_MESSAGES_PLAIN = (
    N_("This password is too common; choose another"),
    N_("The current password is wrong"),
    N_("Choose a password different from the current one"),
    N_("The code does not match; check the app and the phone's clock"),
    N_("Two-factor authentication is already enabled for this account."),
    N_("Wrong login or password."),
    N_("Too many failed attempts on this account; wait before trying again."),
    N_("Too many login attempts. Please try again later."),
    N_("Too many requests; slow down and try again shortly."),
    N_("You do not have permission to do this."),
    N_("This page is not for your role."),
    N_("The form has expired or did not come from this site."),
    N_("Missing or wrong CSRF token: send the csrf_token cookie's value in X-CSRF-Token."),
    N_("Loan not found"),
    N_("Collection not found"),
    N_("Document not found"),
    N_("Customer not found"),
    N_("The Key Facts Statement is available once the loan is approved"),
    # The back office's loans and cash (issue 18; issue 16 item 11).
    N_("You applied for this loan; another officer must decide it."),
    N_("Verify the customer's KYC before approving"),
    N_("You declared this hand-over; another officer must count the cash."),
    N_("This hand-over was already counted"),
    N_("This hand-over was reversed; it cannot be counted"),
    N_("The amount counted cannot be negative"),
    N_("Cash hand-over not found"),
    N_("The amount to settle has changed since the quote; ask for it again."),
)


# Messages with a value in them, recognised by their pattern: (pattern, catalogue message).
_SERVICE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"This needs the permission (?P<permission>[a-z:_-]+), "
            r"which your account does not have\."
        ),
        N_("This needs the permission %(permission)s, which your account does not have."),
    ),
)


def message_translate(message: str) -> str:
    """A service's English message in the person's language (itself if the catalogue lacks
    it: better English than nothing)."""
    known = _SERVICE_MESSAGES.get(message)
    if known is not None:
        text, values = known
        return gettext(text) % dict(values)
    for pattern, text in _SERVICE_PATTERNS:
        found = pattern.fullmatch(message)
        if found is not None:
            return gettext(text) % found.groupdict()
    return gettext(message)
