"""User administration over the API: administrators only (listing also for auditors and
supervisors); secrets appear once, in the response that creates them."""

from __future__ import annotations

import datetime as dt

from facelead.domain.identity import totp_code
from facelead.store.models import utcnow
from tests.conftest import USER_PASSWORD, Api

ROUTES = {
    ("GET", "/users"),
    ("POST", "/users"),
    ("POST", "/users/{username}/disable"),
    ("POST", "/users/{username}/enable"),
    ("POST", "/users/{username}/certification"),
    ("POST", "/users/{username}/mfa-reset"),
    ("GET", "/users/{username}/tokens"),
    ("POST", "/users/{username}/tokens"),
    ("POST", "/tokens/{token_id}/revoke"),
}


def test_user_routes_by_role(api: Api) -> None:
    api.call("ivy", "GET", "/users", 403, "forbidden")
    listed = api.call("audra", "GET", "/users", 200).json()
    assert {"admin", "ivy", "erin"} <= {u["username"] for u in listed}

    new = {
        "username": "nora",
        "password": USER_PASSWORD,
        "roles": ["investigator"],
        "agency": "LACRIS",
    }
    api.call("sam", "POST", "/users", 403, "forbidden", json=new)
    created = api.call("admin", "POST", "/users", 201, json=new).json()
    assert (
        created["user"]["roles"] == ["investigator"] and created["user"]["certified_until"] is None
    )
    secret = created["totp_secret"]
    assert created["provisioning_uri"].startswith("otpauth://totp/")
    api.call("admin", "POST", "/users", 409, json=new)
    weak = {**new, "username": "nina", "password": "password123"}
    api.call("admin", "POST", "/users", 422, "weak_password", json=weak)

    nora = {"username": "nora"}
    until = {"until": (dt.date.today() + dt.timedelta(days=200)).isoformat()}
    route = "/users/{username}/certification"
    api.call("audra", "POST", route, 403, "forbidden", path=nora, json=until)
    certified = api.call("admin", "POST", route, 200, path=nora, json=until).json()
    assert certified["certified_until"] == until["until"]

    api.call("sam", "POST", "/users/{username}/tokens", 403, "forbidden", path=nora, json={})
    issued = api.call(
        "admin", "POST", "/users/{username}/tokens", 201, path=nora, json={"days": 2, "label": "ci"}
    ).json()
    assert issued["token"].startswith("fl_") and issued["label"] == "ci"
    nora_auth = {"Authorization": f"Bearer {issued['token']}"}
    assert api.call(None, "GET", "/auth/me", 200, headers=nora_auth).json()["username"] == "nora"
    api.call("erin", "GET", "/users/{username}/tokens", 403, "forbidden", path=nora)
    tokens = api.call("sam", "GET", "/users/{username}/tokens", 200, path=nora).json()
    assert [t["token_id"] for t in tokens] == [issued["token_id"]] and "token" not in tokens[0]

    revoke = {"token_id": issued["token_id"]}
    api.call("audra", "POST", "/tokens/{token_id}/revoke", 403, "forbidden", path=revoke)
    revoked = api.call("admin", "POST", "/tokens/{token_id}/revoke", 200, path=revoke).json()
    assert revoked["revoked_at"] is not None
    api.call(None, "GET", "/auth/me", 401, "token_revoked", headers=nora_auth)

    api.call("ivy", "POST", "/users/{username}/mfa-reset", 403, "forbidden", path=nora)
    reset = api.call("admin", "POST", "/users/{username}/mfa-reset", 200, path=nora).json()
    assert reset["totp_secret"] != secret
    old_code = {"username": "nora", "password": USER_PASSWORD, "totp": totp_code(secret, utcnow())}
    if totp_code(reset["totp_secret"], utcnow()) != old_code["totp"]:  # 1 in a million clash
        api.call(None, "POST", "/auth/login", 401, "bad_totp", json=old_code)

    api.call("sam", "POST", "/users/{username}/disable", 403, "forbidden", path=nora)
    disabled = api.call("admin", "POST", "/users/{username}/disable", 200, path=nora).json()
    assert disabled["disabled"] is True
    api.call("sam", "POST", "/users/{username}/enable", 403, "forbidden", path=nora)
    enabled = api.call("admin", "POST", "/users/{username}/enable", 200, path=nora).json()
    assert enabled["disabled"] is False
    api.call("admin", "POST", "/users/{username}/disable", 404, path={"username": "nobody"})
    api.call(
        "admin", "POST", "/users/{username}/disable", 409, "last_admin", path={"username": "admin"}
    )
    api.assert_covered(ROUTES)
