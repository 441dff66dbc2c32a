"""``facelead serve``: the REST API and the web application under uvicorn.

Uvicorn is given an import string and a factory (``facelead.api.app:app_factory``)
rather than an application object: each worker process builds its own
``Services`` from the environment, and the command line never imports the
API (the interfaces are independent layers).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from facelead.cli.output import console
from facelead.errors import InputError
from facelead.services.context import Services
from facelead.services.identity import needs_first_admin

APP_FACTORY = "facelead.api.app:app_factory"
WORKER_HEALTHCHECK_S = 120
"""How long uvicorn's supervisor waits for a worker to answer its liveness ping.

Uvicorn's default (5 s) kills a worker that holds the interpreter lock that long:
importing OpenCV and dlib and loading the face models on a busy host, or one
long embedding, does, and the killed worker's searches fail mid-request before it
is restarted to be killed again. A hung worker is still replaced, only later.
"""
WORKER_FACTORY = "facelead.cli.serve:worker_app"


def worker_app() -> Any:
    """Uvicorn's factory in each worker: the application (loaded by its import string,
    as uvicorn would) plus a thread keeping this worker's memory-mapped index at the
    database generation, so a change is applied in every worker within about a second."""
    module, name = APP_FACTORY.split(":")
    app = getattr(importlib.import_module(module), name)()
    app.state.services.start_index_refresher()
    return app


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
        WORKER_FACTORY,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        server_header=False,
        log_level="info",
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
    )
