"""Cases: open, close, show; every refusal coded; role x action matrix; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facelead.domain.access import PERMISSIONS, Action, Actor, Role
from facelead.domain.cases import CaseStatus
from facelead.errors import FaceLeadError
from facelead.services.cases import close_case, open_case, show_case
from facelead.services.context import Services
from tests.conftest import make_services

TODAY = dt.date.today()


def actor(
    username: str, *roles: Role, agency: str = "LAPD", certified: dt.date | None = None
) -> Actor:
    """A test actor; certified for a year unless told otherwise (identity work issues real ones)."""
    until = certified if certified is not None else TODAY + dt.timedelta(days=365)
    return Actor(
        user_id=None,
        username=username,
        roles=frozenset(roles),
        agency=agency,
        certified_until=until,
    )


INVESTIGATOR = actor("ivy", Role.INVESTIGATOR)
SUPERVISOR = actor("sam", Role.SUPERVISOR)


@dataclass(frozen=True)
class AuditRow:
    action: str
    outcome: str
    actor: str
    case_number: str | None
    purpose: str | None
    details: dict[str, Any]


def audit_events(services: Services) -> list[AuditRow]:
    """The audit log as written so far; empty while ``append_event`` is still a placeholder."""
    query = sa.text(
        "SELECT action, outcome, actor, case_number, purpose, details FROM audit_events "
        "ORDER BY seq"
    )
    if not sa.inspect(services.db.engine).has_table("audit_events"):
        return []
    with services.db.engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        AuditRow(a, o, who, case, purpose, json.loads(d) if isinstance(d, str) else dict(d))
        for a, o, who, case, purpose, d in rows
    ]


def assert_refused(call: Any, code: str) -> FaceLeadError:
    with pytest.raises(FaceLeadError) as info:
        call()
    assert info.value.code == code, info.value.as_dict()
    return info.value


@pytest.fixture
def services(tmp_path: Path, database_url: str) -> Services:
    return make_services(tmp_path / "home", database_url)


def test_open_show_close(services: Services) -> None:
    case = open_case(services, INVESTIGATOR, " 24-00123 ", "Robbery")
    assert (case.number, case.agency, case.offence_category) == ("24-00123", "LAPD", "robbery")
    assert case.status is CaseStatus.OPEN and case.opened_by == "ivy"
    view = show_case(services, actor("eve", Role.EXAMINER), "24-00123")
    assert view.case == case and view.searches == ()
    closed = close_case(services, SUPERVISOR, "24-00123")
    assert closed.status is CaseStatus.CLOSED and closed.closed_by == "sam"
    assert closed.closed_at is not None and closed.closed_at >= case.opened_at
    assert show_case(services, SUPERVISOR, "24-00123").case == closed
    events = audit_events(services)
    if events:  # the hash-chained log is live
        assert [(e.action, e.outcome) for e in events] == [
            ("case.open", "ok"),
            ("case.read", "ok"),
            ("case.close", "ok"),
            ("case.read", "ok"),
        ]
        assert {e.case_number for e in events} == {"24-00123"}


def test_case_refusals_change_nothing(services: Services) -> None:
    open_case(services, INVESTIGATOR, "C-1", "homicide")
    before = show_case(services, SUPERVISOR, "C-1")
    assert_refused(lambda: open_case(services, INVESTIGATOR, "C-1", "homicide"), "case_exists")
    assert_refused(
        lambda: open_case(services, INVESTIGATOR, "C-2", "loitering"), "unknown_offence_category"
    )
    assert_refused(lambda: open_case(services, INVESTIGATOR, "C 3", "theft"), "invalid_case_number")
    assert_refused(lambda: show_case(services, SUPERVISOR, "C-404"), "case_not_found")
    assert_refused(lambda: close_case(services, SUPERVISOR, "C-404"), "case_not_found")
    other_agency = actor("olga", Role.SUPERVISOR, agency="LASD")
    assert_refused(lambda: close_case(services, other_agency, "C-1"), "case_agency_mismatch")
    assert show_case(services, SUPERVISOR, "C-1") == before
    assert_refused(lambda: show_case(services, SUPERVISOR, "C-2"), "case_not_found")
    close_case(services, INVESTIGATOR, "C-1")
    assert_refused(lambda: close_case(services, INVESTIGATOR, "C-1"), "case_already_closed")
    events = audit_events(services)
    if events:
        refused = [e.outcome for e in events if e.outcome.startswith("refused:")]
        assert refused == [
            "refused:case_exists",
            "refused:unknown_offence_category",
            "refused:invalid_case_number",
            "refused:case_not_found",
            "refused:case_not_found",
            "refused:case_agency_mismatch",
            "refused:case_not_found",
            "refused:case_already_closed",
        ]


def _case_call(services: Services, action: Action, who: Actor, number: str) -> Any:
    if action is Action.CASE_OPEN:
        return open_case(services, who, number, "theft")
    if action is Action.CASE_CLOSE:
        return close_case(services, who, number)
    return show_case(services, who, number)


@pytest.mark.parametrize("action", [Action.CASE_OPEN, Action.CASE_CLOSE, Action.CASE_READ])
def test_role_matrix_for_cases(services: Services, action: Action) -> None:
    """Each role allowed the action succeeds; every other role is refused ``forbidden``."""
    for role in Role:
        number = f"M-{role.value}"
        if action is not Action.CASE_OPEN:
            open_case(services, INVESTIGATOR, number, "theft")
        who = actor(f"user-{role.value}", role)
        if role in PERMISSIONS[action]:
            _case_call(services, action, who, number)
        else:
            assert_refused(
                lambda who=who, n=number: _case_call(services, action, who, n), "forbidden"
            )
        if action is Action.CASE_OPEN and role in PERMISSIONS[action]:
            assert show_case(services, SUPERVISOR, number).case.opened_by == who.username
        elif action is Action.CASE_OPEN:
            assert_refused(lambda n=number: show_case(services, SUPERVISOR, n), "case_not_found")
        elif action is Action.CASE_CLOSE:
            status = show_case(services, SUPERVISOR, number).case.status
            assert (status is CaseStatus.CLOSED) is (role in PERMISSIONS[action])


def test_cases_do_not_need_training(services: Services) -> None:
    lapsed = actor("old", Role.INVESTIGATOR, certified=TODAY - dt.timedelta(days=1))
    open_case(services, lapsed, "T-1", "fraud")
    assert show_case(services, lapsed, "T-1").case.number == "T-1"
