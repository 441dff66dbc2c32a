"""``mount``: how the REST API's application takes in the web pages.

``facelead.api`` builds the FastAPI application and calls ``mount(app,
services)``; the pages go at ``/``, their stylesheet and scripts at
``/static``. Everything the pages do goes through the same services as the
CLI and the API.
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

from facelead.services.context import Services
from facelead.web import (
    admin_pages,
    audit_pages,
    auth_pages,
    case_pages,
    report_pages,
    review_pages,
    search_pages,
)
from facelead.web.context import (
    STATE_KEY,
    STATIC_DIR,
    Clock,
    WebApp,
    WebConfig,
    make_templates,
)
from facelead.web.sessions import PageStates

ROUTERS = (
    auth_pages.router,
    case_pages.router,
    search_pages.router,
    review_pages.router,
    report_pages.router,
    audit_pages.router,
    admin_pages.router,
)


class _Static(StaticFiles):
    """Stylesheet and scripts: public, but revalidated so a fix reaches every browser."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", b"no-cache"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount(
    app: FastAPI,
    services: Services,
    *,
    cookie_secure: bool | None = None,
) -> None:
    """Add the web pages to ``app``.

    ``cookie_secure`` None marks the session cookie Secure whenever the
    request came over https (the production case, directly or behind a TLS
    proxy with ``--proxy-headers``); tests on http://127.0.0.1 pass False.
    """
    clock = Clock()
    pages = PageStates(clock=clock)
    web = WebApp(services, pages, make_templates(), WebConfig(cookie_secure), clock)
    setattr(app.state, STATE_KEY, web)
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount("/static", _Static(directory=str(STATIC_DIR)), name="static")
