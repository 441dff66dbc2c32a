"""Content-addressed image store, encrypted at rest.

Bytes are filed under their SHA-256, so the same image enrolled twice is
stored once and a database row can never point at altered bytes without the
hash revealing it. Writes are atomic: a crash leaves either the old state or
the complete file, never a truncated image.

With a key (``Services`` always gives one: FACELEAD_IMAGE_KEY, else the key
file under FACELEAD_HOME/keys), each file is sealed with AES-256-GCM: a copied
disk, a stolen backup tape without the key, or a misdirected rsync then yields
no face. The address stays the SHA-256 of the *plaintext*, so enrolment
deduplication, database references and sealing are unchanged; the address is
also bound into the cipher as associated data, so a sealed file moved under
another name fails its tag. Reading checks the tag and then the hash, so an
altered file is a typed ``image_integrity`` error, never silently wrong pixels.

Files written before encryption (no magic header) stay readable; ``facelead
doctor`` reports them as ``unencrypted_file`` and ``--repair`` seals them.

A store may be given a *keyring* instead of one key (``store.image_keys``): it
seals with the keyring's current key and opens a file with whichever key the
file's header names, so a key rotation can re-seal file by file while every
file stays readable.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from facelead.errors import ConfigurationError, FaceLeadError, InputError, NotFoundError

_SHA256_RE = re.compile(r"[0-9a-f]{64}")

MAGIC = b"\x89FLENC1\n"
"""First bytes of a sealed file (version 1). The high first byte keeps it from ever
being read as text; no still-image format FaceLead accepts starts with it."""
KEY_ID_LEN = 8
NONCE_LEN = 12
HEADER_LEN = len(MAGIC) + KEY_ID_LEN + NONCE_LEN
KEY_LEN = 32  # AES-256
IMAGE_KEY_FILE = "image-aes256gcm.key"
KEY_FILE_MODE = 0o600


class ImageIntegrityError(FaceLeadError):
    """Stored image bytes fail their check: altered, truncated, or sealed with another key.

    Never a user's mistake: the store on disk no longer matches what was
    written, so the caller gets no pixels at all.
    """

    code = "image_integrity"
    http_status = 500


def _check_sha(sha: str) -> str:
    """Only 64 lowercase hex characters may become a path: no traversal, no aliases."""
    if not isinstance(sha, str) or _SHA256_RE.fullmatch(sha) is None:
        raise InputError("image id must be 64 lowercase hex characters", code="invalid_image_id")
    return sha


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable; not possible on every platform, so best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _same_file(target: Path, expect: os.stat_result) -> bool:
    """Whether ``target`` is still the file once seen as ``expect`` (not deleted, replaced
    or rewritten since)."""
    try:
        now = target.stat()
    except FileNotFoundError:
        return False
    return (now.st_dev, now.st_ino, now.st_mtime_ns) == (
        expect.st_dev,
        expect.st_ino,
        expect.st_mtime_ns,
    )


def _write_atomic(target: Path, data: bytes, expect: os.stat_result | None = None) -> bool:
    """Write ``data`` to a temporary file beside ``target``, fsync it, rename it into place.

    ``expect``: replace only a file that is still the one read earlier (a re-seal
    racing a retention purge must not bring the purged image back); False if not.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if expect is not None and not _same_file(target, expect):
            os.unlink(tmp_name)
            return False
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)
    return True


# --- keys -------------------------------------------------------------------------


def parse_image_key(text: str) -> bytes:
    """A 256-bit key written as 64 hex digits or as base64 (standard or URL-safe)."""
    value = text.strip()
    try:
        if re.fullmatch(r"[0-9a-fA-F]{64}", value):
            key = bytes.fromhex(value)
        else:
            key = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_LEN:
        raise ConfigurationError(
            "the image key must be 32 bytes, written as 64 hex digits or base64",
            code="invalid_image_key",
        )
    return key


_KEY_LOCK = threading.Lock()


def load_or_create_image_key(path: Path) -> bytes:
    """The key in the file ``path``; generated (mode 0600, folder 0700) when absent.

    Written whole to a private temporary file and hard-linked into place, so
    two processes starting at once (serve workers) agree on one key.
    """
    with _KEY_LOCK:
        if not path.exists():
            _create_key_file(path)
        return parse_image_key(path.read_text(encoding="ascii"))


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode("ascii") + "\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won: use its key
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def key_id(key: bytes) -> bytes:
    """Which key sealed a file (a one-way tag), so a wrong key is told apart from tampering."""
    return hashlib.sha256(b"facelead-image-key\x00" + key).digest()[:KEY_ID_LEN]


def is_sealed_file(path: Path) -> bool:
    """Whether the file at ``path`` starts with the sealed-file header (reads 8 bytes)."""
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def sealed_key_id(path: Path) -> bytes | None:
    """The key id in a sealed file's header; None for a plaintext file (reads 16 bytes)."""
    with path.open("rb") as handle:
        head = handle.read(len(MAGIC) + KEY_ID_LEN)
    if len(head) < len(MAGIC) + KEY_ID_LEN or not head.startswith(MAGIC):
        return None
    return head[len(MAGIC) :]


class KeySource(Protocol):
    """Where a store's keys come from: one to seal with, any number to open with."""

    def current(self) -> bytes:
        """The key new files are sealed with."""
        ...

    def key_for(self, kid: bytes) -> bytes | None:
        """The key whose id is ``kid``, if this source holds it."""
        ...


class FixedKey:
    """A single key that both seals and opens: a store given plain key bytes."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_LEN:
            raise ConfigurationError("the image key must be 32 bytes", code="invalid_image_key")
        self._key = key
        self._id = key_id(key)

    def current(self) -> bytes:
        return self._key

    def key_for(self, kid: bytes) -> bytes | None:
        return self._key if kid == self._id else None


# --- the store --------------------------------------------------------------------


class ImageStore:
    """Files laid out as ``root/ab/cd/<sha256>``; two levels keep directories small.

    ``key``: the AES-256-GCM key new files are sealed with, or a keyring (its
    current key seals, any of its keys opens); None writes plaintext (a backup's
    own copy, tests of the layout). Reading accepts both kinds.
    """

    def __init__(self, root: Path, key: bytes | KeySource | None = None) -> None:
        self.root = Path(root)
        self._keys: KeySource | None = FixedKey(key) if isinstance(key, bytes) else key

    @property
    def encrypted(self) -> bool:
        """Whether new files are sealed."""
        return self._keys is not None

    @property
    def current_key_id(self) -> bytes | None:
        """Id of the key new files are sealed with (None: plaintext store)."""
        return key_id(self._keys.current()) if self._keys is not None else None

    def knows_key(self, kid: bytes) -> bool:
        """Whether a file sealed under the key ``kid`` can be opened by this store."""
        return self._keys is not None and self._keys.key_for(kid) is not None

    def addresses(self) -> Iterator[str]:
        """Every image filed at its own address, in order (temporary and foreign files skipped)."""
        if not self.root.is_dir():
            return
        for path in sorted(self.root.glob("??/??/*")):
            named = _SHA256_RE.fullmatch(path.name) is not None
            if named and path == self.path(path.name) and path.is_file():
                yield path.name

    def sealed_with(self, sha: str) -> bytes | None:
        """The key id in the stored file's header (None: plaintext)."""
        return sealed_key_id(self.path(sha))

    def path(self, sha: str) -> Path:
        _check_sha(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256; an existing copy keeps its bytes.

        Its modification time is renewed: a copy a crash left as an orphan is now
        about to be referenced again, and ``doctor --repair`` deletes only orphans
        older than its grace period.
        """
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
        if target.is_file():
            with contextlib.suppress(FileNotFoundError):
                os.utime(target)
            if target.is_file():
                return sha
        _write_atomic(target, self._seal(sha, data))
        return sha

    def get(self, sha: str) -> bytes:
        """The plaintext, after checking the tag (sealed files) and the SHA-256 (all files)."""
        try:
            raw = self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFoundError("image not in store", code="image_not_found", sha256=sha) from None
        data = self._open(sha, raw) if raw.startswith(MAGIC) else raw
        if hashlib.sha256(data).hexdigest() != sha:
            raise ImageIntegrityError(
                "stored image does not match its SHA-256: altered or truncated", sha256=sha
            )
        return data

    def is_sealed(self, sha: str) -> bool:
        """Whether the stored file is encrypted (False for a plaintext file from before)."""
        return is_sealed_file(self.path(sha))

    def seal_in_place(self, sha: str) -> bool:
        """Re-write a plaintext file sealed, atomically; True if it was plaintext.

        The plaintext must still match its address: an altered file is reported
        (``image_integrity``), never sealed, so sealing cannot launder tampering.
        """
        if self._keys is None or self.is_sealed(sha):
            return False
        _write_atomic(self.path(sha), self._seal(sha, self.get(sha)))
        return True

    def reseal(self, sha: str, key: bytes) -> bool:
        """Re-write one file sealed under ``key`` (key rotation); True if it was re-written.

        The file is opened and fully checked first (tag, then SHA-256), so only
        intact bytes are re-sealed; the new file replaces the old atomically, and
        only if it is still the file that was read (a concurrent purge wins).
        """
        path = self.path(sha)
        try:
            before = path.stat()
        except FileNotFoundError:
            return False
        if sealed_key_id(path) == key_id(key):
            return False
        return _write_atomic(path, self._seal(sha, self.get(sha), key), expect=before)

    def delete(self, sha: str) -> bool:
        """Remove the bytes (retention purge, sealing); True if something was removed."""
        target = self.path(sha)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        for parent in (target.parent, target.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break
        return True

    def _seal(self, sha: str, data: bytes, key: bytes | None = None) -> bytes:
        if key is None:
            if self._keys is None:
                return data
            key = self._keys.current()
        nonce = os.urandom(NONCE_LEN)  # random 96-bit nonce per file: never reused in practice
        header = MAGIC + key_id(key) + nonce
        return header + AESGCM(key).encrypt(nonce, data, header + sha.encode("ascii"))

    def _open(self, sha: str, raw: bytes) -> bytes:
        try:
            return self._decrypt(sha, raw)
        except FaceLeadError:
            if hashlib.sha256(raw).hexdigest() == sha:
                return raw  # a plaintext image that merely begins with the magic bytes
            raise

    def _decrypt(self, sha: str, raw: bytes) -> bytes:
        if self._keys is None:
            raise ConfigurationError(
                "stored image is encrypted and no image key is configured "
                "(FACELEAD_IMAGE_KEY or FACELEAD_HOME/keys/" + IMAGE_KEY_FILE + ")",
                code="image_key_missing",
            )
        header = raw[:HEADER_LEN]
        if len(raw) < HEADER_LEN + 16:
            raise ImageIntegrityError("stored image is truncated", sha256=sha)
        key = self._keys.key_for(header[len(MAGIC) : len(MAGIC) + KEY_ID_LEN])
        if key is None:
            raise ImageIntegrityError(
                "stored image was sealed with another image key", code="image_key_mismatch",
                sha256=sha,
            )  # fmt: skip
        try:
            return AESGCM(key).decrypt(header[-NONCE_LEN:], raw[HEADER_LEN:], header + sha.encode())
        except InvalidTag:
            raise ImageIntegrityError(
                "stored image failed its authentication tag: altered or moved", sha256=sha
            ) from None
