"""``facelead keys``: rotate the image key, then retire the old one once nothing uses it.

A key that may have leaked, or that policy says has lived long enough, must be
replaceable without taking images offline. Rotation therefore never switches
keys under the files' feet: the old key first goes into the keyring
(``store.image_keys``), so every file stays readable whichever key sealed it;
the new key becomes current; then each file is re-sealed under it, one atomic
replace per file. A run killed at any point leaves files sealed under one key
or the other, both in the keyring, and the record of the rotation in progress
makes the next run continue it (not start another). Only ``retire`` removes
old keys, and only once no stored file is sealed under them.

With ``FACELEAD_IMAGE_KEY`` FaceLead cannot replace the key where it lives, so
the operator supplies the new key (``new_key``, from ``FACELEAD_NEW_IMAGE_KEY``
on the command line), moves every process to it, and runs the rotation once
more to finish; until then the rotation stays open and retiring is refused.

Both actions are ``system.key_rotate`` (admins only) and write one audit event
with the counts. Keys never enter the database or the audit log: only their
ids (8 bytes of a one-way hash) do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facelead.domain.access import Action, Actor
from facelead.errors import (
    ConfigurationError,
    ConflictError,
    FaceLeadError,
    InputError,
    NotFoundError,
)
from facelead.services.context import Services
from facelead.services.uow import perform
from facelead.store import image_keys
from facelead.store.image_keys import ImageKeyring
from facelead.store.images import ImageStore, key_id, parse_image_key

MAX_FAILURES_LISTED = 50


@dataclass(frozen=True)
class RotationReport:
    key_id: str  # hex id of the key every file is being re-sealed under
    resumed: bool  # continued an unfinished rotation instead of starting one
    resealed: int
    unchanged: int  # already sealed under the new key
    remaining: int  # not yet under it: the --limit was reached, or the file failed
    failed: tuple[str, ...] = ()  # "images/<sha>: <code>" of files that could not be opened
    retired: tuple[str, ...] = ()  # ids of the keys kept in the keyring until retired
    awaiting_environment: bool = False  # FACELEAD_IMAGE_KEY still holds another key

    @property
    def complete(self) -> bool:
        """Every file is sealed under the new key and the new key is the current one."""
        return self.remaining == 0 and not self.awaiting_environment


@dataclass(frozen=True)
class RetireReport:
    removed: tuple[str, ...]  # ids of the keyring entries removed
    files: int  # stored files checked


@dataclass
class _Tally:
    resealed: int = 0
    unchanged: int = 0
    remaining: int = 0
    failed: list[str] = field(default_factory=list)


def rotate_image_key(
    services: Services, actor: Actor, new_key: str | None = None, *, limit: int | None = None
) -> RotationReport:
    """Rotate to a new image key, or continue the rotation a crash or ``limit`` left open.

    ``new_key``: the key to rotate to (hex or base64), required when the current
    key comes from ``FACELEAD_IMAGE_KEY``; otherwise a fresh random key is made.
    ``limit``: re-seal at most this many files in this run.
    """
    keys_dir = services.settings.keys_dir
    with (
        perform(services, actor, Action.SYSTEM_KEY_ROTATE, object_type="image_key") as scope,
        image_keys.rotation_lock(keys_dir),
    ):
        if limit is not None and limit < 1:
            raise InputError("--limit must be at least 1", code="invalid_limit", limit=limit)
        keyring = services.image_keyring
        target, resumed = _target_key(keyring, new_key)
        tally = _reseal_all(services, target, limit)
        current = keyring.current()
        report = RotationReport(
            key_id=key_id(target).hex(),
            resumed=resumed,
            resealed=tally.resealed,
            unchanged=tally.unchanged,
            remaining=tally.remaining,
            failed=tuple(tally.failed[:MAX_FAILURES_LISTED]),
            retired=tuple(sorted(k.hex() for k in keyring.known() if k != key_id(target))),
            awaiting_environment=current != target,
        )
        scope.object_id = report.key_id
        scope.details.update(
            mode="rotate",
            resumed=resumed,
            resealed=report.resealed,
            unchanged=report.unchanged,
            remaining=report.remaining,
            failed=len(tally.failed),
            retired_keys=list(report.retired),
            awaiting_environment=report.awaiting_environment,
        )
    if report.complete:  # on the record (committed): the rotation is over
        try:
            with image_keys.rotation_lock(keys_dir):
                image_keys.clear_rotation(keys_dir, key_id(target))
        except ConflictError:
            pass  # another run holds the folder; it continues this rotation and ends it
    return report


def _target_key(keyring: ImageKeyring, new_key: str | None) -> tuple[bytes, bool]:
    """The key to re-seal under, with the keyring prepared so every file stays readable.

    Order matters for a crash between any two steps: the old key is in the
    keyring before the new one can seal anything, the new key is on disk
    before the rotation record names it, and the record exists before the
    key file is switched, so a rerun always finds what it needs.
    """
    keys_dir = keyring.keys_dir
    pending = image_keys.read_rotation(keys_dir)
    if pending is not None:
        if new_key is not None and key_id(parse_image_key(new_key)) != pending:
            raise ConflictError(
                f"a rotation to image key {pending.hex()} is unfinished: finish it first "
                "(run again without FACELEAD_NEW_IMAGE_KEY)",
                code="image_key_rotation_pending",
            )
        target = keyring.known().get(pending)
        if target is None:
            raise ConfigurationError(
                f"the key of the unfinished rotation ({pending.hex()}) is in no key file; "
                "restore keys/ from a backup",
                code="image_key_missing",
            )
        resumed = True
    else:
        target = _new_key(keyring, new_key)
        old = keyring.current()
        image_keys.write_key_file(image_keys.entry_path(keys_dir, key_id(old)), old)
        image_keys.write_key_file(image_keys.entry_path(keys_dir, key_id(target)), target)
        image_keys.write_rotation(keys_dir, key_id(old), key_id(target))
        resumed = False
    if not keyring.from_environment and keyring.current() != target:
        image_keys.install_current_key(keys_dir, target)
    return target, resumed


def _new_key(keyring: ImageKeyring, new_key: str | None) -> bytes:
    if new_key is None:
        if keyring.from_environment:
            raise InputError(
                "the image key comes from FACELEAD_IMAGE_KEY, which FaceLead cannot change: "
                "generate a key (openssl rand -base64 32) and pass it in FACELEAD_NEW_IMAGE_KEY",
                code="image_key_new_missing",
            )
        return AESGCM.generate_key(bit_length=256)
    key = parse_image_key(new_key)
    if key_id(key) in keyring.known():
        raise InputError(
            "the new image key is already in the keyring: rotate to a key never used before",
            code="image_key_reused",
        )
    return key


def _reseal_all(services: Services, target: bytes, limit: int | None) -> _Tally:
    """Re-seal every stored file not yet under ``target``; one failure never stops the rest."""
    tally = _Tally()
    target_id = key_id(target)
    for area, store in (("images", services.images), ("probes", services.probes)):
        for sha in store.addresses():
            try:
                if store.sealed_with(sha) == target_id:
                    tally.unchanged += 1
                elif limit is not None and tally.resealed >= limit:
                    tally.remaining += 1
                elif store.reseal(sha, target):
                    tally.resealed += 1
            except (FileNotFoundError, NotFoundError):
                continue  # purged while we walked: nothing left to protect
            except FaceLeadError as exc:  # altered, or sealed under a key nobody holds
                tally.remaining += 1
                tally.failed.append(f"{area}/{sha}: {exc.code}")
    return tally


def _key_usage(stores: list[ImageStore]) -> dict[bytes | None, int]:
    """How many stored files each key id seals (None: plaintext files)."""
    usage: dict[bytes | None, int] = {}
    for store in stores:
        for sha in store.addresses():
            try:
                kid = store.sealed_with(sha)
            except FileNotFoundError:
                continue
            usage[kid] = usage.get(kid, 0) + 1
    return usage


def retire_image_keys(services: Services, actor: Actor) -> RetireReport:
    """Remove every keyring entry no stored file needs; refused while any file does."""
    keys_dir = services.settings.keys_dir
    with (
        perform(services, actor, Action.SYSTEM_KEY_ROTATE, object_type="image_key") as scope,
        image_keys.rotation_lock(keys_dir),
    ):
        scope.details["mode"] = "retire"
        keyring = services.image_keyring
        pending = image_keys.read_rotation(keys_dir)
        if pending is not None:
            raise ConflictError(
                f"the rotation to image key {pending.hex()} is unfinished: run "
                "`facelead keys rotate-image-key` (after setting FACELEAD_IMAGE_KEY to the new "
                "key, when the key comes from the environment) until it reports complete",
                code="image_key_rotation_incomplete",
            )
        current = key_id(keyring.current())
        usage = _key_usage([services.images, services.probes])
        entries = image_keys.read_entries(keys_dir)
        used = {kid.hex(): usage[kid] for kid in entries if kid != current and usage.get(kid)}
        scope.details["files"] = sum(usage.values())
        if used:
            raise ConflictError(
                f"{sum(used.values())} stored files are still sealed under retired image keys "
                f"({', '.join(sorted(used))}): run `facelead keys rotate-image-key` first",
                code="image_key_in_use",
                files=used,
            )
        for kid in entries:  # unused, or a copy of the current key (in its file or the env)
            image_keys.remove_entry(keys_dir, kid)
        removed = tuple(sorted(kid.hex() for kid in entries))
        scope.details["removed_keys"] = list(removed)
    return RetireReport(removed, sum(usage.values()))
