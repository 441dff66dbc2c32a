"""Synthetic galleries for the lifecycle tests: real rows and files, no face models.

Subjects, bookings, photos and templates go in through the gallery
repository (random unit vectors stand in for faces); a past search that
cites photos goes in through the case repository, with a real probe file.
Everything else (orders, backups, restores) then runs through the services.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from facelead.domain.access import Actor, Role
from facelead.services.cases import open_case
from facelead.services.context import Services
from facelead.store import cases as case_repo
from facelead.store import gallery as repo
from facelead.store.case_models import CandidateRecord, CaseRecord, SearchRecord

CERTIFIED = dt.date.today() + dt.timedelta(days=90)
RECORDS = Actor(None, "rita", frozenset({Role.RECORDS}), "LACRIS")
AUDITOR = Actor(None, "audra", frozenset({Role.AUDITOR}), "LACRIS")
INVESTIGATOR = Actor(None, "ivan", frozenset({Role.INVESTIGATOR}), "LACRIS", CERTIFIED)
ADMIN = Actor(None, "adam", frozenset({Role.ADMIN}), "LACRIS")


@dataclass(frozen=True)
class BookedPhoto:
    photo_id: int
    sha: str
    vector: np.ndarray


def booked_gallery(
    services: Services, layout: dict[str, dict[str, int]], seed: int = 11
) -> dict[str, list[BookedPhoto]]:
    """``{subject: {booking: photos}}`` enrolled; returns each booking's photos."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[BookedPhoto]] = {}
    with services.db.session() as session:
        for subject_id, bookings in layout.items():
            subject = repo.get_or_create_subject(session, subject_id)
            for number, count in bookings.items():
                booking = repo.get_or_create_booking(session, subject, number, None, "LASD")
                out[number] = []
                for n in range(count):
                    sha = services.images.put(f"photo {n} of {number}".encode())
                    photo = repo.add_photo(
                        session, subject=subject, booking=booking, image_sha256=sha,
                        view="frontal", width=64, height=64, face_box=[1, 2, 30, 40],
                        landmarks=[[1.0, 2.0]] * 5, quality={"sharpness": 1.0},
                        source_name=f"{number}-{n}.jpg",
                    )  # fmt: skip
                    vector = rng.normal(size=32).astype(np.float32)
                    vector /= np.linalg.norm(vector)
                    repo.add_template(session, photo, services.settings.model_id, vector)
                    out[number].append(BookedPhoto(photo.id, sha, vector))
    return out


def record_search(
    services: Services,
    session: Session,
    case: CaseRecord,
    probe: bytes,
    *,
    requester: str = "ivan",
    status: str = "candidates_ready",
    candidates: int = 0,
) -> SearchRecord:
    """A search and its probe (file and row) as submit_search records them, without the
    models: for tests of what comes after a search (retention, review, doctor, access)."""
    row = case_repo.add_probe(
        session, image_sha256=services.probes.put(probe), source_type="cctv-still",
        how_obtained="DVR export", captured_by="store CCTV", edits=[], image_format="jpeg",
        width=64, height=64,
    )  # fmt: skip
    return case_repo.add_search(
        session, case_id=case.id, probe_id=row.id, requester_username=requester,
        requester_agency=case.agency, purpose="criminal-investigation",
        justification="Robbery suspect at the till", model_id=services.settings.model_id,
        face_index=0, faces_found=1, top_k=candidates, gallery_size=candidates, quality={},
        quality_failures=[], status=status,
    )  # fmt: skip


def cite(services: Services, photo_ids: list[int], case: str = "CITE-1") -> int:
    """A past search whose candidate list names these photos; returns the search id."""
    open_case(services, INVESTIGATOR, case, "robbery")
    with services.db.session() as session:
        case_row = case_repo.find_case(session, case)
        assert case_row is not None
        search = record_search(
            services, session, case_row, f"probe of {case}".encode(), candidates=len(photo_ids)
        )
        subjects: dict[int, int] = dict(
            session.execute(
                sa.text("SELECT id, subject_id FROM photos WHERE id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": photo_ids},
            ).all()
        )
        for rank, photo_id in enumerate(photo_ids, start=1):
            row = {"rank": rank, "score": 0.9 / rank, "subject_id": subjects[photo_id]}
            session.add(CandidateRecord(search_id=search.id, photo_id=photo_id, **row))
        return int(search.id)


def index_hits(services: Services, vector: np.ndarray, k: int = 10) -> list[int]:
    """Photo ids the live index returns for this template, best first."""
    return [hit.photo_id for hit in services.index().search(vector, k)]
