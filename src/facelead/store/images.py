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
from pathlib import Path

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


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, fsync it, rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_dir(target.parent)


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


# --- the store --------------------------------------------------------------------


class ImageStore:
    """Files laid out as ``root/ab/cd/<sha256>``; two levels keep directories small.

    ``key``: the AES-256-GCM key new files are sealed with; None writes plaintext
    (a backup's own copy, tests of the layout). Reading accepts both kinds.
    """

    def __init__(self, root: Path, key: bytes | None = None) -> None:
        self.root = Path(root)
        if key is not None and len(key) != KEY_LEN:
            raise ConfigurationError("the image key must be 32 bytes", code="invalid_image_key")
        self._aead = AESGCM(key) if key is not None else None
        self._key_id = key_id(key) if key is not None else None

    @property
    def encrypted(self) -> bool:
        """Whether new files are sealed."""
        return self._aead is not None

    def path(self, sha: str) -> Path:
        _check_sha(sha)
        return self.root / sha[:2] / sha[2:4] / sha

    def exists(self, sha: str) -> bool:
        return self.path(sha).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its SHA-256; an existing copy is left untouched."""
        sha = hashlib.sha256(data).hexdigest()
        target = self.path(sha)
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
        if self._aead is None or self.is_sealed(sha):
            return False
        _write_atomic(self.path(sha), self._seal(sha, self.get(sha)))
        return True

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

    def _seal(self, sha: str, data: bytes) -> bytes:
        if self._aead is None or self._key_id is None:
            return data
        nonce = os.urandom(NONCE_LEN)  # random 96-bit nonce per file: never reused in practice
        header = MAGIC + self._key_id + nonce
        return header + self._aead.encrypt(nonce, data, header + sha.encode("ascii"))

    def _open(self, sha: str, raw: bytes) -> bytes:
        try:
            return self._decrypt(sha, raw)
        except FaceLeadError:
            if hashlib.sha256(raw).hexdigest() == sha:
                return raw  # a plaintext image that merely begins with the magic bytes
            raise

    def _decrypt(self, sha: str, raw: bytes) -> bytes:
        if self._aead is None:
            raise ConfigurationError(
                "stored image is encrypted and no image key is configured "
                "(FACELEAD_IMAGE_KEY or FACELEAD_HOME/keys/" + IMAGE_KEY_FILE + ")",
                code="image_key_missing",
            )
        header = raw[:HEADER_LEN]
        if len(raw) < HEADER_LEN + 16:
            raise ImageIntegrityError("stored image is truncated", sha256=sha)
        if header[len(MAGIC) : len(MAGIC) + KEY_ID_LEN] != self._key_id:
            raise ImageIntegrityError(
                "stored image was sealed with another image key", code="image_key_mismatch",
                sha256=sha,
            )  # fmt: skip
        try:
            return self._aead.decrypt(header[-NONCE_LEN:], raw[HEADER_LEN:], header + sha.encode())
        except InvalidTag:
            raise ImageIntegrityError(
                "stored image failed its authentication tag: altered or moved", sha256=sha
            ) from None
