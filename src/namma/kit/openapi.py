"""The OpenAPI document: one error body for every error status, and what every authenticated
operation shares, added once here instead of on every route.

- ``error_responses(404, 409)`` documents the error statuses a route answers beyond the
  automatic ones (``responses=error_responses(...)`` on the decorator); each uses the one error
  body of ``namma.kit.errors``: ``{"error": {"code", "message", "details"}}``.
- ``openapi_install(app)`` completes the generated document. An operation with a security
  requirement (every route that depends on ``namma.auth.deps.require``, which declares the
  bearer and cookie schemes) answers 401, 403 and 429; one with a path parameter 404; one with
  a body 400 (it could not be parsed); one with any input 422 — with our error body, not
  FastAPI's ``HTTPValidationError`` (our handler answers that shape). Its unsafe methods
  (POST, PUT, PATCH, DELETE) list the ``X-CSRF-Token`` header that cookie-authenticated calls
  must send.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

REF = "#/components/schemas/"
CSRF_HEADER_NAME = "X-CSRF-Token"
UNSAFE = frozenset({"post", "put", "patch", "delete"})
AUTHENTICATED_ERRORS = (401, 403, 429)


class ErrorInfo(BaseModel):
    code: str = Field(examples=["not_found"], description="Stable, for programs")
    message: str = Field(description="For people")
    details: Any = Field(description="More about the error, or null; see each status")


class ErrorBody(BaseModel):
    """Every error answer (docs/api.md)."""

    error: ErrorInfo


class FieldError(BaseModel):
    field: str = Field(examples=["amount"], description="The field, dotted for nested ones")
    message: str


class InvalidInputInfo(BaseModel):
    code: str = Field(examples=["invalid_input"])
    message: str
    details: list[FieldError]


class InvalidInputBody(BaseModel):
    """A 422: the fields that were refused, and why."""

    error: InvalidInputInfo


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body could not be read: not JSON, or not UTF-8 (`bad_request`)",
    401: "Not authenticated: no valid session, or it has ended (`unauthenticated`)",
    403: "Not allowed: the role lacks the permission, a cookie-authenticated write sent no "
    "valid `X-CSRF-Token` (`forbidden`), or the password must be changed first "
    "(`password_change_required`)",
    404: "Unknown, or outside the caller's scope: the two look the same (`not_found`)",
    409: "The record's current state does not allow this (`conflict`); `details` may name "
    "the state",
    422: "Invalid input (`invalid_input`): `details` lists `{field, message}`",
    429: "Too many requests (`rate_limited`): try again after `Retry-After` seconds",
    503: "Not ready",
}

RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again",
        "schema": {"type": "integer"},
        "required": True,
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status with the error body and its meaning."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": InvalidInputBody if status == 422 else ErrorBody,
            "description": ERROR_DESCRIPTIONS[status],
        }
        if status == 429:
            entry["headers"] = RETRY_AFTER
        out[status] = entry
    return out


def _error_json(status: int) -> dict[str, Any]:
    name = "InvalidInputBody" if status == 422 else "ErrorBody"
    entry: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": REF + name}}},
    }
    if status == 429:
        entry["headers"] = RETRY_AFTER
    return entry


CSRF_PARAMETER: dict[str, Any] = {
    "name": CSRF_HEADER_NAME,
    "in": "header",
    "required": False,
    "description": "Cookie-authenticated calls only (browsers): the `csrf_token` cookie's "
    "value. A call with `Authorization: Bearer` needs none.",
    "schema": {"type": "string"},
}


def openapi_complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the shared errors, parameters and schemas to a generated document (in place)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorBody, InvalidInputBody):
        found = model.model_json_schema(ref_template=REF + "{model}", mode="serialization")
        components.update(found.pop("$defs", {}))
        components[model.__name__] = found
    for operations in schema.get("paths", {}).values():
        for method, operation in operations.items():
            _operation_complete(method, operation)
    if "HTTPValidationError" not in str(schema.get("paths")):
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
    return schema


def _operation_complete(method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    parameters: list[dict[str, Any]] = operation.get("parameters", [])
    secured = bool(operation.get("security"))
    automatic: list[int] = []
    if secured:
        automatic += AUTHENTICATED_ERRORS
    if any(p.get("in") == "path" for p in parameters):
        automatic.append(404)
    if "requestBody" in operation:
        automatic.append(400)
    if parameters or "requestBody" in operation:
        automatic.append(422)
    for status in automatic:
        responses.setdefault(str(status), _error_json(status))
    validation = responses.get("422", {})
    if "HTTPValidationError" in str(validation.get("content")):
        responses["422"] = _error_json(422)
    if (
        secured
        and method in UNSAFE
        and not any(p.get("name") == CSRF_HEADER_NAME for p in parameters)
    ):
        operation["parameters"] = [*parameters, CSRF_PARAMETER]
    operation["responses"] = dict(sorted(responses.items()))


def openapi_install(app: FastAPI) -> None:
    """Serve the completed document: FastAPI builds it (once, or again when routes are
    added) and it is completed here once per build."""
    generate = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not completed or completed[0] is not schema:
            completed[:] = [openapi_complete(schema)]
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
