"""One JSON error body for every error: ``{"error": {"code", "message", "details"}}``.

Services raise ``AppError`` subclasses; the handlers here turn them, validation failures and
anything unexpected into that body. An unexpected error answers 500 with no internals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from namma.kit.apitypes import text_printable

log = structlog.get_logger(__name__)


class AppError(Exception):
    status_code = 400
    code = "bad_request"
    headers: dict[str, str] | None = None

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(AppError):
    """Unknown, or outside the caller's scope: the two are indistinguishable on purpose."""

    status_code = 404
    code = "not_found"


class ConflictError(AppError):
    """The request is valid but the resource's current state does not allow it."""

    status_code = 409
    code = "conflict"


class InvalidInputError(AppError):
    """A business rule rejected a field; ``details`` lists ``{"field", "message"}``."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, details=[{"field": field, "message": message}])


class PermissionDeniedError(AppError):
    status_code = 403
    code = "forbidden"


class AuthenticationError(AppError):
    status_code = 401
    code = "unauthenticated"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """("body", "amount") -> "amount"; ("query", "page") -> "page"; nested -> "items.0.amount".
    An unknown field's name is the client's text: characters JSON cannot carry are replaced."""
    parts = [text_printable(str(p)) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


# Pydantic prefixes the message of a validator's ValueError / AssertionError with its kind.
_PREFIXES = ("Value error, ", "Assertion failed, ")


def field_message(error: Mapping[str, Any]) -> str:
    """A validation error's message for people: never "Value error, ..."."""
    message = str(error.get("msg", "invalid"))
    for prefix in _PREFIXES:
        if message.startswith(prefix):
            message = message[len(prefix) :]
            return message[:1].upper() + message[1:]
    return message


def validation_details(
    errors: Iterable[Mapping[str, Any]], *, prefix: Sequence[str] = ()
) -> list[dict[str, str]]:
    """``[{"field", "message"}]`` of Pydantic's errors (``prefix``: where the model sits)."""
    return [
        {"field": field_path([*prefix, *err.get("loc", ())]), "message": field_message(err)}
        for err in errors
    ]


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.details),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc.errors())
    return JSONResponse(
        error_body("invalid_input", "The request has invalid fields.", details), status_code=422
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return JSONResponse(
        error_body(code, str(exc.detail)),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request.unhandled_error", path=request.url.path)
    return JSONResponse(
        error_body("internal_error", "Something went wrong on our side; nothing was saved."),
        status_code=500,
    )


def errors_install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
