"""Lifecycle repository: import status, removal of subjects, settings.

Like the gallery repository, every function takes the caller's session and
never commits: the service decides what one transaction is.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from facelead.store.case_models import CandidateRecord
from facelead.store.gallery import delete_templates_for_subject
from facelead.store.lifecycle_models import (
    GallerySetting,
    ImportItem,
    Tombstone,
    TombstonePhoto,
)
from facelead.store.models import Booking, Photo, Subject, Template, utcnow

PENDING, DONE, REFUSED, REMOVED = "pending", "done", "refused", "removed"
REMOVED_PREFIX = "removed-"  # external id of a subject stub kept for past candidate lists
ITEM_STATUSES = (PENDING, DONE, REFUSED, REMOVED)
_INSERT_CHUNK = 500


# --------------------------------------------------------------------------- import items


def item_states(session: Session, keys: Sequence[str]) -> dict[str, str]:
    """Status of each known key; unknown keys are absent."""
    states: dict[str, str] = {}
    for start in range(0, len(keys), _INSERT_CHUNK):
        chunk = list(keys[start : start + _INSERT_CHUNK])
        rows = session.execute(
            select(ImportItem.item_key, ImportItem.status).where(ImportItem.item_key.in_(chunk))
        )
        states.update({str(k): str(s) for k, s in rows})
    return states


def add_pending(session: Session, items: Iterable[tuple[str, str]]) -> int:
    """Register ``(key, source)`` pairs as pending; the caller passes only unknown keys."""
    now = utcnow()
    rows = [
        {
            "item_key": key,
            "source": source[-512:],
            "status": PENDING,
            "attempts": 0,
            "created_at": now,
            "updated_at": now,
        }
        for key, source in items
    ]
    for start in range(0, len(rows), _INSERT_CHUNK):
        session.execute(insert(ImportItem), rows[start : start + _INSERT_CHUNK])
    return len(rows)


def reset_refused(session: Session, keys: Sequence[str]) -> int:
    """Refused items go back to pending (``--retry-refused``)."""
    count = 0
    for start in range(0, len(keys), _INSERT_CHUNK):
        result = session.execute(
            update(ImportItem)
            .where(
                ImportItem.item_key.in_(list(keys[start : start + _INSERT_CHUNK])),
                ImportItem.status == REFUSED,
            )
            .values(status=PENDING, code=None, message=None, updated_at=utcnow())
        )
        count += int(result.rowcount)  # type: ignore[attr-defined]
    return count


def mark_item(
    session: Session,
    key: str,
    status: str,
    *,
    code: str | None = None,
    message: str | None = None,
    subject_external_id: str | None = None,
    image_sha256: str | None = None,
    photo_id: int | None = None,
) -> None:
    if status not in ITEM_STATUSES:
        raise ValueError(f"unknown import item status {status!r}")
    session.execute(
        update(ImportItem)
        .where(ImportItem.item_key == key)
        .values(
            status=status,
            code=code,
            message=(message or None) and message[:2000],
            subject_external_id=subject_external_id,
            image_sha256=image_sha256,
            photo_id=photo_id,
            attempts=ImportItem.attempts + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


def import_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(ImportItem.status, func.count()).group_by(ImportItem.status))
    return {str(status): int(n) for status, n in rows}


def refusal_counts(session: Session) -> dict[str, int]:
    stmt = select(ImportItem.code, func.count()).where(ImportItem.status == REFUSED)
    rows = session.execute(stmt.group_by(ImportItem.code))
    return {str(code): int(n) for code, n in rows}


# --------------------------------------------------------------------------- removal


@dataclass(frozen=True)
class RemovalCounts:
    bookings: int
    photos: int
    templates: int
    models: tuple[str, ...]
    photo_hashes: tuple[str, ...]


def find_tombstone(session: Session, subject_hash: str, order_ref: str) -> Tombstone | None:
    return session.scalar(
        select(Tombstone).where(
            Tombstone.subject_hash == subject_hash, Tombstone.order_ref == order_ref
        )
    )


def tombstones_of(session: Session, subject_hash: str) -> list[Tombstone]:
    stmt = select(Tombstone).where(Tombstone.subject_hash == subject_hash).order_by(Tombstone.id)
    return list(session.scalars(stmt))


def tombstone_hashes(session: Session, tombstone_id: int) -> list[str]:
    stmt = select(TombstonePhoto.image_sha256).where(TombstonePhoto.tombstone_id == tombstone_id)
    return sorted(session.scalars(stmt))


def all_tombstone_hashes(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(TombstonePhoto.image_sha256))))


def photo_removed(session: Session, image_sha256: str) -> bool:
    """True if these image bytes belonged to a removed subject: they never come back."""
    stmt = select(TombstonePhoto.id).where(TombstonePhoto.image_sha256 == image_sha256).limit(1)
    return session.scalar(stmt) is not None


def add_tombstone(session: Session, *, photo_hashes: Iterable[str], **fields: Any) -> Tombstone:
    tombstone = Tombstone(removed_at=utcnow(), **fields)
    session.add(tombstone)
    session.flush()
    for sha in sorted(set(photo_hashes)):
        session.add(TombstonePhoto(tombstone_id=tombstone.id, image_sha256=sha))
    session.flush()
    return tombstone


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
    photos = session.execute(select(Photo.id, Photo.image_sha256).where(Photo.subject_id == sid))
    by_id = {int(pid): str(sha) for pid, sha in photos}
    models = _template_models(session, sid)
    templates = delete_templates_for_subject(session, sid)
    cited = set(
        session.scalars(
            select(CandidateRecord.photo_id).where(CandidateRecord.subject_id == sid).distinct()
        )
    )
    if cited:
        session.execute(
            update(Photo)
            .where(Photo.id.in_(sorted(cited)))
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
    doomed = sorted(set(by_id) - cited)
    if doomed:
        session.execute(
            delete(Photo).where(Photo.id.in_(doomed)).execution_options(synchronize_session=False)
        )
    bookings = session.execute(
        delete(Booking)
        .where(Booking.subject_id == sid)
        .execution_options(synchronize_session=False)
    )
    _retire_subject(session, subject, tombstone_id, keep=bool(cited))
    _scrub_import_items(session, list(by_id.values()))
    session.expire_all()
    return RemovalCounts(
        bookings=int(bookings.rowcount),  # type: ignore[attr-defined]
        photos=len(by_id),
        templates=templates,
        models=models,
        photo_hashes=tuple(sorted(by_id.values())),
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


def _scrub_import_items(session: Session, hashes: list[str]) -> None:
    """The status rows keep the key (so a re-run skips them) but forget whom they showed."""
    if not hashes:
        return
    session.execute(
        update(ImportItem)
        .where(ImportItem.image_sha256.in_(hashes))
        .values(
            status=REMOVED,
            code="record_removed",
            message=None,
            source="",
            subject_external_id=None,
            photo_id=None,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )


# --------------------------------------------------------------------------- settings


def get_setting(session: Session, key: str) -> str | None:
    return session.scalar(select(GallerySetting.value).where(GallerySetting.key == key))


def set_setting(session: Session, key: str, value: str, username: str) -> None:
    row = session.get(GallerySetting, key)
    if row is None:
        session.add(
            GallerySetting(key=key, value=value, updated_by_username=username, updated_at=utcnow())
        )
    else:
        row.value, row.updated_by_username, row.updated_at = value, username, utcnow()
    session.flush()


# --------------------------------------------------------------------------- re-templating


def photos_missing_template(
    session: Session, model_id: str
) -> list[tuple[int, str, list[float], Any]]:
    """Searchable (frontal, live) photos without a template of ``model_id``.

    Rows: (photo id, image SHA-256, face box, landmarks): the face found at
    enrolment is reused, so the new template describes the same face.
    """
    has = select(Template.photo_id).where(Template.model_id == model_id)
    stmt = (
        select(Photo.id, Photo.image_sha256, Photo.face_box, Photo.landmarks)
        .join(Subject, Subject.id == Photo.subject_id)
        .where(Photo.view == "frontal", Subject.sealed_at.is_(None), Photo.id.not_in(has))
        .order_by(Photo.id)
    )
    return [(int(i), str(s), list(b), lm) for i, s, b, lm in session.execute(stmt)]


def count_missing(session: Session, old_model: str, new_model: str) -> int:
    """Photos searchable under ``old_model`` that ``new_model`` has no template for."""
    new = select(Template.photo_id).where(Template.model_id == new_model)
    stmt = (
        select(func.count())
        .select_from(Template)
        .join(Photo, Photo.id == Template.photo_id)
        .join(Subject, Subject.id == Photo.subject_id)
        .where(
            Template.model_id == old_model,
            Subject.sealed_at.is_(None),
            Template.photo_id.not_in(new),
        )
    )
    return int(session.scalar(stmt) or 0)


def get_photo(session: Session, photo_id: int) -> Photo | None:
    return session.get(Photo, photo_id)


# --------------------------------------------------------------------------- backup


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for another backend or memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database).expanduser().resolve()


def sqlite_backup(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent copy while others keep writing."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, stable bytes
        check = dst.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise RuntimeError(f"backup copy failed its integrity check: {check}")
    finally:
        dst.close()
        src.close()


@dataclass(frozen=True)
class BackupFacts:
    """What a copied database refers to: the files that must travel with it."""

    photo_hashes: list[str]  # live photos (stubs of removed subjects have no file)
    probe_hashes: list[str]  # probes some search still holds (not released by retention)
    audit_seq: int


_FACT_QUERIES = {
    "photos": "SELECT image_sha256 FROM photos WHERE width > 0 ORDER BY 1",  # stubs are 0x0
    "probes": "SELECT DISTINCT pr.image_sha256 FROM searches se "
    "JOIN probes pr ON pr.id = se.probe_id "
    "LEFT JOIN retention_actions ra ON ra.search_id = se.id WHERE ra.id IS NULL ORDER BY 1",
    "audit": "SELECT seq FROM audit_head",
}


def backup_facts(db_file: Path) -> BackupFacts:
    """Read-only, by SQLite itself: opening the copy through the engine would alter its bytes."""
    conn = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        photos = [str(r[0]) for r in conn.execute(_FACT_QUERIES["photos"])]
        probes = [str(r[0]) for r in conn.execute(_FACT_QUERIES["probes"])]
        head = conn.execute(_FACT_QUERIES["audit"]).fetchone()
    finally:
        conn.close()
    return BackupFacts(photos, probes, int(head[0]) if head else 0)
