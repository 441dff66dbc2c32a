"""1:N search: a probe in, a ranked candidate list out. Probes are never enrolled."""

from __future__ import annotations

import numpy as np

from facelead.biometrics.select import face_for_probe
from facelead.domain.search import Candidate, CandidateList, validate_top_k
from facelead.errors import FaceError
from facelead.services.context import Services
from facelead.store import gallery as repo


def search_probe(
    services: Services, data: bytes, face_index: int | None = None, top_k: int | None = None
) -> CandidateList:
    """Search one still probe image against the gallery of the configured model.

    A probe below the quality floor is refused with the measured reasons
    rather than searched: low-quality probes are where false leads come from.
    """
    settings = services.settings
    k = validate_top_k(top_k if top_k is not None else settings.default_top_k, settings.max_top_k)
    decoded = services.decode(data)
    pipeline = services.pipeline
    faces = pipeline.detect(decoded.pixels)
    index, face = face_for_probe(faces, face_index)
    analysis = pipeline.analyse(decoded.pixels, face)
    if not analysis.quality.acceptable:
        raise FaceError(
            f"probe below the quality floor: {', '.join(analysis.quality.failures)}",
            code="low_quality_probe",
            failures=list(analysis.quality.failures),
            measures=analysis.quality.measures,
        )
    flat = services.index()
    hits = flat.search(analysis.template, k)
    with services.db.session() as session:
        details = repo.photo_details(session, [hit.photo_id for hit in hits])
    candidates = tuple(
        Candidate(
            rank=rank,
            score=round(float(hit.score), 4),
            subject_id=details[hit.photo_id].subject_external_id,
            photo_id=hit.photo_id,
            photo_sha256=details[hit.photo_id].image_sha256,
            booking_number=details[hit.photo_id].booking_number,
            booking_date=details[hit.photo_id].booking_date,
            agency=details[hit.photo_id].agency,
        )
        for rank, hit in enumerate(hits, start=1)
        if hit.photo_id in details
    )
    return CandidateList(
        model_id=analysis.model_id,
        probe_sha256=decoded.sha256,
        face_index=index,
        faces_found=len(faces),
        quality=analysis.quality.measures,
        gallery_size=int(np.unique(flat.subject_ids).size),
        candidates=candidates,
    )
