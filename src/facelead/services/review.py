"""Examiner review and blind peer verification (DESIGN.md principle 2, the two-person rule).

A search with candidates waits in its agency's queue until a certified
examiner (never the requester) is assigned. The examiner records the FISWG
features compared, then one disposition per candidate; in blind mode the
candidates come shuffled and unscored until then. Possible leads go to a
second examiner who sees each lead without the first one's conclusion and
records their own disposition; agreement verifies, disagreement returns the
search for review or escalates it to a supervisor. Each step is one audited
transaction through ``perform``; a refusal changes nothing.

What a reviewer sees (``show_review``) lives in ``services.review_view``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

from facelead.domain import policy
from facelead.domain import review as rules
from facelead.domain.access import Action, Actor
from facelead.domain.cases import AWAITING_REVIEW, ReviewRole, SearchStatus, SearchSummary
from facelead.domain.identity import normalise_username
from facelead.domain.review import Decision, Disposition, Resolution
from facelead.errors import ConflictError, NotFoundError, PermissionDenied
from facelead.services.cases import summary_of, user_ref
from facelead.services.context import Services
from facelead.services.uow import Scope, perform
from facelead.store import cases as cases_repo
from facelead.store import identity as identity_repo
from facelead.store import review as repo
from facelead.store.case_models import CandidateRecord, SearchRecord
from facelead.store.gallery import PhotoInfo, photo_details
from facelead.store.review_models import ReviewRecord

WAITING_FOR = {
    SearchStatus.CANDIDATES_READY: "examiner review",
    SearchStatus.POSSIBLE_LEAD: "blind verification",
    SearchStatus.RETURNED_FOR_REVIEW: "supervisor: re-review or resolve",
    SearchStatus.ESCALATED: "supervisor resolution",
}


@dataclass(frozen=True)
class QueueItem:
    """A search waiting for review work; never its candidates."""

    search_id: int
    case_number: str
    status: SearchStatus
    waiting_for: str
    round: int
    requester: str
    created_at: dt.datetime
    reviewers: tuple[tuple[str, str], ...]  # (username, review role)
    own_request: bool


def open_search(scope: Scope, search_id: int) -> SearchRecord:
    """The search, filed on the audit event with its case; refused across agencies."""
    scope.object_type, scope.object_id = "search", str(search_id)
    scope.details["search_id"] = search_id
    search = repo.lock_search(scope.session, int(search_id))
    if search is None:
        raise NotFoundError(f"no search {search_id}", code="search_not_found")
    scope.case_number, scope.purpose = search.case.number, search.purpose
    policy.require_same_agency(search.case.agency, scope.actor.agency)
    return search


def candidates_by_subject(
    session: Session, search: SearchRecord
) -> dict[str, tuple[CandidateRecord, PhotoInfo]]:
    """The search's candidates keyed by gallery subject id (how reviewers name them)."""
    details = photo_details(session, [c.photo_id for c in search.candidates])
    return {
        details[c.photo_id].subject_external_id: (c, details[c.photo_id])
        for c in search.candidates
        if c.photo_id in details
    }


def examiner_review(session: Session, search_id: int, round_no: int) -> ReviewRecord | None:
    """The completed first review of a round (the first examiner to dispose wins the round)."""
    for review in repo.reviews_of(session, search_id, round_no):
        if review.review_role == ReviewRole.EXAMINER.value and review.completed_at is not None:
            return review
    return None


def leads_of(review: ReviewRecord) -> dict[str, CandidateRecord]:
    """Possible leads of a completed examiner review, by subject id, in rank order."""
    session = Session.object_session(review)
    assert session is not None
    picked = [
        d.candidate for d in review.dispositions if d.disposition == Disposition.POSSIBLE_LEAD
    ]
    details = photo_details(session, [c.photo_id for c in picked])
    ordered = sorted(picked, key=lambda c: c.rank)
    return {details[c.photo_id].subject_external_id: c for c in ordered}


def own_review(scope: Scope, search: SearchRecord, round_no: int) -> ReviewRecord:
    """The actor's review of this round; the requester and unassigned users get none."""
    review = repo.review_for(scope.session, search.id, scope.actor.username, round_no)
    if review is None:
        policy.check_candidate_access(scope.actor.username, search.requester_username, ())
    assert review is not None
    return review


def move(scope: Scope, search: SearchRecord, path: Iterable[SearchStatus]) -> SearchStatus:
    """Walk the state machine (an illegal step raises before anything is written)."""
    before = SearchStatus(search.status)
    after = rules.walk(before, path)
    cases_repo.set_search_status(scope.session, search, after.value)
    scope.details.update(from_status=before.value, status=after.value)
    return after


def review_queue(services: Services, actor: Actor) -> tuple[QueueItem, ...]:
    """Searches of the actor's agency waiting for an examiner, a verifier or a supervisor."""
    with perform(services, actor, Action.REVIEW_QUEUE, object_type="review_queue") as scope:
        waiting = repo.queue(scope.session, actor.agency, [s.value for s in AWAITING_REVIEW])
        items = tuple(
            QueueItem(
                search_id=s.id,
                case_number=s.case.number,
                status=SearchStatus(s.status),
                waiting_for=WAITING_FOR[SearchStatus(s.status)],
                round=repo.current_round(scope.session, s.id),
                requester=s.requester_username,
                created_at=s.created_at,
                reviewers=tuple((a.examiner_username, a.review_role) for a in s.assignments),
                own_request=s.requester_username == actor.username,
            )
            for s in waiting
        )
        scope.details["count"] = len(items)
        return items


def assign_reviewer(
    services: Services,
    actor: Actor,
    search_id: int,
    examiner: str,
    role: ReviewRole = ReviewRole.EXAMINER,
    blind: bool | None = None,
) -> SearchSummary:
    """Assign an enabled, certified examiner of the agency who has no part in the search yet."""
    with perform(services, actor, Action.REVIEW_ASSIGN) as scope:
        scope.details.update(examiner=examiner, review_role=role.value)
        name = scope.details["examiner"] = normalise_username(examiner)
        search = open_search(scope, search_id)
        status = SearchStatus(search.status)
        if status not in AWAITING_REVIEW:
            raise ConflictError(
                f"search is {status.value}; nothing to review", code="not_awaiting_review"
            )
        policy.check_examiner_not_requester(name, search.requester_username)
        assigned = [a.examiner_username for a in repo.assignments_of(scope.session, search.id)]
        rules.check_distinct_reviewers(name, search.requester_username, assigned)
        user = identity_repo.get_user_by_name(scope.session, name)
        rules.check_examiner_account(
            exists=user is not None,
            disabled=bool(user and user.disabled),
            roles=user.role_names if user else (),
            certified_until=user.certified_until if user else None,
            agency=user.agency.code if user else None,
            case_agency=search.case.agency,
            today=dt.date.today(),
        )
        assert user is not None
        assignment = cases_repo.add_assignment(
            scope.session, search.id, cases_repo.UserRef(name, user.id), role.value, user_ref(actor)
        )
        blind = services.settings.review_blind if blind is None else blind
        repo.add_review(
            scope.session, assignment, repo.current_round(scope.session, search.id), blind
        )
        scope.details["blind"] = blind
        scope.session.refresh(search)
        return summary_of(search, search.case.number)


def record_features(
    services: Services,
    actor: Actor,
    search_id: int,
    compared: Iterable[str],
    not_visible: Iterable[str] = (),
    note: str = "",
) -> dict[str, str]:
    """Step one of any review: the FISWG features compared, before any disposition."""
    with perform(services, actor, Action.REVIEW_DISPOSE) as scope:
        scope.details["step"] = "features"
        search = open_search(scope, search_id)
        review = own_review(scope, search, repo.current_round(scope.session, search.id))
        _require_undecided(review)
        checklist = rules.feature_checklist(
            compared, not_visible, services.settings.review_min_features
        )
        repo.set_features(scope.session, review, checklist, " ".join(note.split()))
        scope.details.update(review_role=review.review_role, round=review.round, features=checklist)
        return checklist


def dispose(
    services: Services,
    actor: Actor,
    search_id: int,
    decisions: Mapping[str, Decision],
    others: Disposition | None = None,
) -> SearchSummary:
    """The first examiner's disposition of every candidate: no lead, or 1..N possible leads."""
    with perform(services, actor, Action.REVIEW_DISPOSE) as scope:
        scope.details["step"] = "dispositions"
        search = open_search(scope, search_id)
        round_no = repo.current_round(scope.session, search.id)
        review = own_review(scope, search, round_no)
        _require_role(review, ReviewRole.EXAMINER)
        _require_undecided(review)
        if examiner_review(scope.session, search.id, round_no) is not None:
            raise ConflictError(
                "another examiner has already reviewed this round", code="review_already_done"
            )
        status = SearchStatus(search.status)
        if status is not SearchStatus.CANDIDATES_READY:
            raise ConflictError(
                f"search is {status.value}; it is not waiting for examiner review",
                code="not_awaiting_review",
            )
        _require_features(review)
        presented = candidates_by_subject(scope.session, search)
        filled = rules.with_others(list(presented), decisions, others)
        leads = rules.check_dispositions(
            list(presented), filled, services.settings.review_max_leads
        )
        conclusion = rules.review_conclusion(leads)
        ids = {k: c.id for k, (c, _) in presented.items()}
        _complete(scope.session, review, conclusion.value, ids, filled)
        move(scope, search, (conclusion,))
        scope.details.update(
            round=round_no,
            conclusion=conclusion.value,
            leads=list(leads),
            dispositions={k: d.disposition.value for k, d in filled.items()},
        )
        return summary_of(search, search.case.number)


def verify(
    services: Services,
    actor: Actor,
    search_id: int,
    decisions: Mapping[str, Decision],
    escalate: bool = False,
) -> SearchSummary:
    """The second examiner's own, blind disposition of each possible lead decides."""
    with perform(services, actor, Action.REVIEW_VERIFY) as scope:
        search = open_search(scope, search_id)
        round_no = repo.current_round(scope.session, search.id)
        status = SearchStatus(search.status)
        first = examiner_review(scope.session, search.id, round_no)
        if status is not SearchStatus.POSSIBLE_LEAD or first is None:
            raise ConflictError(
                f"search is {status.value}; there is no possible lead to verify",
                code="not_ready_for_verification",
            )
        rules.check_distinct_reviewers(
            actor.username, search.requester_username, {first.examiner_username}
        )
        review = own_review(scope, search, round_no)
        _require_role(review, ReviewRole.VERIFIER)
        _require_undecided(review)
        _require_features(review)
        leads = leads_of(first)
        rules.check_dispositions(list(leads), decisions, len(leads))
        path = rules.verification_path(list(leads), decisions, escalate)
        agreed = path == (SearchStatus.VERIFIED,)
        ids = {k: c.id for k, c in leads.items()}
        _complete(scope.session, review, "agree" if agreed else "disagree", ids, decisions)
        final = move(scope, search, path)
        scope.details.update(
            round=round_no,
            decision=final.value,
            examiner=first.examiner_username,
            agreement={k: d.disposition is Disposition.POSSIBLE_LEAD for k, d in decisions.items()},
        )
        return summary_of(search, search.case.number)


def resolve(
    services: Services, actor: Actor, search_id: int, decision: Resolution, notes: str
) -> SearchSummary:
    """A supervisor who took no part resolves a disagreement: uphold, no lead, or re-review."""
    with perform(services, actor, Action.REVIEW_RESOLVE) as scope:
        scope.details.update(decision=decision.value, notes=notes)
        search = open_search(scope, search_id)
        round_no = repo.current_round(scope.session, search.id)
        path = rules.resolution_path(SearchStatus(search.status), decision)
        reviewers = {r.examiner_username for r in repo.reviews_of(scope.session, search.id)}
        rules.check_distinct_reviewers(actor.username, search.requester_username, reviewers)
        text = rules.check_notes(notes, services.settings.min_justification_chars)
        repo.add_resolution(
            scope.session, search.id, round_no, user_ref(actor), decision.value, text
        )
        move(scope, search, path)
        if decision is Resolution.RE_REVIEW:
            _open_round(scope.session, search, round_no + 1)
            scope.details["new_round"] = round_no + 1
        scope.details["round"] = round_no
        return summary_of(search, search.case.number)


def _open_round(session: Session, search: SearchRecord, round_no: int) -> None:
    """A fresh review row for every reviewer assigned through the workflow (same blind choice)."""
    previous = {r.assignment_id: r.blind for r in repo.reviews_of(session, search.id)}
    for assignment in repo.assignments_of(session, search.id):
        if assignment.id in previous:
            repo.add_review(session, assignment, round_no, previous[assignment.id])


def _complete(
    session: Session,
    review: ReviewRecord,
    conclusion: str,
    candidate_ids: Mapping[str, int],
    decisions: Mapping[str, Decision],
) -> None:
    repo.complete_review(
        session,
        review,
        conclusion,
        [
            repo.Disposed(candidate_ids[k], d.disposition.value, d.notes.strip())
            for k, d in decisions.items()
        ],
    )


def _require_role(review: ReviewRecord, role: ReviewRole) -> None:
    if review.review_role != role.value:
        raise PermissionDenied(
            f"you are assigned to this search as {review.review_role}, not {role.value}",
            code="wrong_review_role",
        )


def _require_undecided(review: ReviewRecord) -> None:
    if review.completed_at is not None:
        raise ConflictError(
            "your review of this round is recorded and cannot be changed",
            code="review_already_done",
        )


def _require_features(review: ReviewRecord) -> None:
    if not review.features:
        raise ConflictError(
            "record the facial features compared first (facelead review features)",
            code="features_required",
        )
