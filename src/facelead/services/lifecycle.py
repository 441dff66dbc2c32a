"""Sealing, expungement and purges: a subject leaves the gallery, a tombstone stays.

One order = one audited transaction that deletes the subject's templates,
photos and bookings (keeping blanked stubs only where past candidate lists
point at them) and writes the tombstone. After the commit the image files
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

from facelead.domain.access import Action, Actor
from facelead.domain.gallery import RemovalKind, RemovalOrder, RemovalResult, RemovedRecord
from facelead.errors import FaceLeadError, NotFoundError
from facelead.index.manager import load_or_rebuild
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store import gallery as gallery_repo
from facelead.store import lifecycle as repo

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
        for photo in subject.photos:
            for template in photo.templates:
                models[template.model_id] = models.get(template.model_id, 0) + 1
        return SubjectView(
            subject.external_id,
            tuple(sorted(b.booking_number for b in subject.bookings)),
            len(subject.photos),
            models,
        )


def removed_image_paths(services: Services, hashes: Iterable[str]) -> list[Path]:
    """Where the image files would be (tests and the consistency check look there)."""
    return [services.images.path(sha) for sha in hashes]
