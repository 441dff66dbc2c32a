"""``facelead serve``: the REST API and the web application under uvicorn.

Uvicorn is given an import string and a factory (``facelead.api.app:app_factory``)
rather than an application object: each worker process builds its own
``Services`` from the environment, and the command line never imports the
API (the interfaces are independent layers).
"""

from __future__ import annotations

from typing import Annotated

import typer

from facelead.cli.output import console
from facelead.errors import InputError
from facelead.services.context import Services
from facelead.services.identity import needs_first_admin

APP_FACTORY = "facelead.api.app:app_factory"


def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to listen on; put a TLS proxy in front for others.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (each loads its own models).")] = 1,
) -> None:
    """Serve the REST API (/api/v1, OpenAPI at /api/v1/openapi.json) and the web application."""
    import uvicorn

    if not 1 <= port <= 65535:
        raise InputError("--port must be 1-65535", code="invalid_port")
    if workers < 1:
        raise InputError("--workers must be at least 1", code="invalid_workers")
    services = Services()
    services.initialise()  # schema upgrades once, before any worker starts
    if needs_first_admin(services):
        console.print("no user yet: run `facelead init` to create the first administrator")
    services.db.dispose()
    console.print(f"FaceLead on http://{host}:{port}/ (API: /api/v1)", markup=False)
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
    )
