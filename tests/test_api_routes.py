"""Every API route is tested for an allowed role and a refused one; ``facelead serve`` serves.

The route tests each declare the routes they cover (``ROUTES``) and assert
they exercised each one both ways; this module checks that together they
cover every operation of the OpenAPI document, so a new route without role
tests fails here.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from facelead.api.app import create_app
from facelead.config import Settings
from facelead.services.context import Services
from tests import (
    test_api_audit,
    test_api_auth,
    test_api_cases,
    test_api_users,
    test_api_workflow,
)

COVERED = (
    test_api_auth.ROUTES
    | test_api_cases.ROUTES
    | test_api_users.ROUTES
    | test_api_audit.ROUTES
    | test_api_workflow.ROUTES
)


def operations(services: Services) -> set[tuple[str, str]]:
    spec = create_app(services, web=False).openapi()
    return {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, item in spec["paths"].items()
        for method in item
    }


def test_every_route_has_role_tests(tmp_path: Path) -> None:
    ops = operations(Services(Settings(home=tmp_path)))
    assert ops - COVERED == set(), "routes without an allowed/refused test"
    assert COVERED - ops == set(), "tests for routes that no longer exist"


def test_web_application_is_mounted_when_present(tmp_path: Path) -> None:
    services = Services(Settings(home=tmp_path))
    services.initialise()
    api_only = {getattr(r, "path", "") for r in create_app(services, web=False).routes}
    everything = {getattr(r, "path", "") for r in create_app(services).routes}
    assert api_only <= everything
    if importlib.util.find_spec("facelead.web.routes") is None:
        assert everything == api_only
    else:
        assert everything - api_only, "facelead.web.routes.mount added no route"
    services.db.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_facelead_serve_runs_the_api_under_uvicorn(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "FACELEAD_HOME": str(tmp_path / "home")}
    env.pop("FACELEAD_DATABASE_URL", None)
    command = [str(Path(sys.executable).with_name("facelead")), "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(url, timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"facelead serve did not start:\n{output[-3000:]}")
                time.sleep(0.3)
        assert response.status_code == 200 and response.json()["info"]["title"] == "FaceLead"
        assert response.headers["x-frame-options"] == "DENY" and "server" not in response.headers
        refused = httpx.get(f"http://127.0.0.1:{port}/api/v1/auth/me", timeout=5)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    finally:
        server.terminate()
        server.wait(timeout=20)
