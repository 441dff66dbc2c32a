"""``facelead restore``: a backup back into service, checked before and after.

Before anything is touched, the backup is checked (``verify_backup``): every
file's hash against the manifest; for SQLite, every image the copied
database refers to is in the backup; for PostgreSQL, the dump is a readable
``pg_dump`` archive and its image counts match. After the copy: every image
the restored database refers to is in place, the schema is upgraded if the
code is newer, and the audit chain verifies with the restored keys. The
restore then records itself in the restored log (``system.restore``), with
the manifest's hash, so the log says where its history came from.

Targets:

- **Empty** (a new machine): no SQLite database file, or a PostgreSQL
  database without tables, and empty image, probe and key folders. Nobody
  can log in to an empty deployment, so no user is asked for: access to the
  server and to the backup is the authority, and the event is written by
  ``system-restore``.
- **A live PostgreSQL deployment** (``replace``): by an admin of that
  deployment, authorised and audited there (``system.restore``) before its
  database is replaced: ``pg_restore --clean --if-exists`` in one
  transaction. The image and probe folders are made to match the backup
  exactly, keys are overwritten, and the event in the restored log names the
  admin and the audit head (seq, hash) of the log that was replaced. Records
  sealed or expunged after the backup was taken come back with it: re-apply
  the orders since the backup date (``facelead gallery seal --sync``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facelead.audit.log import current_head
from facelead.config import Settings
from facelead.domain.access import Action, Actor, Role
from facelead.errors import ConfigurationError, ConflictError, InputError, PermissionDenied
from facelead.services.audit import verify_log
from facelead.services.backup import (
    DATABASE_FILES,
    MANIFEST,
    database_of,
    read_manifest,
    sha_file,
    verify_backup,
)
from facelead.services.context import Services
from facelead.services.lifecycle import rebuild_indexes
from facelead.services.uow import perform
from facelead.store import backup as repo
from facelead.store.db import Database

RESTORE_ACTOR = Actor(
    None, "system-restore", frozenset({Role.AUDITOR, Role.ADMIN}), "SYSTEM", interface="system"
)
AREAS = ("images", "probes", "keys")


@dataclass(frozen=True)
class RestoreReport:
    home: Path
    database: str
    audit_events: int
    audit_intact: bool
    replaced: bool


def restore(
    settings: Settings, folder: Path, *, actor: Actor | None = None, replace: bool = False
) -> RestoreReport:
    """Restore ``folder`` onto an empty target, or (``replace``, PostgreSQL) over a live one."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise InputError(f"{folder} is not a FaceLead backup", code="not_a_backup")
    kind = repo.database_kind(settings.effective_database_url)
    if database_of(manifest) != kind:
        raise ConfigurationError(
            f"this is a {database_of(manifest)} backup and FACELEAD_DATABASE_URL names a {kind} "
            "database",
            code="restore_database_mismatch",
        )
    replaced: tuple[int, str] | None = None
    if replace:
        replaced = _authorise_replace(settings, folder, manifest, actor)
    else:
        _require_empty_target(settings, kind)
        _verify(folder)
    _restore_database(settings, folder, kind)
    _place_files(folder, settings, manifest, exact=replace)
    services = Services(settings)
    try:
        services.initialise()
        _check_references(services)
        report = verify_log(services, RESTORE_ACTOR)
        if not report.ok:
            raise ConflictError("the restored audit chain does not verify", code="audit_broken")
        _record(services, folder, manifest, actor if replace else None, replaced)
        rebuild_indexes(services)
    finally:
        services.db.dispose()
    return RestoreReport(
        settings.resolved_home, kind, report.events_checked, report.ok, replaced is not None
    )


def _verify(folder: Path) -> None:
    problems = verify_backup(folder)
    if problems:
        raise ConflictError(
            f"backup failed its consistency check: {'; '.join(problems[:5])}",
            code="backup_inconsistent",
            problems=problems[:50],
        )


def _require_empty_target(settings: Settings, kind: str) -> None:
    home = settings.resolved_home
    folders = [home / area for area in AREAS]
    target = repo.sqlite_file(settings.effective_database_url)
    if (target is not None and target.exists()) or any(
        d.is_dir() and any(d.iterdir()) for d in folders
    ):
        raise ConflictError(
            f"{home} is not empty: restore only onto a new home", code="home_not_empty"
        )
    if kind == repo.POSTGRESQL:
        db = Database(settings.effective_database_url)
        try:
            full = repo.has_tables(db.engine)
        finally:
            db.dispose()
        if full:
            raise ConflictError(
                "the database already holds tables: restore into an empty database, or "
                "replace a deployment with --replace as its admin",
                code="database_not_empty",
            )


def _authorise_replace(
    settings: Settings, folder: Path, manifest: dict[str, Any], actor: Actor | None
) -> tuple[int, str]:
    """An admin of the live deployment, audited in its log; returns the head being replaced."""
    if repo.database_kind(settings.effective_database_url) != repo.POSTGRESQL:
        raise ConfigurationError(
            "replace works on PostgreSQL only: restore a SQLite backup onto a new FACELEAD_HOME",
            code="replace_needs_postgresql",
        )
    if actor is None:
        raise PermissionDenied("replacing a deployment needs one of its admins", code="forbidden")
    current = Services(settings)
    try:
        with perform(current, actor, Action.SYSTEM_RESTORE, object_type="restore") as scope:
            scope.details.update(
                backup=str(folder.resolve()),
                backup_created_at=manifest.get("created_at"),
                replace=True,
            )
            _verify(folder)  # a bad backup is refused, and audited, before the database goes
            head = current_head(scope.session)
            scope.details["replaced_audit_seq"] = head[0]
    finally:
        current.db.dispose()
    return head


def _restore_database(settings: Settings, folder: Path, kind: str) -> None:
    source = folder / DATABASE_FILES[kind]
    if kind == repo.POSTGRESQL:
        repo.pg_restore(settings.effective_database_url, source)
        return
    target = repo.sqlite_file(settings.effective_database_url)
    assert target is not None  # database_kind said so
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _place_files(folder: Path, settings: Settings, manifest: dict[str, Any], exact: bool) -> None:
    """Copy the areas in; ``exact`` also deletes images and probes the backup does not hold."""
    home = settings.resolved_home
    listed = set(manifest["files"])
    for area in AREAS:
        if (folder / area).is_dir():
            shutil.copytree(folder / area, home / area, dirs_exist_ok=True)
        if exact and area != "keys" and (home / area).is_dir():
            for path in sorted(p for p in (home / area).rglob("*") if p.is_file()):
                if path.relative_to(home).as_posix() not in listed:
                    path.unlink()


def _check_references(services: Services) -> None:
    with services.db.engine.connect() as conn:
        facts = repo.facts_of(conn)
    missing = [sha for sha in facts.photo_hashes if not services.images.exists(sha)]
    missing += [sha for sha in facts.probe_hashes if not services.probes.exists(sha)]
    if missing:
        raise ConflictError(
            f"the restored database refers to {len(missing)} images that were not restored",
            code="backup_inconsistent",
            missing=missing[:50],
        )
    for store, hashes in (
        (services.images, facts.photo_hashes),
        (services.probes, facts.probe_hashes),
    ):
        if hashes:  # one read proves the image key opens what the backup sealed
            store.get(hashes[0])


def _record(
    services: Services,
    folder: Path,
    manifest: dict[str, Any],
    actor: Actor | None,
    replaced: tuple[int, str] | None,
) -> None:
    """The restore's own event in the restored log; the admin keeps no user id from elsewhere."""
    who = RESTORE_ACTOR
    if actor is not None:  # ids of the replaced deployment mean nothing in the restored one
        who = Actor(
            None,
            actor.username,
            frozenset({Role.ADMIN}),
            actor.agency,
            client_address=actor.client_address,
            interface=actor.interface,
        )
    with perform(services, who, Action.SYSTEM_RESTORE, object_type="restore") as scope:
        scope.details.update(
            backup_created_at=manifest.get("created_at"),
            backup_audit_events=manifest.get("audit_events"),
            manifest_sha256=sha_file(folder / MANIFEST),
            database=database_of(manifest),
            replaced_audit_head=list(replaced) if replaced else None,
        )
