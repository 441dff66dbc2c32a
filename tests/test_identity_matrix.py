"""Role × action matrix over every identity service call, on SQLite and PostgreSQL.

For each role, a user holding only that role calls each service: where the
permission matrix allows it the call succeeds and has its effect; otherwise it
is refused with ``forbidden`` and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from facelead.domain.access import PERMISSIONS, Action, Actor, Role
from facelead.domain.identity import TokenView, UserView
from facelead.errors import AuthenticationError, PermissionDenied
from facelead.services import identity
from tests.conftest import USER_PASSWORD, Installed


@dataclass(frozen=True)
class Call:
    action: Action
    run: Callable[[Installed, Actor, str], object]  # (installed, actor, fresh target) -> result
    effect: Callable[[Installed, str, object], bool]  # did it happen? (result is None if refused)


def _view(installed: Installed, username: str) -> UserView | None:
    users = identity.list_users(installed.services, installed.admin)
    return next((u for u in users if u.username == username), None)


def _tokens(installed: Installed, username: str) -> list[TokenView]:
    return identity.list_tokens(installed.services, installed.admin, username)


def _revoke_one(installed: Installed, actor: Actor, target: str) -> object:
    token_id = identity.issue_token(installed.services, installed.admin, target).token_id
    return identity.revoke_token(installed.services, actor, token_id)


def _list_tokens(installed: Installed, actor: Actor, target: str) -> object:
    identity.issue_token(installed.services, installed.admin, target, label="listed")
    return identity.list_tokens(installed.services, actor, target)


def _old_secret_refused(installed: Installed, target: str, result: object) -> bool:
    """After an MFA reset the code from the original secret no longer logs in."""
    try:
        installed.login(target)
    except AuthenticationError as exc:
        return exc.code == "bad_totp"
    return False


def _has(attribute: str, value: object) -> Callable[[Installed, str, object], bool]:
    return lambda i, t, _: getattr(_view(i, t), attribute, object()) == value


UNTIL = dt.date.today() + dt.timedelta(days=90)
CALLS: dict[str, Call] = {
    "add_user": Call(
        Action.USER_MANAGE,
        lambda i, a, t: identity.add_user(
            i.services, a, f"{t}-new", USER_PASSWORD, ["examiner"], "LACRIS"
        ),
        lambda i, t, _: _view(i, f"{t}-new") is not None,
    ),
    "list_users": Call(
        Action.USER_READ,
        lambda i, a, t: identity.list_users(i.services, a),
        lambda i, t, result: t in [u.username for u in result or []],  # type: ignore[attr-defined]
    ),
    "disable_user": Call(
        Action.USER_MANAGE,
        lambda i, a, t: identity.disable_user(i.services, a, t),
        _has("disabled", True),
    ),
    "enable_user": Call(
        Action.USER_MANAGE,
        lambda i, a, t: (
            identity.disable_user(i.services, i.admin, t),
            identity.enable_user(i.services, a, t),
        ),
        _has("disabled", False),
    ),
    "certify_user": Call(
        Action.TRAINING_CERTIFY,
        lambda i, a, t: identity.certify_user(i.services, a, t, UNTIL),
        _has("certified_until", UNTIL),
    ),
    "reset_mfa": Call(
        Action.USER_MANAGE,
        lambda i, a, t: identity.reset_mfa(i.services, a, t),
        _old_secret_refused,
    ),
    "issue_token": Call(
        Action.USER_MANAGE,
        lambda i, a, t: identity.issue_token(i.services, a, t, days=1),
        lambda i, t, _: len(_tokens(i, t)) == 1,
    ),
    "list_tokens": Call(
        Action.USER_READ,
        _list_tokens,
        lambda i, t, result: [v.label for v in result or []] == ["listed"],  # type: ignore[attr-defined]
    ),
    "revoke_token": Call(
        Action.USER_MANAGE,
        _revoke_one,
        lambda i, t, _: [v.revoked_at is not None for v in _tokens(i, t)] == [True],
    ),
}


def test_the_matrix_covers_every_identity_action() -> None:
    assert {call.action for call in CALLS.values()} == {
        Action.USER_MANAGE,
        Action.USER_READ,
        Action.TRAINING_CERTIFY,
    }


@pytest.mark.parametrize("role", list(Role))
def test_role_action_matrix(installed: Installed, role: Role) -> None:
    username = f"as-{role.value}"
    installed.add(username, role.value)
    actor = installed.login(username)  # every role may log in (auth.login)
    assert actor.roles == {role} and actor.role_for(Action.AUTH_LOGIN) is role
    outcomes: dict[str, str] = {}
    for name, call in CALLS.items():
        target = f"t-{name.replace('_', '-')}"
        installed.add(target, "investigator")
        try:
            result = call.run(installed, actor, target)
        except PermissionDenied as refused:
            changed = call.effect(installed, target, None)
            outcomes[name] = refused.code + (" but changed" if changed else "")
        else:
            outcomes[name] = "ok" if call.effect(installed, target, result) else "no effect"
    expected = {
        name: "ok" if role in PERMISSIONS[call.action] else "forbidden"
        for name, call in CALLS.items()
    }
    assert outcomes == expected
