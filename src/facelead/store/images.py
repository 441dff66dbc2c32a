"""Content-addressed image store.

Bytes are filed under their SHA-256, so the same image enrolled twice is
stored once and a database row can never point at altered bytes without the
hash revealing it. Writes are atomic: a crash leaves either the old state or
the complete file, never a truncated image.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

from facelead.errors import InputError, NotFoundError

_SHA256_RE = re.compile(r"[0-9a-f]{64}")


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


class ImageStore:
    """Files laid out as ``root/ab/cd/<sha256>``; two levels keep directories small."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

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
        return sha

    def get(self, sha: str) -> bytes:
        try:
            return self.path(sha).read_bytes()
        except FileNotFoundError:
            raise NotFoundError("image not in store", code="image_not_found", sha256=sha) from None

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
