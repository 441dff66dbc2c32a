"""Policy-enforced 1:N search: a case, a purpose and one still probe in, a receipt out.

The requester never sees candidates (DESIGN.md principle 2): ``submit_search``
stores them and returns only a receipt; ``view_candidates`` shows them to an
examiner assigned to that search, and every view is audited with the subject
ids shown. A refused request leaves nothing but its refusal event: no search
row, no probe row and no probe file (the file is written last, and removed
again if the transaction does not commit).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
from sqlalchemy.orm import Session

from facelead.biometrics.decode import DecodedImage
from facelead.biometrics.pipeline import FaceAnalysis
from facelead.biometrics.select import face_for_probe
from facelead.domain import policy
from facelead.domain.access import Action, Actor
from facelead.domain.cases import (
    ReviewRole,
    SearchStatus,
    SearchSummary,
    advance,
    normalise_case_number,
)
from facelead.domain.identity import normalise_username
from facelead.domain.search import (
    Candidate,
    CandidateList,
    SearchReceipt,
    SearchRequest,
    validate_top_k,
)
from facelead.errors import NotFoundError, PermissionDenied, RateLimited
from facelead.eval.calibration import load_calibration
from facelead.eval.metrics import estimated_fmr
from facelead.index.scan_setup import Hit
from facelead.services.cases import require_case, summary_of, user_ref
from facelead.services.context import Services
from facelead.services.uow import Scope, perform
from facelead.store import cases as repo
from facelead.store import gallery as gallery_repo
from facelead.store import review as review_repo
from facelead.store.case_models import CaseRecord, SearchRecord


@dataclass(frozen=True)
class _Probe:
    """A decoded probe, the face chosen in it and that face's quality and template."""

    decoded: DecodedImage
    faces_found: int
    face_index: int
    analysis: FaceAnalysis


def _analyse_probe(services: Services, data: bytes, face_index: int | None) -> _Probe:
    """Decode (video, animation, URLs... refused with their codes), detect, choose, measure."""
    decoded = services.decode(data)
    pipeline = services.pipeline
    faces = pipeline.detect(decoded.pixels)
    index, face = face_for_probe(faces, face_index)
    return _Probe(decoded, len(faces), index, pipeline.analyse(decoded.pixels, face))


def _rank(services: Services, probe: _Probe, k: int) -> tuple[list[Hit], int]:
    """Top-k gallery subjects of the configured model, and the gallery size in subjects."""
    flat = services.index()
    return flat.search(probe.analysis.template, k), int(np.unique(flat.subject_ids).size)


def _candidates(
    session: Session, ranked: list[tuple[int, float, int]], model_id: str
) -> tuple[Candidate, ...]:
    """Candidates from (rank, score, photo id); booking details looked up in one query.

    Each carries the estimated FMR of its score from the model's shipped calibration
    table (None if the model was never calibrated): a raw score means nothing to an
    examiner, "about 1 impostor in 10,000 scores this high" does.
    """
    details = gallery_repo.photo_details(session, [photo_id for _, _, photo_id in ranked])
    table = load_calibration(model_id)
    return tuple(
        Candidate(
            rank=rank,
            score=score,
            subject_id=details[photo_id].subject_external_id,
            photo_id=photo_id,
            photo_sha256=details[photo_id].image_sha256,
            booking_number=details[photo_id].booking_number,
            booking_date=details[photo_id].booking_date,
            agency=details[photo_id].agency,
            estimated_fmr=None if table is None else estimated_fmr(table, score),
        )
        for rank, score, photo_id in ranked
        if photo_id in details
    )


def _search_gallery(
    services: Services, data: bytes, face_index: int | None = None, top_k: int | None = None
) -> CandidateList:
    """Internal 1:N search with the quality gate but no case, policy, record or audit.

    For engine tests and the demo's accuracy summary only; every interface
    goes through ``submit_search``.
    """
    settings = services.settings
    k = validate_top_k(top_k if top_k is not None else settings.default_top_k, settings.max_top_k)
    probe = _analyse_probe(services, data, face_index)
    quality = probe.analysis.quality
    policy.quality_gate(quality.failures, quality.measures, probe.decoded.sha256, False)
    hits, gallery_size = _rank(services, probe, k)
    with services.db.session() as session:
        ranked = [(n, round(h.score, 4), h.photo_id) for n, h in enumerate(hits, start=1)]
        candidates = _candidates(session, ranked, probe.analysis.model_id)
    return CandidateList(
        model_id=probe.analysis.model_id,
        probe_sha256=probe.decoded.sha256,
        face_index=probe.face_index,
        faces_found=probe.faces_found,
        quality=quality.measures,
        gallery_size=gallery_size,
        candidates=candidates,
    )


def submit_search(
    services: Services, actor: Actor, case_number: str, probe_bytes: bytes, request: SearchRequest
) -> SearchReceipt:
    """Run every search-request rule, search, and record it all in one audited transaction.

    Returns a receipt without candidates: they wait for an assigned examiner.
    """
    written: list[str] = []
    try:
        with perform(
            services,
            actor,
            Action.SEARCH_SUBMIT,
            object_type="search",
            case_number=case_number,
            purpose=policy.normalise(request.purpose),
        ) as scope:
            return _submit(services, scope, case_number, probe_bytes, request, written)
    except BaseException:
        _discard_probe_files(services, written)
        raise


def _submit(
    services: Services,
    scope: Scope,
    case_number: str,
    data: bytes,
    request: SearchRequest,
    written: list[str],
) -> SearchReceipt:
    settings = services.settings
    _describe_request(scope, data, request)
    scope.case_number = normalise_case_number(case_number)
    case = require_case(scope.session, scope.case_number)
    # Agency first: another agency learns nothing of the case, not even that it is closed.
    policy.require_same_agency(case.agency, scope.actor.agency)
    policy.require_open_case(case.status, case.number)
    _check_rate_limit(services, scope)
    _check_request(services, data, request)
    k = validate_top_k(
        request.top_k if request.top_k is not None else settings.default_top_k, settings.max_top_k
    )
    probe = _analyse_probe(services, bytes(data), request.face_index)
    override_id = _quality_gate(services, scope, case, probe)
    hits, gallery_size = _rank(services, probe, k)
    search = _record(scope, case, request, probe, hits, gallery_size, override_id, k)
    if not services.probes.exists(probe.decoded.sha256):
        written.append(services.probes.put(bytes(data)))
    return SearchReceipt(
        search_id=search.id,
        status=SearchStatus(search.status),
        case_number=case.number,
        probe_sha256=probe.decoded.sha256,
        quality_override=override_id is not None,
    )


def _describe_request(scope: Scope, data: object, request: SearchRequest) -> None:
    """What the audit event (success or refusal) says about the request."""
    prov = request.provenance
    scope.details.update(
        purpose_text=request.justification,
        source_type=policy.normalise(prov.source_type),
        how_obtained=prov.how_obtained,
        captured_by=prov.captured_by,
        edits=[policy.normalise(e) for e in prov.edits],
        face_index=request.face_index,
        top_k=request.top_k,
    )
    if isinstance(data, bytes | bytearray | memoryview):
        scope.details["probe_sha256"] = hashlib.sha256(data).hexdigest()


def _check_rate_limit(services: Services, scope: Scope) -> None:
    """Count today's (UTC) stored searches of the requester; exceeding is flagged for audit."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    count = repo.count_searches_since(scope.session, user_ref(scope.actor), today)
    try:
        policy.check_rate_limit(count, services.settings.daily_search_limit)
    except RateLimited:
        scope.details["flag"] = "rate_limit"
        raise


def _check_request(services: Services, data: object, request: SearchRequest) -> None:
    """The request rules, cheapest first; all pure (domain.policy)."""
    settings = services.settings
    policy.require_single_probe(data)
    policy.check_purpose(request.purpose, settings.search_purposes)
    policy.check_justification(request.justification, settings.min_justification_chars)
    policy.refuse_prohibited_basis(request.purpose, request.justification)
    policy.require_provenance(request.provenance)
    policy.check_probe_source(request.provenance.source_type, settings.probe_sources)
    policy.refuse_hidden_source(request.provenance)
    policy.check_edits(request.provenance.edits, settings.probe_edits)


def _quality_gate(services: Services, scope: Scope, case: CaseRecord, probe: _Probe) -> int | None:
    """Below the floor: refused unless a supervisor approved this probe for this case and user."""
    quality, sha = probe.analysis.quality, probe.decoded.sha256
    override = None
    if quality.failures:
        days = services.settings.quality_override_valid_days
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
        override = repo.find_unused_override(
            scope.session, case.id, sha, scope.actor.username, since
        )
    policy.quality_gate(quality.failures, quality.measures, sha, override is not None)
    if override is None:
        return None
    scope.details["quality_override_id"] = override.id
    return override.id


def _record(
    scope: Scope,
    case: CaseRecord,
    request: SearchRequest,
    probe: _Probe,
    hits: list[Hit],
    gallery_size: int,
    override_id: int | None,
    k: int,
) -> SearchRecord:
    """Probe row, search row and candidate rows; the search ends ``candidates_ready``."""
    session, prov, decoded = scope.session, request.provenance, probe.decoded
    probe_row = repo.add_probe(
        session,
        image_sha256=decoded.sha256,
        source_type=policy.normalise(prov.source_type),
        how_obtained=prov.how_obtained.strip(),
        captured_by=prov.captured_by.strip(),
        edits=[policy.normalise(e) for e in prov.edits],
        image_format=decoded.format,
        width=int(decoded.pixels.shape[1]),
        height=int(decoded.pixels.shape[0]),
    )
    search = repo.add_search(
        session,
        case_id=case.id,
        probe_id=probe_row.id,
        requester_username=scope.actor.username,
        requester_user_id=scope.actor.user_id,
        requester_agency=scope.actor.agency,
        purpose=policy.normalise(request.purpose),
        justification=" ".join(request.justification.split()),
        model_id=probe.analysis.model_id,
        face_index=probe.face_index,
        faces_found=probe.faces_found,
        top_k=k,
        gallery_size=gallery_size,
        quality=probe.analysis.quality.measures,
        quality_failures=list(probe.analysis.quality.failures),
        quality_override_id=override_id,
        status=SearchStatus.SUBMITTED.value,
    )
    present = gallery_repo.searchable_photo_ids(
        session, [h.photo_id for h in hits], probe.analysis.model_id
    )
    ranked = [
        repo.RankedHit(n, round(h.score, 4), h.subject_id, h.photo_id)
        for n, h in enumerate((h for h in hits if h.photo_id in present), start=1)
    ]
    count = repo.add_candidates(session, search.id, ranked)
    status = advance(SearchStatus(search.status), SearchStatus.CANDIDATES_READY)
    repo.set_search_status(session, search, status.value)
    scope.object_id = str(search.id)
    scope.details.update(
        search_id=search.id, status=status.value, candidate_count=count, model_id=search.model_id
    )
    return search


def _discard_probe_files(services: Services, written: list[str]) -> None:
    """Remove probe files this request wrote if its transaction did not commit."""
    for sha in written:
        in_use = False
        with contextlib.suppress(Exception), services.db.session() as session:
            in_use = repo.probe_sha_in_use(session, sha)
        if not in_use:
            services.probes.delete(sha)


def _require_search(scope: Scope, search_id: int) -> SearchRecord:
    """The search, filed on the audit event with its case; refused across agencies."""
    search = repo.get_search(scope.session, int(search_id))
    if search is None:
        raise NotFoundError(f"no search {search_id}", code="search_not_found")
    scope.case_number = search.case.number
    policy.require_same_agency(search.case.agency, scope.actor.agency)
    return search


def search_status(services: Services, actor: Actor, search_id: int) -> SearchSummary:
    """The status of a search, for its requester and reviewers alike; never its candidates."""
    with perform(
        services, actor, Action.SEARCH_STATUS, object_type="search", object_id=str(search_id)
    ) as scope:
        search = _require_search(scope, search_id)
        return summary_of(search, search.case.number)


def assign_examiner(
    services: Services,
    actor: Actor,
    search_id: int,
    examiner: str,
    review_role: ReviewRole = ReviewRole.EXAMINER,
) -> SearchSummary:
    """Give a search with candidates to an examiner, who is never its requester."""
    with perform(
        services, actor, Action.REVIEW_ASSIGN, object_type="search", object_id=str(search_id)
    ) as scope:
        scope.details.update(search_id=search_id, examiner=examiner, review_role=review_role.value)
        examiner = scope.details["examiner"] = normalise_username(examiner)
        search = _require_search(scope, search_id)
        policy.require_ready_search(search.status)
        policy.check_examiner_not_requester(examiner, search.requester_username)
        repo.add_assignment(
            scope.session, search.id, repo.UserRef(examiner), review_role.value, user_ref(actor)
        )
        scope.session.refresh(search)
        return summary_of(search, search.case.number)


def _refuse_during_blind_review(session: Session, search_id: int, username: str) -> None:
    """A ranked, scored list would break a blind review the viewer has not yet decided."""
    if review_repo.open_blind_review(session, search_id, username):
        raise PermissionDenied(
            "your blind review is open: use facelead review show (shuffled, unscored) "
            "until your dispositions are recorded",
            code="blind_review",
        )


def view_candidates(services: Services, actor: Actor, search_id: int) -> CandidateList:
    """The candidate list, for an examiner assigned to this search only; every view audited."""
    with perform(
        services, actor, Action.CANDIDATES_VIEW, object_type="search", object_id=str(search_id)
    ) as scope:
        scope.details["search_id"] = search_id
        search = _require_search(scope, search_id)
        scope.purpose = search.purpose
        assigned = repo.assigned_usernames(scope.session, search.id)
        policy.check_candidate_access(actor.username, search.requester_username, assigned)
        _refuse_during_blind_review(scope.session, search.id, actor.username)
        ranked = [(c.rank, c.score, c.photo_id) for c in search.candidates]
        candidates = _candidates(scope.session, ranked, search.model_id)
        scope.details["subject_ids"] = [c.subject_id for c in candidates]
        return CandidateList(
            model_id=search.model_id,
            probe_sha256=search.probe.image_sha256,
            face_index=search.face_index,
            faces_found=search.faces_found,
            quality=dict(search.quality),
            gallery_size=search.gallery_size,
            candidates=candidates,
            search_id=search.id,
        )
