"""``facelead import``: MEDS folder and ANSI/NIST-ITL files, status table, SIGKILL and resume."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facelead.domain.access import SYSTEM, Role
from facelead.services.ansi_nist import write_transaction
from facelead.services.audit import verify_log
from facelead.services.importer import ImportOptions, collect, prepare_import, run_import
from facelead.store.audit_models import AuditEvent
from facelead.store.images import IMAGE_KEY_FILE, ImageStore, load_or_create_image_key
from facelead.store.lifecycle_models import ImportItem
from tests.conftest import MEDS_NAME, Installed, audit_actor, make_services, provision_token
from tests.crash_helpers import kill_group
from tests.test_import_nist import face_of

FACELEAD = Path(sys.executable).parent / "facelead"
JUVENILE_SUBJECT = "S003"


def write_meds_manifest(meds_dir: Path, dest: Path, limit: int | None = None) -> int:
    """One row per MEDS photo; subject S003 was 16 at booking, everyone else an adult."""
    paths = sorted(meds_dir.glob("*.jpg"))[:limit]
    with dest.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["path", "subject_id", "booking_number", "booking_date", "agency", "pose",
                      "date_of_birth"])  # fmt: skip
        for path in paths:
            match = MEDS_NAME.search(path.name)
            assert match
            subject, booking, record = match.groups()
            day = dt.date(2009, 1, 1) + dt.timedelta(days=int(booking))
            born = "1994-06-01" if f"S{subject}" == JUVENILE_SUBJECT else "1970-06-01"
            pose = "frontal" if record == "01" else ""
            out.writerow([str(path), f"S{subject}", f"S{subject}-{booking}", day.isoformat(),
                          "MEDS", pose, born])  # fmt: skip
    return len(paths)


def cli(home: Path, token: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELEAD_HOME": str(home), "FACELEAD_TOKEN": token}
    return subprocess.run(
        [str(FACELEAD), *args], capture_output=True, text=True, env=env, timeout=900, **kw
    )


def snapshot(home: Path) -> dict[str, Any]:
    """Everything an import produces, by natural keys (row ids depend on worker timing)."""
    db = sqlite3.connect(f"file:{home / 'facelead.db'}?mode=ro", uri=True)
    try:
        q = db.execute
        return {
            "subjects": sorted(q("SELECT external_id, sealed_at FROM subjects").fetchall()),
            "bookings": sorted(
                q(
                    "SELECT b.booking_number, s.external_id, b.booking_date, b.agency "
                    "FROM bookings b JOIN subjects s ON s.id = b.subject_id"
                ).fetchall()
            ),
            "photos": sorted(
                q(
                    "SELECT p.image_sha256, s.external_id, b.booking_number, p.view, p.width, "
                    "p.height, p.face_box, p.quality FROM photos p "
                    "JOIN subjects s ON s.id = p.subject_id "
                    "LEFT JOIN bookings b ON b.id = p.booking_id"
                ).fetchall()
            ),
            "templates": sorted(
                (sha, model, hashlib.sha256(vec).hexdigest())
                for sha, model, vec in q(
                    "SELECT p.image_sha256, t.model_id, t.vector FROM templates t "
                    "JOIN photos p ON p.id = t.photo_id"
                )
            ),
            "items": sorted(
                q(
                    "SELECT item_key, status, code, subject_external_id, image_sha256 "
                    "FROM import_items"
                ).fetchall()
            ),
            "enrol_events": sorted(
                q(
                    "SELECT json_extract(details, '$.image_sha256'), outcome FROM audit_events "
                    "WHERE action = 'gallery.enrol' AND object_type = 'photo' AND outcome = 'ok'"
                ).fetchall()
            ),
            "files": stored_files(home),
        }
    finally:
        db.close()


def stored_files(home: Path) -> list[tuple[str, str]]:
    """(file name, SHA-256 of the decrypted content) of every stored photo.

    Files are encrypted with a fresh nonce each time, so only the plaintext digest
    is comparable between two imports.
    """
    key = load_or_create_image_key(home / "keys" / IMAGE_KEY_FILE)
    store = ImageStore(home / "images", key)
    names = [p.name for p in (home / "images").rglob("*") if p.is_file()]
    return sorted((name, hashlib.sha256(store.get(name)).hexdigest()) for name in names)


def status_counts(home: Path) -> dict[str, int]:
    db = sqlite3.connect(f"file:{home / 'facelead.db'}?mode=ro", uri=True, timeout=30)
    try:
        rows = db.execute("SELECT status, count(*) FROM import_items GROUP BY status").fetchall()
        return {str(s): int(n) for s, n in rows}
    except sqlite3.OperationalError:  # schema not there yet
        return {}
    finally:
        db.close()


# --------------------------------------------------------------------------- no models


def test_juvenile_records_are_refused_audited_and_not_retried(
    installed: Installed, tmp_path: Path
) -> None:
    """Refused before any image is decoded, on both backends; a re-run skips them."""
    sheet = tmp_path / "manifest.csv"
    sheet.write_text(
        "path,subject_id,booking_number,booking_date,date_of_birth\n"
        "a.jpg,J1,JB1,2015-01-10,2000-01-11\n"
        "b.jpg,J2,JB2,2015-01-10,\n"
    )
    services, admin = installed.services, installed.admin
    options = ImportOptions(workers=1)
    plan = prepare_import(services, admin, collect([sheet]), options)
    assert (plan.total, len(plan.records)) == (2, 2)
    outcomes = {o.source.rsplit("/", 1)[-1]: o for o in run_import(services, admin, plan, options)}
    assert (outcomes["a.jpg"].status, outcomes["a.jpg"].code) == ("refused", "juvenile_record")
    assert (outcomes["b.jpg"].status, outcomes["b.jpg"].code) == ("refused", "unreadable")
    with services.db.session() as session:
        items = {i.source.rsplit("/", 1)[-1]: i for i in session.scalars(sa.select(ImportItem))}
        refusals = session.scalars(
            sa.select(AuditEvent.outcome).where(AuditEvent.action == "gallery.enrol")
        ).all()
    assert items["a.jpg"].status == "refused" and items["a.jpg"].code == "juvenile_record"
    assert sorted(refusals) == ["ok", "refused:juvenile_record", "refused:unreadable"]
    again = prepare_import(services, admin, collect([sheet]), options)
    assert (again.records, again.already_refused) == ((), 2)
    retry = prepare_import(services, admin, collect([sheet]), ImportOptions(retry_refused=True))
    assert len(retry.records) == 2


# --------------------------------------------------------------------------- real models


@pytest.mark.models
def test_cli_imports_the_meds_folder_in_parallel(meds_dir: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    token = provision_token(home, "rita", "records")
    total = write_meds_manifest(meds_dir, tmp_path / "manifest.csv")
    done = cli(home, token, "import", str(tmp_path), "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert f"{total} to process on 2 processes" in done.stdout
    assert "Refusals by reason" in done.stdout and "juvenile_record" in done.stdout
    state = snapshot(home)
    juvenile = [i for i in state["items"] if i[2] == "juvenile_record"]
    assert len(juvenile) == len(list(meds_dir.glob(f"{JUVENILE_SUBJECT}-*.jpg")))
    assert JUVENILE_SUBJECT not in {s for s, _ in state["subjects"]}
    assert len(state["items"]) == total and not [i for i in state["items"] if i[1] == "pending"]
    enrolled = {i[4] for i in state["items"] if i[1] == "done"}
    assert enrolled == {p[0] for p in state["photos"]} == {e[0] for e in state["enrol_events"]}
    assert {name for name, _ in state["files"]} == enrolled
    assert all(name == digest for name, digest in state["files"])
    assert len(state["templates"]) > 0.8 * len(state["photos"])  # frontals; profiles kept only
    again = cli(home, token, "import", str(tmp_path), "--workers", "2")
    assert again.returncode == 0 and "0 to process" in again.stdout
    assert snapshot(home) == state


@pytest.mark.models
def test_import_of_generated_ansi_nist_files(meds_dir: Path, tmp_path: Path) -> None:
    """Two booking transactions built from MEDS images; the juvenile one is refused."""
    services = make_services(tmp_path / "home")
    adult = write_transaction(
        subject_id="CII-A1",
        booking_number="LASD-2011-77",
        booking_date=dt.date(2011, 7, 7),
        agency="CA0194200",
        faces=[
            face_of(meds_dir / "S001-08-t10_01.jpg"),
            face_of(meds_dir / "S001-08-t10_03.jpg", "R"),
        ],
        birth_date=dt.date(1975, 1, 1),
    )
    minor = write_transaction(
        subject_id="CII-J1",
        booking_number="LASD-2011-78",
        booking_date=dt.date(2011, 7, 8),
        agency="CA0194200",
        faces=[face_of(meds_dir / "S002-01-t10_01.jpg")],
        birth_date=dt.date(1995, 1, 1),
    )
    (tmp_path / "adult.an2").write_bytes(adult)
    (tmp_path / "minor.eft").write_bytes(minor)
    sources = [tmp_path / "adult.an2", tmp_path / "minor.eft"]
    plan = prepare_import(services, SYSTEM, collect(sources), ImportOptions(workers=1))
    outcomes = list(run_import(services, SYSTEM, plan, ImportOptions(workers=1)))
    codes = sorted((o.status, o.code) for o in outcomes)
    assert codes == [
        ("done", "enrolled"),
        ("done", "stored_not_searchable"),
        ("refused", "juvenile_record"),
    ]
    state = snapshot(services.settings.resolved_home)
    assert state["subjects"] == [("CII-A1", None)]
    assert [b[:4] for b in state["bookings"]] == [
        ("LASD-2011-77", "CII-A1", "2011-07-07", "CA0194200")
    ]
    assert len(state["photos"]) == 2
    replan = prepare_import(services, SYSTEM, collect(sources), ImportOptions(workers=1))
    assert replan.records == () and replan.already_done == 2


@pytest.mark.models
def test_sigkill_midway_then_rerun_equals_an_uninterrupted_import(
    meds_dir: Path, tmp_path: Path
) -> None:
    total = write_meds_manifest(meds_dir, tmp_path / "manifest.csv", limit=32)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    tokens = {home: provision_token(home, "rita", "records") for home in (clean, killed)}
    assert cli(clean, tokens[clean], "import", str(tmp_path), "--workers", "2").returncode == 0

    env = {**os.environ, "FACELEAD_HOME": str(killed), "FACELEAD_TOKEN": tokens[killed]}
    proc = subprocess.Popen(
        [str(FACELEAD), "import", str(tmp_path), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the workers die with it
    )
    try:
        while status_counts(killed).get("done", 0) + status_counts(killed).get("refused", 0) < 8:
            assert proc.poll() is None, "import ended before it could be killed"
            time.sleep(0.05)
    finally:
        kill_group(proc)
    interrupted = status_counts(killed)
    assert interrupted.get("pending", 0) > 0, interrupted  # really killed midway

    resumed = cli(killed, tokens[killed], "import", str(tmp_path), "--workers", "2")
    assert resumed.returncode == 0, resumed.stderr
    assert f"{interrupted['pending']} to process" in resumed.stdout
    assert status_counts(killed) == status_counts(clean)
    assert sum(status_counts(clean).values()) == total
    assert snapshot(killed) == snapshot(clean)
    services = make_services(killed)
    assert verify_log(services, _auditor()).ok


def _auditor() -> Any:
    return audit_actor(Role.AUDITOR)
