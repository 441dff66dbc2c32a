"""The identity commands as a user runs them: init, --user with password + TOTP from the
environment, FACELEAD_TOKEN, and one-line refusals with exit status 2."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pyotp

from tests.conftest import ADMIN_PASSWORD, USER_PASSWORD, provision_token

FACELEAD = Path(sys.executable).parent / "facelead"
SECRET = re.compile(r"^TOTP secret: ([A-Z2-7]+)$", re.M)
TOKEN = re.compile(r"^FACELEAD_TOKEN=(\S+)$", re.M)
AUTH_ENV = ("FACELEAD_USER", "FACELEAD_PASSWORD", "FACELEAD_TOTP", "FACELEAD_TOKEN")


def run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in AUTH_ENV and k != "FACELEAD_HOME"}
    return subprocess.run(
        [str(FACELEAD), *args],
        capture_output=True,
        text=True,
        env={**base, "FACELEAD_HOME": str(home), **env},
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


def one_error_line(result: subprocess.CompletedProcess[str], code: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error [{code}]: "), result.stderr


def test_init_creates_the_first_admin_once_and_login_uses_env_vars(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = run(home, "init", "--agency", "LACRIS", FACELEAD_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert first.returncode == 0, first.stderr
    match = SECRET.search(first.stdout)
    assert match and "otpauth://totp/FaceLead:admin?" in first.stdout
    again = run(home, "init", FACELEAD_ADMIN_PASSWORD=ADMIN_PASSWORD)
    assert again.returncode == 0 and "TOTP secret" not in again.stdout

    admin = {"FACELEAD_USER": "admin", "FACELEAD_PASSWORD": ADMIN_PASSWORD}
    wrong = run(home, "user", "list", **{**admin, "FACELEAD_PASSWORD": "not the password"})
    one_error_line(wrong, "bad_credentials")
    no_code = run(home, "user", "list", **admin)
    one_error_line(no_code, "mfa_required")
    listed = run(home, "user", "list", **admin, FACELEAD_TOTP=pyotp.TOTP(match[1]).now())
    assert listed.returncode == 0, listed.stderr
    assert "admin" in listed.stdout and "LACRIS" in listed.stdout


def test_without_credentials_no_command_runs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "init", FACELEAD_ADMIN_PASSWORD=ADMIN_PASSWORD).returncode == 0
    one_error_line(run(home, "gallery", "stats"), "unauthenticated")
    one_error_line(run(home, "user", "list", FACELEAD_USER="nobody"), "secret_required")
    bogus = run(home, "gallery", "stats", FACELEAD_TOKEN="fl_not-a-real-token")
    one_error_line(bogus, "token_invalid")


def test_tokens_manage_users_and_stop_working_once_revoked(tmp_path: Path) -> None:
    home = tmp_path / "home"
    admin = {"FACELEAD_TOKEN": provision_token(home, "boss", "admin")}
    added = run(
        home, "user", "add", "clerk", "--role", "records", "--agency", "LACRIS",
        FACELEAD_NEW_PASSWORD=USER_PASSWORD, **admin,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert SECRET.search(added.stdout)
    certified = run(home, "user", "certify", "clerk", "--until", "2099-01-01", **admin)
    one_error_line(certified, "invalid_certification")
    issued = run(home, "user", "token", "issue", "clerk", "--days", "2", **admin)
    assert issued.returncode == 0, issued.stderr
    token = TOKEN.search(issued.stdout)
    assert token
    clerk = {"FACELEAD_TOKEN": token[1]}
    assert run(home, "gallery", "stats", **clerk).returncode == 0
    one_error_line(run(home, "user", "list", **clerk), "forbidden")
    listed = run(home, "user", "token", "list", "clerk", **admin)
    token_id = re.search(r"│ (\d+) ", listed.stdout)
    assert listed.returncode == 0 and token_id, listed.stdout
    assert run(home, "user", "token", "revoke", token_id[1], **admin).returncode == 0
    one_error_line(run(home, "gallery", "stats", **clerk), "token_revoked")


def test_enrolment_needs_the_records_role(tmp_path: Path) -> None:
    home = tmp_path / "home"
    auditor = {"FACELEAD_TOKEN": provision_token(home, "watcher", "auditor")}
    records = {"FACELEAD_TOKEN": provision_token(home, "clerk", "records")}
    photo = tmp_path / "note.jpg"
    photo.write_text("not a photo")
    refused = run(home, "enroll", str(photo), **auditor)
    assert refused.returncode == 0 and "refused [forbidden]" in refused.stdout, refused.stdout
    tried = run(home, "enroll", str(photo), **records)
    assert tried.returncode == 0 and "refused [unsupported_format]" in tried.stdout, tried.stdout
