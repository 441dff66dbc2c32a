"""``facelead backup``: database, image stores and keys, with a hash of every file.

The backup is a folder: the database (``facelead.db``, by SQLite's online
backup API, so a running system keeps writing; or ``facelead.dump``, a
``pg_dump --format=custom`` archive of a PostgreSQL database), ``images/``
and ``probes/`` holding exactly the files that copy of the database refers
to (byte for byte: files sealed with the image key stay sealed), ``keys/``,
and ``MANIFEST.json`` with the SHA-256 of every file and the kind of
database. The backup is audited *before* the copy, so the copy contains its
own audit event.

For PostgreSQL the list of files to copy is read inside the transaction
whose exported snapshot ``pg_dump --snapshot`` then dumps: rows and files
come from one instant even while the system keeps running.

``verify_backup`` is the consistency check that ``restore`` (services.restore)
runs before it touches anything.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facelead.domain.access import Action, Actor
from facelead.errors import ConflictError, FaceLeadError
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store import backup as repo
from facelead.store.images import ImageStore
from facelead.store.models import utcnow

MANIFEST = "MANIFEST.json"
DB_FILE = "facelead.db"
PG_DUMP_FILE = "facelead.dump"
DATABASE_FILES = {repo.SQLITE: DB_FILE, repo.POSTGRESQL: PG_DUMP_FILE}
FORMAT = 1  # a manifest without "database" is a SQLite backup (the first backups had no key)


def sha_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BackupReport:
    path: Path
    database: str
    photos: int
    probes: int
    keys: int
    audit_events: int


def backup(services: Services, actor: Actor, out: Path) -> BackupReport:
    """Copy database, image stores and keys into the empty folder ``out`` (admins only)."""
    url = services.settings.effective_database_url
    kind = repo.database_kind(url)
    if out.exists() and any(out.iterdir()):
        raise ConflictError(f"{out} is not empty", code="backup_target_not_empty")
    with perform(services, actor, Action.SYSTEM_BACKUP, object_type="backup") as scope:
        scope.details.update(target=str(out.resolve()), database=kind)
        if kind == repo.POSTGRESQL:  # refused (and audited as such) before anything is written
            repo.pg_tool("pg_dump")
    out.mkdir(parents=True, exist_ok=True)
    db_file = out / DATABASE_FILES[kind]
    if kind == repo.SQLITE:
        source = repo.sqlite_file(url)
        assert source is not None  # database_kind said so
        repo.sqlite_backup(source, db_file)
        facts = repo.backup_facts(db_file)
    else:
        with repo.pg_snapshot(services.db.engine) as (snapshot, facts):
            repo.pg_dump(url, db_file, snapshot)
    files: dict[str, str] = {db_file.name: sha_file(db_file)}
    photos, probes = facts.photo_hashes, facts.probe_hashes
    files.update(_copy_images(services.images, ImageStore(out / "images"), photos, "images"))
    files.update(_copy_images(services.probes, ImageStore(out / "probes"), probes, "probes"))
    keys = _copy_keys(services.settings.keys_dir, out / "keys")
    files.update(keys)
    manifest = {
        "format": FORMAT,
        "database": kind,
        "created_at": utcnow().isoformat(),
        "audit_events": facts.audit_seq,
        "photos": len(photos),
        "probes": len(probes),
        "files": files,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return BackupReport(out, kind, len(photos), len(probes), len(keys), facts.audit_seq)


def _copy_images(
    src: ImageStore, dst: ImageStore, hashes: list[str], prefix: str
) -> dict[str, str]:
    """Copy each file as stored (sealed files stay sealed), after reading it back whole.

    ``get`` checks the seal and the plaintext's SHA-256, so a bad or missing
    file fails the backup now, not at restore. The manifest hashes the bytes
    as stored, which is what the copy in the backup must match.
    """
    copied = {}
    for sha in hashes:
        try:
            src.get(sha)
            raw = src.path(sha).read_bytes()
        except (FaceLeadError, OSError) as exc:
            raise ConflictError(
                f"{prefix} file {sha} is missing or altered", code="backup_inconsistent", sha=sha
            ) from exc
        target = dst.path(sha)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(raw)
        copied[target.relative_to(dst.root.parent).as_posix()] = hashlib.sha256(raw).hexdigest()
    return copied


def _copy_keys(src: Path, dst: Path) -> dict[str, str]:
    dst.mkdir(parents=True, exist_ok=True)
    out = {}
    for path in sorted(p for p in src.iterdir() if p.is_file()) if src.is_dir() else []:
        shutil.copy2(path, dst / path.name)
        out[f"keys/{path.name}"] = sha_file(dst / path.name)
    return out


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The parsed manifest, or None if there is none or it is not JSON."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def database_of(manifest: dict[str, Any]) -> str:
    return str(manifest.get("database", repo.SQLITE))


def verify_backup(folder: Path) -> list[str]:
    """Problems found in a backup folder; empty means consistent. Reads, never writes."""
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"manifest {MANIFEST} missing or unreadable"]
    files: dict[str, str] = manifest.get("files", {})
    problems = []
    for rel, digest in sorted(files.items()):
        path = folder / rel
        if not path.is_file():
            problems.append(f"missing {rel}")
        elif sha_file(path) != digest:
            problems.append(f"altered {rel}")
    kind = database_of(manifest)
    if problems or manifest.get("format") != FORMAT or kind not in DATABASE_FILES:
        return problems or ["unknown backup format"]
    db_file = DATABASE_FILES[kind]
    if db_file not in files:
        return [f"missing {db_file}"]
    if kind == repo.POSTGRESQL:
        return repo.pg_archive_problems(folder / db_file) + _count_problems(manifest)
    facts = repo.backup_facts(folder / db_file)
    wanted = [("images", sha) for sha in facts.photo_hashes]
    wanted += [("probes", sha) for sha in facts.probe_hashes]
    return [
        f"image {sha} referenced but not in the backup"
        for area, sha in wanted
        if ImageStore(folder / area).path(sha).relative_to(folder).as_posix() not in files
    ]


def _count_problems(manifest: dict[str, Any]) -> list[str]:
    """A dump cannot be queried unrestored; the counts taken with it must match the files."""
    files: dict[str, str] = manifest["files"]
    problems = []
    for area, key in (("images/", "photos"), ("probes/", "probes")):
        have = sum(1 for rel in files if rel.startswith(area))
        if have != manifest.get(key):
            problems.append(f"{key}: {have} files listed, {manifest.get(key)} referenced")
    return problems
