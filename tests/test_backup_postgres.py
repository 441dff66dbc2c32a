"""Backup and restore of a PostgreSQL deployment: pg_dump/pg_restore, checked, audited.

Each test makes its own databases on the real server (127.0.0.1:5432);
without a server they skip, except under CI=true where they fail
(``pg_admin_engine``). No face models: the gallery is synthetic
(tests/lifecycle_fixtures.py), every order and backup goes through the services.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from facelead.config import Settings
from facelead.domain.gallery import normalise_order
from facelead.errors import ConfigurationError, ConflictError, PermissionDenied
from facelead.services import identity as identity_service
from facelead.services.audit import verify_log
from facelead.services.backup import MANIFEST, backup, sha_file, verify_backup
from facelead.services.context import Services
from facelead.services.lifecycle import expunge_booking, remove_subject
from facelead.services.restore import restore
from facelead.store import backup as store_backup
from facelead.store.audit_models import AuditEvent
from tests.conftest import Installed, install, make_services
from tests.lifecycle_fixtures import AUDITOR, RECORDS, booked_gallery, cite, index_hits
from tests.test_import import FACELEAD

pytestmark = pytest.mark.postgres

LAYOUT = {"P": {"PB-1": 2, "PB-2": 1}, "Q": {"QB-1": 2}}
AUDIT_APPENDED = {"audit_events", "audit_checkpoints"}  # the restore appends its own events
AUDIT_HEAD = "audit_head"


@pytest.fixture
def new_database(pg_admin_engine: sa.Engine) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty PostgreSQL databases; all are dropped after the test."""
    made: list[str] = []

    def make() -> str:
        name = f"facelead_test_{uuid.uuid4().hex[:16]}"
        with pg_admin_engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        return pg_admin_engine.url.set(database=name).render_as_string(hide_password=False)

    yield make
    with pg_admin_engine.connect() as conn:
        for name in made:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order: what "identical" means here."""
    engine = sa.create_engine(url)
    try:
        meta = sa.MetaData()
        meta.reflect(engine)
        with engine.connect() as conn:
            return {
                name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
                for name, t in sorted(meta.tables.items())
            }
    finally:
        engine.dispose()


def home_files(home: Path, areas: tuple[str, ...] = ("images", "probes")) -> dict[str, str]:
    return {
        p.relative_to(home).as_posix(): sha_file(p)
        for area in areas
        for p in sorted((home / area).rglob("*"))
        if p.is_file()
    }


def assert_keys_restored(home: Path, backup: Path) -> None:
    """Every key of the backup, byte for byte (a key made since, e.g. to sign, may stay)."""
    keys = home_files(backup, ("keys",))
    assert keys and home_files(home, ("keys",)).items() >= keys.items()


def assert_restored(restored: dict[str, list[Any]], original: dict[str, list[Any]]) -> None:
    """Identical rows; the audit tables hold the original rows, then the restore's own."""
    assert set(restored) == set(original)
    for name, rows in original.items():
        if name in AUDIT_APPENDED:
            assert restored[name][: len(rows)] == rows, name
        elif name != AUDIT_HEAD:
            assert restored[name] == rows, name
    assert len(restored["audit_events"]) == len(original["audit_events"]) + 2


def _world(home: Path, url: str) -> tuple[Installed, dict[str, Any]]:
    """Installed deployment: users, a gallery, a past search citing a photo, one expungement."""
    installed = install(home, url)
    installed.add("rita", "records")
    services = installed.services
    photos = booked_gallery(services, LAYOUT)
    cite(services, [photos["PB-1"][0].photo_id, photos["QB-1"][0].photo_id])
    expunge_booking(services, RECORDS, "PB-1", "LASC-EXP-1")
    return installed, photos


def _last_event(services: Services) -> AuditEvent:
    with services.db.session() as session:
        event = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
        assert event is not None
        return event


def test_replace_and_fresh_restore_give_identical_rows_files_and_search(
    new_database: Callable[[], str], pg_admin_engine: sa.Engine, tmp_path: Path
) -> None:
    pg_admin = pg_admin_engine
    url, home, out = new_database(), tmp_path / "home", tmp_path / "backup"
    installed, photos = _world(home, url)
    services = installed.services
    queries = [photos[b][0].vector for b in ("PB-2", "QB-1")]
    hits = [index_hits(services, q) for q in queries]

    report = backup(services, installed.admin, out)
    assert (report.database, report.photos, report.probes) == ("postgresql", 3, 1)
    assert verify_backup(out) == []
    assert {p.name for p in out.iterdir()} == {MANIFEST, "facelead.dump", "images", "probes",
                                               "keys"}  # fmt: skip
    at_backup, files = table_rows(url), home_files(home)
    assert _last_event(services).action == "system.backup"  # in the dump: audited before it

    booked_gallery(services, {"R": {"RB-1": 1}}, seed=3)  # the deployment moves on
    remove_subject(services, RECORDS, normalise_order("seal", "Q", "LASC-SEAL-2"))
    installed.add("newcomer", "examiner")
    assert table_rows(url) != at_backup and home_files(home) != files
    settings = services.settings

    with pytest.raises(PermissionDenied):  # the records bureau cannot replace a deployment
        restore(settings, out, actor=RECORDS, replace=True)
    with pytest.raises(ConflictError) as busy:
        restore(Settings(home=tmp_path / "empty-home", database_url=url), out)
    assert busy.value.code == "database_not_empty"
    services.db.dispose()

    replaced = restore(settings, out, actor=installed.admin, replace=True)
    assert replaced.replaced and replaced.audit_intact
    assert_restored(table_rows(url), at_backup)
    assert home_files(home) == files  # images enrolled after the backup are gone too
    assert_keys_restored(home, out)
    back = make_services(home, url)
    assert [index_hits(back, q) for q in queries] == hits
    event = _last_event(back)
    assert (event.action, event.actor, event.role) == ("system.restore", "admin", "admin")
    assert event.details["replaced_audit_head"][0] > report.audit_events
    booked_gallery(back, {"S": {"SB-1": 1}}, seed=5)  # sequences restored: new ids are free
    back.db.dispose()

    with pg_admin.connect() as conn:  # the database is lost: restore onto a new machine
        conn.execute(sa.text(f'DROP DATABASE "{sa.make_url(url).database}" WITH (FORCE)'))
    fresh_url, fresh_home = new_database(), tmp_path / "new-machine"
    fresh = restore(Settings(home=fresh_home, database_url=fresh_url), out)
    assert not fresh.replaced and fresh.audit_intact
    assert_restored(table_rows(fresh_url), at_backup)
    assert home_files(fresh_home) == files
    assert_keys_restored(fresh_home, out)
    again = make_services(fresh_home, fresh_url)
    assert [index_hits(again, q) for q in queries] == hits
    assert _last_event(again).actor == "system-restore"
    assert verify_log(again, AUDITOR).ok
    again.db.dispose()


def test_a_bad_backup_is_refused_before_anything_changes(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    url, home, out = new_database(), tmp_path / "home", tmp_path / "backup"
    installed, _ = _world(home, url)
    backup(installed.services, installed.admin, out)
    image = next(p for p in sorted((out / "images").rglob("*")) if p.is_file())
    image.write_bytes(b"tampered")
    assert verify_backup(out) == [f"altered {image.relative_to(out).as_posix()}"]
    before, files = table_rows(url), home_files(home)
    with pytest.raises(ConflictError) as refused:
        restore(installed.services.settings, out, actor=installed.admin, replace=True)
    assert refused.value.code == "backup_inconsistent"
    after = table_rows(url)
    assert after["photos"] == before["photos"] and home_files(home) == files
    event = _last_event(installed.services)
    assert (event.action, event.outcome) == ("system.restore", "refused:backup_inconsistent")

    dump = out / "facelead.dump"  # a truncated dump whose manifest was "fixed" to match
    dump.write_bytes(dump.read_bytes()[:200])
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["files"]["facelead.dump"] = sha_file(dump)
    manifest["files"][image.relative_to(out).as_posix()] = sha_file(image)
    (out / MANIFEST).write_text(json.dumps(manifest))
    [problem] = verify_backup(out)
    assert problem.startswith("facelead.dump is not a readable pg_dump archive")
    installed.services.db.dispose()


def test_connection_parameters_travel_in_the_environment() -> None:
    url = "postgresql+psycopg://facelead:s3cret%2Fpw@db.example:6543/gallery?sslmode=require"
    env = store_backup.pg_environment(url, base={"PATH": "/usr/bin", "PGPASSWORD": "stale"})
    assert {k: v for k, v in env.items() if k.startswith("PG")} == {
        "PGHOST": "db.example", "PGPORT": "6543", "PGUSER": "facelead",
        "PGPASSWORD": "s3cret/pw", "PGDATABASE": "gallery", "PGSSLMODE": "require",
    }  # fmt: skip
    argv = store_backup.pg_command("pg_restore", "--dbname=", "--clean", "x.dump")
    assert argv[0].endswith("/pg_restore") and "--no-password" in argv
    assert not [a for a in argv if any(s in a for s in ("s3cret", "db.example", "gallery"))]


def test_missing_tools_are_a_configuration_error(
    new_database: Callable[[], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = install(tmp_path / "home", new_database())
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without the PostgreSQL client
    monkeypatch.setattr(store_backup, "FALLBACK_BIN", str(tmp_path))
    with pytest.raises(ConfigurationError) as missing:
        backup(installed.services, installed.admin, tmp_path / "backup")
    assert missing.value.code == "pg_tools_missing"
    assert not (tmp_path / "backup").exists()
    event = _last_event(installed.services)
    assert (event.action, event.outcome) == ("system.backup", "refused:pg_tools_missing")
    installed.services.db.dispose()


def _cli(
    home: Path, url: str, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELEAD_HOME": str(home), "FACELEAD_DATABASE_URL": url}
    env.pop("FACELEAD_TOKEN", None)
    if token:
        env["FACELEAD_TOKEN"] = token
    return subprocess.run(
        [str(FACELEAD), *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_backup_and_restore(new_database: Callable[[], str], tmp_path: Path) -> None:
    url, home, out = new_database(), tmp_path / "home", tmp_path / "backup"
    installed, _ = _world(home, url)
    services = installed.services
    admin = identity_service.issue_token(services, installed.admin, "admin", days=1).token
    rita = identity_service.issue_token(services, installed.admin, "rita", days=1).token
    denied = _cli(home, url, "backup", str(out), token=rita)
    assert denied.returncode == 2 and "forbidden" in denied.stderr
    made = _cli(home, url, "backup", str(out), token=admin)
    assert made.returncode == 0, made.stderr
    assert "postgresql database, 3 photos, 1 probes" in made.stdout
    at_backup = table_rows(url)
    services.db.dispose()

    fresh_url, fresh_home = new_database(), tmp_path / "restored"
    restored = _cli(fresh_home, fresh_url, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert "audit chain of" in restored.stdout and "verified" in restored.stdout
    assert_restored(table_rows(fresh_url), at_backup)
    again = _cli(fresh_home, fresh_url, "restore", str(out))
    assert again.returncode == 2 and "home_not_empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    replace = _cli(fresh_home, fresh_url, "restore", "--replace", str(out), token=rita)
    assert replace.returncode == 2 and "forbidden" in replace.stderr
