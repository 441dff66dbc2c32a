"""Authentication: password + TOTP, or an API token, to an actor.

Logging in is the one refusal that must leave more than its audit event
behind: the failure count that drives the lockout is committed in its own
short transaction before the refusal is raised (the login transaction itself
is rolled back), and the refusal event records the new count.
"""

from __future__ import annotations

import datetime as dt
from typing import NoReturn

from facelead.domain.access import Action, Actor
from facelead.domain.identity import (
    hash_password,
    match_totp,
    normalise_username,
    spend_verification,
    token_digest,
    verify_password,
)
from facelead.errors import AuthenticationError, FaceLeadError
from facelead.services.context import Services
from facelead.services.identity.common import (
    BAD_CREDENTIALS,
    MESSAGES,
    actor_for,
    identity_policy,
    secret_box,
)
from facelead.services.identity.sessions import is_session_token, session_expiry
from facelead.services.uow import Scope, perform, record_refusal
from facelead.store import identity as repo
from facelead.store.identity_models import User
from facelead.store.models import utcnow


def _refuse_anonymous(
    services: Services,
    claimed: str,
    client_address: str | None,
    interface: str,
    error: AuthenticationError,
    object_type: str,
    **details: str,
) -> NoReturn:
    """Audit a refusal for which no account exists, then raise it.

    ``perform`` needs an actor with a role; someone unknown has none, and
    inventing one would put a false role in the audit log.
    """
    shown = "".join(c if c.isprintable() else "?" for c in claimed.strip())[:64]
    claimant = Actor(None, shown or "anonymous", frozenset(), "", None, client_address, interface)
    record_refusal(
        services, claimant, Action.AUTH_LOGIN, error, object_type=object_type, details=dict(details)
    )
    raise error


def _claimed_user(
    services: Services, username: str, client_address: str | None, interface: str
) -> Actor | None:
    """Who the login claims to be (None if nobody): the actor its audit events name."""
    try:
        name = normalise_username(username)
    except FaceLeadError:
        return None
    with services.db.session() as session:
        user = repo.get_user_by_name(session, name)
        return None if user is None else actor_for(user, client_address, interface, "claimed")


def login(
    services: Services,
    username: str,
    password: str,
    totp_code: str | None,
    client_address: str | None = None,
    *,
    interface: str = "cli",
    now: dt.datetime | None = None,
) -> Actor:
    """Password and TOTP (CJIS advanced authentication) to an actor, or a refusal.

    Refusals: ``bad_credentials``, ``account_locked``, ``account_disabled``,
    ``mfa_required``, ``bad_totp``. Wrong passwords and wrong codes count
    towards the lockout; a locked account is refused without checking anything.
    """
    now = now or utcnow()
    claimant = _claimed_user(services, username, client_address, interface)
    if claimant is None or claimant.user_id is None:
        spend_verification(password)
        error = AuthenticationError(BAD_CREDENTIALS, code="bad_credentials")
        _refuse_anonymous(
            services, username, client_address, interface, error, "user", method="password"
        )
    with perform(
        services, claimant, Action.AUTH_LOGIN, object_type="user", object_id=str(claimant.user_id)
    ) as scope:
        scope.details["method"] = "password+totp"
        user = repo.get_user(scope.session, claimant.user_id)
        if user is None:
            raise AuthenticationError(BAD_CREDENTIALS, code="bad_credentials")
        _check_credentials(services, scope, user, password, totp_code, now)
        user.failed_attempts, user.locked_until, user.last_login_at = 0, None, now
        actor = actor_for(user, client_address, interface, "password+totp")
    return actor


def _check_credentials(
    services: Services,
    scope: Scope,
    user: User,
    password: str,
    totp_code: str | None,
    now: dt.datetime,
) -> None:
    """Lockout, password, disabled, TOTP, in that order; the TOTP step is then used up."""
    if identity_policy(services).lockout.is_locked(user.locked_until, now):
        until = user.locked_until.isoformat() if user.locked_until else ""
        raise AuthenticationError(f"account locked until {until}", code="account_locked")
    check = verify_password(user.password_hash, password)
    if not check.ok:
        _count_failure(services, scope, user.id, now, "bad_credentials")
    if user.disabled:
        raise AuthenticationError("account disabled: ask an administrator", code="account_disabled")
    if not totp_code or not totp_code.strip():
        raise AuthenticationError("a TOTP code is required", code="mfa_required")
    step = match_totp(
        secret_box(services).open(user.totp_secret), totp_code, now, user.totp_last_step
    )
    if step is None:
        _count_failure(services, scope, user.id, now, "bad_totp")
    if check.needs_rehash:  # before the first write: hashing is slow
        user.password_hash = hash_password(password)
        scope.details["rehashed"] = True
    if not repo.claim_totp_step(scope.session, user.id, step):  # a concurrent login used it
        raise AuthenticationError(MESSAGES["bad_totp"], code="bad_totp")


def _count_failure(
    services: Services, scope: Scope, user_id: int, now: dt.datetime, code: str
) -> NoReturn:
    """Commit one more failure in its own transaction, then refuse.

    The login transaction is about to roll back; the count must not.
    """
    lockout = identity_policy(services).lockout
    with services.db.session() as session:
        row = repo.get_user(session, user_id, for_update=True)
        if row is None:
            raise AuthenticationError(BAD_CREDENTIALS, code="bad_credentials")
        state = lockout.after_failure(row.failed_attempts, row.locked_until, now)
        row.failed_attempts, row.locked_until = state.failures, state.locked_until
    scope.details["failed_attempts"] = state.failures
    if state.locked_until is not None:
        scope.details["locked_until"] = state.locked_until.isoformat()
        raise AuthenticationError(
            f"too many failed attempts: account locked until {state.locked_until.isoformat()}",
            code="account_locked",
        )
    raise AuthenticationError(MESSAGES[code], code=code)


def authenticate_token(
    services: Services,
    token: str,
    client_address: str | None = None,
    *,
    interface: str = "cli",
    now: dt.datetime | None = None,
) -> Actor:
    """An API or session token to its holder's actor. Refusals: ``token_invalid``,
    ``token_revoked``, ``token_expired``, ``account_disabled``.

    A session token (``sessions.open_session``) expires after 30 idle minutes;
    every successful use here moves that deadline on.
    """
    now = now or utcnow()
    digest = token_digest(token)
    with services.db.session() as session:
        row = repo.get_token_by_digest(session, digest)
        found = (
            None
            if row is None
            else (row.id, actor_for(row.user, client_address, interface, "claimed"))
        )
    if found is None:
        error = AuthenticationError("unknown API token", code="token_invalid")
        _refuse_anonymous(
            services, "", client_address, interface, error, "api_token", token_sha256=digest[:12]
        )
    token_id, claimant = found
    with perform(
        services, claimant, Action.AUTH_LOGIN, object_type="api_token", object_id=str(token_id)
    ) as scope:
        scope.details["method"] = "token"
        record = repo.get_token(scope.session, token_id)
        if record is None:
            raise AuthenticationError("unknown API token", code="token_invalid")
        refusal = identity_policy(services).token.refusal(record.revoked_at, record.expires_at, now)
        if refusal is not None:
            raise AuthenticationError(MESSAGES[refusal], code=refusal)
        if record.user.disabled:
            raise AuthenticationError(
                "account disabled: ask an administrator", code="account_disabled"
            )
        record.last_used_at = now
        if is_session_token(token):  # CJIS idle timeout: each use slides the deadline
            record.expires_at = session_expiry(record.created_at, now)
            scope.details["session"] = True
        actor = actor_for(record.user, client_address, interface, "token")
    return actor


def actor_for_user(
    services: Services,
    user_id: int,
    *,
    client_address: str | None = None,
    interface: str = "api",
    method: str = "session",
) -> Actor:
    """Rebuild the actor of an already-authenticated session (API, web) from the record.

    Read fresh on every request so that disabling, role changes and training
    expiry take effect at once rather than when the session ends.
    """
    with services.db.session() as session:
        user = repo.get_user(session, user_id)
        if user is None:
            raise AuthenticationError(BAD_CREDENTIALS, code="bad_credentials")
        if user.disabled:
            raise AuthenticationError(
                "account disabled: ask an administrator", code="account_disabled"
            )
        return actor_for(user, client_address, interface, method)
