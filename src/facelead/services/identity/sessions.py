"""Interactive sessions: short-lived bearer tokens issued at login, closed at logout.

CJIS Security Policy 5.5.5 asks for a session lock after at most 30 minutes of
inactivity. A session token therefore expires 30 minutes after its last use
(each authenticated request slides the deadline) and never lives longer than
``SESSION_MAX`` whatever its use. API tokens issued by an administrator for
scripts keep their fixed lifetime: they are told apart by their prefix, which
only ``open_session`` ever generates, so no stored flag can be forged.
"""

from __future__ import annotations

import datetime as dt
import secrets

from facelead.domain.access import Action, Actor
from facelead.domain.identity import IssuedToken, TokenView, token_digest
from facelead.errors import AuthenticationError
from facelead.services.context import Services
from facelead.services.identity.common import token_view
from facelead.services.uow import perform
from facelead.store import identity as repo
from facelead.store.models import utcnow

SESSION_PREFIX = "fls_"
SESSION_LABEL = "session"
SESSION_IDLE = dt.timedelta(minutes=30)
SESSION_MAX = dt.timedelta(hours=12)


def is_session_token(token: str) -> bool:
    """True for a token ``open_session`` issued (admin-issued API tokens start ``fl_``)."""
    return token.strip().startswith(SESSION_PREFIX)


def session_expiry(created_at: dt.datetime, now: dt.datetime) -> dt.datetime:
    """The idle deadline after a use at ``now``, capped by the absolute lifetime."""
    return min(now + SESSION_IDLE, created_at + SESSION_MAX)


def open_session(
    services: Services,
    actor: Actor,
    *,
    interface: str = "api",
    now: dt.datetime | None = None,
) -> IssuedToken:
    """A session token for an actor who has just logged in (password + TOTP); audited.

    The secret is returned once; only its digest is stored, like an API token.
    """
    now = now or utcnow()
    with perform(services, actor, Action.AUTH_LOGIN, object_type="session") as scope:
        scope.details.update(step="session_opened", interface=interface)
        user = None if actor.user_id is None else repo.get_user(scope.session, actor.user_id)
        if user is None or user.disabled:
            raise AuthenticationError(
                "no enabled account to open a session for", code="account_disabled"
            )
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires_at = session_expiry(now, now)
        row = repo.add_token(
            scope.session,
            user=user,
            digest=token_digest(secret),
            label=f"{SESSION_LABEL} ({interface})"[:100],
            expires_at=expires_at,
            issued_by_id=user.id,
        )
        scope.object_id = str(row.id)
        scope.details.update(token_id=row.id, expires_at=expires_at.isoformat())
        return IssuedToken(row.id, user.username, row.label, expires_at, secret)


def close_session(
    services: Services, actor: Actor, token: str, *, now: dt.datetime | None = None
) -> TokenView:
    """Log out: revoke the caller's own token (session or API token) at once; audited."""
    with perform(services, actor, Action.AUTH_LOGIN, object_type="api_token") as scope:
        scope.details["step"] = "logout"
        row = repo.get_token_by_digest(scope.session, token_digest(token))
        if row is None or actor.user_id is None or row.user_id != actor.user_id:
            raise AuthenticationError("unknown API token", code="token_invalid")
        scope.object_id = str(row.id)
        scope.details["already"] = row.revoked_at is not None
        if row.revoked_at is None:
            row.revoked_at = now or utcnow()
        return token_view(row)
