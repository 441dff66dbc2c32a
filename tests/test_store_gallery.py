"""Gallery repository on real SQLite and PostgreSQL databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from facelead.errors import ConflictError, InputError
from facelead.store import Base, Database, Photo, Subject, Template
from facelead.store import gallery as g

MODEL = "fusion-v1"
TABLES = {"subjects", "bookings", "photos", "templates", "index_state", "alembic_version"}


def _sha(n: int) -> str:
    return f"{n:064x}"


def _photo(session: sa.orm.Session, subject: Subject, n: int, view: str = "frontal") -> Photo:
    return g.add_photo(
        session,
        subject=subject,
        booking=None,
        image_sha256=_sha(n),
        view=view,
        width=640,
        height=480,
        face_box=[1.0, 2.0, 100.0, 120.0],
        landmarks=[[10.0, 20.0], [30.0, 20.0]],
        quality={"sharpness": 0.9, "pose_yaw": 3.5},
        source_name=f"img{n}.jpg",
    )


def _vec(seed: int, dim: int = 8) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def _enrol(db: Database, external_id: str, n: int, model: str = MODEL) -> tuple[int, int]:
    with db.session() as s:
        subject = g.get_or_create_subject(s, external_id)
        photo = _photo(s, subject, n)
        g.add_template(s, photo, model, _vec(n))
        return subject.id, photo.id


def test_migrations_create_schema_at_head(database_url: str) -> None:
    db = Database(database_url)
    try:
        assert db.current_heads() == ()
        db.upgrade()
        assert db.current_heads() == db.script_heads()
        assert "0001_gallery" not in db.current_heads()  # later revisions build on it
        assert set(sa.inspect(db.engine).get_table_names()) >= TABLES
        db.upgrade()  # idempotent at head
        assert db.current_heads() == db.script_heads()
    finally:
        db.dispose()


def test_migration_matches_orm_models(database: Database) -> None:
    """Hand-written migrations and ORM classes must describe the same schema."""
    with database.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def test_subject_booking_photo_template_roundtrip(database: Database) -> None:
    with database.session() as s:
        subject = g.get_or_create_subject(s, "S001")
        assert g.get_or_create_subject(s, "S001").id == subject.id
        booking = g.get_or_create_booking(s, subject, "B-1", date(2020, 5, 1), "LASD")
        assert g.get_or_create_booking(s, subject, "B-1", None, "LASD").id == booking.id
        photo = g.add_photo(
            s,
            subject=subject,
            booking=booking,
            image_sha256=_sha(1),
            view="frontal",
            width=640,
            height=480,
            face_box=[1, 2, 3, 4],
            landmarks=[[1.0, 2.0]],
            quality={"sharpness": 0.5},
        )
        template = g.add_template(s, photo, MODEL, _vec(1))
        assert template.dim == 8
        photo_id = photo.id
    with database.session() as s:
        stored = s.get(Photo, photo_id)
        assert stored is not None
        assert stored.face_box == [1.0, 2.0, 3.0, 4.0]
        assert stored.quality == {"sharpness": 0.5}
        assert stored.created_at.tzinfo is not None
        assert stored.created_at.utcoffset() == UTC.utcoffset(None)
        assert g.find_photo_by_sha(s, _sha(1)) is not None
        assert g.find_photo_by_sha(s, _sha(2)) is None
        rows = list(g.iter_templates(s, MODEL))
        assert [(r[1], r[2]) for r in rows] == [(photo_id, stored.subject_id)]
        np.testing.assert_array_equal(rows[0][3], _vec(1))
        info = g.photo_details(s, [photo_id, 999])
        assert set(info) == {photo_id}
        assert info[photo_id].subject_external_id == "S001"
        assert info[photo_id].booking_number == "B-1"
        assert info[photo_id].booking_date == date(2020, 5, 1)
        assert info[photo_id].agency == "LASD"
        assert info[photo_id].image_sha256 == _sha(1)


def test_booking_number_cannot_move_to_another_subject(database: Database) -> None:
    with pytest.raises(ConflictError) as err, database.session() as s:
        a = g.get_or_create_subject(s, "S001")
        b = g.get_or_create_subject(s, "S002")
        g.get_or_create_booking(s, a, "B-1", None, "LASD")
        g.get_or_create_booking(s, b, "B-1", None, "LASD")
    assert err.value.code == "booking_subject_mismatch"


def test_image_sha256_is_unique(database: Database) -> None:
    _enrol(database, "S001", 1)
    with pytest.raises(ConflictError) as err, database.session() as s:
        _photo(s, g.get_or_create_subject(s, "S002"), 1)
    assert err.value.code == "duplicate_image"
    # The database enforces it too, not only the repository check.
    with pytest.raises(IntegrityError), database.session() as s:
        subject = g.get_or_create_subject(s, "S003")
        s.add(
            Photo(
                subject_id=subject.id,
                image_sha256=_sha(1),
                view="frontal",
                width=1,
                height=1,
                face_box=[0, 0, 1, 1],
                landmarks=[],
                quality={},
                source_name="",
            )
        )
        s.flush()


def test_template_unique_per_photo_and_model(database: Database) -> None:
    _enrol(database, "S001", 1)
    with pytest.raises(IntegrityError), database.session() as s:
        photo = g.find_photo_by_sha(s, _sha(1))
        assert photo is not None
        g.add_template(s, photo, MODEL, _vec(2))
    with database.session() as s:
        photo = g.find_photo_by_sha(s, _sha(1))
        assert photo is not None
        g.add_template(s, photo, "other-v2", _vec(2))  # another model is fine


def test_invalid_inputs_refused(database: Database) -> None:
    with database.session() as s:
        subject = g.get_or_create_subject(s, "S001")
        with pytest.raises(InputError):
            _photo(s, subject, 1, view="oblique")
        photo = _photo(s, subject, 2)
        with pytest.raises(InputError):
            g.add_template(s, photo, MODEL, np.array([1.0, np.nan], dtype=np.float32))
        with pytest.raises(InputError):
            g.get_or_create_subject(s, "  ")


def test_generation_bumps_on_add_delete_and_seal(database: Database) -> None:
    with database.session() as s:
        assert g.index_generation(s, MODEL) == 0
    subject_id, _ = _enrol(database, "S001", 1)
    _enrol(database, "S002", 2)
    with database.session() as s:
        assert g.index_generation(s, MODEL) == 2
        assert g.index_generation(s, "other") == 0
        assert g.delete_templates_for_subject(s, subject_id) == 1
    with database.session() as s:
        assert g.index_generation(s, MODEL) == 3
        assert len(list(g.iter_templates(s, MODEL))) == 1
        # Nothing to delete: no bump.
        assert g.delete_templates_for_subject(s, subject_id) == 0
        assert g.index_generation(s, MODEL) == 3
        other = g.find_subject(s, "S002")
        assert other is not None
        g.seal_subject(s, other)
        assert g.index_generation(s, MODEL) == 4


def test_sealed_subjects_excluded_from_iter_templates(database: Database) -> None:
    _enrol(database, "S001", 1)
    _, kept_photo = _enrol(database, "S002", 2)
    with database.session() as s:
        subject = g.find_subject(s, "S001")
        assert subject is not None
        g.seal_subject(s, subject, datetime(2024, 1, 2, tzinfo=UTC))
    with database.session() as s:
        assert [row[1] for row in g.iter_templates(s, MODEL)] == [kept_photo]
        sealed = g.find_subject(s, "S001")
        assert sealed is not None
        assert sealed.sealed_at == datetime(2024, 1, 2, tzinfo=UTC)


def test_gallery_stats(database: Database) -> None:
    with database.session() as s:
        a = g.get_or_create_subject(s, "S001")
        b = g.get_or_create_subject(s, "S002")
        g.get_or_create_booking(s, a, "B-1", None, "LASD")
        p1 = _photo(s, a, 1)
        _photo(s, a, 2, view="profile")
        p3 = _photo(s, b, 3)
        g.add_template(s, p1, MODEL, _vec(1))
        g.add_template(s, p3, MODEL, _vec(3))
        g.add_template(s, p3, "other-v2", _vec(4))
        g.seal_subject(s, b)
    with database.session() as s:
        assert g.gallery_stats(s) == {
            "subjects": 2,
            "sealed_subjects": 1,
            "bookings": 1,
            "photos": 3,
            "photos_by_view": {"frontal": 2, "profile": 1},
            "templates_by_model": {MODEL: 2, "other-v2": 1},
        }


def test_rollback_on_exception_leaves_nothing_written(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as s:
        subject = g.get_or_create_subject(s, "S001")
        g.add_template(s, _photo(s, subject, 1), MODEL, _vec(1))
        raise RuntimeError("use case failed after writing")
    with database.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Subject)) == 0
        assert s.scalar(sa.select(sa.func.count()).select_from(Template)) == 0
        assert g.index_generation(s, MODEL) == 0


def test_sqlite_pragmas(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")
    try:
        with db.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert (conn.exec_driver_sql("PRAGMA busy_timeout").scalar() or 0) > 0
    finally:
        db.dispose()


def test_foreign_keys_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.session() as s:
        s.add(Template(photo_id=12345, model_id=MODEL, dim=1, vector=b"\0\0\0\0"))
        s.flush()
