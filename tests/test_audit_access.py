"""Who may read the audit log (the permission matrix), reading is audited, CLI exit codes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer.main
from typer.testing import CliRunner

from facelead.audit import log as audit_log
from facelead.cli.audit import audit_app
from facelead.domain.access import PERMISSIONS, Action, Actor, Role
from facelead.errors import PermissionDenied
from facelead.services import audit as audit_service
from facelead.services.context import Services
from tests.conftest import audit_actor, drop_audit_guards, make_services, provision_token

NOW = datetime.now(UTC)
OPERATIONS: dict[Action, Callable[[Services, Actor], object]] = {
    Action.AUDIT_VERIFY: lambda s, a: audit_service.verify_log(s, a),
    Action.AUDIT_READ: lambda s, a: audit_service.audit_report(
        s, a, NOW - timedelta(days=1), NOW + timedelta(days=1)
    ),
    Action.AUDIT_EXPORT: lambda s, a: audit_service.export_events(s, a, io.StringIO()),
    Action.AUDIT_CHECKPOINT: lambda s, a: audit_service.issue_checkpoint(s, a),
}


def last_event(services: Services) -> tuple[str, str, str, str | None]:
    with services.db.session() as session:
        r = list(audit_log.iter_records(session))[-1]
    return r.actor, r.action, r.outcome, r.role


def test_only_auditors_and_supervisors_read_the_log() -> None:
    for action in (Action.AUDIT_READ, Action.AUDIT_VERIFY, Action.AUDIT_EXPORT):
        assert PERMISSIONS[action] <= {Role.AUDITOR, Role.SUPERVISOR}
        assert Role.AUDITOR in PERMISSIONS[action]


def test_every_role_is_refused_or_served_per_the_matrix_and_audited(
    audit_services: Services,
) -> None:
    for action, operation in OPERATIONS.items():
        for role in Role:
            actor = audit_actor(role, name=f"{role.value}-user")
            if role in PERMISSIONS[action]:
                operation(audit_services, actor)
                assert last_event(audit_services) == (actor.username, action.value, "ok", role)
                continue
            with pytest.raises(PermissionDenied) as refused:
                operation(audit_services, actor)
            assert refused.value.code == "forbidden"
            expected = (actor.username, action.value, "refused:forbidden", None)
            assert last_event(audit_services) == expected
    assert audit_service.verify_log(audit_services, audit_actor(Role.AUDITOR)).ok


def test_reading_records_what_was_read(audit_services: Services) -> None:
    auditor = audit_actor(Role.AUDITOR)
    sink = io.StringIO()
    assert audit_service.export_events(audit_services, auditor, sink, fmt="csv") == 0
    with audit_services.db.session() as session:
        event = list(audit_log.iter_records(session))[-1]
    assert event.details == {"format": "csv", "start": None, "end": None, "rows": 0}
    assert sink.getvalue().startswith("seq,ts,actor,")


# --- command line (SQLite home, real accounts and API tokens) ---


@pytest.fixture
def cli_home(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    token = provision_token(home, "audra", "auditor")
    return {"FACELEAD_HOME": str(home), "FACELEAD_TOKEN": token}


def facelead(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``facelead audit ARGS`` in-process, on the group itself so other groups cannot interfere."""
    assert args[0] == "audit"
    result = CliRunner().invoke(audit_app, list(args[1:]), env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output


def test_every_audit_command_and_option_has_help() -> None:
    group = typer.main.get_command(audit_app)
    assert set(group.commands) == {"verify", "checkpoint", "report", "export"}  # type: ignore[attr-defined]
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert (command.help or "").strip(), name
        for param in command.params:
            if getattr(param, "param_type_name", "") == "option":
                assert (param.help or "").strip(), f"audit {name} {param.name}"


def test_cli_verify_exits_0_when_intact_and_1_naming_the_tampering(
    cli_home: dict[str, str], tmp_path: Path
) -> None:
    code, out = facelead(cli_home, "audit", "verify")
    assert code == 0 and out.startswith("OK:")
    cps = tmp_path / "cps.jsonl"
    assert facelead(cli_home, "audit", "checkpoint", "--out", str(cps))[0] == 0
    assert json.loads(cps.read_text().splitlines()[-1])["seq"] > 0
    services = make_services(Path(cli_home["FACELEAD_HOME"]))
    drop_audit_guards(services.db)
    with services.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'nobody' WHERE seq = 3"))
    services.db.dispose()
    code, out = facelead(cli_home, "audit", "verify", "--checkpoint", str(cps))
    assert code == 1
    assert "TAMPERED: first bad seq 3 (edited)" in out


def test_cli_report_and_export_write_files(cli_home: dict[str, str], tmp_path: Path) -> None:
    today = NOW.date().isoformat()
    for fmt in ("html", "csv", "json"):
        out = tmp_path / f"report.{fmt}"
        code, _ = facelead(
            cli_home,
            "audit",
            "report",
            "--from",
            today,
            "--to",
            today,
            "--format",
            fmt,
            "--out",
            str(out),
        )
        assert code == 0 and out.stat().st_size > 0
    assert "<svg" in (tmp_path / "report.html").read_text()
    assert json.loads((tmp_path / "report.json").read_text())["integrity"].startswith("verified")
    exported = tmp_path / "events.csv"
    code, _ = facelead(cli_home, "audit", "export", "--format", "csv", "--out", str(exported))
    rows = exported.read_text().splitlines()
    assert code == 0 and rows[0].startswith("seq,ts,actor,actor_id,role,agency,action,outcome")
    assert any(",audit.read,ok," in row for row in rows[1:])  # the reports above, audited
