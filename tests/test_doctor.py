"""``facelead doctor``: each inconsistency is planted by hand, found, and repaired where safe."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from facelead.cli.main import app
from facelead.domain.access import Actor
from facelead.domain.gallery import BookingRef
from facelead.errors import PermissionDenied
from facelead.index.flat import FlatIndex
from facelead.services.context import Services
from facelead.services.doctor import DoctorReport, diagnose
from facelead.services.gallery import enroll_photo
from tests.conftest import Installed, drop_audit_guards, install, provision_token
from tests.lifecycle_fixtures import record_search

LONG_AGO = dt.timedelta(hours=2).total_seconds()


def enrol_some(services: Services, actor: Actor, meds: Path, n: int = 3) -> list[str]:
    """``n`` frontal MEDS photos of different subjects; returns their SHA-256s."""
    shas = []
    for i, path in enumerate(sorted(meds.glob("*_01.jpg"))[:n]):
        ref = BookingRef(f"S-DOC-{i}", f"S-DOC-{i}-1", agency="LACRIS")
        result = enroll_photo(services, actor, path.read_bytes(), path.name, ref)
        assert result.photo_id is not None
        with services.db.session() as session:
            sha = session.scalar(
                sa.text("SELECT image_sha256 FROM photos WHERE id = :i"), {"i": result.photo_id}
            )
        shas.append(str(sha))
    return shas


def age(path: Path) -> None:
    """What a file left behind two hours ago looks like."""
    old = path.stat().st_mtime - LONG_AGO
    os.utime(path, (old, old))


def checks(report: DoctorReport) -> dict[str, int]:
    return report.counts()


@pytest.fixture
def clinic(installed: Installed, meds_dir: Path) -> tuple[Installed, Actor, list[str]]:
    installed.add("rita", "records")
    rita = installed.login("rita")
    shas = enrol_some(installed.services, rita, meds_dir)
    installed.services.index()  # the saved index, current
    return installed, rita, shas


def test_a_consistent_deployment_is_ok_and_the_check_is_audited(
    clinic: tuple[Installed, Actor, list[str]],
) -> None:
    installed, rita, _ = clinic
    report = diagnose(installed.services, rita)
    assert report.ok and report.findings == ()
    with installed.services.db.engine.connect() as conn:
        action, outcome, actor = conn.execute(
            sa.text("SELECT action, outcome, actor FROM audit_events ORDER BY seq DESC LIMIT 1")
        ).one()
    assert (action, outcome, actor) == ("gallery.purge", "ok", "rita")


def test_only_records_and_admin_may_run_it(installed: Installed) -> None:
    installed.add("ivy", "investigator")
    with pytest.raises(PermissionDenied):
        diagnose(installed.services, installed.login("ivy"))
    assert diagnose(installed.services, installed.admin).ok


def _plant(installed: Installed, shas: list[str]) -> dict[str, Path]:
    """One of each inconsistency; returns the files planted."""
    services = installed.services
    db = services.db
    services.images.path(shas[0]).unlink()  # photo 0: its file is gone
    with db.engine.begin() as conn:  # photo 1: its row is gone, its template stays
        if db.is_sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        else:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        conn.execute(sa.text("DELETE FROM photos WHERE image_sha256 = :s"), {"s": shas[1]})
        conn.execute(sa.text("UPDATE index_state SET generation = generation + 1"))
    if db.is_sqlite:
        with db.engine.begin() as conn:
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
    old_orphan = services.images.path(services.images.put(b"bytes nobody references"))
    new_orphan = services.images.path(services.images.put(b"an enrolment still in flight"))
    temp = old_orphan.parent / ".tmp-crashed-write"
    temp.write_bytes(b"half a file")
    probe_orphan = services.probes.path(services.probes.put(b"a probe nobody searched"))
    foreign = services.settings.images_dir / "notes.txt"
    foreign.write_text("put here by hand")
    for path in (old_orphan, temp, probe_orphan, foreign, services.images.path(shas[1])):
        age(path)
    return {"old": old_orphan, "new": new_orphan, "temp": temp, "probe": probe_orphan,
            "foreign": foreign}  # fmt: skip


def test_doctor_finds_and_repairs_every_planted_inconsistency(
    clinic: tuple[Installed, Actor, list[str]],
) -> None:
    installed, rita, shas = clinic
    services = installed.services
    planted = _plant(installed, shas)
    found = diagnose(services, rita)
    assert checks(found) == {
        "photo_without_file": 1,
        "template_without_photo": 1,
        "orphan_file": 4,  # photo 1's file, the two planted gallery orphans, the probe
        "temp_file": 1,
        "foreign_file": 1,
        "stale_index": 1,
    }
    assert not found.ok and not any(f.repaired for f in found.findings)
    assert all(p.exists() for p in planted.values())  # a check changes nothing

    repaired = diagnose(services, rita, repair=True)
    assert {f.check for f in repaired.findings if f.repaired} == {
        "orphan_file", "temp_file", "stale_index"
    }  # fmt: skip
    assert not planted["old"].exists() and not planted["temp"].exists()
    assert not planted["probe"].exists() and not services.images.exists(shas[1])
    assert planted["new"].exists()  # younger than the grace period: may be in flight
    assert planted["foreign"].exists()  # not ours to delete
    with services.db.session() as session:
        generation = session.scalar(sa.text("SELECT generation FROM index_state"))
    model = services.active_model_id()
    assert FlatIndex.read_meta(services.settings.index_dir / model, model)["generation"] == (
        generation
    )
    after = diagnose(services, rita)
    assert checks(after) == {
        "photo_without_file": 1,  # errors are reported, never papered over
        "template_without_photo": 1,
        "orphan_file": 1,
        "foreign_file": 1,
    }
    with services.db.engine.connect() as conn:
        modes = conn.scalars(
            sa.text("SELECT details FROM audit_events WHERE action = 'gallery.purge' ORDER BY seq")
        ).all()
    details = [json.loads(d) if isinstance(d, str) else d for d in modes]
    assert [d["mode"] for d in details] == ["check", "repair", "check"]
    assert details[1]["repaired"] == 5 and details[1]["ok"] is False


def test_doctor_reports_a_tampered_audit_chain(installed: Installed) -> None:
    services = installed.services
    assert diagnose(services, installed.admin).ok
    drop_audit_guards(services.db)
    with services.db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2"))
    report = diagnose(services, installed.admin, repair=True)
    assert [f.check for f in report.findings] == ["audit_chain"]
    assert report.findings[0].subject == "2" and not report.findings[0].repaired


def test_cli_doctor_exit_codes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {"FACELEAD_HOME": str(home), "FACELEAD_TOKEN": provision_token(home, "rita", "records")}
    runner = CliRunner()
    result = runner.invoke(app, ["doctor"], env=env)
    assert result.exit_code == 0 and "OK: 0 errors, 0 warnings" in result.output, result.output
    services = install_free(home)
    orphan = services.images.path(services.images.put(b"left behind"))
    age(orphan)
    result = runner.invoke(app, ["doctor"], env=env)
    assert result.exit_code == 0 and "WARNING orphan_file" in result.output, result.output
    result = runner.invoke(app, ["doctor", "--repair"], env=env)
    assert result.exit_code == 0 and "(repaired)" in result.output and not orphan.exists()
    services.images.put(b"x")  # recreate a folder, then break the chain
    drop_audit_guards(services.db)
    with services.db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq = 1"))
    result = runner.invoke(app, ["doctor"], env=env)
    assert result.exit_code == 1 and "ERROR audit_chain" in result.output, result.output
    services.db.dispose()


def install_free(home: Path) -> Services:
    """The same home, opened as another process would."""
    from facelead.config import Settings

    return Services(Settings(home=home))


def test_a_fresh_install_is_consistent(tmp_path: Path) -> None:
    """A fresh install (first admin only) is consistent."""
    installed = install(tmp_path / "home")
    assert diagnose(installed.services, installed.admin).ok
    installed.services.db.dispose()


def _search_with_probe(services: Services, number: str, probe: bytes) -> tuple[int, str]:
    """A recorded search and its probe file, written as the search service would."""
    from facelead.store import cases as case_repo

    with services.db.session() as session:
        case = case_repo.add_case(session, number, "LACRIS", "robbery", case_repo.UserRef("ivan"))
        search = record_search(services, session, case, probe, status="no_lead")
        return int(search.id), search.probe.image_sha256


def test_missing_probes_and_index_leftovers_are_found(installed: Installed) -> None:
    """A probe a search still needs must be on disk (retention may delete released ones);
    a killed index save leaves a temporary file that only the doctor ever removes."""
    from facelead.store import retention as retention_repo

    services, admin = installed.services, installed.admin
    needed, needed_sha = _search_with_probe(services, "DOC-P-1", b"probe still needed")
    released, released_sha = _search_with_probe(services, "DOC-P-2", b"probe released")
    with services.db.session() as session:
        retention_repo.add_action(
            session, search_id=released, rule="no_lead", probe_sha256=released_sha,
            probe_file_deleted=True, candidates_deleted=0, dispositions_deleted=0,
            applied_by="rita",
        )  # fmt: skip
    services.probes.path(released_sha).unlink()  # retention's own deletion: fine
    assert diagnose(services, admin).ok
    services.probes.path(needed_sha).unlink()  # lost: an error, never repaired
    index_dir = services.settings.index_dir / services.settings.model_id
    index_dir.mkdir(parents=True, exist_ok=True)
    old_tmp, new_tmp = index_dir / ".tmp-killed", index_dir / ".tmp-writing"
    old_tmp.write_bytes(b"\0" * 64)
    new_tmp.write_bytes(b"\0" * 64)
    age(old_tmp)
    found = diagnose(services, admin)
    assert [(f.check, f.subject) for f in found.errors] == [("probe_without_file", needed_sha)]
    assert checks(found)["temp_file"] == 2
    repaired = diagnose(services, admin, repair=True)
    assert not old_tmp.exists() and new_tmp.exists()  # younger than the grace: may be in flight
    assert [f.check for f in repaired.errors] == ["probe_without_file"]
    assert needed  # the search row that needs the probe is still there


def test_reusing_an_orphan_renews_it_so_repair_keeps_it(installed: Installed) -> None:
    """A crash left an orphan; a new search of the same probe reuses the file. The
    repair must not delete it under that search."""
    services = installed.services
    path = services.probes.path(services.probes.put(b"an orphan probe, then searched again"))
    age(path)
    services.probes.put(b"an orphan probe, then searched again")
    repaired = diagnose(services, installed.admin, repair=True)
    assert path.exists() and not any(f.repaired for f in repaired.findings)
