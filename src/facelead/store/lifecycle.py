"""Lifecycle repository: import status, removed images, settings, re-templating queries.

Like the gallery repository, every function takes the caller's session and
never commits: the service decides what one transaction is.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from facelead.store.lifecycle_models import (
    GallerySetting,
    ImportItem,
    TombstonePhoto,
)
from facelead.store.models import Photo, Subject, Template, utcnow

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


def scrub_import_items(session: Session, hashes: list[str]) -> None:
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


def photo_removed(session: Session, image_sha256: str) -> bool:
    """True if these image bytes belonged to a removed subject: they never come back."""
    stmt = select(TombstonePhoto.id).where(TombstonePhoto.image_sha256 == image_sha256).limit(1)
    return session.scalar(stmt) is not None


# --------------------------------------------------------------------------- settings


def get_setting(session: Session, key: str) -> str | None:
    return session.scalar(select(GallerySetting.value).where(GallerySetting.key == key))


def pin_setting(session: Session, key: str, value: str, username: str) -> None:
    """Write *key* only if it is absent: the first writer wins, also when two transactions
    race (INSERT ... ON CONFLICT DO NOTHING on both SQLite and PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    build = sqlite_insert if dialect == "sqlite" else postgresql_insert
    row = {"key": key, "value": value, "updated_by_username": username, "updated_at": utcnow()}
    session.execute(
        build(GallerySetting).values(**row).on_conflict_do_nothing(index_elements=["key"])
    )


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
        .where(
            Photo.view == "frontal",
            Photo.width > 0,  # not a stub of a removed booking
            Subject.sealed_at.is_(None),
            Photo.id.not_in(has),
        )
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


def live_photo_for_update(session: Session, photo_id: int) -> Photo | None:
    """The photo, locked against a concurrent removal; None once removed or a stub."""
    photo = session.scalar(select(Photo).where(Photo.id == photo_id).with_for_update())
    return photo if photo is not None and photo.width > 0 else None
