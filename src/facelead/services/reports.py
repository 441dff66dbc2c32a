"""Lead reports: to the requester, only after peer verification, as HTML and PDF.

A report states what two examiners concluded, on what features, with the
score, its estimated false match rate and the age of the booking photo, under
a fixed disclaimer (domain.review.REPORT_DISCLAIMER). No-lead conclusions are
reported too, without any candidate. The first release of a verified lead
moves the search to ``lead_released``; each issue is recorded with the
SHA-256 of both files, and audited as ``lead.report`` with the search id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from facelead.domain import review as rules
from facelead.domain.access import Action, Actor, Role
from facelead.domain.cases import ReviewRole, SearchStatus
from facelead.domain.review import FEATURES, REPORT_DISCLAIMER, compared_features
from facelead.domain.search import ProbeProvenance
from facelead.errors import PermissionDenied
from facelead.eval.calibration import load_calibration
from facelead.eval.metrics import estimated_fmr, fmr_is_upper_bound
from facelead.services.context import Services
from facelead.services.review import candidates_by_subject, examiner_review, move, open_search
from facelead.services.uow import Scope, perform
from facelead.store import review as repo
from facelead.store.case_models import SearchRecord
from facelead.store.review_models import ReviewRecord


@dataclass(frozen=True)
class ReportLead:
    subject_id: str
    booking_number: str | None
    booking_date: dt.date | None
    agency: str | None
    photo_sha256: str
    photo: bytes
    rank: int
    score: float
    estimated_fmr: str  # "not calibrated", "≈ 3.1e-04", or "< 1.0e-05 (bound)"
    age_years: float | None
    stale: bool
    notes: tuple[str, ...]  # the examiner's and the verifier's reasons


@dataclass(frozen=True)
class ReviewerLine:
    role: str
    username: str
    at: dt.datetime | None
    conclusion: str
    features_compared: tuple[str, ...]


@dataclass(frozen=True)
class LeadReport:
    kind: str  # "lead" or "no_lead"
    search_id: int
    case_number: str
    offence_category: str
    agency: str
    requester: str
    purpose: str
    requested_at: dt.datetime
    model_id: str
    gallery_size: int
    probe_sha256: str
    probe: bytes
    provenance: ProbeProvenance
    leads: tuple[ReportLead, ...]
    reviewers: tuple[ReviewerLine, ...]
    stale_after_years: int
    issued_by: str
    issued_at: dt.datetime
    disclaimer: str = field(default=REPORT_DISCLAIMER)


@dataclass(frozen=True)
class LeadReportFiles:
    report: LeadReport
    html: str
    pdf: bytes

    @property
    def html_sha256(self) -> str:
        return hashlib.sha256(self.html.encode("utf-8")).hexdigest()

    @property
    def pdf_sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()


def lead_report(services: Services, actor: Actor, search_id: int) -> LeadReportFiles:
    """Issue the report of a verified lead (or of a no-lead review) for the requester."""
    from facelead.services.report_render import render_html, render_pdf

    with perform(services, actor, Action.LEAD_REPORT) as scope:
        search = open_search(scope, search_id)
        _check_recipient(scope, search)
        status = SearchStatus(search.status)
        closed = repo.outcome_of(scope.session, search.id)
        closed_from = SearchStatus(closed.status_before) if closed else None
        kind = rules.report_kind(status, closed_from)
        report = build_report(services, scope, search, kind)
        files = LeadReportFiles(report, render_html(report), render_pdf(report))
        if status is SearchStatus.VERIFIED:
            move(scope, search, (SearchStatus.LEAD_RELEASED,))
        repo.add_lead_report(
            scope.session,
            search_id=search.id,
            kind=kind,
            issued_to_username=search.requester_username,
            issued_by_username=actor.username,
            issued_by_user_id=actor.user_id,
            html_sha256=files.html_sha256,
            pdf_sha256=files.pdf_sha256,
        )
        scope.details.update(
            kind=kind,
            issued_to=search.requester_username,
            subject_ids=[lead.subject_id for lead in report.leads],
            html_sha256=files.html_sha256,
            pdf_sha256=files.pdf_sha256,
        )
        return files


def _check_recipient(scope: Scope, search: SearchRecord) -> None:
    """The requester, a reviewer of the search or a supervisor of the agency; nobody else."""
    actor = scope.actor
    reviewers = {a.examiner_username for a in search.assignments}
    if actor.username == search.requester_username or actor.username in reviewers:
        return
    if Role.SUPERVISOR in actor.roles:
        return
    raise PermissionDenied(
        "a lead report goes to the requester of the search (or its reviewers and supervisors)",
        code="report_not_permitted",
    )


def build_report(services: Services, scope: Scope, search: SearchRecord, kind: str) -> LeadReport:
    session = scope.session
    round_no = repo.current_round(session, search.id)
    first = examiner_review(session, search.id, round_no)
    second = _verifier_review(session, search.id, round_no)
    leads = _leads(services, session, search, first, second) if kind == "lead" else ()
    probe = search.probe
    return LeadReport(
        kind=kind,
        search_id=search.id,
        case_number=search.case.number,
        offence_category=search.case.offence_category,
        agency=search.case.agency,
        requester=search.requester_username,
        purpose=search.purpose,
        requested_at=search.created_at,
        model_id=search.model_id,
        gallery_size=search.gallery_size,
        probe_sha256=probe.image_sha256,
        probe=services.probes.get(probe.image_sha256),
        provenance=ProbeProvenance(
            probe.source_type, probe.how_obtained, probe.captured_by, tuple(probe.edits)
        ),
        leads=leads,
        reviewers=_reviewers(session, search.id, first, second),
        stale_after_years=services.settings.stale_photo_years,
        issued_by=scope.actor.username,
        issued_at=dt.datetime.now(dt.UTC),
    )


def _verifier_review(session: Session, search_id: int, round_no: int) -> ReviewRecord | None:
    for review in repo.reviews_of(session, search_id, round_no):
        if review.review_role == ReviewRole.VERIFIER.value and review.completed_at is not None:
            return review
    return None


def _leads(
    services: Services,
    session: Session,
    search: SearchRecord,
    first: ReviewRecord | None,
    second: ReviewRecord | None,
) -> tuple[ReportLead, ...]:
    """The first examiner's possible leads (all verified, or upheld by a supervisor)."""
    if first is None:
        return ()
    table = load_calibration(search.model_id)
    today = dt.date.today()
    notes: dict[int, list[str]] = {}
    for review in (r for r in (first, second) if r is not None):
        for d in review.dispositions:
            if d.notes:
                notes.setdefault(d.candidate_id, []).append(
                    f"{review.examiner_username}: {d.notes}"
                )
    picked = {d.candidate_id for d in first.dispositions if d.disposition == "possible_lead"}
    leads = []
    for candidate, info in candidates_by_subject(session, search).values():
        if candidate.id not in picked:
            continue
        if table is None:
            fmr = "not calibrated"
        elif fmr_is_upper_bound(table, candidate.score):
            fmr = f"< {estimated_fmr(table, candidate.score):.1e} (no impostor scored as high)"
        else:
            fmr = f"≈ {estimated_fmr(table, candidate.score):.1e}"
        leads.append(
            ReportLead(
                subject_id=info.subject_external_id,
                booking_number=info.booking_number,
                booking_date=info.booking_date,
                agency=info.agency,
                photo_sha256=info.image_sha256,
                photo=services.images.get(info.image_sha256),
                rank=candidate.rank,
                score=candidate.score,
                estimated_fmr=fmr,
                age_years=rules.photo_age_years(info.booking_date, today),
                stale=rules.is_stale(info.booking_date, today, services.settings.stale_photo_years),
                notes=tuple(notes.get(candidate.id, ())),
            )
        )
    return tuple(leads)


def _reviewers(
    session: Session, search_id: int, first: ReviewRecord | None, second: ReviewRecord | None
) -> tuple[ReviewerLine, ...]:
    lines = [
        ReviewerLine(
            role=label,
            username=review.examiner_username,
            at=review.completed_at,
            conclusion=review.conclusion or "",
            features_compared=tuple(FEATURES[n] for n in compared_features(review.features)),
        )
        for label, review in (("examiner", first), ("verifier (blind)", second))
        if review is not None
    ]
    for res in repo.resolutions_of(session, search_id):
        lines.append(
            ReviewerLine(
                "supervisor resolution", res.supervisor_username, res.created_at, res.decision, ()
            )
        )
    return tuple(lines)
