"""Logging in over the API (password + TOTP), logging out, and the 30-minute idle timeout.

Real accounts, real TOTP codes, real tokens; the clock is injected into the
session service instead of sleeping.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from facelead.domain.identity import totp_code
from facelead.errors import AuthenticationError
from facelead.services import identity as identity_service
from facelead.services.identity.sessions import SESSION_IDLE, SESSION_MAX
from facelead.store.models import utcnow
from tests.conftest import API_CERTIFIED, USER_PASSWORD, Api, Installed

ROUTES = {("POST", "/auth/login"), ("POST", "/auth/logout"), ("GET", "/auth/me")}


def login_body(api: Api, name: str, **changes: str) -> dict[str, str]:
    body = {
        "username": name,
        "password": USER_PASSWORD,
        "totp": totp_code(api.installed.secrets[name], utcnow()),
    }
    return {**body, **changes}


def test_login_me_logout(api: Api) -> None:
    body = login_body(api, "ivy")
    session = api.call(None, "POST", "/auth/login", 200, json=body).json()
    assert session["token"].startswith("fls_") and session["token_type"] == "bearer"
    assert session["idle_timeout_seconds"] == 30 * 60
    assert session["user"] == {
        "username": "ivy",
        "roles": ["investigator"],
        "agency": "LACRIS",
        "certified_until": API_CERTIFIED.isoformat(),
    }
    bearer = {"Authorization": f"Bearer {session['token']}"}
    me = api.call(None, "GET", "/auth/me", 200, headers=bearer).json()
    assert me["username"] == "ivy" and me["roles"] == ["investigator"]
    # The same TOTP code is accepted only once (NIST SP 800-63B 5.1.4.2).
    api.call(None, "POST", "/auth/login", 401, "bad_totp", json=body)

    api.call(None, "POST", "/auth/logout", 204, headers=bearer)
    api.call(None, "GET", "/auth/me", 401, "token_revoked", headers=bearer)
    api.call(None, "POST", "/auth/logout", 401, "token_revoked", headers=bearer)

    # Login and session are audited as API actions from the client's address.
    with api.services.db.engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT action, outcome, interface, client_address, details FROM audit_events "
                "WHERE actor = 'ivy' AND outcome = 'ok' ORDER BY seq LIMIT 2"
            )
        ).all()
    for row in rows:
        assert (row.action, row.interface, row.client_address) == (
            "auth.login",
            "api",
            "testclient",
        )
    details = [r.details if isinstance(r.details, dict) else json.loads(r.details) for r in rows]
    assert details[0]["method"] == "password+totp"
    assert details[1]["step"] == "session_opened"


def test_login_refusals(api: Api) -> None:
    api.call(
        None, "POST", "/auth/login", 401, "mfa_required", json=login_body(api, "erin", totp="")
    )
    wrong = login_body(api, "erin", password="not the password at all")
    api.call(None, "POST", "/auth/login", 401, "bad_credentials", json=wrong)
    unknown = login_body(api, "erin", username="nobody")
    api.call(None, "POST", "/auth/login", 401, "bad_credentials", json=unknown)
    identity_service.disable_user(api.services, api.installed.admin, "sam")
    api.call(None, "POST", "/auth/login", 401, "account_disabled", json=login_body(api, "sam"))
    # Disabling revoked sam's API token too: the next request is refused at once.
    api.call("sam", "GET", "/auth/me", 401, "token_revoked")
    api.call("sam", "POST", "/auth/logout", 401, "token_revoked")
    api.call(None, "POST", "/auth/login", 422, "invalid_request", json={"username": "erin"})
    api.call(None, "POST", "/auth/login", 200, json=login_body(api, "erin"))  # not locked out
    api.call("ivy", "GET", "/auth/me", 200)
    api.call("ivy", "POST", "/auth/logout", 204)
    api.assert_covered(ROUTES, refusal=401)


def test_session_slides_and_expires_after_30_idle_minutes(installed: Installed) -> None:
    services = installed.services
    installed.add("erin", "examiner")
    actor = installed.login("erin")
    t0 = utcnow()
    issued = identity_service.open_session(services, actor, now=t0)
    assert issued.expires_at == t0 + SESSION_IDLE

    def use(at: dt.datetime) -> None:
        identity_service.authenticate_token(services, issued.token, "test", now=at)

    # Used every 29 minutes the session stays open well past its first 30 minutes.
    at = t0
    for _ in range(3):
        at += dt.timedelta(minutes=29)
        use(at)
    # 31 idle minutes after the last use it has expired.
    with pytest.raises(AuthenticationError) as info:
        use(at + dt.timedelta(minutes=31))
    assert info.value.code == "token_expired"


def test_session_has_an_absolute_limit_and_api_tokens_do_not_slide(installed: Installed) -> None:
    services = installed.services
    installed.add("ezra", "examiner")
    actor = installed.login("ezra")
    created = utcnow()
    issued = identity_service.open_session(services, actor, now=created)
    at = created
    while at + dt.timedelta(minutes=25) < created + SESSION_MAX:
        at += dt.timedelta(minutes=25)
        identity_service.authenticate_token(services, issued.token, "test", now=at)
    with pytest.raises(AuthenticationError) as info:
        at += dt.timedelta(minutes=25)
        identity_service.authenticate_token(services, issued.token, "test", now=at)
    assert info.value.code == "token_expired"

    script = identity_service.issue_token(services, installed.admin, "ezra", days=1)
    before = _expiry(installed, script.token_id)
    identity_service.authenticate_token(services, script.token, "test")
    assert _expiry(installed, script.token_id) == before


def _expiry(installed: Installed, token_id: int) -> dt.datetime:
    tokens = identity_service.list_tokens(installed.services, installed.admin, "ezra")
    return next(t.expires_at for t in tokens if t.token_id == token_id)
