"""Accounts, training certification, MFA and API tokens: administrators (listing also for
auditors and supervisors). TOTP secrets and token secrets appear once, in the response
that creates them.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.errors import error_responses
from facelead.api.fields import MAX_ID, Line, Name, Secret, Username
from facelead.api.models import IssuedTokenOut, MfaEnrolmentOut, TokenOut, UserOut
from facelead.services.identity import (
    add_user,
    certify_user,
    disable_user,
    enable_user,
    issue_token,
    list_tokens,
    list_users,
    reset_mfa,
    revoke_token,
)

router = APIRouter(tags=["users"], responses=error_responses(409))

TokenId = Annotated[int, Path(ge=1, le=MAX_ID)]


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Name
    password: Secret
    roles: list[Name] = Field(min_length=1, max_length=6)
    agency: Name
    agency_name: Line | None = Field(default=None, description="Creates the agency if new.")


class CertificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: dt.date = Field(description="Last day of the certification; a past date withdraws it.")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int | None = Field(default=None, ge=0, le=10_000, description="Default 30, max 90.")
    label: Line = ""


@router.get("/users")
def list_route(actor: CurrentActor, services: ServicesDep) -> list[UserOut]:
    return [UserOut.model_validate(user) for user in list_users(services, actor)]


@router.post("/users", status_code=201)
def add_route(body: UserIn, actor: CurrentActor, services: ServicesDep) -> MfaEnrolmentOut:
    """Create an account; its TOTP secret is in this response and never shown again."""
    enrolment = add_user(
        services,
        actor,
        body.username,
        body.password,
        body.roles,
        body.agency,
        agency_name=body.agency_name,
    )
    return MfaEnrolmentOut.model_validate(enrolment)


@router.post("/users/{username}/disable")
def disable_route(username: Username, actor: CurrentActor, services: ServicesDep) -> UserOut:
    """Disable an account and revoke its tokens (never the last enabled admin)."""
    return UserOut.model_validate(disable_user(services, actor, username))


@router.post("/users/{username}/enable")
def enable_route(username: Username, actor: CurrentActor, services: ServicesDep) -> UserOut:
    """Re-enable an account and clear its lockout."""
    return UserOut.model_validate(enable_user(services, actor, username))


@router.post("/users/{username}/certification")
def certify_route(
    username: Username, body: CertificationIn, actor: CurrentActor, services: ServicesDep
) -> UserOut:
    """Record training certification; searching and reviewing need it current."""
    return UserOut.model_validate(certify_user(services, actor, username, body.until))


@router.post("/users/{username}/mfa-reset")
def reset_mfa_route(
    username: Username, actor: CurrentActor, services: ServicesDep
) -> MfaEnrolmentOut:
    """A new TOTP secret (lost phone); the old one stops working at once."""
    return MfaEnrolmentOut.model_validate(reset_mfa(services, actor, username))


@router.get("/users/{username}/tokens")
def tokens_route(username: Username, actor: CurrentActor, services: ServicesDep) -> list[TokenOut]:
    return [TokenOut.model_validate(token) for token in list_tokens(services, actor, username)]


@router.post("/users/{username}/tokens", status_code=201)
def issue_route(
    username: Username, body: TokenIn, actor: CurrentActor, services: ServicesDep
) -> IssuedTokenOut:
    """An API token for scripts; the secret is in this response only."""
    issued = issue_token(services, actor, username, days=body.days, label=body.label)
    return IssuedTokenOut.model_validate(issued)


@router.post("/tokens/{token_id}/revoke")
def revoke_route(token_id: TokenId, actor: CurrentActor, services: ServicesDep) -> TokenOut:
    """Revoke an API or session token at once."""
    return TokenOut.model_validate(revoke_token(services, actor, token_id))
