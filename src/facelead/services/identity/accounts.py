"""Accounts, training certification, MFA enrolment and API tokens (admin use cases).

Every state change runs through ``uow.perform``: authorised, one transaction,
its audit event inside it. Secrets (TOTP secret, API token) are returned once,
in the value the use case returns, and never again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from facelead.domain.access import SYSTEM, Action, Actor, Role
from facelead.domain.identity import (
    IssuedToken,
    MfaEnrolment,
    TokenView,
    UserView,
    hash_password,
    new_token,
    new_totp_secret,
    normalise_agency,
    normalise_username,
    parse_roles,
    provisioning_uri,
    token_digest,
)
from facelead.errors import ConflictError, NotFoundError
from facelead.services.context import Services
from facelead.services.identity.common import identity_policy, secret_box, token_view, user_view
from facelead.services.uow import Scope, perform
from facelead.store import identity as repo
from facelead.store.identity_models import User
from facelead.store.models import utcnow

# --- accounts ---


def needs_first_admin(services: Services) -> bool:
    """True on a fresh installation: no user exists yet."""
    with services.db.session() as session:
        return repo.count_users(session) == 0


def create_first_admin(
    services: Services, username: str, password: str, *, agency: str, agency_name: str
) -> MfaEnrolment:
    """The installer (SYSTEM) creates one admin, once; afterwards only admins add users."""
    with perform(services, SYSTEM, Action.USER_MANAGE, object_type="user") as scope:
        repo.lock_users_table(scope.session)
        if repo.count_users(scope.session):
            raise ConflictError("users already exist: ask an administrator", code="user_exists")
        scope.details["first_admin"] = True
        return _create_user(services, scope, username, password, [Role.ADMIN], agency, agency_name)


def add_user(
    services: Services,
    actor: Actor,
    username: str,
    password: str,
    roles: Iterable[str],
    agency: str,
    *,
    agency_name: str | None = None,
) -> MfaEnrolment:
    """Create an account; its TOTP secret is returned here once and never again.

    An unknown agency is created when ``agency_name`` is given, else refused,
    so a typo cannot silently found a new agency.
    """
    with perform(services, actor, Action.USER_MANAGE, object_type="user") as scope:
        return _create_user(services, scope, username, password, roles, agency, agency_name)


def _create_user(
    services: Services,
    scope: Scope,
    username: str,
    password: str,
    roles: Iterable[str],
    agency_code: str,
    agency_name: str | None,
) -> MfaEnrolment:
    name, code, granted = (
        normalise_username(username),
        normalise_agency(agency_code),
        parse_roles(roles),
    )
    scope.details.update(username=name, roles=sorted(granted), agency=code)
    identity_policy(services).password.check(password, name)
    secret = new_totp_secret()  # the slow hashing happens before the first write (lock)
    password_hash, sealed = hash_password(password), secret_box(services).seal(secret)
    agency = repo.get_agency(scope.session, code)
    if agency is None:
        if not agency_name or not agency_name.strip():
            raise NotFoundError(
                f"no agency {code}; give its name to create it", code="agency_not_found"
            )
        agency = repo.add_agency(scope.session, code, agency_name.strip())
        scope.details["agency_created"] = True
    user = repo.add_user(
        scope.session,
        username=name,
        agency=agency,
        password_hash=password_hash,
        totp_secret=sealed,
        roles=[role.value for role in granted],
        certified_until=None,
    )
    scope.object_id = str(user.id)
    return MfaEnrolment(user_view(user), secret, provisioning_uri(secret, name))


def list_users(services: Services, actor: Actor) -> list[UserView]:
    with perform(services, actor, Action.USER_READ, object_type="user") as scope:
        users = [user_view(user) for user in repo.list_users(scope.session)]
        scope.details["count"] = len(users)
    return users


def _managed(scope: Scope, username: str) -> User:
    """The target account of a management action, recorded on the audit event."""
    name = normalise_username(username)
    scope.details["username"] = name
    user = repo.require_user(scope.session, name)
    scope.object_id = str(user.id)
    return user


def disable_user(services: Services, actor: Actor, username: str) -> UserView:
    """Disable an account and revoke its API tokens; the last enabled admin stays."""
    with perform(services, actor, Action.USER_MANAGE, object_type="user") as scope:
        user = _managed(scope, username)
        admin = Role.ADMIN.value
        if (
            not user.disabled
            and admin in user.role_names
            and repo.count_enabled_with_role(scope.session, admin) <= 1
        ):
            raise ConflictError("cannot disable the last enabled admin", code="last_admin")
        user.disabled = True
        now = utcnow()
        revoked = 0
        for token in repo.list_tokens(scope.session, user.id):
            if token.revoked_at is None and token.expires_at > now:
                token.revoked_at, revoked = now, revoked + 1
        scope.details["tokens_revoked"] = revoked
        return user_view(user)


def enable_user(services: Services, actor: Actor, username: str) -> UserView:
    """Re-enable an account and clear its lockout (an admin unlock)."""
    with perform(services, actor, Action.USER_MANAGE, object_type="user") as scope:
        user = _managed(scope, username)
        user.disabled, user.failed_attempts, user.locked_until = False, 0, None
        return user_view(user)


def certify_user(
    services: Services, actor: Actor, username: str, until: dt.date, *, today: dt.date | None = None
) -> UserView:
    """Record training certification; searching and reviewing need it current."""
    with perform(services, actor, Action.TRAINING_CERTIFY, object_type="user") as scope:
        user = _managed(scope, username)
        identity_policy(services).check_certification(until, today or dt.date.today())
        scope.details.update(
            certified_until=until.isoformat(),
            previous=user.certified_until.isoformat() if user.certified_until else None,
        )
        user.certified_until = until
        return user_view(user)


def reset_mfa(services: Services, actor: Actor, username: str) -> MfaEnrolment:
    """A new TOTP secret (lost phone); the old one stops working at once."""
    with perform(services, actor, Action.USER_MANAGE, object_type="user") as scope:
        user = _managed(scope, username)
        secret = new_totp_secret()
        user.totp_secret, user.totp_last_step = secret_box(services).seal(secret), None
        return MfaEnrolment(user_view(user), secret, provisioning_uri(secret, user.username))


# --- API tokens ---


def issue_token(
    services: Services,
    actor: Actor,
    username: str,
    *,
    days: int | None = None,
    label: str = "",
    now: dt.datetime | None = None,
) -> IssuedToken:
    """A bearer token for scripts; the secret is returned once, only its digest is kept."""
    now = now or utcnow()
    with perform(services, actor, Action.USER_MANAGE, object_type="api_token") as scope:
        user = _managed(scope, username)
        if user.disabled:
            raise ConflictError(f"{user.username} is disabled", code="account_disabled")
        expires_at = identity_policy(services).token.expiry(now, days)
        secret = new_token()
        row = repo.add_token(
            scope.session,
            user=user,
            digest=token_digest(secret),
            label=label.strip()[:100],
            expires_at=expires_at,
            issued_by_id=actor.user_id,
        )
        scope.object_id = str(row.id)
        scope.details.update(token_id=row.id, expires_at=expires_at.isoformat())
        return IssuedToken(row.id, user.username, row.label, expires_at, secret)


def list_tokens(services: Services, actor: Actor, username: str) -> list[TokenView]:
    with perform(services, actor, Action.USER_READ, object_type="api_token") as scope:
        user = _managed(scope, username)
        return [token_view(token) for token in repo.list_tokens(scope.session, user.id)]


def revoke_token(
    services: Services, actor: Actor, token_id: int, *, now: dt.datetime | None = None
) -> TokenView:
    """Revoke at once; revoking twice keeps the first revocation time."""
    with perform(
        services, actor, Action.USER_MANAGE, object_type="api_token", object_id=str(token_id)
    ) as scope:
        token = repo.get_token(scope.session, token_id)
        if token is None:
            raise NotFoundError(f"no API token {token_id}", code="token_not_found")
        scope.details.update(username=token.user.username, already=token.revoked_at is not None)
        if token.revoked_at is None:
            token.revoked_at = now or utcnow()
        return token_view(token)
