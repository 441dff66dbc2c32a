"""``facelead backup`` and ``facelead restore``: database, image stores and keys, checked.

The backup is a folder: ``facelead.db`` (SQLite's online backup API, so a
running system keeps writing), ``images/`` and ``probes/`` holding exactly
the files the copied database refers to, ``keys/``, and ``MANIFEST.json``
with the SHA-256 of every file. The backup is audited *before* the copy, so
the copy contains its own audit event.

PostgreSQL deployments back the database up with ``pg_dump -Fc`` and restore
it with ``pg_restore`` (docs/lifecycle.md); ``backup`` refuses them rather than
pretend, because only the database server can take a consistent snapshot.

Restore goes onto an empty FACELEAD_HOME only: it checks the manifest (every
file's hash, every referenced image present), copies, upgrades the schema if
the code is newer, and verifies the audit chain with the restored keys.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facelead.config import Settings
from facelead.domain.access import Action, Actor, Role
from facelead.errors import ConfigurationError, ConflictError, InputError
from facelead.services.audit import verify_log
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store import lifecycle as repo
from facelead.store.images import ImageStore
from facelead.store.models import utcnow

MANIFEST = "MANIFEST.json"
DB_FILE = "facelead.db"
FORMAT = 1
RESTORE_AUDITOR = Actor(None, "system-restore", frozenset({Role.AUDITOR}), "SYSTEM", None)


def _sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BackupReport:
    path: Path
    photos: int
    probes: int
    keys: int
    audit_events: int


def backup(services: Services, actor: Actor, out: Path) -> BackupReport:
    """Copy database, image stores and keys into the empty folder ``out``."""
    source = repo.sqlite_file(services.settings.effective_database_url)
    if source is None:
        raise ConfigurationError(
            "the database is not SQLite: back it up with pg_dump (docs/lifecycle.md)",
            code="backup_needs_pg_dump",
        )
    if out.exists() and any(out.iterdir()):
        raise ConflictError(f"{out} is not empty", code="backup_target_not_empty")
    with perform(services, actor, Action.GALLERY_PURGE, object_type="backup") as scope:
        scope.details.update(target=str(out.resolve()))
    out.mkdir(parents=True, exist_ok=True)
    repo.sqlite_backup(source, out / DB_FILE)
    facts = repo.backup_facts(out / DB_FILE)
    photos, probes = facts.photo_hashes, facts.probe_hashes
    files: dict[str, str] = {DB_FILE: _sha_file(out / DB_FILE)}
    files.update(_copy_images(services.images, ImageStore(out / "images"), photos, "images"))
    files.update(_copy_images(services.probes, ImageStore(out / "probes"), probes, "probes"))
    keys = _copy_keys(services.settings.keys_dir, out / "keys")
    files.update(keys)
    seq = facts.audit_seq
    manifest = {
        "format": FORMAT,
        "created_at": utcnow().isoformat(),
        "audit_events": seq,
        "photos": len(photos),
        "probes": len(probes),
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return BackupReport(out, len(photos), len(probes), len(keys), seq)


def _copy_images(
    src: ImageStore, dst: ImageStore, hashes: list[str], prefix: str
) -> dict[str, str]:
    """Copy and re-hash each file: a bad or missing one fails the backup now, not at restore."""
    copied = {}
    for sha in hashes:
        data = src.path(sha).read_bytes() if src.exists(sha) else None
        if data is None or hashlib.sha256(data).hexdigest() != sha:
            raise ConflictError(
                f"{prefix} file {sha} is missing or altered", code="backup_inconsistent", sha=sha
            )
        dst.put(data)
        copied[str(dst.path(sha).relative_to(dst.root.parent))] = sha
    return copied


def _copy_keys(src: Path, dst: Path) -> dict[str, str]:
    dst.mkdir(parents=True, exist_ok=True)
    out = {}
    for path in sorted(p for p in src.iterdir() if p.is_file()) if src.is_dir() else []:
        shutil.copy2(path, dst / path.name)
        out[f"keys/{path.name}"] = _sha_file(dst / path.name)
    return out


def verify_backup(folder: Path) -> list[str]:
    """Problems found in a backup folder; empty means consistent."""
    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        return [f"manifest unreadable: {exc}"]
    problems = []
    for rel, digest in sorted(manifest.get("files", {}).items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"missing {rel}")
        elif _sha_file(path) != digest:
            problems.append(f"altered {rel}")
    if problems or manifest.get("format") != FORMAT:
        return problems or ["unknown backup format"]
    facts = repo.backup_facts(folder / DB_FILE)
    listed = set(manifest["files"].values())
    wanted = facts.photo_hashes + facts.probe_hashes
    problems += [
        f"image {sha} referenced but not in the backup" for sha in wanted if sha not in listed
    ]
    return problems


@dataclass(frozen=True)
class RestoreReport:
    home: Path
    audit_events: int
    audit_intact: bool


def restore(settings: Settings, folder: Path) -> RestoreReport:
    """Restore a backup folder onto an empty FACELEAD_HOME and verify the audit chain."""
    target = repo.sqlite_file(settings.effective_database_url)
    if target is None:
        raise ConfigurationError(
            "restore writes a SQLite database; for PostgreSQL use pg_restore (docs/lifecycle.md)",
            code="restore_needs_pg_restore",
        )
    home = settings.resolved_home
    folders = (home / "images", home / "probes", home / "keys")
    if target.exists() or any(d.is_dir() and any(d.iterdir()) for d in folders):
        raise ConflictError(
            f"{home} is not empty: restore only onto a new home", code="home_not_empty"
        )
    if not (folder / MANIFEST).is_file():
        raise InputError(f"{folder} is not a FaceLead backup", code="not_a_backup")
    problems = verify_backup(folder)
    if problems:
        raise ConflictError(
            f"backup failed its consistency check: {'; '.join(problems[:5])}",
            code="backup_inconsistent",
            problems=problems[:50],
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(folder / DB_FILE, target)
    for name, dest in zip(("images", "probes", "keys"), folders, strict=True):
        if (folder / name).is_dir():
            shutil.copytree(folder / name, dest, dirs_exist_ok=True)
    services = Services(settings)
    services.initialise()
    report = verify_log(services, RESTORE_AUDITOR)
    if not report.ok:
        raise ConflictError("the restored audit chain does not verify", code="audit_broken")
    return RestoreReport(home, report.events_checked, report.ok)
