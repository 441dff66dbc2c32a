"""Review services in detail, on SQLite and PostgreSQL with real accounts and real searches.

Assignment checks against the users table, blind and non-blind review, the
lead cap, no-lead reports, disagreement with re-review, escalation to a
supervisor, and who may resolve. Every refusal leaves the tables unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from functools import partial
from pathlib import Path

import pytest

from facelead.domain.cases import ReviewRole, SearchStatus
from facelead.domain.review import Decision, Disposition, Resolution, presentation_order
from facelead.services import identity as identity_service
from facelead.services.corroboration import add_corroboration, record_outcome
from facelead.services.reports import lead_report
from facelead.services.review import (
    assign_reviewer,
    dispose,
    record_features,
    resolve,
    review_queue,
    verify,
)
from facelead.services.review_view import show_review
from facelead.services.search import assign_examiner, submit_search
from tests.conftest import USER_PASSWORD, Installed
from tests.test_workflow_e2e import (
    CASE,
    CERTIFIED,
    FEATURES,
    PROBE,
    REQUEST,
    World,
    build_world,
    lead,
    refused_unchanged,
)

pytestmark = pytest.mark.models
EXCLUDE = Disposition.EXCLUDE


@pytest.fixture
def world(installed: Installed, meds_dir: Path) -> World:
    return build_world(installed, meds_dir)


def _first_review(world: World, subject: str = "S001") -> None:
    """sam assigns erin, who compares features and calls ``subject`` a possible lead."""
    assign_reviewer(world.services, world["sam"], world.search_id, "erin")
    record_features(world.services, world["erin"], world.search_id, FEATURES)
    dispose(world.services, world["erin"], world.search_id, {subject: lead()}, EXCLUDE)


def test_assignment_checks_the_account(world: World, installed: Installed) -> None:
    services, sid, sam = world.services, world.search_id, world["sam"]
    admin = installed.admin
    installed.add("olga", "examiner")  # never certified
    installed.add("dora", "examiner", certified_until=CERTIFIED)
    identity_service.disable_user(services, admin, "dora")
    identity_service.add_user(
        services, admin, "lou", USER_PASSWORD, ["examiner"], "LASD", agency_name="LA Sheriff"
    )
    identity_service.certify_user(services, admin, "lou", CERTIFIED)
    for name, code in [
        ("ivy", "examiner_is_requester"),
        ("nobody", "user_not_found"),
        ("dora", "user_disabled"),
        ("audra", "not_an_examiner"),
        ("olga", "examiner_not_certified"),
        ("lou", "examiner_agency_mismatch"),
    ]:
        refused_unchanged(services, partial(assign_reviewer, services, sam, sid, name), code)
    refused_unchanged(
        services, lambda: assign_reviewer(services, world["ivy"], sid, "erin"), "forbidden"
    )
    # A user assigned outside the review workflow can look, but never review.
    assign_examiner(services, sam, sid, "ezra")
    refused_unchanged(
        services, lambda: record_features(services, world["ezra"], sid, FEATURES), "not_assigned"
    )
    summary = assign_reviewer(services, sam, sid, "erin")
    assert summary.examiners == ("ezra", "erin")
    refused_unchanged(
        services, lambda: assign_reviewer(services, sam, sid, "erin"), "same_reviewer"
    )


def test_requester_with_examiner_role_never_reviews_own_search(
    world: World, installed: Installed, meds_dir: Path
) -> None:
    services = world.services
    installed.add("dual", "investigator", "examiner", certified_until=CERTIFIED)
    dual = installed.login("dual")
    probe = (meds_dir / PROBE).read_bytes()
    own = submit_search(services, dual, CASE, probe, REQUEST).search_id
    assert next(q for q in review_queue(services, world["sam"]) if q.search_id == own).requester
    assert [q.own_request for q in review_queue(services, dual) if q.search_id == own] == [True]
    refused_unchanged(services, lambda: show_review(services, dual, own), "requester_cannot_view")
    refused_unchanged(
        services, lambda: assign_reviewer(services, dual, own, "dual"), "examiner_is_requester"
    )


def test_non_blind_review_lead_cap_and_no_lead_report(world: World, installed: Installed) -> None:
    services, sid, erin, ivy = world.services, world.search_id, world["erin"], world["ivy"]
    assign_reviewer(services, world["sam"], sid, "erin", blind=False)
    packet = show_review(services, erin, sid)
    assert not packet.blind and packet.scores_visible
    assert [c.rank for c in packet.candidates] == [1, 2, 3, 4]  # rank order, scores shown
    record_features(services, erin, sid, FEATURES)
    three = {c.subject_id: lead("similar") for c in packet.candidates[:3]}
    refused_unchanged(
        services, lambda: dispose(services, erin, sid, three, EXCLUDE), "too_many_leads"
    )
    refused_unchanged(
        services,
        lambda: dispose(services, erin, sid, {"S001": Decision(Disposition.INCONCLUSIVE)}, EXCLUDE),
        "notes_required",
    )
    assert dispose(services, erin, sid, {}, EXCLUDE).status is SearchStatus.NO_LEAD
    installed.add("ian", "investigator", certified_until=CERTIFIED)
    ian = installed.login("ian")
    refused_unchanged(services, lambda: lead_report(services, ian, sid), "report_not_permitted")
    files = lead_report(services, ivy, sid)
    assert files.report.kind == "no_lead" and not files.report.leads
    assert "NO LEAD" in files.html and "S001" not in files.html  # no candidate disclosed
    assert files.pdf.startswith(b"%PDF")
    refused_unchanged(
        services,
        lambda: add_corroboration(services, ivy, sid, "other", "a neighbour recognised nobody"),
        "lead_not_released",
    )
    record_outcome(services, ivy, CASE, sid, "excluded", "no lead: the case goes on without it")
    assert lead_report(services, ivy, sid).report.kind == "no_lead"  # still reportable


def test_disagreement_returns_for_a_fresh_blind_round(world: World) -> None:
    services, sid = world.services, world.search_id
    erin, ezra, sam = world["erin"], world["ezra"], world["sam"]
    assign_reviewer(services, sam, sid, "ezra", ReviewRole.VERIFIER)
    refused_unchanged(
        services, lambda: show_review(services, ezra, sid), "not_ready_for_verification"
    )
    _first_review(world)
    record_features(services, ezra, sid, FEATURES)
    refused_unchanged(
        services,
        lambda: verify(services, ezra, sid, {"S002": lead()}),
        "unknown_candidate",
    )
    differ = {"S001": Decision(EXCLUDE)}
    assert verify(services, ezra, sid, differ).status is SearchStatus.RETURNED_FOR_REVIEW
    refused_unchanged(
        services, lambda: lead_report(services, world["ivy"], sid), "lead_not_verified"
    )
    refused_unchanged(
        services, lambda: verify(services, ezra, sid, differ), "not_ready_for_verification"
    )
    refused_unchanged(
        services,
        lambda: resolve(services, sam, sid, Resolution.RE_REVIEW, "short"),
        "notes_required",
    )
    why = "Verifier saw a different ear shape; examine again, blind"
    assert resolve(services, sam, sid, Resolution.RE_REVIEW, why).status is (
        SearchStatus.CANDIDATES_READY
    )
    again = show_review(services, erin, sid)
    assert again.round == 2 and not again.scores_visible and again.features is None
    refused_unchanged(
        services,
        lambda: dispose(services, erin, sid, {"S001": lead()}, EXCLUDE),
        "features_required",
    )
    record_features(services, erin, sid, FEATURES)
    dispose(services, erin, sid, {"S001": lead("ear lobe attached in both")}, EXCLUDE)
    revealed = show_review(services, erin, sid)  # same blind order, now with ranks
    by_rank = [c.subject_id for c in sorted(revealed.candidates, key=lambda c: c.rank or 0)]
    shown = [c.subject_id for c in again.candidates]
    assert shown == [c.subject_id for c in revealed.candidates]
    assert shown == presentation_order(by_rank, sid, "erin", 2)  # reproducible by an auditor
    record_features(services, ezra, sid, FEATURES)
    assert verify(services, ezra, sid, {"S001": lead("agree")}).status is SearchStatus.VERIFIED


def test_escalation_is_resolved_by_an_uninvolved_supervisor(
    world: World, installed: Installed
) -> None:
    services, sid, ezra = world.services, world.search_id, world["ezra"]
    installed.add("vic", "examiner", "supervisor", certified_until=CERTIFIED)
    vic = installed.login("vic")
    _first_review(world)
    assign_reviewer(services, world["sam"], sid, "ezra", ReviewRole.VERIFIER)
    assign_reviewer(services, world["sam"], sid, "vic", ReviewRole.VERIFIER)
    record_features(services, ezra, sid, FEATURES)
    refused_unchanged(
        services,
        lambda: verify(services, ezra, sid, {"S001": lead()}, escalate=True),
        "nothing_to_escalate",
    )
    escalated = verify(services, ezra, sid, {"S001": Decision(EXCLUDE)}, escalate=True)
    assert escalated.status is SearchStatus.ESCALATED
    why = "Compared both photos myself: the scar and ear match; uphold the lead"
    refused_unchanged(
        services, lambda: resolve(services, vic, sid, Resolution.UPHOLD, why), "same_reviewer"
    )
    refused_unchanged(
        services, lambda: resolve(services, world["erin"], sid, Resolution.UPHOLD, why), "forbidden"
    )
    assert resolve(services, world["sam"], sid, Resolution.UPHOLD, why).status is (
        SearchStatus.VERIFIED
    )
    report = lead_report(services, world["ivy"], sid).report
    roles = {(r.role, r.username, r.conclusion) for r in report.reviewers}
    assert ("supervisor resolution", "sam", "uphold") in roles
    assert ("verifier (blind)", "ezra", "disagree") in roles


def test_lapsed_training_blocks_review(world: World) -> None:
    services, sid = world.services, world.search_id
    assign_reviewer(services, world["sam"], sid, "erin")
    lapsed = dataclasses.replace(world["erin"], certified_until=dt.date.today() - dt.timedelta(1))
    refused_unchanged(
        services, lambda: record_features(services, lapsed, sid, FEATURES), "training_expired"
    )
    refused_unchanged(services, lambda: show_review(services, lapsed, sid), "training_expired")
