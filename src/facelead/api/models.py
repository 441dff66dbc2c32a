"""What the API returns: explicit response models read from the services' records.

Each model lists the fields a client gets, so adding a field to a service
record never publishes it by accident (internal ids, file paths and image
bytes stay out). Models read attributes (``from_attributes``), so routes
write ``CaseOut.model_validate(case)``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from facelead.domain.access import Role
from facelead.domain.cases import CaseStatus, ReviewRole, SearchStatus
from facelead.domain.gallery import EnrolmentStatus
from facelead.domain.review import Disposition


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    """Every error, whatever its status: a stable machine-readable code and a message."""

    code: str
    message: str
    details: dict[str, Any] | None = None


# --- identity ---


class ActorOut(Out):
    username: str
    roles: list[Role]
    agency: str
    certified_until: dt.date | None


class SessionOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: dt.datetime
    idle_timeout_seconds: int
    user: ActorOut


class UserOut(Out):
    user_id: int
    username: str
    agency: str
    roles: list[Role]
    disabled: bool
    locked_until: dt.datetime | None
    certified_until: dt.date | None
    last_login_at: dt.datetime | None
    created_at: dt.datetime


class MfaEnrolmentOut(Out):
    """Returned once, when an account is created or its MFA reset; never again."""

    user: UserOut
    totp_secret: str
    provisioning_uri: str


class TokenOut(Out):
    token_id: int
    username: str
    label: str
    created_at: dt.datetime
    expires_at: dt.datetime
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None


class IssuedTokenOut(Out):
    """The secret is in ``token``, returned once; only its digest is kept."""

    token_id: int
    username: str
    label: str
    expires_at: dt.datetime
    token: str


# --- cases and searches ---


class CaseOut(Out):
    number: str
    agency: str
    offence_category: str
    status: CaseStatus
    opened_by: str
    opened_at: dt.datetime
    closed_by: str | None
    closed_at: dt.datetime | None


class SearchSummaryOut(Out):
    search_id: int
    case_number: str
    status: SearchStatus
    purpose: str
    requester: str
    model_id: str
    created_at: dt.datetime
    quality_override: bool
    examiners: list[str]


class CaseViewOut(Out):
    case: CaseOut
    searches: list[SearchSummaryOut]


class ReceiptOut(Out):
    """What a requester gets: deliberately no candidates (human review first)."""

    search_id: int
    status: SearchStatus
    case_number: str
    probe_sha256: str
    quality_override: bool
    disclaimer: str


class CandidateOut(Out):
    rank: int
    score: float
    subject_id: str
    photo_sha256: str
    booking_number: str | None
    booking_date: dt.date | None
    agency: str | None
    estimated_fmr: float | None


class CandidateListOut(Out):
    search_id: int | None
    model_id: str
    probe_sha256: str
    face_index: int
    faces_found: int
    quality: dict[str, float]
    gallery_size: int
    candidates: list[CandidateOut]
    disclaimer: str


class OverrideOut(BaseModel):
    override_id: int
    case_number: str
    requester: str


# --- review ---


class ReviewerOut(BaseModel):
    username: str
    review_role: str


class QueueItemOut(BaseModel):
    search_id: int
    case_number: str
    status: SearchStatus
    waiting_for: str
    round: int
    requester: str
    created_at: dt.datetime
    reviewers: list[ReviewerOut]
    own_request: bool


class DecisionOut(Out):
    disposition: Disposition
    notes: str


class ProvenanceOut(Out):
    source_type: str
    how_obtained: str
    captured_by: str
    edits: list[str]


class PresentedCandidateOut(Out):
    """Rank and score are null while the review is blind."""

    subject_id: str
    booking_number: str | None
    booking_date: dt.date | None
    agency: str | None
    photo_sha256: str
    rank: int | None
    score: float | None
    decision: DecisionOut | None
    estimated_fmr: float | None = None


class ReviewPacketOut(Out):
    search_id: int
    case_number: str
    status: SearchStatus
    round: int
    review_role: ReviewRole
    blind: bool
    scores_visible: bool
    model_id: str
    probe_sha256: str
    provenance: ProvenanceOut
    features: dict[str, str] | None
    completed: bool
    candidates: list[PresentedCandidateOut]
    disclaimer: str


class FeaturesOut(BaseModel):
    search_id: int
    features: dict[str, str]


class ReportLeadOut(Out):
    subject_id: str
    booking_number: str | None
    booking_date: dt.date | None
    agency: str | None
    photo_sha256: str
    rank: int
    score: float
    estimated_fmr: str
    age_years: float | None
    stale: bool
    notes: list[str]


class ReviewerLineOut(Out):
    role: str
    username: str
    at: dt.datetime | None
    conclusion: str
    features_compared: list[str]


class LeadReportOut(BaseModel):
    """The report's content; ``?format=html`` or ``pdf`` returns the documents themselves."""

    kind: str
    search_id: int
    case_number: str
    requester: str
    model_id: str
    leads: list[ReportLeadOut]
    reviewers: list[ReviewerLineOut]
    issued_by: str
    issued_at: dt.datetime
    html_sha256: str
    pdf_sha256: str
    disclaimer: str


class CorroborationOut(Out):
    item_id: int
    search_id: int
    kind: str
    description: str
    supports: bool
    recorded_by: str
    recorded_at: dt.datetime
    status: SearchStatus


# --- gallery and audit ---


class EnrolmentOut(Out):
    source: str
    status: EnrolmentStatus
    subject_id: str
    photo_id: int | None
    code: str | None
    message: str | None


class IssueOut(Out):
    seq: int
    kind: str
    message: str


class VerificationOut(BaseModel):
    intact: bool
    events_checked: int
    head_seq: int
    head_hash: str
    checkpoints_checked: int
    issues: list[IssueOut]


class CheckpointOut(Out):
    seq: int
    head_hash: str
    ts: str
    key_id: str
    signature: str
