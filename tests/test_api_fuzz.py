"""schemathesis against the OpenAPI document: generated requests never cause a 5xx.

Bounded (20 examples per operation, no shrinking, no example database) so it
runs in ``make test``. Requests carry the token of a certified user holding
every role, so they get past authentication and authorisation into the
services, where malformed input must be refused (4xx), never crash (5xx).
SQLite only: the API code is the same on both backends, and the other API
tests run on both.

The schema is loaded when the module is imported (schemathesis's fixture-based
loader does not work with this pytest), so the application is built then, on
a ``Services`` whose database the ``fuzz_token`` fixture creates.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from facelead.api.app import create_app
from facelead.config import Settings
from facelead.domain.access import SYSTEM, Role
from facelead.services import identity as identity_service
from facelead.services.context import Services
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD

if TYPE_CHECKING:
    from schemathesis.specs.openapi.schemas import OpenApiCase

FUZZER = "fuzzer"
HOME = tempfile.TemporaryDirectory(prefix="facelead-fuzz-")
SERVICES = Services(Settings(home=Path(HOME.name)))
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", create_app(SERVICES, web=False))


@pytest.fixture(scope="module")
def fuzz_token() -> Iterator[str]:
    """Install the deployment and a certified user with every role; their API token."""
    SERVICES.initialise()
    identity_service.create_first_admin(
        SERVICES, "admin", ADMIN_PASSWORD, agency="LACRIS", agency_name="LA County"
    )
    roles = [role.value for role in Role]
    identity_service.add_user(SERVICES, SYSTEM, FUZZER, USER_PASSWORD, roles, "LACRIS")
    until = dt.date.today() + dt.timedelta(days=365)
    identity_service.certify_user(SERVICES, SYSTEM, FUZZER, until)
    yield identity_service.issue_token(SERVICES, SYSTEM, FUZZER, days=1).token
    SERVICES.db.dispose()


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("FACELEAD_FUZZ_EXAMPLES", "20")),  # make fuzz: 500
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: OpenApiCase, fuzz_token: str) -> None:
    token = fuzz_token
    if case.path.endswith("/auth/logout"):  # logging out must not end the other examples' token
        actor = identity_service.authenticate_token(SERVICES, token, "fuzz")
        token = identity_service.open_session(SERVICES, actor).token
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, checks=[not_a_server_error]
    )
