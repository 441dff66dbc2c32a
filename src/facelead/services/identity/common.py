"""What the identity use cases share: the policy in force, the MFA secret box,
and how a user record becomes a view or an actor.
"""

from __future__ import annotations

import datetime as dt

from facelead.domain.access import Actor, Role
from facelead.domain.identity import (
    IdentityPolicy,
    LockoutPolicy,
    PasswordPolicy,
    TokenPolicy,
    TokenView,
    UserView,
)
from facelead.services.context import Services
from facelead.store import identity as repo
from facelead.store.identity_models import ApiToken, User

MFA_KEY_FILE = "mfa.key"
BAD_CREDENTIALS = "wrong username or password"  # never says which of the two was wrong
MESSAGES = {
    "bad_credentials": BAD_CREDENTIALS,
    "bad_totp": "wrong or already used TOTP code",
    "token_revoked": "this API token has been revoked",
    "token_expired": "this API token has expired",
}


def identity_policy(services: Services) -> IdentityPolicy:
    """The rules in force, from settings where the deployment sets them."""
    s = services.settings
    return IdentityPolicy(
        password=PasswordPolicy(min_length=s.password_min_length),
        lockout=LockoutPolicy(
            max_failures=s.lockout_max_failures, lock_for=dt.timedelta(minutes=s.lockout_minutes)
        ),
        token=TokenPolicy(default_days=s.token_default_days, max_days=s.token_max_days),
    )


def secret_box(services: Services) -> repo.SecretBox:
    return repo.SecretBox(services.settings.keys_dir / MFA_KEY_FILE)


def user_view(user: User) -> UserView:
    return UserView(
        user_id=user.id,
        username=user.username,
        agency=user.agency.code,
        roles=tuple(Role(name) for name in sorted(user.role_names)),
        disabled=user.disabled,
        locked_until=user.locked_until,
        certified_until=user.certified_until,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
    )


def token_view(token: ApiToken) -> TokenView:
    return TokenView(
        token_id=token.id,
        username=token.user.username,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        last_used_at=token.last_used_at,
    )


def actor_for(user: User, client_address: str | None, interface: str, method: str) -> Actor:
    """The actor for a user record: roles, agency and training come from the database."""
    return Actor(
        user_id=user.id,
        username=user.username,
        roles=frozenset(Role(name) for name in user.role_names),
        agency=user.agency.code,
        certified_until=user.certified_until,
        client_address=client_address,
        interface=interface,
        extra={"auth": method},
    )
