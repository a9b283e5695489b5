"""HTML pages. They compute nothing: the browser calls the same JSON API as every client."""

from __future__ import annotations

import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
templates = Jinja2Templates(directory=WEB_DIR / "templates")

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> RedirectResponse:
    target = (
        "/account"
        if request.cookies.get("access_token") or request.cookies.get("csrf_token")
        else "/login"
    )
    return RedirectResponse(target, status_code=303)


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html")


@router.get("/loans/{loan_id}/kfs", response_class=HTMLResponse)
async def kfs_page(request: Request, loan_id: uuid.UUID) -> HTMLResponse:
    """The printable Key Facts Statement (its data comes from the API, with the caller's scope)."""
    return templates.TemplateResponse(request, "kfs.html", {"loan_id": loan_id})


@router.get("/account", response_class=HTMLResponse)
async def account_page(request: Request) -> HTMLResponse:
    return templates.TemplateResponse(request, "account.html")
