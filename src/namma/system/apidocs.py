"""The interactive API reference at /api/docs, with no CDN and no inline script.

Swagger UI's files come from the ``fastapi-offline`` package (Swagger UI 5.32.6, Apache-2.0;
we use only its ``static/`` folder). FastAPI's own docs page loads them from a CDN and starts
them with an inline script, which our Content-Security-Policy forbids; this page loads the same
files from us and starts them with ``apidocs_static/swagger-init.js``.

"Authorize" offers the security schemes the routes declare (namma.auth.deps): a Bearer access
token (``POST /api/auth/login`` with ``"token_delivery": "body"``), or the browser's own session
cookie, for which the start script adds the ``X-CSRF-Token`` header to unsafe requests.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

SWAGGER_UI_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
OWN_DIR = Path(__file__).resolve().parent / "apidocs_static"
ASSETS_URL = "/api/docs/assets"


def apidocs_page(*, title: str, openapi_url: str) -> str:
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{escape(title)} · API reference</title>
  <link rel="stylesheet" href="{ASSETS_URL}/ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
  <script src="{ASSETS_URL}/ui/swagger-ui-bundle.js"></script>
  <script src="{ASSETS_URL}/namma/swagger-init.js"></script>
</body>
</html>
"""


def apidocs_install(app: FastAPI, *, docs_url: str, openapi_url: str) -> None:
    page = apidocs_page(title=app.title, openapi_url=openapi_url)

    async def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(page)

    # A plain route, like FastAPI's own docs page: not an operation of the API.
    app.add_route(docs_url, docs, methods=["GET"], include_in_schema=False)
    app.mount(f"{ASSETS_URL}/ui", StaticFiles(directory=SWAGGER_UI_DIR), name="apidocs-ui")
    app.mount(f"{ASSETS_URL}/namma", StaticFiles(directory=OWN_DIR), name="apidocs-namma")
