"""Retention: the dry run and the real run agree, the real run is idempotent and audited."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelead.domain.access import Actor, Role
from facelead.domain.retention import RetentionRule, RetentionRules, SearchFacts, due_rule
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.services.cases import open_case
from facelead.services.context import Services
from facelead.services.gallery import enroll_files
from facelead.services.retention import apply_retention, plan_retention
from facelead.services.search import submit_search
from facelead.store import cases as case_repo
from facelead.store import review as review_repo
from facelead.store.audit_models import AuditEvent
from facelead.store.case_models import CandidateRecord, CaseRecord, SearchRecord
from facelead.store.models import utcnow
from facelead.store.review_models import DispositionRecord
from tests.conftest import make_services, provision_token
from tests.lifecycle_fixtures import record_search
from tests.test_import import FACELEAD

CERTIFIED = dt.date.today() + dt.timedelta(days=90)
RECORDS = Actor(None, "rita", frozenset({Role.RECORDS}), "LACRIS")
INVESTIGATOR = Actor(None, "ivan", frozenset({Role.INVESTIGATOR}), "LACRIS", CERTIFIED)
REQUEST = SearchRequest(
    "criminal-investigation",
    "Robbery suspect photographed by the shop camera at the till",
    ProbeProvenance("cctv-still", "shop owner handed over", "shop camera"),
)
NOW = utcnow()


def test_rules() -> None:
    rules = RetentionRules(no_lead_days=30, closed_case_years=2)
    searched = dt.datetime(2020, 2, 29, tzinfo=dt.UTC)
    no_lead = SearchFacts(1, "no_lead", searched, None)
    assert due_rule(no_lead, rules, searched + dt.timedelta(days=29)) is None
    assert due_rule(no_lead, rules, searched + dt.timedelta(days=30)) is RetentionRule.NO_LEAD
    lead = SearchFacts(2, "lead_released", searched, searched)
    assert due_rule(lead, rules, dt.datetime(2022, 2, 27, tzinfo=dt.UTC)) is None
    assert due_rule(lead, rules, dt.datetime(2022, 2, 28, tzinfo=dt.UTC)) is (
        RetentionRule.CLOSED_CASE
    )
    closed_no_lead = SearchFacts(3, "closed", searched, None, "candidates_ready")
    assert due_rule(closed_no_lead, rules, searched + dt.timedelta(days=31)) is (
        RetentionRule.NO_LEAD
    )
    closed_verified = SearchFacts(4, "closed", searched, None, "verified")
    assert due_rule(closed_verified, rules, searched + dt.timedelta(days=3650)) is None


def _search(services: Services, case: str, probe: Path) -> int:
    return submit_search(services, INVESTIGATOR, case, probe.read_bytes(), REQUEST).search_id


def _setup(services: Services, meds_dir: Path) -> dict[str, int]:
    """Searches A (no lead), B (open), C (closed case, had a lead), D (A's probe, open)."""
    gallery = sorted(meds_dir.glob("S00[1-4]-0[1-2]-t10_01.jpg"))
    assert [r.status.value for r in enroll_files(services, RECORDS, gallery)].count("enrolled") > 4
    open_case(services, INVESTIGATOR, "RET-OPEN", "robbery")
    open_case(services, INVESTIGATOR, "RET-DONE", "burglary")
    ids = {
        "A": _search(services, "RET-OPEN", meds_dir / "S005-01-t10_01.jpg"),
        "B": _search(services, "RET-OPEN", meds_dir / "S006-01-t10_01.jpg"),
        "C": _search(services, "RET-DONE", meds_dir / "S007-01-t10_01.jpg"),
        "D": _search(services, "RET-OPEN", meds_dir / "S005-01-t10_01.jpg"),
    }
    who = case_repo.UserRef("sue")
    with services.db.session() as session:
        search_a = session.get(SearchRecord, ids["A"])
        assert search_a is not None
        case_repo.set_search_status(session, search_a, "no_lead")
        assignment = case_repo.add_assignment(session, ids["A"], who, "examiner", who)
        review = review_repo.add_review(session, assignment, 1, True)
        for cand in session.scalars(
            sa.select(CandidateRecord).where(CandidateRecord.search_id == ids["A"])
        ):
            session.add(DispositionRecord(review_id=review.id, candidate_id=cand.id,
                                          disposition="exclude", recorded_at=utcnow()))  # fmt: skip
        search_c = session.get(SearchRecord, ids["C"])
        assert search_c is not None
        case_repo.set_search_status(session, search_c, "closed")
        review_repo.add_outcome(session, ids["C"], "confirmed", "corroborated", "arrested", who)
        done = session.scalar(sa.select(CaseRecord).where(CaseRecord.number == "RET-DONE"))
        assert done is not None
        case_repo.close_case(session, done, who)
    return ids


def _state(services: Services) -> tuple[dict[int, int], int, set[str]]:
    with services.db.session() as session:
        cands = dict(
            session.execute(
                sa.select(CandidateRecord.search_id, sa.func.count()).group_by(
                    CandidateRecord.search_id
                )
            ).all()
        )
        disps = session.scalar(sa.select(sa.func.count()).select_from(DispositionRecord)) or 0
    files = {p.name for p in services.settings.probes_dir.rglob("*") if p.is_file()}
    return {int(k): int(v) for k, v in cands.items()}, int(disps), files


@pytest.mark.models
def test_dry_run_and_real_run_agree(meds_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = provision_token(home, "rita", "records")
    services = make_services(home)
    ids = _setup(services, meds_dir)
    probe_a = services.probes.path(_probe_sha(services, ids["A"]))
    cands, disps, files = _state(services)
    assert disps == cands[ids["A"]] > 0 and len(files) == 3

    later = NOW + dt.timedelta(days=100)
    dry = plan_retention(services, RECORDS, later)
    assert [(d.search_id, d.rule) for d in dry.deletions] == [(ids["A"], RetentionRule.NO_LEAD)]
    assert dry.deletions[0].candidates == cands[ids["A"]]
    assert dry.deletions[0].dispositions == disps
    assert not dry.deletions[0].delete_probe_file  # search D still needs the same image
    assert _state(services) == (cands, disps, files)  # a dry run deletes nothing

    real = apply_retention(services, RECORDS, later)
    assert real.applied == dry.deletions and real.probe_files_deleted == 0
    after, disps_after, _ = _state(services)
    assert ids["A"] not in after and disps_after == 0 and probe_a.exists()
    assert {k: v for k, v in cands.items() if k != ids["A"]} == after
    assert plan_retention(services, RECORDS, later).empty  # idempotent
    assert apply_retention(services, RECORDS, later).applied == ()

    with services.db.session() as session:  # D has no lead now: the shared image may go
        search_d = session.get(SearchRecord, ids["D"])
        assert search_d is not None
        case_repo.set_search_status(session, search_d, "no_lead")
    dry = plan_retention(services, RECORDS, later)
    assert [(d.search_id, d.delete_probe_file) for d in dry.deletions] == [(ids["D"], True)]
    assert apply_retention(services, RECORDS, later).probe_files_deleted == 1
    assert not probe_a.exists()

    years = (NOW + dt.timedelta(days=6 * 366)).date().isoformat()
    dry_cli = _cli(home, token, "retention", "run", "--at", years)
    assert dry_cli.returncode == 0, dry_cli.stderr
    assert _state(services)[0].get(ids["C"])  # still there after the CLI dry run
    early = _cli(home, token, "retention", "run", "--apply", "--at", years)
    assert early.returncode == 2 and "retention_in_future" in early.stderr, early.stderr
    assert len(early.stderr.strip().splitlines()) == 1 and "Traceback" not in early.stderr
    assert _state(services)[0].get(ids["C"])  # refused: nothing deleted
    _backdate(services, dt.timedelta(days=6 * 366))  # six years pass instead
    real_cli = _cli(home, token, "retention", "run", "--apply")
    assert real_cli.returncode == 0, real_cli.stderr
    assert (
        _rows(dry_cli.stdout)
        == _rows(real_cli.stdout)
        == [(str(ids["C"]), "RET-DONE", "closed_case")]
    )
    assert "would delete: 1 searches" in dry_cli.stdout and "deleted: 1 searches" in real_cli.stdout
    remaining, _, files_end = _state(services)
    assert set(remaining) == {ids["B"]} and len(files_end) == 1  # B: open case, unreviewed

    with services.db.session() as session:
        events = session.execute(
            sa.select(AuditEvent.object_id, AuditEvent.details)
            .where(AuditEvent.action == "retention.run", AuditEvent.object_type == "search")
        ).all()  # fmt: skip
        total = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    assert sorted(int(o) for o, _ in events) == sorted([ids["A"], ids["C"], ids["D"]])
    assert all(d["candidates_deleted"] >= 0 for _, d in events)
    assert total and total > 10  # the audit log itself is never purged


def _backdate(services: Services, by: dt.timedelta) -> None:
    """Move every date the rules read into the past, as if ``by`` had gone by."""
    with services.db.session() as session:
        for search in session.scalars(sa.select(SearchRecord)):
            search.created_at -= by
        for case in session.scalars(sa.select(CaseRecord)):
            if case.closed_at is not None:
                case.closed_at -= by


def _probe_sha(services: Services, search_id: int) -> str:
    with services.db.session() as session:
        search = session.get(SearchRecord, search_id)
        assert search is not None
        return search.probe.image_sha256


def _cli(home: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELEAD_HOME": str(home), "FACELEAD_TOKEN": token, "COLUMNS": "200"}
    return subprocess.run(
        [str(FACELEAD), *args], capture_output=True, text=True, env=env, timeout=300
    )


def _rows(output: str) -> list[tuple[str, ...]]:
    """(search, case, rule) of each table row the command printed."""
    found = re.findall(r"│\s*(\d+)\s*│\s*(\S+)\s*│\s*(no_lead|closed_case)\s*│", output)
    return [tuple(row) for row in found]


def test_retention_on_each_backend_without_models(tmp_path: Path, database_url: str) -> None:
    """Search rows written through the case repository; the rules and deletions run on both."""
    from tests.test_seal import synthetic_gallery

    services = make_services(tmp_path / "home", database_url)
    synthetic_gallery(services, 2)
    who = case_repo.UserRef("ivan")
    with services.db.session() as session:
        case = case_repo.add_case(session, "PG-RET-1", "LACRIS", "robbery", who)
        ids = []
        for n, status in enumerate(("no_lead", "candidates_ready")):
            search = record_search(
                services, session, case, f"probe {n}".encode(), status=status, candidates=2
            )
            hits = [case_repo.RankedHit(1, 0.5, 1, 1), case_repo.RankedHit(2, 0.4, 2, 2)]
            case_repo.add_candidates(session, search.id, hits)
            ids.append(search.id)
    later = NOW + dt.timedelta(days=91)
    dry = plan_retention(services, RECORDS, later)
    assert [(d.search_id, d.candidates, d.delete_probe_file) for d in dry.deletions] == [
        (ids[0], 2, True)
    ]
    assert apply_retention(services, RECORDS, later).applied == dry.deletions
    assert _state(services)[0] == {ids[1]: 2} and len(_state(services)[2]) == 1
    with services.db.session() as session:
        case_row = session.scalar(sa.select(CaseRecord))
        assert case_row is not None
        case_repo.close_case(session, case_row, who)
    assert plan_retention(services, RECORDS, later).empty  # closed today: 5 years to go
    decade = NOW + dt.timedelta(days=3660)
    dry = plan_retention(services, RECORDS, decade)
    assert [(d.search_id, d.rule) for d in dry.deletions] == [(ids[1], RetentionRule.CLOSED_CASE)]
    assert apply_retention(services, RECORDS, decade).probe_files_deleted == 1
    assert _state(services) == ({}, 0, set())
    assert plan_retention(services, RECORDS, decade).empty
    services.db.dispose()
