"""Backup and restore: an empty home restored from a backup searches and verifies the same."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from facelead.domain.access import Role
from facelead.domain.gallery import normalise_order
from facelead.services.audit import verify_log
from facelead.services.backup import MANIFEST, verify_backup
from facelead.services.context import Services
from facelead.services.gallery import enroll_files
from facelead.services.lifecycle import lookup_removed, remove_subject
from facelead.services.search import _search_gallery, submit_search
from tests.conftest import audit_actor, make_services, provision_token
from tests.test_import import FACELEAD
from tests.test_retention import INVESTIGATOR, RECORDS, REQUEST
from tests.test_seal import AUDITOR

pytestmark = pytest.mark.models


def _cli(home: Path, *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACELEAD_HOME": str(home)}
    env.pop("FACELEAD_TOKEN", None)
    if token:
        env["FACELEAD_TOKEN"] = token
    return subprocess.run(
        [str(FACELEAD), *args], capture_output=True, text=True, env=env, timeout=300
    )


def _results(services: Services, probes: list[Path]) -> list[list[tuple[str, str, float]]]:
    return [
        [
            (c.subject_id, c.photo_sha256, c.score)
            for c in _search_gallery(services, p.read_bytes(), top_k=5).candidates
        ]
        for p in probes
    ]


def test_restore_onto_an_empty_home_searches_and_verifies_the_same(
    meds_dir: Path, tmp_path: Path
) -> None:
    from facelead.services.cases import open_case

    home, copy, out = tmp_path / "home", tmp_path / "restored", tmp_path / "backup"
    token = provision_token(home, "adam", "admin")  # system.backup: admins only
    services = make_services(home)
    list(enroll_files(services, RECORDS, sorted(meds_dir.glob("S00[1-6]-01-t10_01.jpg"))))
    open_case(services, INVESTIGATOR, "BACKUP-1", "robbery")
    probe_paths = [meds_dir / "S001-02-t10_01.jpg", meds_dir / "S006-02-t10_01.jpg"]
    submit_search(services, INVESTIGATOR, "BACKUP-1", probe_paths[0].read_bytes(), REQUEST)
    remove_subject(services, RECORDS, normalise_order("expunge", "S003-01-t10_01", "EXP-9"))
    before = _results(services, probe_paths)

    made = _cli(home, "backup", str(out), token=token)
    assert made.returncode == 0, made.stderr
    assert verify_backup(out) == []
    assert {p.name for p in out.iterdir()} >= {MANIFEST, "facelead.db", "images", "keys"}

    restored = _cli(copy, "restore", str(out))
    assert restored.returncode == 0, restored.stderr
    assert "audit chain of" in restored.stdout
    services_copy = make_services(copy)
    assert _results(services_copy, probe_paths) == before
    assert verify_log(services_copy, audit_actor(Role.AUDITOR)).ok
    assert lookup_removed(services_copy, AUDITOR, "S003-01-t10_01")[0].order_ref == "EXP-9"
    assert verify_backup(out) == []  # reading a backup never changes it

    again = _cli(copy, "restore", str(out))
    assert again.returncode == 2 and "home_not_empty" in again.stderr
    image = next(p for p in (out / "images").rglob("*") if p.is_file())
    image.write_bytes(b"tampered")
    assert verify_backup(out) == [f"altered {image.relative_to(out)}"]
    refused = _cli(tmp_path / "third", "restore", str(out))
    assert refused.returncode == 2 and "backup_inconsistent" in refused.stderr
    assert not (tmp_path / "third" / "facelead.db").exists()
