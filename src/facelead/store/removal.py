"""Removal repository: tombstones, and the removal of subjects and of single bookings.

Like the gallery repository, every function takes the caller's session and
never commits: the service decides what one transaction is (one order).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from facelead.store.case_models import CandidateRecord
from facelead.store.gallery import delete_templates_for_subject
from facelead.store.lifecycle import REMOVED_PREFIX, scrub_import_items
from facelead.store.lifecycle_models import Tombstone, TombstonePhoto
from facelead.store.models import Booking, IndexState, Photo, Subject, Template, utcnow


@dataclass(frozen=True)
class RemovalCounts:
    bookings: int
    photos: int
    templates: int
    models: tuple[str, ...]
    photo_hashes: tuple[str, ...]


def find_tombstone(session: Session, subject_hash: str, order_ref: str) -> Tombstone | None:
    """The tombstone of a whole-subject order (``booking_hash`` '')."""
    return session.scalar(
        select(Tombstone).where(
            Tombstone.subject_hash == subject_hash,
            Tombstone.order_ref == order_ref,
            Tombstone.booking_hash == "",
        )
    )


def find_booking_tombstone(session: Session, booking_hash: str, order_ref: str) -> Tombstone | None:
    """By booking alone: once the booking is gone nothing says whose it was."""
    return session.scalar(
        select(Tombstone).where(
            Tombstone.booking_hash == booking_hash, Tombstone.order_ref == order_ref
        )
    )


def tombstones_of_booking(session: Session, booking_hash: str) -> list[Tombstone]:
    stmt = select(Tombstone).where(Tombstone.booking_hash == booking_hash).order_by(Tombstone.id)
    return list(session.scalars(stmt))


def tombstones_of(session: Session, subject_hash: str) -> list[Tombstone]:
    stmt = select(Tombstone).where(Tombstone.subject_hash == subject_hash).order_by(Tombstone.id)
    return list(session.scalars(stmt))


def tombstone_hashes(session: Session, tombstone_id: int) -> list[str]:
    stmt = select(TombstonePhoto.image_sha256).where(TombstonePhoto.tombstone_id == tombstone_id)
    return sorted(session.scalars(stmt))


def all_tombstone_hashes(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(TombstonePhoto.image_sha256))))


def add_tombstone(session: Session, *, photo_hashes: Iterable[str], **fields: Any) -> Tombstone:
    tombstone = Tombstone(removed_at=utcnow(), **fields)
    session.add(tombstone)
    session.flush()
    add_tombstone_photos(session, tombstone.id, photo_hashes)
    return tombstone


def add_tombstone_photos(session: Session, tombstone_id: int, photo_hashes: Iterable[str]) -> None:
    """The hashes that keep these images out of the gallery for good (``photo_removed``)."""
    known = set(tombstone_hashes(session, tombstone_id))
    for sha in sorted(set(photo_hashes) - known):
        session.add(TombstonePhoto(tombstone_id=tombstone_id, image_sha256=sha))
    session.flush()


def _template_models(session: Session, subject_id: int) -> tuple[str, ...]:
    stmt = (
        select(Template.model_id)
        .join(Photo, Photo.id == Template.photo_id)
        .where(Photo.subject_id == subject_id)
        .distinct()
    )
    return tuple(sorted(session.scalars(stmt)))


def remove_subject(session: Session, subject: Subject, tombstone_id: int) -> RemovalCounts:
    """Delete the subject's templates, photos and bookings; keep stubs only where needed.

    Past searches' candidate rows point at photos and subjects by foreign key
    and are part of other cases' records, so a photo that was ever a candidate
    stays as a stub with every biometric field blanked (box, landmarks,
    quality, size, file name, booking) and the subject as a pseudonymous stub
    ``removed-<tombstone id>``. Everything else is deleted.
    """
    sid = subject.id
    photos = session.execute(
        select(Photo.id, Photo.image_sha256)
        .where(Photo.subject_id == sid)
        .order_by(Photo.id)  # the lock order re-templating uses too: no deadlock
        .with_for_update()
    )
    by_id = {int(pid): str(sha) for pid, sha in photos}
    models = _template_models(session, sid)
    templates = delete_templates_for_subject(session, sid)
    cited = set(
        session.scalars(
            select(CandidateRecord.photo_id).where(CandidateRecord.subject_id == sid).distinct()
        )
    )
    _stub_or_delete(session, set(by_id), cited)
    bookings = session.execute(
        delete(Booking)
        .where(Booking.subject_id == sid)
        .execution_options(synchronize_session=False)
    )
    _retire_subject(session, subject, tombstone_id, keep=bool(cited))
    scrub_import_items(session, list(by_id.values()))
    session.expire_all()
    return RemovalCounts(
        bookings=int(bookings.rowcount),  # type: ignore[attr-defined]
        photos=len(by_id),
        templates=templates,
        models=models,
        photo_hashes=tuple(sorted(by_id.values())),
    )


def _stub_or_delete(session: Session, photo_ids: set[int], cited: set[int]) -> None:
    """Blank the photos a candidate row cites (a stub: 0x0, no booking), delete the others."""
    stubs = sorted(photo_ids & cited)
    if stubs:
        session.execute(
            update(Photo)
            .where(Photo.id.in_(stubs))
            .values(
                booking_id=None,
                face_box=[0.0, 0.0, 0.0, 0.0],
                landmarks=[],
                quality={},
                width=0,
                height=0,
                source_name="",
            )
            .execution_options(synchronize_session=False)
        )
    doomed = sorted(photo_ids - cited)
    if doomed:
        session.execute(
            delete(Photo).where(Photo.id.in_(doomed)).execution_options(synchronize_session=False)
        )


def find_booking(session: Session, booking_number: str) -> Booking | None:
    return session.scalar(select(Booking).where(Booking.booking_number == booking_number))


def other_bookings(session: Session, booking: Booking) -> int:
    """How many bookings the subject keeps besides ``booking``."""
    stmt = select(func.count()).where(
        Booking.subject_id == booking.subject_id, Booking.id != booking.id
    )
    return int(session.scalar(stmt) or 0)


def remove_booking(session: Session, booking: Booking) -> RemovalCounts:
    """Delete one booking with its photos' templates; the subject and its other bookings stay.

    The photo rows are locked first, so a re-templating batch writing a new
    template for one of them either commits before (and its template is
    deleted here) or waits and then finds a stub or nothing. Cited photos
    become stubs as in ``remove_subject``, still under the (live) subject
    that the past candidate list named.
    """
    photos = session.execute(
        select(Photo.id, Photo.image_sha256)
        .where(Photo.booking_id == booking.id)
        .order_by(Photo.id)
        .with_for_update()
    )
    by_id = {int(pid): str(sha) for pid, sha in photos}
    ids = sorted(by_id)
    templates, models = _delete_templates_of(session, ids)
    cited = set(
        session.scalars(select(CandidateRecord.photo_id).where(CandidateRecord.photo_id.in_(ids)))
    )
    _stub_or_delete(session, set(ids), cited)
    session.execute(
        delete(Booking).where(Booking.id == booking.id).execution_options(synchronize_session=False)
    )
    scrub_import_items(session, list(by_id.values()))
    session.expire_all()
    return RemovalCounts(1, len(ids), templates, models, tuple(sorted(by_id.values())))


def _delete_templates_of(session: Session, photo_ids: list[int]) -> tuple[int, tuple[str, ...]]:
    """Every template of these photos, all models; each model's index goes stale."""
    stmt = select(Template.model_id).where(Template.photo_id.in_(photo_ids)).distinct()
    models = tuple(sorted(session.scalars(stmt)))
    result = session.execute(
        delete(Template)
        .where(Template.photo_id.in_(photo_ids))
        .execution_options(synchronize_session=False)
    )
    for model_id in models:
        _bump_generation(session, model_id)
    return int(result.rowcount), models  # type: ignore[attr-defined]


def _bump_generation(session: Session, model_id: str) -> None:
    """A model that had templates has its index_state row (``add_template`` made it)."""
    session.execute(
        update(IndexState)
        .where(IndexState.model_id == model_id)
        .values(generation=IndexState.generation + 1)
        .execution_options(synchronize_session=False)
    )


def _retire_subject(session: Session, subject: Subject, tombstone_id: int, keep: bool) -> None:
    if keep:
        session.execute(
            update(Subject)
            .where(Subject.id == subject.id)
            .values(external_id=f"{REMOVED_PREFIX}{tombstone_id}", sealed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(
            delete(Subject)
            .where(Subject.id == subject.id)
            .execution_options(synchronize_session=False)
        )
