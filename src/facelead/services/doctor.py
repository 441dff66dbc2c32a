"""``facelead doctor``: do the database, the image stores, the index and the audit chain agree?

Every action is one transaction, but the image files and the saved index
live outside it: a crash between a file write and its commit leaves an
orphan file, a crash between a seal's commit and its file deletion leaves
the bytes of a removed record, and an index file can lag the database.
None of these lose data, but an auditor must be able to see that, and the
records bureau must be able to clean up. The doctor reports:

- errors (something is lost or forged; never repaired automatically):
  ``photo_without_file``, ``probe_without_file`` (a search that retention has
  not released still needs its probe), ``template_without_photo``, ``audit_chain``;
- warnings (safe leftovers): ``orphan_file`` (bytes no record references,
  including those of removed records), ``temp_file`` (a write that never
  finished, in an image store or the index folder), ``foreign_file`` (not
  named by a SHA-256: reported only),
  ``stale_index`` (a saved index at another generation than the database) and
  ``unencrypted_file`` (an image written in plaintext before encryption at rest
  was turned on, or restored from a backup: readable, but not protected) and
  ``retired_key_file`` (sealed under a key of the keyring other than the current
  one: an image key rotation is unfinished, ``facelead keys rotate-image-key``);
- and the error ``unknown_key_file``: a file sealed under a key the keyring does
  not hold (a key retired too early, or a file from another deployment), which
  nothing can open.

``repair`` deletes orphan and temporary files older than a grace period (a
file younger than that may belong to an enrolment or search that has not
committed yet), rebuilds stale indexes and seals unencrypted files in place
(atomically, after checking their SHA-256: a file that fails is reported as the
error ``altered_file``, never sealed). Both modes are audited, as the
gallery maintenance action of the records bureau and administrators.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from facelead.audit import log
from facelead.audit.chain import verify_chain
from facelead.domain.access import Action, Actor
from facelead.index.flat import FlatIndex
from facelead.services.audit import attach, trusted_public_key
from facelead.services.context import Services
from facelead.services.lifecycle import rebuild_indexes
from facelead.services.uow import perform
from facelead.store import gallery as gallery_repo
from facelead.store import retention as retention_repo
from facelead.store.case_models import ProbeRecord
from facelead.store.images import ImageIntegrityError, ImageStore
from facelead.store.lifecycle_models import TombstonePhoto
from facelead.store.models import Photo, Template

GRACE = dt.timedelta(minutes=15)
"""Files younger than this may belong to a transaction still in flight: never deleted."""

ERRORS = frozenset(
    {
        "photo_without_file",
        "probe_without_file",
        "template_without_photo",
        "audit_chain",
        "altered_file",
        "unknown_key_file",
    }
)
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str  # a SHA-256, a row id, a model id or a file path relative to the home
    detail: str
    repaired: bool = False

    @property
    def severity(self) -> str:
        return "error" if self.check in ERRORS else "warning"


@dataclass(frozen=True)
class DoctorReport:
    findings: tuple[Finding, ...] = field(default=())
    repair: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        """No errors; warnings are leftovers that cost nothing but space."""
        return not self.errors

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for f in self.findings:
            out[f.check] = out.get(f.check, 0) + 1
        return out


@dataclass(frozen=True)
class _StoreFile:
    path: Path
    sha: str | None  # None: a temporary or foreign file
    age_s: float


def _walk(root: Path) -> Iterator[_StoreFile]:
    """Files of a content-addressed store, oldest first (stable output)."""
    if not root.is_dir():
        return
    now = time.time()
    files = sorted((p for p in root.rglob("*") if p.is_file()), key=lambda p: str(p))
    for path in files:
        sha = path.name if _SHA.fullmatch(path.name) else None
        yield _StoreFile(path, sha, now - path.stat().st_mtime)


def _file_findings(
    services: Services, store: ImageStore, referenced: set[str], what: str
) -> list[tuple[Finding, _StoreFile]]:
    home, root = services.settings.resolved_home, store.root
    found: list[tuple[Finding, _StoreFile]] = []
    for item in _walk(root):
        name = str(item.path.relative_to(home)) if item.path.is_relative_to(home) else str(item)
        if item.sha is None:
            kind = "temp_file" if item.path.name.startswith(".tmp-") else "foreign_file"
            found.append((Finding(kind, name, f"not a {what} file"), item))
        elif item.sha not in referenced:
            found.append((Finding("orphan_file", name, f"no record references this {what}"), item))
        elif item.path != root / item.sha[:2] / item.sha[2:4] / item.sha:
            found.append((Finding("foreign_file", name, "filed under the wrong folder"), item))
        elif store.encrypted and (sealing := _sealing(store, item.sha, name, what)):
            found.append((sealing, item))
    return found


def _sealing(store: ImageStore, sha: str, name: str, what: str) -> Finding | None:
    """A file of an encrypted store not sealed under the current key, and what that means."""
    kid = store.sealed_with(sha)
    if kid is None:
        return Finding("unencrypted_file", name, f"{what} stored in plaintext")
    if kid == store.current_key_id:
        return None
    if store.knows_key(kid):
        detail = f"{what} sealed under retired image key {kid.hex()}: a key rotation is unfinished"
        return Finding("retired_key_file", name, detail)
    try:
        store.get(sha)  # a plaintext image that merely begins with the sealed-file header
    except ImageIntegrityError:
        detail = f"{what} sealed under image key {kid.hex()}, which no key file holds"
        return Finding("unknown_key_file", name, detail)
    return None


def _seal(store: ImageStore, finding: Finding, item: _StoreFile) -> Finding:
    """Encrypt one plaintext file in place; one whose bytes no longer match is an error."""
    assert item.sha is not None  # only content-addressed files are reported unencrypted
    try:
        return replace(finding, repaired=store.seal_in_place(item.sha))
    except ImageIntegrityError as exc:
        return Finding("altered_file", finding.subject, exc.message)


def _live_photos(session: Session) -> list[tuple[int, str]]:
    """Photos of the gallery, not the stubs a seal or expungement keeps for past searches.

    A removed photo that a candidate list cites stays as a blanked row with its
    hash (other cases' records point at it) while its file is deleted: the
    tombstone lists that hash, and such bytes on disk are leftovers, not photos.
    """
    removed = select(TombstonePhoto.image_sha256)
    rows = session.execute(
        select(Photo.id, Photo.image_sha256)
        .where(Photo.image_sha256.not_in(removed))
        .order_by(Photo.id)
    )
    return [(int(pid), str(sha)) for pid, sha in rows]


def _missing_files(services: Services, live: list[tuple[int, str]]) -> list[Finding]:
    return [
        Finding("photo_without_file", sha, f"photo {pid} has no image file")
        for pid, sha in live
        if not services.images.exists(sha)
    ]


def _missing_probes(services: Services, session: Session) -> list[Finding]:
    return [
        Finding("probe_without_file", sha, "a search still needs this probe; its file is missing")
        for sha in sorted(retention_repo.needed_probe_shas(session))
        if not services.probes.exists(sha)
    ]


def _index_temp_files(services: Services) -> list[tuple[Finding, _StoreFile]]:
    """Half-written index files a killed save left (``index/files.atomic_write``): at
    10M templates each can be gigabytes, and no later save removes another's."""
    home, root = services.settings.resolved_home, services.settings.index_dir
    return [
        (Finding("temp_file", str(item.path.relative_to(home)), "unfinished index write"), item)
        for item in _walk(root)
        if item.path.name.startswith(".tmp-") and item.path.is_relative_to(home)
    ]


def _orphan_templates(session: Session) -> list[Finding]:
    rows = session.execute(
        select(Template.id, Template.photo_id)
        .where(Template.photo_id.not_in(select(Photo.id)))
        .order_by(Template.id)
    )
    return [
        Finding("template_without_photo", str(tid), f"template {tid} names missing photo {pid}")
        for tid, pid in rows
    ]


def _stale_indexes(services: Services, session: Session) -> list[Finding]:
    index_dir = services.settings.index_dir
    saved = {p.name for p in index_dir.iterdir() if p.is_dir()} if index_dir.is_dir() else set()
    models = set(session.scalars(select(Template.model_id).distinct())) | saved
    found = []
    for model_id in sorted(models):
        want = gallery_repo.index_generation(session, model_id)
        try:
            have: int | None = int(
                FlatIndex.read_meta(index_dir / model_id, model_id)["generation"]
            )
        except (OSError, ValueError, KeyError):
            have = None
        if have != want:
            detail = f"saved index at generation {have}, database at {want}"
            found.append(Finding("stale_index", model_id, detail))
    return found


def _audit_chain(services: Services, session: Session) -> list[Finding]:
    key = trusted_public_key(services)
    report = verify_chain(
        log.iter_records(session),
        log.load_checkpoints(session),
        key,
        expected_head=log.current_head(session),
    )
    return [
        Finding("audit_chain", str(i.seq), f"{i.kind.value}: {i.message}") for i in report.issues
    ]


def _remove(item: _StoreFile, grace: dt.timedelta) -> bool:
    """Delete a leftover still older than the grace period, judged again now: a search
    or enrolment that reuses an orphan renews its time (``ImageStore.put``)."""
    try:
        age = time.time() - item.path.stat().st_mtime
        if min(age, item.age_s) < grace.total_seconds():
            return False
        item.path.unlink()
    except FileNotFoundError:
        return False
    return True


def diagnose(
    services: Services, actor: Actor, *, repair: bool = False, grace: dt.timedelta = GRACE
) -> DoctorReport:
    """Check (and with ``repair``, fix what is safe); one audited action either way."""
    attach(services)
    with perform(services, actor, Action.GALLERY_PURGE, object_type="deployment") as scope:
        session = scope.session
        live = _live_photos(session)
        findings = [
            *_missing_files(services, live),
            *_missing_probes(services, session),
            *_orphan_templates(session),
        ]
        stale = _stale_indexes(services, session)
        chain = _audit_chain(services, session)
        photos = {sha for _, sha in live}
        probes = set(session.scalars(select(ProbeRecord.image_sha256)))
        files = [
            (store, *found)
            for store, refs, what in (
                (services.images, photos, "gallery image"),
                (services.probes, probes, "probe image"),
            )
            for found in _file_findings(services, store, refs, what)
        ] + [(services.images, *found) for found in _index_temp_files(services)]
        for store, finding, item in files:
            if repair and finding.check == "unencrypted_file":
                findings.append(_seal(store, finding, item))
                continue
            removable = finding.check in ("orphan_file", "temp_file")
            done = repair and removable and _remove(item, grace)
            findings.append(replace(finding, repaired=done))
        if repair and stale:
            rebuild_indexes(services, [f.subject for f in stale])
        findings += [replace(f, repaired=repair) for f in stale]
        findings += chain
        report = DoctorReport(tuple(findings), repair)
        scope.details.update(
            mode="repair" if repair else "check",
            ok=report.ok,
            findings=report.counts(),
            repaired=sum(f.repaired for f in findings),
        )
    return report
