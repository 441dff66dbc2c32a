"""Sealing, expungement and purges: a subject or one booking leaves the gallery.

One order = one audited transaction that deletes the subject's templates,
photos and bookings (keeping blanked stubs only where past candidate lists
point at them) and writes the tombstone. A court may instead expunge one
arrest (``expunge_booking``): only that booking's photos, templates and index
rows go, the subject stays searchable through its other bookings, and the
subject leaves the gallery only if that was its last booking. After the commit the image files
are deleted and every saved index that held the subject is rebuilt at once,
so no file under FACELEAD_HOME keeps the face. If the process dies between
commit and file deletion, ``sweep_removed_files`` (``facelead gallery sweep``)
finishes the job: the tombstones list the hashes.

The tombstone keeps the order reference, the kind, who and when, the photo
hashes, and a keyed hash (HMAC-SHA256, key under FACELEAD_HOME/keys) of the
subject id, so the database alone cannot be searched for a name; an auditor
holding the deployment can still answer "was subject X removed, and by which
order" (``lookup_removed``). The audit log is kept as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from facelead.domain.access import Action, Actor
from facelead.domain.gallery import (
    RemovalKind,
    RemovalOrder,
    RemovalResult,
    RemovedRecord,
    normalise_order,
)
from facelead.errors import ConflictError, FaceLeadError, InputError, NotFoundError
from facelead.index.manager import load_or_rebuild
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store import gallery as gallery_repo
from facelead.store import removal as repo
from facelead.store.lifecycle_models import Tombstone

TOMBSTONE_KEY_FILE = "tombstone-hmac.key"
ACTIONS = {
    RemovalKind.SEALED: Action.GALLERY_SEAL,
    RemovalKind.EXPUNGED: Action.GALLERY_SEAL,
    RemovalKind.PURGED: Action.GALLERY_PURGE,
}


def _tombstone_key(services: Services) -> bytes:
    """Created on first use, 0600; backed up with the other keys."""
    path = services.settings.keys_dir / TOMBSTONE_KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(secrets.token_bytes(32))
    return path.read_bytes()


def subject_hash(services: Services, external_id: str) -> str:
    return hmac.new(
        _tombstone_key(services), external_id.strip().encode("utf-8"), hashlib.sha256
    ).hexdigest()


def booking_hash(services: Services, booking_number: str) -> str:
    """Keyed like ``subject_hash``, in its own domain: a booking number never equals a subject's."""
    message = f"booking:{booking_number.strip()}".encode()
    return hmac.new(_tombstone_key(services), message, hashlib.sha256).hexdigest()


def remove_subject(services: Services, actor: Actor, order: RemovalOrder) -> RemovalResult:
    """Apply one order; applying it again finds the tombstone and changes nothing."""
    hashed = subject_hash(services, order.subject_id)
    with perform(services, actor, ACTIONS[order.kind], object_type="subject") as scope:
        scope.details.update(kind=order.kind.value, order=order.order_ref, subject_hash=hashed)
        session = scope.session
        done = repo.find_tombstone(session, hashed, order.order_ref)
        if done is not None:
            scope.object_id, scope.details["already_applied"] = f"tombstone:{done.id}", True
            return RemovalResult(order, done.id, True, done.photos, done.templates, 0)
        subject = gallery_repo.find_subject(session, order.subject_id)
        if subject is None:
            raise NotFoundError("no such subject in the gallery", code="subject_not_found")
        tombstone = repo.add_tombstone(
            session,
            photo_hashes=[p.image_sha256 for p in subject.photos],
            kind=order.kind.value,
            order_ref=order.order_ref,
            reason=order.reason,
            subject_hash=hashed,
            bookings=0,
            photos=0,
            templates=0,
            removed_by_username=actor.username,
            removed_by_user_id=actor.user_id,
        )
        counts = repo.remove_subject(session, subject, tombstone.id)
        tombstone.bookings, tombstone.photos = counts.bookings, counts.photos
        tombstone.templates = counts.templates
        scope.object_id = f"tombstone:{tombstone.id}"
        scope.details.update(
            photos=counts.photos, templates=counts.templates, bookings=counts.bookings
        )
    files = _delete_files(services, counts.photo_hashes)
    rebuild_indexes(services, counts.models)
    return RemovalResult(order, tombstone.id, False, counts.photos, counts.templates, files)


@dataclass(frozen=True)
class BookingRemoval:
    """What ``expunge_booking`` did; ``subject_removed`` when it was the subject's last booking."""

    booking_number: str
    order_ref: str
    tombstone_id: int
    already_applied: bool
    subject_removed: bool
    photos: int
    templates: int
    image_files: int


def _booking_order(booking_number: str, order_ref: str, reason: str) -> RemovalOrder:
    number = booking_number.strip()
    if not number or len(number) > 64 or not number.isprintable():
        raise InputError(
            "booking number must be 1-64 printable characters", code="invalid_booking_number"
        )
    return normalise_order("expunge", number, order_ref, reason)  # validates the order reference


def expunge_booking(
    services: Services,
    actor: Actor,
    booking_number: str,
    order_ref: str,
    reason: str = "",
    subject_id: str | None = None,
) -> BookingRemoval:
    """Expunge one booking (one arrest) under a court order; applying it again changes nothing.

    ``subject_id``, when the order names the person too, must be the
    booking's subject (``booking_subject_mismatch`` otherwise): a typo in a
    booking number must not expunge someone else's arrest.
    """
    order = _booking_order(booking_number, order_ref, reason)
    number, hashed = order.subject_id, booking_hash(services, order.subject_id)
    with perform(services, actor, Action.GALLERY_SEAL, object_type="booking") as scope:
        scope.details.update(kind="expunged", order=order.order_ref, booking_hash=hashed)
        done = repo.find_booking_tombstone(scope.session, hashed, order.order_ref)
        if done is not None:
            scope.object_id, scope.details["already_applied"] = f"tombstone:{done.id}", True
            return BookingRemoval(
                number, order.order_ref, done.id, True, False, done.photos, done.templates, 0
            )
        stone, counts, last = _remove_booking(services, scope.session, actor, order, subject_id)
        scope.object_id = f"tombstone:{stone.id}"
        scope.details.update(
            subject_hash=stone.subject_hash,
            subject_removed=last,
            photos=counts.photos,
            templates=counts.templates,
        )
    files = _delete_files(services, counts.photo_hashes)
    rebuild_indexes(services, counts.models)
    return BookingRemoval(
        number, order.order_ref, stone.id, False, last, counts.photos, counts.templates, files
    )


def _remove_booking(
    services: Services, session: Session, actor: Actor, order: RemovalOrder, subject_id: str | None
) -> tuple[Tombstone, repo.RemovalCounts, bool]:
    booking = repo.find_booking(session, order.subject_id)
    if booking is None:
        raise NotFoundError("no such booking in the gallery", code="booking_not_found")
    subject = booking.subject
    if subject_id is not None and subject_id.strip() != subject.external_id:
        raise ConflictError(
            "the booking belongs to another subject", code="booking_subject_mismatch"
        )
    last = repo.other_bookings(session, booking) == 0
    stone = repo.add_tombstone(
        session,
        photo_hashes=(),
        kind=RemovalKind.EXPUNGED.value,
        order_ref=order.order_ref,
        reason=order.reason,
        subject_hash=subject_hash(services, subject.external_id),
        booking_hash=booking_hash(services, order.subject_id),
        bookings=0,
        photos=0,
        templates=0,
        removed_by_username=actor.username,
        removed_by_user_id=actor.user_id,
    )
    if last:  # the subject's last booking: the subject leaves the gallery with it
        counts = repo.remove_subject(session, subject, stone.id)
    else:
        counts = repo.remove_booking(session, booking)
    repo.add_tombstone_photos(session, stone.id, counts.photo_hashes)
    stone.bookings, stone.photos, stone.templates = counts.bookings, counts.photos, counts.templates
    return stone, counts, last


def _delete_files(services: Services, hashes: Iterable[str]) -> int:
    return sum(1 for sha in hashes if services.images.delete(sha))


def rebuild_indexes(services: Services, models: Iterable[str] = ()) -> list[str]:
    """Rebuild (and so overwrite on disk) the saved index of each model, plus any saved one.

    A stale index is never searched anyway (generation check); rebuilding now
    means the removed vectors also leave the index files without waiting for
    the next search.
    """
    index_dir = services.settings.index_dir
    saved = {p.name for p in index_dir.iterdir() if p.is_dir()} if index_dir.is_dir() else set()
    rebuilt = []
    for model_id in sorted(set(models) | saved):
        with services.db.session() as session:
            generation = gallery_repo.index_generation(session, model_id)
            load_or_rebuild(
                index_dir / model_id,
                model_id,
                generation,
                gallery_repo.iter_templates(session, model_id),
            )
        rebuilt.append(model_id)
    return rebuilt


@dataclass(frozen=True)
class OrderOutcome:
    order: RemovalOrder
    result: RemovalResult | None
    error: dict[str, Any] | None


def apply_orders(
    services: Services, actor: Actor, orders: Iterable[RemovalOrder]
) -> Iterator[OrderOutcome]:
    """``--sync``: each order in its own transaction; a failed one is reported, not fatal."""
    for order in orders:
        try:
            yield OrderOutcome(order, remove_subject(services, actor, order), None)
        except FaceLeadError as exc:
            yield OrderOutcome(order, None, exc.as_dict())


def sweep_removed_files(services: Services, actor: Actor) -> int:
    """Delete image files of removed subjects that a crash left behind; audited."""
    with perform(services, actor, Action.GALLERY_PURGE, object_type="image_store") as scope:
        hashes = repo.all_tombstone_hashes(scope.session)
        removed = _delete_files(services, hashes)
        scope.details.update(files_deleted=removed, hashes_checked=len(hashes))
    return removed


def lookup_removed(services: Services, actor: Actor, subject_id: str) -> list[RemovedRecord]:
    """Auditors (AUDIT_READ): was this subject removed, when, by whom, under which order."""
    hashed = subject_hash(services, subject_id)
    with perform(services, actor, Action.AUDIT_READ, object_type="tombstone") as scope:
        scope.details["subject_hash"] = hashed
        stones = repo.tombstones_of(scope.session, hashed)
        if not stones:
            raise NotFoundError("no removed record for this subject", code="not_removed")
        scope.details["tombstones"] = [t.id for t in stones]
        return [
            RemovedRecord(
                kind=RemovalKind(t.kind),
                order_ref=t.order_ref,
                removed_at=t.removed_at,
                removed_by=t.removed_by_username,
                photo_hashes=tuple(repo.tombstone_hashes(scope.session, t.id)),
                status="booking record removed" if t.booking_hash else "record removed",
            )
            for t in stones
        ]


@dataclass(frozen=True)
class SubjectView:
    subject_id: str
    bookings: tuple[str, ...]
    photos: int
    templates_by_model: dict[str, int]


def lookup_subject(services: Services, actor: Actor, subject_id: str) -> SubjectView:
    """A live subject for the records bureau; a removed one is simply not found here."""
    with perform(services, actor, Action.GALLERY_READ, object_type="subject") as scope:
        scope.details["subject_id"] = subject_id
        subject = gallery_repo.find_subject(scope.session, subject_id.strip())
        if subject is None or subject.sealed_at is not None:
            raise NotFoundError("no such subject in the gallery", code="subject_not_found")
        scope.object_id = str(subject.id)
        models: dict[str, int] = {}
        live = [p for p in subject.photos if p.width > 0]  # not stubs of an expunged booking
        for photo in live:
            for template in photo.templates:
                models[template.model_id] = models.get(template.model_id, 0) + 1
        return SubjectView(
            subject.external_id,
            tuple(sorted(b.booking_number for b in subject.bookings)),
            len(live),
            models,
        )


def removed_image_paths(services: Services, hashes: Iterable[str]) -> list[Path]:
    """Where the image files would be (tests and the consistency check look there)."""
    return [services.images.path(sha) for sha in hashes]
