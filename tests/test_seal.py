"""Sealing, expungement and purges leave no residue: rows, files, index arrays, search."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from facelead.domain.access import SYSTEM, Actor, Role
from facelead.domain.gallery import BookingRef, RemovalKind, normalise_order
from facelead.domain.search import ProbeProvenance, SearchRequest
from facelead.errors import ConflictError, NotFoundError, PermissionDenied
from facelead.services.audit import verify_log
from facelead.services.cases import open_case
from facelead.services.context import Services
from facelead.services.gallery import enroll_photo
from facelead.services.importer import ImportOptions, collect, prepare_import, run_import
from facelead.services.lifecycle import (
    apply_orders,
    lookup_removed,
    lookup_subject,
    remove_subject,
)
from facelead.services.search import _search_gallery, submit_search
from facelead.store.case_models import CandidateRecord
from facelead.store.gallery import photo_details
from facelead.store.lifecycle_models import ImportItem, Tombstone
from facelead.store.models import Booking, Photo, Subject, Template
from tests.conftest import make_services, provision_token
from tests.test_import import cli, write_meds_manifest

CERTIFIED = dt.date.today() + dt.timedelta(days=90)
RECORDS = Actor(None, "rita", frozenset({Role.RECORDS}), "LACRIS")
AUDITOR = Actor(None, "audra", frozenset({Role.AUDITOR}), "LACRIS")
INVESTIGATOR = Actor(None, "ivan", frozenset({Role.INVESTIGATOR}), "LACRIS", CERTIFIED)
SEALED = "S001"


def saved_index(services: Services) -> dict[str, np.ndarray]:
    """The arrays of the saved index on disk, exactly as a later process would load them."""
    folder = services.settings.index_dir / services.settings.model_id
    meta = json.loads((folder / f"{services.settings.model_id}.meta.json").read_text())
    tokens = {p.name.split(".")[1] for p in folder.glob("*.npy")}
    assert tokens == {meta["token"]}, "an older index file is still on disk"
    return {
        name: np.load(folder / f"{services.settings.model_id}.{meta['token']}.{name}.npy")
        for name in ("vectors", "photo_ids", "subject_ids")
    }


@pytest.mark.models
def test_seal_leaves_no_residue(meds_dir: Path, tmp_path: Path) -> None:
    services = make_services(tmp_path / "home")
    write_meds_manifest(meds_dir, tmp_path / "manifest.csv", limit=24)  # S001..S00x
    plan = prepare_import(services, SYSTEM, collect([tmp_path]), ImportOptions(workers=1))
    list(run_import(services, SYSTEM, plan, ImportOptions(workers=1)))
    with services.db.session() as session:
        rows = session.execute(
            sa.select(Photo.id, Photo.image_sha256, Template.vector)
            .join(Subject, Subject.id == Photo.subject_id)
            .outerjoin(Template, Template.photo_id == Photo.id)
            .where(Subject.external_id == SEALED)
        ).all()
    photo_ids = {r[0] for r in rows}
    hashes = {r[1] for r in rows}
    old_vectors = [np.frombuffer(r[2], "<f4") for r in rows if r[2] is not None]
    assert len(hashes) >= 8 and len(old_vectors) >= 6
    templated = {r[0] for r in rows if r[2] is not None}
    assert templated <= set(saved_index_after_search(services))  # searchable before
    probe = (meds_dir / "S001-01-t10_01.jpg").read_bytes()  # enrolled photo used as probe
    cited = cite_in_a_search(services, probe)
    assert cited & photo_ids  # a past search named the subject: its rows become stubs

    result = remove_subject(
        services, RECORDS, normalise_order("seal", SEALED, "LASC-2024-SEAL-17", "PC 851.91")
    )
    assert (result.photos, result.image_files) == (len(hashes), len(hashes))

    with services.db.session() as session:
        assert session.scalar(sa.select(Subject).where(Subject.external_id == SEALED)) is None
        assert not session.scalars(
            sa.select(Template.id).where(Template.photo_id.in_(photo_ids))
        ).all()
        left = session.scalars(sa.select(Photo).where(Photo.image_sha256.in_(hashes))).all()
        assert {p.id for p in left} == cited & photo_ids  # only what a candidate row cites
        for stub in left:
            assert (stub.face_box, stub.landmarks, stub.quality, stub.source_name) == (
                [0.0, 0.0, 0.0, 0.0], [], {}, ""
            )  # fmt: skip
            assert stub.booking_id is None and stub.width == stub.height == 0
        assert not session.scalars(
            sa.select(Booking.id).where(Booking.booking_number.like(f"{SEALED}-%"))
        ).all()
        names = {d.subject_external_id for d in photo_details(session, cited & photo_ids).values()}
        assert names == {f"removed-{result.tombstone_id}"}
        items = session.scalars(
            sa.select(ImportItem).where(ImportItem.image_sha256.in_(hashes))
        ).all()
        assert {(i.status, i.subject_external_id, i.source) for i in items} == {
            ("removed", None, "")
        }
        stone = session.get(Tombstone, result.tombstone_id)
        assert stone is not None and SEALED not in json.dumps(
            [stone.subject_hash, stone.order_ref, stone.reason]
        )
    for sha in hashes:
        assert not services.images.path(sha).exists()

    arrays = saved_index(services)
    assert not set(arrays["photo_ids"].tolist()) & photo_ids
    saved = arrays["vectors"].astype(np.float32)
    for vector in old_vectors:  # no saved row is any of the sealed templates
        assert np.abs(saved - vector.astype(np.float16).astype(np.float32)).max(axis=1).min() > 0.01

    for path in sorted(meds_dir.glob(f"{SEALED}-*t10_01.jpg")):  # own photos as probes
        found = _search_gallery(services, path.read_bytes(), top_k=50)
        assert not {c.photo_id for c in found.candidates} & photo_ids
        assert SEALED not in {c.subject_id for c in found.candidates}

    with pytest.raises(NotFoundError):
        lookup_subject(services, RECORDS, SEALED)
    with pytest.raises(PermissionDenied):
        lookup_removed(services, RECORDS, SEALED)
    [record] = lookup_removed(services, AUDITOR, SEALED)
    assert (record.status, record.kind, record.order_ref) == (
        "record removed",
        RemovalKind.SEALED,
        "LASC-2024-SEAL-17",
    )
    assert set(record.photo_hashes) == hashes

    with pytest.raises(ConflictError) as info:  # the same bytes can never come back
        enroll_photo(services, SYSTEM, probe, "again.jpg", BookingRef("S999", "B999"))
    assert info.value.code == "record_removed"
    again = remove_subject(services, RECORDS, normalise_order("seal", SEALED, "LASC-2024-SEAL-17"))
    assert again.already_applied and again.tombstone_id == result.tombstone_id
    assert verify_log(services, AUDITOR).ok


def saved_index_after_search(services: Services) -> list[int]:
    return [int(i) for i in services.index().photo_ids]


def cite_in_a_search(services: Services, probe: bytes) -> set[int]:
    open_case(services, INVESTIGATOR, "SEAL-CASE-1", "robbery")
    request = SearchRequest(
        "criminal-investigation",
        "Robbery suspect photographed by the shop camera at the till",
        ProbeProvenance("cctv-still", "shop owner handed over", "shop camera"),
    )
    receipt = submit_search(services, INVESTIGATOR, "SEAL-CASE-1", probe, request)
    with services.db.session() as session:
        return set(
            session.scalars(
                sa.select(CandidateRecord.photo_id).where(
                    CandidateRecord.search_id == receipt.search_id
                )
            )
        )


def synthetic_gallery(services: Services, count: int) -> None:
    """Subjects P0.. with one photo and a random template each, through the repository."""
    from facelead.store import gallery as repo

    rng = np.random.default_rng(7)
    with services.db.session() as session:
        for n in range(count):
            subject = repo.get_or_create_subject(session, f"P{n}")
            booking = repo.get_or_create_booking(session, subject, f"PB{n}", None, "X")
            sha = services.images.put(f"image bytes of P{n}".encode())
            photo = repo.add_photo(
                session, subject=subject, booking=booking, image_sha256=sha, view="frontal",
                width=10, height=10, face_box=[0, 0, 5, 5], landmarks=[], quality={},
            )  # fmt: skip
            repo.add_template(session, photo, services.settings.model_id, rng.normal(size=8))


def test_sync_applies_a_list_of_orders(tmp_path: Path, database_url: str) -> None:
    """No face models: photos enrolled with synthetic templates through the repository."""
    services = make_services(tmp_path / "home", database_url)
    synthetic_gallery(services, 3)
    orders = [
        normalise_order("purge", "P0", "DA-DECLINED-1", "charges not filed"),
        normalise_order("expunge", "P1", "LASC-EXP-2"),
        normalise_order("seal", "NOBODY", "LASC-SEAL-3"),
        normalise_order("purge", "P0", "DA-DECLINED-1"),  # the same order again
    ]
    outcomes = list(apply_orders(services, RECORDS, orders))
    assert [o.error["code"] if o.error else "ok" for o in outcomes] == [
        "ok", "ok", "subject_not_found", "ok"
    ]  # fmt: skip
    assert outcomes[3].result is not None and outcomes[3].result.already_applied
    stats_after = [s.model_id for s in [services.index()]]
    assert stats_after == [services.settings.model_id]
    assert len(services.index()) == 1
    with services.db.session() as session:
        assert session.scalars(sa.select(Subject.external_id)).all() == ["P2"]
        kinds = sorted(session.scalars(sa.select(Tombstone.kind)))
    assert kinds == ["expunged", "purged"]
    remaining = {p.name for p in services.settings.images_dir.rglob("*") if p.is_file()}
    assert len(remaining) == 1
    admin = Actor(None, "adam", frozenset({Role.ADMIN}), "LACRIS")
    with pytest.raises(PermissionDenied):  # sealing is the records bureau's alone
        remove_subject(services, admin, normalise_order("seal", "P2", "LASC-4"))
    services.db.dispose()


def test_cli_sync_show_and_auditor_lookup(tmp_path: Path) -> None:
    home = tmp_path / "home"
    records = provision_token(home, "rita", "records")
    auditor = provision_token(home, "audra", "auditor")
    services = make_services(home)
    synthetic_gallery(services, 3)
    orders = tmp_path / "orders.csv"
    orders.write_text(
        "action,subject_id,order,reason\n"
        "purge,P0,DA-2024-11,charges dropped\n"
        "seal,NOBODY,LASC-1,\n"
        "expunge,P1,LASC-2,\n"
    )
    synced = cli(home, records, "gallery", "purge", "--sync", str(orders))
    assert synced.returncode == 1, synced.stderr
    assert "purged P0 (DA-2024-11): removed" in synced.stdout
    assert "refused [subject_not_found] sealed NOBODY (LASC-1)" in synced.stdout
    assert "expunged P1 (LASC-2): removed" in synced.stdout
    assert "already applied" in cli(home, records, "gallery", "purge", "--sync", str(orders)).stdout
    shown = cli(home, records, "gallery", "show", "P2")
    assert shown.returncode == 0 and json.loads(shown.stdout)["bookings"] == ["PB2"]
    gone = cli(home, records, "gallery", "show", "P0")
    assert gone.returncode == 2 and "subject_not_found" in gone.stderr
    denied = cli(home, records, "gallery", "removed", "P0")
    assert denied.returncode == 2 and "forbidden" in denied.stderr
    found = cli(home, auditor, "gallery", "removed", "P0")
    assert found.returncode == 0, found.stderr
    assert "record removed: purged under order DA-2024-11" in found.stdout
    sealed = cli(home, records, "gallery", "seal", "P2", "--order", "LASC-3")
    assert sealed.returncode == 0 and "1 image files removed" in sealed.stdout
    assert not [p for p in services.settings.images_dir.rglob("*") if p.is_file()]


@pytest.mark.models
def test_a_search_ranked_before_a_seal_never_records_the_sealed_subject(
    meds_dir: Path, tmp_path: Path
) -> None:
    """The race: the index is scanned, a seal commits, then the search is recorded.

    The scan runs outside the search's transaction, so the index it used may still
    hold the sealed templates; the candidate rows must not.
    """
    services = make_services(tmp_path / "home")
    write_meds_manifest(meds_dir, tmp_path / "manifest.csv", limit=24)
    plan = prepare_import(services, SYSTEM, collect([tmp_path]), ImportOptions(workers=1))
    list(run_import(services, SYSTEM, plan, ImportOptions(workers=1)))
    with services.db.session() as session:
        sealed_photos = set(
            session.scalars(
                sa.select(Photo.id)
                .join(Subject, Subject.id == Photo.subject_id)
                .where(Subject.external_id == SEALED)
            )
        )
    before_seal = services.index()  # what a search that started before the seal scans
    assert sealed_photos & set(before_seal.photo_ids.tolist())
    remove_subject(
        services, RECORDS, normalise_order("seal", SEALED, "LASC-2024-SEAL-18", "PC 851.91")
    )
    services.index = lambda: before_seal  # type: ignore[method-assign]
    probe = (meds_dir / "S001-01-t10_01.jpg").read_bytes()  # the sealed subject's own photo
    cited = cite_in_a_search(services, probe)
    with services.db.session() as session:
        ranks = list(
            session.scalars(sa.select(CandidateRecord.rank).order_by(CandidateRecord.rank))
        )
    assert cited and not cited & sealed_photos
    assert ranks == list(range(1, len(ranks) + 1))  # renumbered without gaps
