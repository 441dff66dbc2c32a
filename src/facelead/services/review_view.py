"""What a reviewer sees: the probe and the candidates of their own review, blind by default.

The first examiner sees every candidate; the verifier sees only the
possible leads, never the first examiner's dispositions, notes or features.
In blind mode the order is shuffled (seeded per search, reviewer and round)
and ranks and scores stay hidden until the reviewer's decisions are recorded.
Every look is a ``candidates.view`` audit event listing the subjects shown.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from facelead import DISCLAIMER
from facelead.domain import review as rules
from facelead.domain.access import Action, Actor
from facelead.domain.cases import ReviewRole, SearchStatus
from facelead.domain.review import Decision, Disposition
from facelead.domain.search import ProbeProvenance
from facelead.errors import ConflictError
from facelead.eval.calibration import load_calibration
from facelead.eval.metrics import CalibrationTable, estimated_fmr
from facelead.services.context import Services
from facelead.services.review import (
    candidates_by_subject,
    examiner_review,
    leads_of,
    open_search,
    own_review,
)
from facelead.services.uow import perform
from facelead.store import review as repo
from facelead.store.case_models import CandidateRecord, SearchRecord
from facelead.store.gallery import PhotoInfo
from facelead.store.review_models import ReviewRecord

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class PresentedCandidate:
    """One candidate as a reviewer sees it; rank and score are None while blind."""

    subject_id: str
    booking_number: str | None
    booking_date: dt.date | None
    agency: str | None
    photo_sha256: str
    rank: int | None
    score: float | None
    decision: Decision | None = None  # the reviewer's own, once recorded
    estimated_fmr: float | None = None  # from the model's calibration table; hidden while blind


@dataclass(frozen=True)
class ReviewPacket:
    search_id: int
    case_number: str
    status: SearchStatus
    round: int
    review_role: ReviewRole
    blind: bool
    scores_visible: bool
    model_id: str
    probe_sha256: str
    provenance: ProbeProvenance
    features: dict[str, str] | None
    completed: bool
    candidates: tuple[PresentedCandidate, ...]
    images: tuple[Path, ...] = ()
    disclaimer: str = field(default=DISCLAIMER)


def show_review(
    services: Services, actor: Actor, search_id: int, images_to: Path | None = None
) -> ReviewPacket:
    """The actor's review of the current round; ``images_to`` also writes probe and photos."""
    with perform(services, actor, Action.CANDIDATES_VIEW) as scope:
        search = open_search(scope, search_id)
        round_no = repo.current_round(scope.session, search.id)
        review = own_review(scope, search, round_no)
        presented = _presented(scope.session, search, review)
        order = list(presented)
        if review.blind:
            order = rules.presentation_order(order, search.id, actor.username, round_no)
        visible = rules.scores_visible(review.blind, review.completed_at is not None)
        own = {
            d.candidate_id: Decision(Disposition(d.disposition), d.notes)
            for d in review.dispositions
        }
        table = load_calibration(search.model_id) if visible else None
        shown = tuple(_present(*presented[key], visible, own, table) for key in order)
        images = _write_images(services, search, shown, images_to) if images_to else ()
        scope.details.update(
            subject_ids=[c.subject_id for c in shown],
            review_role=review.review_role,
            round=round_no,
            blind=review.blind,
            scores_visible=visible,
            images_exported=len(images),
        )
        probe = search.probe
        return ReviewPacket(
            search_id=search.id,
            case_number=search.case.number,
            status=SearchStatus(search.status),
            round=round_no,
            review_role=ReviewRole(review.review_role),
            blind=review.blind,
            scores_visible=visible,
            model_id=search.model_id,
            probe_sha256=probe.image_sha256,
            provenance=ProbeProvenance(
                probe.source_type, probe.how_obtained, probe.captured_by, tuple(probe.edits)
            ),
            features=dict(review.features) if review.features else None,
            completed=review.completed_at is not None,
            candidates=shown,
            images=images,
        )


def _presented(
    session: Session, search: SearchRecord, review: ReviewRecord
) -> dict[str, tuple[CandidateRecord, PhotoInfo]]:
    """All candidates for the first examiner; only the possible leads for the verifier."""
    everyone = candidates_by_subject(session, search)
    first = examiner_review(session, search.id, review.round)
    if review.review_role == ReviewRole.EXAMINER.value:
        if first is not None and first.id != review.id:
            raise ConflictError(
                "another examiner has already reviewed this round", code="review_already_done"
            )
        return everyone
    waiting = SearchStatus(search.status) is SearchStatus.POSSIBLE_LEAD
    if first is None or (review.completed_at is None and not waiting):
        raise ConflictError(
            f"search is {search.status}; there is no possible lead to verify yet",
            code="not_ready_for_verification",
        )
    return {key: everyone[key] for key in leads_of(first)}


def _present(
    candidate: CandidateRecord,
    info: PhotoInfo,
    visible: bool,
    own: dict[int, Decision],
    table: CalibrationTable | None = None,
) -> PresentedCandidate:
    fmr = None if table is None or not visible else estimated_fmr(table, candidate.score)
    return PresentedCandidate(
        subject_id=info.subject_external_id,
        booking_number=info.booking_number,
        booking_date=info.booking_date,
        agency=info.agency,
        photo_sha256=info.image_sha256,
        rank=candidate.rank if visible else None,
        score=candidate.score if visible else None,
        decision=own.get(candidate.id),
        estimated_fmr=fmr,
    )


def image_suffix(data: bytes) -> str:
    """A file suffix from the image's magic bytes (stored images have no names)."""
    for magic, suffix in ((b"\xff\xd8", ".jpg"), (b"\x89PNG", ".png"), (b"BM", ".bmp")):
        if data.startswith(magic):
            return suffix
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return ".tif"
    return ".webp" if data[8:12] == b"WEBP" else ".img"


def safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text)[:80] or "unnamed"


def _write_images(
    services: Services,
    search: SearchRecord,
    shown: tuple[PresentedCandidate, ...],
    folder: Path,
) -> tuple[Path, ...]:
    """Probe and candidate photos, named by presentation position (never by rank)."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = services.probes.get(search.probe.image_sha256)
    written = [folder / f"search-{search.id}-probe{image_suffix(probe)}"]
    written[0].write_bytes(probe)
    for n, candidate in enumerate(shown, start=1):
        data = services.images.get(candidate.photo_sha256)
        path = folder / f"search-{search.id}-{n:02d}-{safe_name(candidate.subject_id)}"
        path = path.with_name(path.name + image_suffix(data))
        path.write_bytes(data)
        written.append(path)
    return tuple(written)
