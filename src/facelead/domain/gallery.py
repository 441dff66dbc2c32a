"""Gallery records as the services hand them to interfaces."""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from facelead.errors import InputError, PolicyRefusal


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


# --- bulk import (docs/lifecycle.md) ---

ADULT_AGE = 18
POSE_CODES = {
    "frontal": PhotoView.FRONTAL,
    "f": PhotoView.FRONTAL,  # ANSI/NIST-ITL 10.020 POS: full face frontal
    "profile": PhotoView.PROFILE,
    "l": PhotoView.PROFILE,  # left profile
    "r": PhotoView.PROFILE,  # right profile
}
"""Poses a manifest or a Type-10 record may give; anything else (angled, 'A') is inferred."""

_ALIASES = {
    "path": ("path", "image_path", "image"),
    "subject_id": ("subject_id", "subject"),
    "booking_number": ("booking_number", "booking"),
    "booking_date": ("booking_date", "date"),
    "agency": ("agency",),
    "view": ("view", "pose"),
    "birth_date": ("date_of_birth", "dob", "birth_date"),
    "age": ("age_at_booking", "age"),
}


@dataclass(frozen=True)
class ImportRecord:
    """One photo to import: where its bytes are, whom it shows, and the age facts.

    ``key`` names the item in the per-file status table: the same file (or the
    same Type-10 record of the same ANSI/NIST-ITL file) always gets the same
    key, which is what makes a re-run skip what is already done.
    """

    key: str
    source: str
    ref: BookingRef
    path: str | None = None  # bytes read from this file by the worker ...
    data: bytes | None = None  # ... or carried here (a Type-10 image)
    birth_date: dt.date | None = None
    age_at_booking: int | None = None


def pose_view(text: str | None) -> PhotoView | None:
    """Manifest ``pose``/``view`` or Type-10 POS; None means infer from the landmarks."""
    return POSE_CODES.get((text or "").strip().lower())


def age_on(birth: dt.date, day: dt.date) -> int:
    """Completed years, the way a birthday counts them (29 February ages on 1 March)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def booking_age(record: ImportRecord) -> int | None:
    """The stated age at booking, else the age computed from birth and booking dates."""
    if record.age_at_booking is not None:
        return record.age_at_booking
    if record.birth_date is not None and record.ref.booking_date is not None:
        return age_on(record.birth_date, record.ref.booking_date)
    return None


def check_adult(record: ImportRecord, *, allow_juvenile: bool, require_age: bool) -> None:
    """Juvenile records stay out of a face-search gallery unless the deployment says otherwise.

    Juvenile arrest records are confidential in most states (e.g. California
    WIC 827) and bureaux keep them apart; an unknown age is accepted unless
    ``require_age`` (the manifest simply may not say).
    """
    age = booking_age(record)
    if age is None:
        if require_age:
            raise PolicyRefusal("record gives no date of birth or age", code="age_unknown")
        return
    if age < 0 or age > 130:
        raise InputError(f"implausible age at booking: {age}", code="invalid_age")
    if age < ADULT_AGE and not allow_juvenile:
        raise PolicyRefusal(
            f"juvenile record (age {age} at booking) refused", code="juvenile_record", age=age
        )


def _cell(row: dict[str, str], name: str) -> str:
    for alias in _ALIASES[name]:
        value = (row.get(alias) or "").strip()
        if value:
            return value
    return ""


def _date(text: str) -> dt.date | None:
    if not text:
        return None
    if len(text) == 8 and text.isdigit():  # ANSI/NIST-ITL style YYYYMMDD
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return dt.date.fromisoformat(text)


def read_import_manifest(path: Path, key_prefix: str = "file:") -> list[ImportRecord]:
    """Manifest CSV for ``facelead import``; image paths are relative to the manifest.

    Columns (aliases in brackets): path [image_path], subject_id, booking_number,
    booking_date [date], agency, view [pose], date_of_birth [dob], age_at_booking [age].
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}", code="invalid_manifest") from exc
    header = set(rows[0]) if rows else set()
    missing = [c for c in MANIFEST_COLUMNS if not header.intersection(_ALIASES[c])]
    if not rows or missing:
        raise InputError(
            f"manifest {path} needs columns {', '.join(MANIFEST_COLUMNS)}", code="invalid_manifest"
        )
    return [_import_row(path.parent, row, n, key_prefix) for n, row in enumerate(rows, 2)]


def _import_row(folder: Path, row: dict[str, str], line: int, key_prefix: str) -> ImportRecord:
    try:
        image = (folder / _cell(row, "path")).resolve()
        for required in MANIFEST_COLUMNS:
            if not _cell(row, required):
                raise ValueError(f"{required} is empty")
        age = _cell(row, "age")
        ref = BookingRef(
            subject_id=_cell(row, "subject_id"),
            booking_number=_cell(row, "booking_number"),
            booking_date=_date(_cell(row, "booking_date")),
            agency=_cell(row, "agency") or "UNKNOWN",
            view=pose_view(_cell(row, "view")),
        )
        return ImportRecord(
            key=f"{key_prefix}{image}",
            source=str(image),
            ref=ref,
            path=str(image),
            birth_date=_date(_cell(row, "birth_date")),
            age_at_booking=int(age) if age else None,
        )
    except ValueError as exc:
        raise InputError(f"manifest line {line}: {exc}", code="invalid_manifest") from exc


# --- sealing, expungement and purges ---


class RemovalKind(StrEnum):
    """Why a subject leaves the gallery; all three remove the same things."""

    SEALED = "sealed"  # a court sealed the record
    EXPUNGED = "expunged"  # a court expunged the record
    PURGED = "purged"  # policy purge: never charged, charges dropped, acquitted


@dataclass(frozen=True)
class RemovalOrder:
    """One court order or records-management instruction to remove a subject."""

    kind: RemovalKind
    subject_id: str
    order_ref: str
    reason: str = ""


@dataclass(frozen=True)
class RemovalResult:
    order: RemovalOrder
    tombstone_id: int
    already_applied: bool
    photos: int
    templates: int
    image_files: int


@dataclass(frozen=True)
class RemovedRecord:
    """What an auditor sees of a removed subject: the fact and the order, nothing biometric."""

    kind: RemovalKind
    order_ref: str
    removed_at: dt.datetime
    removed_by: str
    photo_hashes: tuple[str, ...]
    status: str = "record removed"


_VERBS = {"seal": "sealed", "expunge": "expunged", "purge": "purged"}


def normalise_order(kind: str, subject_id: str, order_ref: str, reason: str = "") -> RemovalOrder:
    """Validate an order; the reference is printed and matched, so its alphabet is limited."""
    text = kind.strip().lower()
    try:
        removal = RemovalKind(_VERBS.get(text, text))
    except ValueError:
        choices = ", ".join(k.value for k in RemovalKind)
        raise InputError(f"order kind must be one of {choices}", code="invalid_order") from None
    ref, subject = order_ref.strip(), subject_id.strip()
    if not subject:
        raise InputError("subject id must not be empty", code="invalid_subject_id")
    if not ref or len(ref) > 128 or not ref.isprintable():
        raise InputError("order reference must be 1-128 printable characters", code="invalid_order")
    return RemovalOrder(removal, subject, ref, reason.strip())


def read_orders(path: Path, default_kind: str = "") -> list[RemovalOrder]:
    """Orders CSV from the records management system: [action,] subject_id, order[, reason].

    ``action`` is seal, expunge or purge; without the column every row takes
    ``default_kind`` (the command that was run).
    """
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"cannot read orders {path}: {exc}", code="invalid_order") from exc
    orders = []
    for line, row in enumerate(rows, 2):
        try:
            orders.append(
                normalise_order(
                    row.get("action") or default_kind,
                    row.get("subject_id") or "",
                    row.get("order") or "",
                    row.get("reason") or "",
                )
            )
        except InputError as exc:
            raise InputError(f"orders line {line}: {exc.message}", code=exc.code) from exc
    return orders
