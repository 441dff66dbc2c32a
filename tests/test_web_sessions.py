"""Web sessions: MFA login, cookie flags, CSRF, the 30-minute idle timeout, logout, headers.

Real application (API + pages), real SQLite database, real accounts; TOTP
codes come from pyotp and the secrets the identity service returned.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pyotp
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from facelead.web.context import Clock, WebApp
from tests.conftest import WebSite, hidden_field


@pytest.fixture
def client(web_site: WebSite) -> Iterator[TestClient]:
    with TestClient(web_site.app(), follow_redirects=False) as test_client:
        yield test_client


def web_clock(client: TestClient) -> Clock:
    """The application's clock: tests move it forward instead of waiting."""
    app = client.app
    assert isinstance(app, FastAPI)
    web: WebApp = app.state.facelead_web
    return web.clock


def log_in(client: TestClient, site: WebSite, username: str, code: str | None = None) -> None:
    page = client.get("/login")
    now = web_clock(client)()
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": site.password(username),
            "totp": code or pyotp.TOTP(site.secrets[username]).at(now),
            "login_token": hidden_field(page.text, "login_token"),
        },
    )
    assert response.status_code == 303, response.text[:400]


def csrf(client: TestClient, path: str = "/") -> str:
    """The page's CSRF token; every form on the page must carry the same one."""
    html = client.get(path).text
    tokens = set(re.findall(r'name="csrf_token" value="([^"]*)"', html))
    assert len(tokens) == 1 and "" not in tokens, tokens
    return hidden_field(html, "csrf_token")


def test_login_page_is_labelled_and_not_cached(client: TestClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    for field in ("username", "password", "totp"):
        assert f'<label for="f-{field}">' in response.text and f'id="f-{field}"' in response.text
    cookie = response.headers["set-cookie"]
    assert "facelead_login=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_password_and_totp_open_a_session(client: TestClient, web_site: WebSite) -> None:
    page = client.get("/login")
    now = dt.datetime.now(dt.UTC)
    response = client.post(
        "/login",
        data={
            "username": "ivan",
            "password": web_site.password("ivan"),
            "totp": pyotp.TOTP(web_site.secrets["ivan"]).at(now),
            "login_token": hidden_field(page.text, "login_token"),
        },
    )
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if "facelead_session" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie and "__Host-" not in cookie  # plain http on 127.0.0.1
    home = client.get("/")
    assert home.status_code == 200 and "Welcome, ivan" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert 'href="/search/new"' in home.text and 'href="/audit"' not in home.text


@pytest.mark.parametrize(
    ("code", "status", "reason"), [("000000", 401, "bad_totp"), ("", 401, "mfa_required")]
)
def test_wrong_or_missing_totp_is_refused(
    client: TestClient, web_site: WebSite, code: str, status: int, reason: str
) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": "ivan",
            "password": web_site.password("ivan"),
            "totp": code,
            "login_token": hidden_field(page.text, "login_token"),
        },
    )
    assert response.status_code == status and reason in response.text
    assert client.get("/").status_code == 303


def test_login_form_needs_its_double_submit_token(client: TestClient, web_site: WebSite) -> None:
    client.get("/login")
    response = client.post(
        "/login",
        data={"username": "ivan", "password": web_site.password("ivan"), "login_token": "forged"},
    )
    assert response.status_code == 403 and "expired" in response.text


def test_secure_cookie_over_https(web_site: WebSite) -> None:
    with TestClient(
        web_site.app(), base_url="https://testserver", follow_redirects=False
    ) as client:
        log_in(client, web_site, "ivan")
        assert client.get("/").status_code == 200
        cookie = next(c for c in client.cookies.jar if "facelead_session" in c.name)
        assert cookie.name == "__Host-facelead_session" and cookie.secure


def test_every_post_needs_the_csrf_token(client: TestClient, web_site: WebSite) -> None:
    log_in(client, web_site, "ivan")
    missing = client.post("/cases", data={"number": "CSRF-1", "offence": "robbery"})
    assert missing.status_code == 403 and "csrf_rejected" in missing.text
    token = csrf(client, "/cases")
    foreign = client.post(
        "/cases",
        data={"number": "CSRF-1", "offence": "robbery", "csrf_token": token},
        headers={"Origin": "https://attacker.example"},
    )
    assert foreign.status_code == 403
    ok = client.post("/cases", data={"number": "CSRF-1", "offence": "robbery", "csrf_token": token})
    assert ok.status_code == 303 and ok.headers["location"] == "/case?number=CSRF-1"
    case = client.get(ok.headers["location"])
    assert "CSRF-1" in case.text
    assert "Investigative lead only — not a positive identification — not probable cause" in (
        case.text
    )


def test_idle_timeout_is_thirty_minutes_and_slides(client: TestClient, web_site: WebSite) -> None:
    log_in(client, web_site, "ivan")
    clock = web_clock(client)
    clock.offset = dt.timedelta(minutes=29)
    assert client.get("/").status_code == 200  # activity restarts the 30 minutes
    clock.offset = dt.timedelta(minutes=58)
    assert client.get("/").status_code == 200
    clock.offset = dt.timedelta(minutes=89)
    expired = client.get("/cases")
    assert expired.status_code == 303
    assert expired.headers["location"] == "/login?reason=expired&next=%2Fcases"
    assert "30 minutes" in client.get(expired.headers["location"]).text


def test_logout_revokes_the_session(client: TestClient, web_site: WebSite) -> None:
    log_in(client, web_site, "ivan")
    stolen = dict(client.cookies)
    response = client.post("/logout", data={"csrf_token": csrf(client)})
    assert response.status_code == 303 and response.headers["location"] == "/login?reason=logout"
    with TestClient(client.app, follow_redirects=False, cookies=stolen) as replay:
        assert replay.get("/").headers["location"].startswith("/login?reason=ended")


def test_disabling_an_account_ends_its_sessions(web_site: WebSite) -> None:
    app = web_site.app()
    with (
        TestClient(app, follow_redirects=False) as admin,
        TestClient(app, follow_redirects=False) as ivan,
    ):
        log_in(ivan, web_site, "ivan")
        log_in(admin, web_site, "admin")
        token = csrf(admin, "/admin/users")
        disabled = admin.post("/admin/users/ivan/disable", data={"csrf_token": token})
        assert disabled.status_code == 303
        assert ivan.get("/").headers["location"].startswith("/login?reason=")


def test_no_open_redirect_after_login(client: TestClient, web_site: WebSite) -> None:
    page = client.get("/login?next=//attacker.example/x")
    assert 'name="next" value="/"' in page.text


def test_pages_are_refused_by_role(client: TestClient, web_site: WebSite) -> None:
    log_in(client, web_site, "ivan")
    for path in ("/audit", "/queue", "/admin/users"):
        response = client.get(path)
        assert response.status_code == 403, path
        assert "forbidden" in response.text and response.headers["cache-control"] == "no-store"


def test_anonymous_requests_go_to_login(client: TestClient) -> None:
    for path in ("/", "/queue", "/audit", "/searches/1/image", "/case?number=X"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
