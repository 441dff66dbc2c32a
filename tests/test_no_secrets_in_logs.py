"""No secret reaches a log, the audit trail or an audit export (CJIS 5.4, ASVS V7.1).

Passwords (right and mistyped), TOTP secrets, session and API tokens and the
private keys under FACELEAD_HOME/keys are all things a person reading logs or
an exported audit trail must never see. The test drives the real application
through logins, failures, account creation, MFA reset and token issue, with
every logger at DEBUG, then searches everything written for every secret.
"""

from __future__ import annotations

import base64
import io
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelead.domain.identity import totp_code
from facelead.services.audit import export_events
from facelead.store.models import utcnow
from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, Api

MISTYPED = "Hunter2-mistyped-passphrase"
NEW_PASSWORD = "a brand new passphrase for the auditor"


def _exercise(api: Api) -> list[str]:
    """Logins (good, wrong password, wrong TOTP), a new account, MFA reset, a token,
    its use and revocation; returns the secrets that went over the wire."""
    ivy = api.installed.secrets["ivy"]
    good = {"username": "ivy", "password": USER_PASSWORD, "totp": totp_code(ivy, utcnow())}
    session = api.call(None, "POST", "/auth/login", 200, json=good).json()["token"]
    api.call(None, "POST", "/auth/login", 401, json={**good, "password": MISTYPED})
    api.call(None, "POST", "/auth/login", 401, json={**good, "totp": "000000"})
    api.call(None, "GET", "/auth/me", 200, headers={"Authorization": f"Bearer {session}"})
    api.call(None, "GET", "/auth/me", 401, headers={"Authorization": f"Bearer {MISTYPED}"})
    new = {"username": "nora", "password": NEW_PASSWORD, "roles": ["auditor"], "agency": "LACRIS"}
    created = api.call("admin", "POST", "/users", 201, json=new).json()
    nora: dict[str, object] = {"username": "nora"}
    reset = api.call("admin", "POST", "/users/{username}/mfa-reset", 200, path=nora).json()
    issued = api.call("admin", "POST", "/users/{username}/tokens", 201, path=nora, json={}).json()
    api.call(None, "GET", "/auth/me", 200, headers={"Authorization": f"Bearer {issued['token']}"})
    api.call(
        "admin", "POST", "/tokens/{token_id}/revoke", 200, path={"token_id": issued["token_id"]}
    )
    api.call(None, "POST", "/auth/logout", 204, headers={"Authorization": f"Bearer {session}"})
    return [
        session,
        issued["token"],
        created["totp_secret"],
        *(v for k, v in reset.items() if k == "totp_secret"),
    ]


def _private_keys(keys_dir: Path) -> list[str]:
    """Every private key file's content, raw (hex or PEM body) and as base64."""
    found = []
    for path in sorted(keys_dir.rglob("*")):
        if path.is_file() and not path.name.endswith(".pub"):
            raw = path.read_bytes()
            found += [raw.decode("latin-1").strip(), base64.b64encode(raw).decode()]
    return [s for s in found if len(s) >= 16]


def _audit_text(api: Api) -> str:
    """Every column of every audit event, plus the JSON Lines and CSV exports."""
    with api.services.db.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM audit_events")).all()
    text = "\n".join(repr(tuple(row)) for row in rows)
    auditor = api.installed.login("audra")
    for fmt in ("jsonl", "csv"):
        sink = io.StringIO()
        export_events(api.services, auditor, sink, fmt=fmt)
        text += sink.getvalue()
    return text


def test_no_secret_in_logs_audit_or_export(
    api: Api, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    wire = _exercise(api)
    secrets = {
        "admin password": ADMIN_PASSWORD,
        "user password": USER_PASSWORD,
        "mistyped password": MISTYPED,
        "new password": NEW_PASSWORD,
        **{f"totp secret of {k}": v for k, v in api.installed.secrets.items()},
        **{f"API token of {k}": v for k, v in api.tokens.items()},
        **{f"secret {n} sent to a client": v for n, v in enumerate(wire)},
        **{
            f"private key {n}": v
            for n, v in enumerate(_private_keys(api.services.settings.keys_dir))
        },
    }
    out, err = capfd.readouterr()
    written = {
        "log records": caplog.text,
        "stdout and stderr": out + err,
        "audit trail and its exports": _audit_text(api),
    }
    assert len(written["audit trail and its exports"]) > 1000  # the searched text is real
    leaks = [
        f"{what} in {where}"
        for what, secret in secrets.items()
        for where, text in written.items()
        if secret and secret in text
    ]
    assert leaks == []
