"""Gallery records as the services hand them to interfaces."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from facelead.errors import InputError


class PhotoView(StrEnum):
    FRONTAL = "frontal"
    PROFILE = "profile"


class EnrolmentStatus(StrEnum):
    ENROLLED = "enrolled"
    DUPLICATE = "duplicate"  # same image bytes already enrolled: nothing changed
    STORED_NOT_SEARCHABLE = "stored_not_searchable"  # profile view: kept for examiners
    REFUSED = "refused"


@dataclass(frozen=True)
class BookingRef:
    """Who the photo shows and which booking it came from (a manifest row)."""

    subject_id: str
    booking_number: str
    booking_date: dt.date | None = None
    agency: str = "UNKNOWN"
    view: PhotoView | None = None  # None: inferred from the landmarks


@dataclass(frozen=True)
class EnrolmentResult:
    source: str
    status: EnrolmentStatus
    subject_id: str
    photo_id: int | None = None
    code: str | None = None
    message: str | None = None


MANIFEST_COLUMNS = ("path", "subject_id", "booking_number")


def read_manifest(path: Path) -> dict[Path, BookingRef]:
    """Manifest CSV: path, subject_id, booking_number[, booking_date, agency, view].

    Paths are relative to the manifest's own folder so a bureau can ship the
    CSV beside its photos.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}", code="invalid_manifest") from exc
    if not rows or any(col not in rows[0] for col in MANIFEST_COLUMNS):
        raise InputError(
            f"manifest {path} needs columns {', '.join(MANIFEST_COLUMNS)}", code="invalid_manifest"
        )
    return {
        (path.parent / row["path"]).resolve(): _booking_ref(row, n) for n, row in enumerate(rows, 2)
    }


def _booking_ref(row: dict[str, str], line: int) -> BookingRef:
    try:
        date_text = (row.get("booking_date") or "").strip()
        view_text = (row.get("view") or "").strip().lower()
        return BookingRef(
            subject_id=_required(row, "subject_id"),
            booking_number=_required(row, "booking_number"),
            booking_date=dt.date.fromisoformat(date_text) if date_text else None,
            agency=(row.get("agency") or "").strip() or "UNKNOWN",
            view=PhotoView(view_text) if view_text else None,
        )
    except ValueError as exc:
        raise InputError(f"manifest line {line}: {exc}", code="invalid_manifest") from exc


def _required(row: dict[str, str], column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise ValueError(f"{column} is empty")
    return value
