"""Logging in (password + TOTP) for a session token, logging out, and who am I."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from facelead.api.deps import INTERFACE, BearerToken, CurrentActor, ServicesDep, client_address
from facelead.api.fields import ONE_LINE, Name, Secret
from facelead.api.models import ActorOut, SessionOut
from facelead.domain.access import Actor
from facelead.services.identity import close_session, login, open_session
from facelead.services.identity.sessions import SESSION_IDLE

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Name
    password: Secret
    totp: str | None = Field(
        default=None, max_length=16, pattern=ONE_LINE, description="The 6-digit TOTP code."
    )


def actor_out(actor: Actor) -> ActorOut:
    return ActorOut(
        username=actor.username,
        roles=sorted(actor.roles),
        agency=actor.agency,
        certified_until=actor.certified_until,
    )


@router.post("/login")
def login_route(body: LoginIn, request: Request, services: ServicesDep) -> SessionOut:
    """Password and TOTP code (CJIS advanced authentication) for a session token.

    The token expires after 30 idle minutes (every request moves the deadline
    on) and after 12 hours at most. Failed attempts count towards the lockout.
    """
    actor = login(
        services,
        body.username,
        body.password,
        body.totp,
        client_address(request),
        interface=INTERFACE,
    )
    issued = open_session(services, actor, interface=INTERFACE)
    return SessionOut(
        token=issued.token,
        expires_at=issued.expires_at,
        idle_timeout_seconds=int(SESSION_IDLE.total_seconds()),
        user=actor_out(actor),
    )


@router.post("/logout", status_code=204, response_class=Response)
def logout_route(actor: CurrentActor, token: BearerToken, services: ServicesDep) -> Response:
    """Revoke the token this request carries, at once (a session or an API token)."""
    close_session(services, actor, token)
    return Response(status_code=204)


@router.get("/me")
def me_route(actor: CurrentActor) -> ActorOut:
    """Who the token belongs to: roles, agency and training as the database has them now."""
    return actor_out(actor)
