"""End to end: one MEDS search from submission to a corroborated, closed outcome.

Every role takes its part with a real account (records clerk, investigator,
two examiners, supervisor, auditor), on SQLite and PostgreSQL, with the real
face models. Each forbidden shortcut is refused with its code and leaves
every table and every status exactly as it was, apart from its refusal event.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facelead.config import Settings
from facelead.domain.access import Actor
from facelead.domain.cases import ReviewRole, SearchStatus
from facelead.domain.gallery import BookingRef
from facelead.domain.review import REPORT_DISCLAIMER, Decision, Disposition
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.errors import FaceLeadError
from facelead.services.audit import audit_report, verify_log
from facelead.services.cases import close_case, open_case
from facelead.services.context import Services
from facelead.services.corroboration import add_corroboration, record_outcome
from facelead.services.disclosure import disclose_case
from facelead.services.gallery import enroll_photo
from facelead.services.reports import lead_report
from facelead.services.review import assign_reviewer, dispose, record_features, review_queue, verify
from facelead.services.review_view import show_review
from facelead.services.search import search_status, submit_search, view_candidates
from tests.conftest import Installed

DEFAULT_MODEL = Settings().model_id

pytestmark = pytest.mark.models

CASE = "LA-2025-0042"
CERTIFIED = dt.date.today() + dt.timedelta(days=365)
GALLERY = [  # file, subject, booking, booking date (S001's photos are old: flagged stale)
    ("S001-01-t10_01.jpg", "S001", "S001-01", dt.date(2011, 3, 2)),
    ("S001-02-t10_01.jpg", "S001", "S001-02", dt.date(2014, 6, 9)),
    ("S002-01-t10_01.jpg", "S002", "S002-01", dt.date(2022, 1, 5)),
    ("S003-01-t10_01.jpg", "S003", "S003-01", None),
    ("S004-01-t10_01.jpg", "S004", "S004-01", dt.date(2023, 8, 30)),
]
PROBE = "S001-03-t10_01.jpg"
REQUEST = SearchRequest(
    purpose="criminal-investigation",
    justification="Armed robbery of a pharmacy on 5th Street, suspect on the shop camera",
    provenance=ProbeProvenance("cctv-still", "DVR export by Det. Ruiz", "pharmacy CCTV", ("crop",)),
    top_k=4,
)
FEATURES = ["face-shape", "hairline", "eyebrows", "eyes", "nose", "mouth", "chin-jawline"]
TABLES = (
    "searches", "probes", "candidates", "search_assignments", "reviews", "review_dispositions",
    "review_resolutions", "lead_reports", "corroborations", "search_outcomes",
)  # fmt: skip
ROLES = {
    "rita": ("records",),
    "ivy": ("investigator",),
    "erin": ("examiner",),
    "ezra": ("examiner",),
    "sam": ("supervisor",),
    "audra": ("auditor",),
}


@dataclass
class World:
    services: Services
    people: dict[str, Actor]
    search_id: int

    def __getitem__(self, name: str) -> Actor:
        return self.people[name]


def snapshot(services: Services) -> dict[str, Any]:
    """Row counts of every search and review table, and every search's and case's status."""
    with services.db.engine.connect() as conn:
        state: dict[str, Any] = {
            t: conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in TABLES
        }
        state["search_status"] = dict(
            conn.execute(sa.text("SELECT id, status FROM searches")).all()
        )
        state["case_status"] = dict(conn.execute(sa.text("SELECT number, status FROM cases")).all())
        state["events"] = conn.scalar(sa.text("SELECT count(*) FROM audit_events"))
    return state


def last_event(services: Services) -> tuple[str, str, str | None]:
    with services.db.engine.connect() as conn:
        row = conn.execute(
            sa.text("SELECT action, outcome, object_id FROM audit_events ORDER BY seq DESC LIMIT 1")
        ).one()
    return row[0], row[1], row[2]


def refused_unchanged(services: Services, call: Callable[[], object], code: str) -> FaceLeadError:
    """Refused with ``code``; nothing changed but one new audit event, the refusal."""
    before = snapshot(services)
    with pytest.raises(FaceLeadError) as info:
        call()
    assert info.value.code == code, info.value.as_dict()
    after = snapshot(services)
    assert after.pop("events") == before.pop("events") + 1
    assert after == before
    assert last_event(services)[1] == f"refused:{code}"
    return info.value


def build_world(installed: Installed, meds_dir: Path, case: str = CASE) -> World:
    """Accounts for every role, a small MEDS gallery and one search by ivy."""
    services = installed.services
    for name, roles in ROLES.items():
        installed.add(name, *roles, certified_until=CERTIFIED)
    people = {name: installed.login(name) for name in ROLES}
    for file, subject, booking, when in GALLERY:
        data = (meds_dir / file).read_bytes()
        ref = BookingRef(subject, booking, booking_date=when, agency="MEDS")
        enroll_photo(services, people["rita"], data, file, ref)
    open_case(services, people["ivy"], case, "robbery")
    probe = (meds_dir / PROBE).read_bytes()
    receipt = submit_search(services, people["ivy"], case, probe, REQUEST)
    return World(services, people, receipt.search_id)


@pytest.fixture
def world(installed: Installed, meds_dir: Path) -> Iterator[World]:
    yield build_world(installed, meds_dir)


def lead(notes: str = "same ear shape and scar over the left eyebrow") -> Decision:
    return Decision(Disposition.POSSIBLE_LEAD, notes)


def test_search_to_corroborated_outcome(world: World) -> None:
    services, sid = world.services, world.search_id
    ivy, erin, ezra, sam = world["ivy"], world["erin"], world["ezra"], world["sam"]

    # The requester never sees candidates: not by role, not through the review path.
    refused_unchanged(services, lambda: view_candidates(services, ivy, sid), "forbidden")
    refused_unchanged(services, lambda: show_review(services, ivy, sid), "forbidden")

    queue = review_queue(services, sam)
    assert [(q.search_id, q.waiting_for) for q in queue] == [(sid, "examiner review")]
    assign_reviewer(services, sam, sid, "erin")

    # Blind first review: shuffled, unscored, and the ranked list is closed meanwhile.
    packet = show_review(services, erin, sid)
    assert packet.blind and not packet.scores_visible
    assert all(c.score is None and c.rank is None for c in packet.candidates)
    assert {c.subject_id for c in packet.candidates} == {"S001", "S002", "S003", "S004"}
    refused_unchanged(services, lambda: view_candidates(services, erin, sid), "blind_review")
    decisions = {"S001": lead()}
    refused_unchanged(
        services,
        lambda: dispose(services, erin, sid, decisions, Disposition.EXCLUDE),
        "features_required",
    )
    record_features(services, erin, sid, FEATURES, ["ears"])
    summary = dispose(services, erin, sid, decisions, Disposition.EXCLUDE)
    assert summary.status is SearchStatus.POSSIBLE_LEAD
    revealed = show_review(services, erin, sid)
    assert revealed.scores_visible and all(c.score is not None for c in revealed.candidates)
    ranked = {c.subject_id: c.rank for c in revealed.candidates}
    assert ranked["S001"] == 1  # the mate, found by the real model

    # A lead report before verification, and one person reviewing twice, are refused.
    refused_unchanged(services, lambda: lead_report(services, ivy, sid), "lead_not_verified")
    refused_unchanged(
        services,
        lambda: assign_reviewer(services, sam, sid, "erin", ReviewRole.VERIFIER),
        "same_reviewer",
    )
    refused_unchanged(
        services, lambda: verify(services, erin, sid, {"S001": lead()}), "same_reviewer"
    )

    # Blind peer verification: only the lead, none of erin's notes, no score.
    assign_reviewer(services, sam, sid, "ezra", ReviewRole.VERIFIER)
    seen = show_review(services, ezra, sid)
    assert [c.subject_id for c in seen.candidates] == ["S001"]
    assert seen.candidates[0].decision is None and seen.candidates[0].score is None
    assert seen.features is None  # not erin's checklist: ezra records his own
    record_features(services, ezra, sid, FEATURES[:5])
    verified = verify(services, ezra, sid, {"S001": lead("ear helix and brow scar match")})
    assert verified.status is SearchStatus.VERIFIED

    files = lead_report(services, ivy, sid)
    report = files.report
    assert report.kind == "lead" and [x.subject_id for x in report.leads] == ["S001"]
    assert report.leads[0].stale and report.leads[0].estimated_fmr  # 2011/2014 bookings
    assert {r.username for r in report.reviewers} == {"erin", "ezra"}
    assert REPORT_DISCLAIMER in files.html and "Eyebrows" in files.html
    assert "POSSIBLY STALE" in files.html and DEFAULT_MODEL in files.html
    assert files.pdf.startswith(b"%PDF") and len(files.pdf) > 10_000
    assert search_status(services, ivy, sid).status is SearchStatus.LEAD_RELEASED

    # Corroboration: lineups built from the lead are refused; contradictions are kept.
    refused_unchanged(
        services,
        lambda: add_corroboration(
            services, ivy, sid, "photo-lineup", "Victim picked S001 from a six-pack"
        ),
        "derived_from_face_match",
    )
    refused_unchanged(
        services,
        lambda: add_corroboration(
            services, ivy, sid, "witness-statement", "Clerk chose him from a photo lineup we built"
        ),
        "derived_from_face_match",
    )
    contra = add_corroboration(
        services, ivy, sid, "witness-statement",
        "Clerk describes a neck tattoo; booking records show none", contradicts=True,
    )  # fmt: skip
    assert not contra.supports and contra.status is SearchStatus.LEAD_RELEASED

    # Closing without an outcome, or confirming without corroboration, is refused.
    refused_unchanged(
        services,
        lambda: record_outcome(services, ivy, CASE, sid, None, "closing the file on this lead"),
        "outcome_required",
    )
    refused_unchanged(services, lambda: close_case(services, ivy, CASE), "outcome_required")
    refused_unchanged(
        services,
        lambda: record_outcome(
            services, ivy, CASE, sid, "confirmed", "suspect admitted it at interview"
        ),
        "corroboration_required",
    )

    item = add_corroboration(
        services, ivy, sid, "vehicle-information",
        "Getaway car plate 7ABC123 registered to the candidate's address",
    )  # fmt: skip
    assert item.supports and item.status is SearchStatus.CORROBORATED
    closed = record_outcome(
        services, ivy, CASE, sid, "confirmed", "Plate and phone records place him at the scene"
    )
    assert closed.status is SearchStatus.CLOSED
    assert close_case(services, ivy, CASE).status.value == "closed"

    _check_disclosure(world)
    _check_audit(world)


def _check_disclosure(world: World) -> None:
    services, sid = world.services, world.search_id
    refused_unchanged(services, lambda: disclose_case(services, world["ivy"], CASE), "forbidden")
    package = disclose_case(services, world["sam"], CASE)
    archive = zipfile.ZipFile(io.BytesIO(package.data))
    names = set(archive.namelist())
    manifest = json.loads(archive.read("manifest.json"))["files"]
    assert set(manifest) == names - {"manifest.json", "SHA256SUMS"}
    for path, sha in manifest.items():
        assert hashlib.sha256(archive.read(path)).hexdigest() == sha, path
    search = json.loads(archive.read(f"searches/{sid}/search.json"))
    assert search["candidates"][0]["subject_id"] == "S001"
    assert len(search["candidates"]) == 4  # every candidate, not only the lead
    assert all(f"searches/{sid}/candidates/" in c["file"] for c in search["candidates"])
    assert {r["examiner"] for r in search["reviews"]} == {"erin", "ezra"}
    assert search["probe"]["edits"] == ["crop"] and search["model_id"] == DEFAULT_MODEL
    assert [c["supports_lead"] for c in search["corroboration"]] == [False, True]
    assert search["outcome"]["outcome"] == "confirmed"
    events = [json.loads(line) for line in archive.read("audit/events.jsonl").splitlines()]
    actions = {e["action"] for e in events}
    assert {"search.submit", "review.dispose", "review.verify", "lead.report"} <= actions
    assert {"corroboration.add", "case.outcome", "case.close"} <= actions
    assert json.loads(archive.read("case.json"))["audit_event_hashes_recompute"] is True


def _check_audit(world: World) -> None:
    services, audra = world.services, world["audra"]
    assert verify_log(services, audra).ok
    now = dt.datetime.now(dt.UTC)
    report = audit_report(services, audra, now - dt.timedelta(days=1), now + dt.timedelta(hours=1))
    results = {r.rule.id: r for r in report.results}
    assert not results["lead.unreviewed_release"].findings  # the release was peer reviewed
    assert results["lead.unreviewed_release"].checked == 1
    flagged = report.flagged_users().get("candidates.unassigned_view", set())
    assert "ivy" in flagged  # the requester's attempt to see candidates is a finding
