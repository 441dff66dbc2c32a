"""Pages without the face models: administration, the audit dashboard, cases, the search form.

The browser test drives the face workflow end to end; these check, through
the real application, what each page shows and how a refused form comes back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyotp
import pytest
from fastapi.testclient import TestClient

from tests.conftest import WebSite, hidden_field


def logged_in(site: WebSite, username: str) -> TestClient:
    client = TestClient(site.app(), follow_redirects=False)
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": site.password(username),
            "totp": pyotp.TOTP(site.secrets[username]).now(),
            "login_token": hidden_field(page.text, "login_token"),
        },
    )
    assert response.status_code == 303, response.text[:300]
    return client


@pytest.fixture
def admin(web_site: WebSite) -> Iterator[TestClient]:
    with logged_in(web_site, "admin") as client:
        yield client


@pytest.fixture
def ivan(web_site: WebSite) -> Iterator[TestClient]:
    with logged_in(web_site, "ivan") as client:
        yield client


def token(client: TestClient, path: str) -> str:
    return hidden_field(client.get(path).text, "csrf_token")


def test_new_account_secret_is_shown_once(admin: TestClient) -> None:
    form = {
        "username": "nora",
        "password": "another long passphrase",
        "roles": ["examiner", "investigator"],
        "agency": "LACRIS",
        "csrf_token": token(admin, "/admin/users"),
    }
    created = admin.post("/admin/users", data=form)
    assert created.status_code == 200 and 'id="totp-secret"' in created.text
    secret = created.text.split('id="totp-secret">')[1].split("<")[0]
    assert len(secret) >= 16 and created.headers["cache-control"] == "no-store"
    again = admin.get("/admin/users")
    assert "nora" in again.text and secret not in again.text
    reset = admin.post("/admin/users/nora/reset-mfa", data={"csrf_token": token(admin, "/")})
    assert (
        reset.status_code == 200 and 'id="totp-secret"' in reset.text and secret not in reset.text
    )


def test_refused_account_keeps_what_was_typed(admin: TestClient) -> None:
    form = {
        "username": "x",
        "password": "short",
        "roles": "examiner",
        "agency": "LACRIS",
        "csrf_token": token(admin, "/admin/users"),
    }
    refused = admin.post("/admin/users", data=form)
    assert refused.status_code == 303
    page = admin.get("/admin/users")
    assert "invalid_username" in page.text or "password" in page.text
    assert 'value="x"' in page.text and "short" not in page.text  # never a password


def test_training_page_certifies(admin: TestClient) -> None:
    page = admin.get("/admin/training")
    assert page.status_code == 200 and 'id="training-ivan"' in page.text
    until = (dt.date.today() + dt.timedelta(days=200)).isoformat()
    done = admin.post(
        "/admin/training/ivan", data={"until": until, "csrf_token": token(admin, "/")}
    )
    assert done.status_code == 303
    assert f"ivan certified until {until}" in admin.get("/admin/training").text
    bad = admin.post(
        "/admin/training/ivan", data={"until": "not a date", "csrf_token": token(admin, "/")}
    )
    assert bad.status_code == 303 and "invalid_date" in admin.get("/admin/training").text


def test_auditor_dashboard_and_downloads(web_site: WebSite) -> None:
    with logged_in(web_site, "audrey") as audrey:
        page = audrey.get("/audit")
        assert page.status_code == 200
        assert "Verified" in page.text and 'id="chart-rules"' in page.text
        assert "Findings per rule" in page.text and "<svg" in page.text
        csv = audrey.get(f"/audit/report.csv?start=2000-01-01&end={dt.date.today().isoformat()}")
        assert csv.status_code == 200 and csv.text.startswith("rule_id,")
        assert csv.headers["content-disposition"].startswith("attachment")
        assert audrey.get("/audit?start=2030-01-02&end=2030-01-01").status_code == 422


def test_refused_case_comes_back_with_the_draft(ivan: TestClient) -> None:
    form = {"number": "BAD CASE!", "offence": "robbery", "csrf_token": token(ivan, "/cases")}
    refused = ivan.post("/cases", data=form)
    assert refused.status_code == 303 and refused.headers["location"] == "/cases"
    page = ivan.get("/cases")
    assert "invalid_case_number" in page.text and 'value="BAD CASE!"' in page.text
    assert ivan.get("/case?number=NOPE-1").status_code == 404


def test_search_form_offers_the_configured_choices(ivan: TestClient) -> None:
    page = ivan.get("/search/new?case=LA-1")
    assert page.status_code == 200 and 'value="LA-1"' in page.text
    for choice in ("criminal-investigation", "cctv-still", "colour-balance"):
        assert f'value="{choice}"' in page.text
    assert 'enctype="multipart/form-data"' in page.text


def test_refused_search_keeps_the_answers(ivan: TestClient) -> None:
    csrf = token(ivan, "/cases")
    ivan.post("/cases", data={"number": "LA-7", "offence": "robbery", "csrf_token": csrf})
    fields = {
        "case": "LA-7",
        "purpose": "criminal-investigation",
        "justification": "Robbery suspect seen on a body-worn camera of the first officer",
        "source_type": "body-worn-camera",
        "how_obtained": "exported from the officer's camera",
        "captured_by": "Officer 1234",
        "edits": ["crop"],
        "csrf_token": csrf,
    }
    no_probe = ivan.post("/search/new", data=fields)
    assert no_probe.status_code == 422 and "probe_required" in no_probe.text
    files = {"probe": ("still.jpg", b"\xff\xd8\xff\xe0 not really a jpeg", "image/jpeg")}
    refused = ivan.post("/search/new", data=fields, files=files)
    assert refused.status_code == 422 and "probe_source_refused" in refused.text
    assert "Officer 1234" in refused.text and 'value="crop" checked' in refused.text
    assert 'name="pending"' in refused.text  # the probe is kept: no second upload


def test_examiner_has_an_empty_queue(web_site: WebSite) -> None:
    with logged_in(web_site, "erin") as erin:
        page = erin.get("/queue")
        assert page.status_code == 200 and "Nothing is waiting for review" in page.text
        assert erin.get("/searches/999/review").status_code == 404
