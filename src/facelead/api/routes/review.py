"""Examiner review: queue, assignment, the reviewer's packet, features, dispositions,
blind verification and supervisor resolution. The two-person and blind rules
live in services.review; these routes only carry the requests.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from facelead.api.deps import CurrentActor, ServicesDep
from facelead.api.errors import error_responses
from facelead.api.fields import Name, Notes, SearchId
from facelead.api.models import (
    FeaturesOut,
    QueueItemOut,
    ReviewerOut,
    ReviewPacketOut,
    SearchSummaryOut,
)
from facelead.domain.cases import ReviewRole
from facelead.domain.review import Decision, Disposition, Resolution
from facelead.services.review import (
    assign_reviewer,
    dispose,
    record_features,
    resolve,
    review_queue,
    verify,
)
from facelead.services.review_view import show_review

router = APIRouter(tags=["review"], responses=error_responses(409))


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    examiner: Name = Field(description="Username of a certified examiner of the agency.")
    role: ReviewRole = ReviewRole.EXAMINER
    blind: bool | None = Field(default=None, description="Default: the deployment's setting.")


class FeaturesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compared: list[Name] = Field(max_length=50, description="FISWG features compared.")
    not_visible: list[Name] = Field(default=[], max_length=50)
    note: Notes = ""


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    disposition: Disposition
    notes: Notes = ""


class DispositionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: dict[Name, DecisionIn] = Field(
        default={}, max_length=100, description="By candidate subject id."
    )
    others: Disposition | None = Field(
        default=None, description="Disposition of every candidate not named in decisions."
    )


class VerificationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decisions: dict[Name, DecisionIn] = Field(max_length=100)
    escalate: bool = Field(default=False, description="On disagreement, go to a supervisor.")


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Resolution
    notes: Notes


def _decisions(given: dict[str, DecisionIn]) -> dict[str, Decision]:
    return {key: Decision(d.disposition, d.notes) for key, d in given.items()}


@router.get("/review/queue")
def queue_route(actor: CurrentActor, services: ServicesDep) -> list[QueueItemOut]:
    """Searches of the caller's agency waiting for review work; never their candidates."""
    return [
        QueueItemOut(
            search_id=item.search_id,
            case_number=item.case_number,
            status=item.status,
            waiting_for=item.waiting_for,
            round=item.round,
            requester=item.requester,
            created_at=item.created_at,
            reviewers=[ReviewerOut(username=u, review_role=r) for u, r in item.reviewers],
            own_request=item.own_request,
        )
        for item in review_queue(services, actor)
    ]


@router.post("/searches/{search_id}/assignments", status_code=201)
def assign_route(
    search_id: SearchId, body: AssignIn, actor: CurrentActor, services: ServicesDep
) -> SearchSummaryOut:
    """Assign an examiner or a verifier (never the requester, never the same person twice)."""
    summary = assign_reviewer(services, actor, search_id, body.examiner, body.role, body.blind)
    return SearchSummaryOut.model_validate(summary)


@router.get("/searches/{search_id}/review")
def review_route(
    search_id: SearchId, actor: CurrentActor, services: ServicesDep
) -> ReviewPacketOut:
    """The caller's own review: probe and candidates, shuffled and unscored while blind."""
    return ReviewPacketOut.model_validate(show_review(services, actor, search_id))


@router.post("/searches/{search_id}/review/features")
def features_route(
    search_id: SearchId, body: FeaturesIn, actor: CurrentActor, services: ServicesDep
) -> FeaturesOut:
    """The FISWG features compared; required before any disposition."""
    checklist = record_features(
        services, actor, search_id, body.compared, body.not_visible, body.note
    )
    return FeaturesOut(search_id=search_id, features=checklist)


@router.post("/searches/{search_id}/review/dispositions")
def dispositions_route(
    search_id: SearchId, body: DispositionsIn, actor: CurrentActor, services: ServicesDep
) -> SearchSummaryOut:
    """First examiner: one disposition per candidate; the result is no lead or possible leads."""
    summary = dispose(services, actor, search_id, _decisions(body.decisions), body.others)
    return SearchSummaryOut.model_validate(summary)


@router.post("/searches/{search_id}/review/verification")
def verification_route(
    search_id: SearchId, body: VerificationIn, actor: CurrentActor, services: ServicesDep
) -> SearchSummaryOut:
    """Second examiner: their own blind disposition of each possible lead."""
    summary = verify(services, actor, search_id, _decisions(body.decisions), body.escalate)
    return SearchSummaryOut.model_validate(summary)


@router.post("/searches/{search_id}/review/resolution")
def resolution_route(
    search_id: SearchId, body: ResolutionIn, actor: CurrentActor, services: ServicesDep
) -> SearchSummaryOut:
    """Supervisor: resolve a disagreement (uphold, no_lead or re_review)."""
    summary = resolve(services, actor, search_id, body.decision, body.notes)
    return SearchSummaryOut.model_validate(summary)
