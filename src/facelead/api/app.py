"""The FastAPI application: the REST API under /api/v1, and the web application when present.

``facelead serve`` runs ``app_factory`` under uvicorn (an import string, so
that several worker processes each build their own ``Services``). Tests build
the app around the ``Services`` of a fixture with ``create_app(services)``.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI

from facelead import DISCLAIMER, __version__
from facelead.api.errors import install_error_handlers
from facelead.api.middleware import (
    BodyLimitMiddleware,
    SecurityHeadersMiddleware,
    UnexpectedErrorMiddleware,
)
from facelead.api.router import api_router
from facelead.services.context import Services

logger = logging.getLogger("facelead.api")

API_PREFIX = "/api/v1"
MULTIPART_OVERHEAD = 64 * 1024  # form fields and part headers around one full-size image
WEB_MODULE = "facelead.web.routes"

DESCRIPTION = f"""Policy-enforcing face search for investigative leads.

**{DISCLAIMER}.**

Every route calls the same services as the command line: authorisation,
policy and audit happen there, so every action here is recorded in the
tamper-evident audit log. Authenticate with `Authorization: Bearer <token>`
(a session token from `POST /api/v1/auth/login`, or an API token an
administrator issued). Every error is JSON `{{"code", "message"}}`.
"""


def create_app(services: Services | None = None, *, web: bool = True) -> FastAPI:
    """The application around ``services`` (default: from the environment, initialised).

    ``web=False`` leaves the web application out (the API's own tests).
    """
    owned = services is None
    if services is None:
        services = Services()
        services.initialise()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            services.db.dispose()

    app = FastAPI(
        title="FaceLead",
        version=__version__,
        description=DESCRIPTION,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # the interactive pages load scripts from a CDN: not on this server
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    install_error_handlers(app)
    app.include_router(api_router, prefix=API_PREFIX)
    if web:
        _mount_web(app, services)
    # Added innermost first: headers wrap everything, the 500 guard sits inside them.
    app.add_middleware(UnexpectedErrorMiddleware)
    limit = services.settings.max_upload_bytes + MULTIPART_OVERHEAD
    app.add_middleware(BodyLimitMiddleware, max_bytes=limit)
    app.add_middleware(SecurityHeadersMiddleware)
    return app


def _mount_web(app: FastAPI, services: Services) -> None:
    """Add the web application's pages when ``facelead.web.routes`` provides ``mount``.

    Imported by name: the interfaces are independent layers (import-linter),
    and the API must run whether or not the web application is installed. A
    web module that exists but fails to import is an error, not a silent skip.
    """
    try:
        module = importlib.import_module(WEB_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != WEB_MODULE:
            raise
        logger.info("no web application (%s); serving the API only", WEB_MODULE)
        return
    mount: Callable[[FastAPI, Services], None] = module.mount
    mount(app, services)


def app_factory() -> FastAPI:
    """For uvicorn's ``--factory``: settings from the environment (FACELEAD_HOME...)."""
    return create_app()
