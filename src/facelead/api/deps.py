"""Dependencies that make each route's signature show what it needs.

``CurrentActor`` authenticates (a bearer token: a session from
``POST /auth/login`` or an administrator-issued API token); it never
authorises. What an actor may do is decided in the services, exactly as for
the command line, so no route re-implements a permission rule.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from facelead.domain.access import Actor
from facelead.errors import AuthenticationError
from facelead.services.context import Services
from facelead.services.identity import authenticate_token

INTERFACE = "api"

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A session token from POST /api/v1/auth/login (expires after 30 idle "
    "minutes) or an API token an administrator issued.",
)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def client_address(request: Request) -> str | None:
    """What the audit log records as the origin of the request."""
    return request.client.host if request.client else None


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> str:
    if credentials is None or not credentials.credentials.strip():
        raise AuthenticationError(
            "send Authorization: Bearer <token> (POST /api/v1/auth/login gives one)",
            code="unauthenticated",
        )
    return credentials.credentials.strip()


BearerToken = Annotated[str, Depends(bearer_token)]


def current_actor(request: Request, services: ServicesDep, token: BearerToken) -> Actor:
    """The token's holder, read fresh (disabling or retraining takes effect at once); audited."""
    return authenticate_token(services, token, client_address(request), interface=INTERFACE)


CurrentActor = Annotated[Actor, Depends(current_actor)]
