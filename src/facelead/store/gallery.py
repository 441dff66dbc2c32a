"""Gallery repository: the SQL the services layer needs, and nothing else.

Every function takes the caller's session and never commits, so a use case
(enrol, seal, purge) stays one transaction. Any change to the set of
searchable templates of a model bumps that model's ``index_state.generation``
in the same transaction; that is how a saved index learns it is stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from facelead.errors import ConflictError, InputError
from facelead.store.models import Booking, IndexState, Photo, Subject, Template, utcnow

VIEWS = frozenset({"frontal", "profile"})
VECTOR_DTYPE = np.dtype("<f4")
TemplateRow = tuple[int, int, int, NDArray[np.float32]]


@dataclass(frozen=True, slots=True)
class PhotoInfo:
    """What an examiner sees next to a candidate; no demographic fields by design."""

    photo_id: int
    subject_id: int
    subject_external_id: str
    booking_number: str | None
    booking_date: date | None
    agency: str | None
    image_sha256: str
    view: str


def encode_vector(vector: NDArray[Any]) -> bytes:
    """Little-endian float32 so the bytes mean the same on every platform."""
    arr = np.asarray(vector)
    if arr.ndim != 1 or arr.size == 0:
        raise InputError("template must be a non-empty 1-D vector", code="invalid_template")
    arr = arr.astype(VECTOR_DTYPE, copy=False)
    if not np.all(np.isfinite(arr)):
        raise InputError("template contains NaN or infinity", code="invalid_template")
    return arr.tobytes()


def decode_vector(blob: bytes, dim: int | None = None) -> NDArray[np.float32]:
    arr = np.frombuffer(blob, dtype=VECTOR_DTYPE).astype(np.float32)
    if dim is not None and arr.shape[0] != dim:
        raise ValueError(f"stored template has {arr.shape[0]} values, expected {dim}")
    return arr


def _bump_generation(session: Session, model_id: str) -> None:
    """Increment in SQL (not read-modify-write) so concurrent writers never lose a bump."""
    stmt = (
        update(IndexState)
        .where(IndexState.model_id == model_id)
        .values(generation=IndexState.generation + 1)
        .execution_options(synchronize_session=False)
    )
    if session.execute(stmt).rowcount:  # type: ignore[attr-defined]
        return
    try:
        with session.begin_nested():
            session.add(IndexState(model_id=model_id, generation=1))
    except IntegrityError:
        session.execute(stmt)


def index_generation(session: Session, model_id: str) -> int:
    """0 for a model that never had a template."""
    value = session.scalar(select(IndexState.generation).where(IndexState.model_id == model_id))
    return int(value or 0)


def find_subject(session: Session, external_id: str) -> Subject | None:
    return session.scalar(select(Subject).where(Subject.external_id == external_id))


def get_or_create_subject(session: Session, external_id: str) -> Subject:
    external_id = external_id.strip()
    if not external_id:
        raise InputError("subject id must not be empty", code="invalid_subject_id")
    subject = find_subject(session, external_id)
    if subject is None:
        subject = Subject(external_id=external_id, created_at=utcnow())
        session.add(subject)
        session.flush()
    return subject


def get_or_create_booking(
    session: Session,
    subject: Subject,
    booking_number: str,
    booking_date: date | None,
    agency: str,
) -> Booking:
    """A booking number belongs to one subject forever; reuse for another is a conflict."""
    booking = session.scalar(select(Booking).where(Booking.booking_number == booking_number))
    if booking is None:
        booking = Booking(
            subject_id=subject.id,
            booking_number=booking_number,
            booking_date=booking_date,
            agency=agency,
            created_at=utcnow(),
        )
        session.add(booking)
        session.flush()
    elif booking.subject_id != subject.id:
        raise ConflictError(
            "booking number already belongs to another subject",
            code="booking_subject_mismatch",
            booking_number=booking_number,
        )
    return booking


def find_photo_by_sha(session: Session, sha: str) -> Photo | None:
    return session.scalar(select(Photo).where(Photo.image_sha256 == sha))


def add_photo(
    session: Session,
    *,
    subject: Subject,
    booking: Booking | None,
    image_sha256: str,
    view: str,
    width: int,
    height: int,
    face_box: Sequence[float],
    landmarks: Any,
    quality: dict[str, Any],
    source_name: str = "",
) -> Photo:
    """Duplicate images are refused here, before the unique constraint would fire."""
    if view not in VIEWS:
        raise InputError(f"view must be one of {sorted(VIEWS)}", code="invalid_view", view=view)
    if len(face_box) != 4:
        raise InputError("face_box must have 4 numbers", code="invalid_face_box")
    if find_photo_by_sha(session, image_sha256) is not None:
        raise ConflictError(
            "image already enrolled", code="duplicate_image", image_sha256=image_sha256
        )
    photo = Photo(
        subject_id=subject.id,
        booking_id=booking.id if booking is not None else None,
        image_sha256=image_sha256,
        view=view,
        width=int(width),
        height=int(height),
        face_box=[float(v) for v in face_box],
        landmarks=landmarks,
        quality=dict(quality),
        source_name=source_name,
        created_at=utcnow(),
    )
    session.add(photo)
    session.flush()
    return photo


def add_template(session: Session, photo: Photo, model_id: str, vector: NDArray[Any]) -> Template:
    blob = encode_vector(vector)
    template = Template(
        photo_id=photo.id,
        model_id=model_id,
        dim=len(blob) // VECTOR_DTYPE.itemsize,
        vector=blob,
        created_at=utcnow(),
    )
    session.add(template)
    session.flush()
    _bump_generation(session, model_id)
    return template


def _models_of_subject(session: Session, subject_id: int) -> list[str]:
    stmt = (
        select(Template.model_id)
        .join(Photo, Photo.id == Template.photo_id)
        .where(Photo.subject_id == subject_id)
        .distinct()
    )
    return sorted(session.scalars(stmt))


def delete_templates_for_subject(session: Session, subject_id: int) -> int:
    """Used by sealing and purges; returns how many templates were removed."""
    models = _models_of_subject(session, subject_id)
    photo_ids = select(Photo.id).where(Photo.subject_id == subject_id)
    result = session.execute(
        delete(Template)
        .where(Template.photo_id.in_(photo_ids))
        .execution_options(synchronize_session=False)
    )
    for model_id in models:
        _bump_generation(session, model_id)
    session.expire_all()
    return int(result.rowcount)  # type: ignore[attr-defined]


def seal_subject(session: Session, subject: Subject, when: datetime | None = None) -> None:
    """Sealing hides every template of the subject, so each affected index goes stale."""
    if subject.sealed_at is not None:
        return
    subject.sealed_at = when or utcnow()
    session.flush()
    for model_id in _models_of_subject(session, subject.id):
        _bump_generation(session, model_id)


def iter_templates(session: Session, model_id: str) -> Iterator[TemplateRow]:
    """Searchable templates of one model, streamed; sealed subjects never appear.

    The iterator is only valid while ``session`` is open.
    """
    stmt = (
        select(Template.id, Template.photo_id, Photo.subject_id, Template.vector, Template.dim)
        .join(Photo, Photo.id == Template.photo_id)
        .join(Subject, Subject.id == Photo.subject_id)
        .where(Template.model_id == model_id, Subject.sealed_at.is_(None))
        .order_by(Template.id)
        .execution_options(yield_per=2000)
    )
    for template_id, photo_id, subject_id, blob, dim in session.execute(stmt):
        yield int(template_id), int(photo_id), int(subject_id), decode_vector(blob, dim)


def _count(session: Session, stmt: Any) -> int:
    return int(session.scalar(stmt) or 0)


def gallery_stats(session: Session) -> dict[str, Any]:
    """Counts for operators and auditors; cheap aggregate queries only."""
    by_view = session.execute(select(Photo.view, func.count()).group_by(Photo.view))
    by_model = session.execute(select(Template.model_id, func.count()).group_by(Template.model_id))
    return {
        "subjects": _count(session, select(func.count()).select_from(Subject)),
        "sealed_subjects": _count(
            session, select(func.count()).select_from(Subject).where(Subject.sealed_at.is_not(None))
        ),
        "bookings": _count(session, select(func.count()).select_from(Booking)),
        "photos": _count(session, select(func.count()).select_from(Photo)),
        "photos_by_view": {str(view): int(n) for view, n in by_view},
        "templates_by_model": {str(model): int(n) for model, n in by_model},
    }


def photo_details(session: Session, photo_ids: Iterable[int]) -> dict[int, PhotoInfo]:
    """Batch lookup for a candidate list; missing ids are simply absent."""
    ids = sorted({int(i) for i in photo_ids})
    if not ids:
        return {}
    stmt = (
        select(
            Photo.id,
            Photo.subject_id,
            Subject.external_id,
            Booking.booking_number,
            Booking.booking_date,
            Booking.agency,
            Photo.image_sha256,
            Photo.view,
        )
        .join(Subject, Subject.id == Photo.subject_id)
        .outerjoin(Booking, Booking.id == Photo.booking_id)
        .where(Photo.id.in_(ids))
    )
    return {row[0]: PhotoInfo(*row) for row in session.execute(stmt)}


def searchable_photo_ids(session: Session, photo_ids: Iterable[int], model_id: str) -> set[int]:
    """Which of *photo_ids* still hold a template of *model_id* in this transaction.

    The index is scanned outside the search's transaction; a seal or expungement
    that commits in between removes the templates first, so re-checking here keeps
    a removed record off a stored candidate list. The photo rows are share-locked
    first, in id order (the order a removal locks them in, so neither waits for the
    other in a cycle). A removal in progress holds them: the re-check waits for its
    commit and then reads what it left, instead of the last committed templates it
    is deleting (PostgreSQL's plain reads do not wait), which stored a candidate of
    a sealed subject or failed on its deleted photo (tests/test_concurrent_races.py).
    A removal that starts later waits for this search and keeps its candidates'
    photos as stubs. SQLite's search already holds the write lock here.
    """
    ids = sorted({int(i) for i in photo_ids})
    if not ids:
        return set()
    lock = select(Photo.id).where(Photo.id.in_(ids)).order_by(Photo.id).with_for_update(read=True)
    live = list(session.scalars(lock))
    stmt = select(Template.photo_id).where(
        Template.photo_id.in_(live), Template.model_id == model_id
    )
    return set(session.scalars(stmt))
