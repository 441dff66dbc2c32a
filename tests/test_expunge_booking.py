"""Per-booking expungement: one arrest leaves the gallery, the subject's others stay.

Synthetic galleries (no face models) on SQLite and PostgreSQL for the rows,
files and index; the real MEDS faces for "never a candidate again".
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from facelead.domain.access import SYSTEM
from facelead.domain.gallery import BookingRef, RemovalKind, normalise_order
from facelead.errors import ConflictError, InputError, NotFoundError, PermissionDenied
from facelead.services.audit import verify_log
from facelead.services.context import Services
from facelead.services.gallery import enroll_files, enroll_photo
from facelead.services.lifecycle import (
    booking_hash,
    expunge_booking,
    lookup_removed,
    lookup_subject,
    remove_subject,
)
from facelead.services.search import _search_gallery
from facelead.store import lifecycle as lifecycle_repo
from facelead.store.audit_models import AuditEvent
from facelead.store.db import Database
from facelead.store.lifecycle_models import Tombstone, TombstonePhoto
from facelead.store.models import Booking, Photo, Subject, Template
from tests.conftest import make_services, provision_token
from tests.lifecycle_fixtures import ADMIN, AUDITOR, RECORDS, booked_gallery, cite, index_hits
from tests.test_import import cli
from tests.test_seal import saved_index

LAYOUT = {"P": {"PB-1": 2, "PB-2": 1}, "Q": {"QB-1": 1}}


def _rows(services: Services) -> dict[str, int]:
    with services.db.session() as session:
        return {
            table.__tablename__: int(
                session.scalar(sa.select(sa.func.count()).select_from(table)) or 0
            )
            for table in (Subject, Booking, Photo, Template, Tombstone, TombstonePhoto)
        }


def _last_event(services: Services) -> tuple[str, str, str | None]:
    with services.db.session() as session:
        event = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert event is not None
        return event.action, event.outcome, event.object_type


def test_expunging_one_booking_keeps_the_others(tmp_path: Path, database_url: str) -> None:
    services = make_services(tmp_path / "home", database_url)
    photos = booked_gallery(services, LAYOUT)
    gone, kept = photos["PB-1"], photos["PB-2"]
    cited, uncited = gone[0], gone[1]
    cite(services, [cited.photo_id, kept[0].photo_id])
    assert cited.photo_id in index_hits(services, cited.vector)  # searchable before
    saved_index(services)  # the index is on disk, as after any search

    result = expunge_booking(services, RECORDS, " PB-1 ", "LASC-EXP-77", "PC 1203.4", "P")
    assert (result.photos, result.templates, result.image_files) == (2, 2, 2)
    assert not result.subject_removed and not result.already_applied

    with services.db.session() as session:
        assert session.scalar(sa.select(Booking).where(Booking.booking_number == "PB-1")) is None
        assert not session.scalars(
            sa.select(Template.id).where(Template.photo_id.in_([p.photo_id for p in gone]))
        ).all()
        assert session.get(Photo, uncited.photo_id) is None
        stub = session.get(Photo, cited.photo_id)  # a past candidate list cites it
        assert stub is not None and (stub.width, stub.booking_id, stub.face_box) == (
            0, None, [0.0, 0.0, 0.0, 0.0]
        )  # fmt: skip
        stone = session.get(Tombstone, result.tombstone_id)
        assert stone is not None
        assert (stone.kind, stone.order_ref, stone.bookings) == ("expunged", "LASC-EXP-77", 1)
        assert stone.booking_hash == booking_hash(services, "PB-1")
        assert "PB-1" not in json.dumps([stone.subject_hash, stone.booking_hash, stone.reason])
        hashes = set(session.scalars(sa.select(TombstonePhoto.image_sha256)))
        assert hashes == {p.sha for p in gone}
        assert all(lifecycle_repo.photo_removed(session, p.sha) for p in gone)
    assert not any(services.images.exists(p.sha) for p in gone)
    assert services.images.exists(kept[0].sha)

    for photo in gone:  # never a candidate again, in memory or in the saved index files
        assert not {p.photo_id for p in gone} & set(index_hits(services, photo.vector, k=50))
    assert not {p.photo_id for p in gone} & set(saved_index(services)["photo_ids"].tolist())
    assert index_hits(services, kept[0].vector)[0] == kept[0].photo_id  # the other booking
    view = lookup_subject(services, RECORDS, "P")
    assert (view.bookings, view.photos) == (("PB-2",), 1)

    again = expunge_booking(services, RECORDS, "PB-1", "LASC-EXP-77")
    assert again.already_applied and again.tombstone_id == result.tombstone_id
    assert _last_event(services) == ("gallery.seal", "ok", "booking")
    assert verify_log(services, AUDITOR).ok
    services.db.dispose()


def test_the_last_booking_takes_the_subject_with_it(tmp_path: Path, database_url: str) -> None:
    services = make_services(tmp_path / "home", database_url)
    photos = booked_gallery(services, LAYOUT)
    first = expunge_booking(services, RECORDS, "PB-2", "ORDER-1")
    last = expunge_booking(services, RECORDS, "PB-1", "ORDER-1")  # one order, two arrests
    assert (first.subject_removed, last.subject_removed) == (False, True)
    with services.db.session() as session:
        assert session.scalars(sa.select(Subject.external_id)).all() == ["Q"]
        assert session.scalars(sa.select(Booking.booking_number)).all() == ["QB-1"]
    with pytest.raises(NotFoundError):
        lookup_subject(services, RECORDS, "P")
    records = lookup_removed(services, AUDITOR, "P")
    assert [(r.kind, r.order_ref, r.status) for r in records] == [
        (RemovalKind.EXPUNGED, "ORDER-1", "booking record removed")
    ] * 2
    assert {h for r in records for h in r.photo_hashes} == {
        p.sha for b in ("PB-1", "PB-2") for p in photos[b]
    }
    assert index_hits(services, photos["QB-1"][0].vector) == [photos["QB-1"][0].photo_id]
    services.db.dispose()


def test_refusals_change_nothing(tmp_path: Path, database_url: str) -> None:
    services = make_services(tmp_path / "home", database_url)
    photos = booked_gallery(services, LAYOUT)
    before = _rows(services)
    with pytest.raises(NotFoundError) as missing:
        expunge_booking(services, RECORDS, "NO-SUCH", "ORDER-2")
    assert missing.value.code == "booking_not_found"
    assert _last_event(services) == ("gallery.seal", "refused:booking_not_found", "booking")
    with pytest.raises(ConflictError) as other:
        expunge_booking(services, RECORDS, "QB-1", "ORDER-2", subject_id="P")
    assert other.value.code == "booking_subject_mismatch"
    with pytest.raises(InputError) as bad:
        expunge_booking(services, RECORDS, "PB-1", "")
    assert bad.value.code == "invalid_order"
    with pytest.raises(PermissionDenied):  # expungement is the records bureau's alone
        expunge_booking(services, ADMIN, "PB-1", "ORDER-2")
    assert _rows(services) == before
    assert all(services.images.exists(p.sha) for booked in photos.values() for p in booked)
    assert verify_log(services, AUDITOR).ok
    services.db.dispose()


def test_a_subject_order_after_a_booking_order_removes_the_rest(
    tmp_path: Path, database_url: str
) -> None:
    """The same order reference, first for one arrest then for the person: both apply."""
    services = make_services(tmp_path / "home", database_url)
    booked_gallery(services, LAYOUT)
    expunge_booking(services, RECORDS, "PB-1", "LASC-9")
    whole = remove_subject(services, RECORDS, normalise_order("expunge", "P", "LASC-9"))
    assert not whole.already_applied and whole.photos == 1
    with services.db.session() as session:
        assert session.scalars(sa.select(Subject.external_id)).all() == ["Q"]
        assert sorted(session.scalars(sa.select(Tombstone.booking_hash))) == [
            "",
            booking_hash(services, "PB-1"),
        ]
    services.db.dispose()


def test_cli_expunge_booking(tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = provision_token(home, "rita", "records")
    services = make_services(home)
    booked_gallery(services, LAYOUT)
    done = cli(home, token, "gallery", "expunge", "--booking", "PB-1", "--order", "LASC-1")
    assert done.returncode == 0, done.stderr
    assert "expunged booking PB-1: 2 photos, 2 templates and 2 image files removed" in done.stdout
    assert "other bookings stay searchable" in done.stdout
    again = cli(home, token, "gallery", "expunge", "--booking", "PB-1", "--order", "LASC-1")
    assert again.returncode == 0 and "already applied" in again.stdout
    missing = cli(home, token, "gallery", "expunge", "--booking", "PB-404", "--order", "LASC-1")
    assert missing.returncode == 2 and "booking_not_found" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    mismatch = cli(home, token, "gallery", "expunge", "Q", "--booking", "PB-2", "--order", "X")
    assert mismatch.returncode == 2 and "booking_subject_mismatch" in mismatch.stderr
    no_order = cli(home, token, "gallery", "expunge", "--booking", "PB-2")
    assert no_order.returncode == 2 and "--order" in no_order.stderr
    shown = cli(home, token, "gallery", "show", "P")
    assert shown.returncode == 0 and json.loads(shown.stdout)["bookings"] == ["PB-2"]
    services.db.dispose()


def test_migration_keeps_existing_tombstones(database_url: str) -> None:
    """0007 rebuilds gallery_tombstones on SQLite; rows and the photo references survive."""
    db = Database(database_url)
    try:
        for revision in ("0002_audit", "0003_identity", "0005_review", "0006_lifecycle"):
            db.upgrade(revision)
        with db.engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO gallery_tombstones (id, kind, order_ref, reason, subject_hash, "
                    "bookings, photos, templates, removed_by_username, removed_at) VALUES "
                    "(7, 'sealed', 'LASC-1', '', 'h', 1, 1, 1, 'rita', CURRENT_TIMESTAMP)"
                )
            )
            conn.execute(sa.text("INSERT INTO tombstone_photos (tombstone_id, image_sha256) "
                                 "VALUES (7, 'abc')"))  # fmt: skip
        db.upgrade()
        assert db.current_heads() == db.script_heads() == ("0008_pin_active_model",)
        with db.session() as session:
            stone = session.get(Tombstone, 7)
            assert stone is not None and (stone.order_ref, stone.booking_hash) == ("LASC-1", "")
            assert lifecycle_repo.photo_removed(session, "abc")
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO tombstone_photos (tombstone_id, image_sha256) "
                                 "VALUES (8, 'def')"))  # fmt: skip
    finally:
        db.dispose()


@pytest.mark.models
def test_an_expunged_booking_is_never_a_candidate(meds_dir: Path, tmp_path: Path) -> None:
    services = make_services(tmp_path / "home")
    refs = {
        path.resolve(): BookingRef(path.name[:4], path.name[:7], agency="MEDS")
        for path in sorted(meds_dir.glob("S00[1-6]-0[1-2]-t10_01.jpg"))
    }
    enrolled = [r for r in enroll_files(services, SYSTEM, sorted(refs), refs)]
    assert sum(r.status.value == "enrolled" for r in enrolled) >= 7
    booking_1 = [r.photo_id for r in enrolled if r.source.endswith("S001-01-t10_01.jpg")]
    probe = (meds_dir / "S001-01-t10_01.jpg").read_bytes()
    before = _search_gallery(services, probe, top_k=5).candidates
    assert before[0].photo_id in booking_1
    cite(services, [c.photo_id for c in before])

    expunge_booking(services, RECORDS, "S001-01", "LASC-2025-EXP-3")

    for path in (meds_dir / "S001-01-t10_01.jpg", meds_dir / "S001-02-t10_01.jpg"):
        found = _search_gallery(services, path.read_bytes(), top_k=8).candidates
        assert not {c.photo_id for c in found} & set(booking_1)
        assert found[0].subject_id == "S001"  # still matched, through the other booking
    with services.db.session() as session:
        stub = session.get(Photo, booking_1[0])
        assert stub is not None and stub.width == 0 and not stub.templates
    assert not services.images.exists(str(stub.image_sha256))
    with pytest.raises(ConflictError) as again:  # the same bytes never come back
        enroll_photo(services, SYSTEM, probe, "again.jpg", BookingRef("S001", "S001-09"))
    assert again.value.code == "record_removed"
