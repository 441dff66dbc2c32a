"""The image keyring: the key new files are sealed with, and every key that may still open one.

A key rotation cannot re-seal millions of files in one instant, so for a while
some files are sealed under the old key and some under the new one; a store
that knew only one key would fail on the others. The keyring is the current
key (``FACELEAD_IMAGE_KEY``, else ``keys/image-aes256gcm.key``) plus *keyring
entries*: files ``keys/image-aes256gcm-<key id>.key`` (mode 0600), each holding
one key a stored file may still be sealed under. Keys never go into the
database: a copy of the database must never carry what opens the images.

Every process re-reads the keyring when the key folder changes (one ``stat``
per use), so a server that was running before a rotation opens files re-sealed
under the new key and, with the key file, seals new files under it too.

A rotation in progress is recorded in ``keys/image-key-rotation.json`` (the id
of the key being rotated to), so a rerun after a crash continues the same
rotation instead of starting another; ``rotation_lock`` keeps two rotations
from running at once.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import errno
import fcntl
import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from facelead.errors import ConfigurationError, ConflictError
from facelead.store.images import (
    IMAGE_KEY_FILE,
    KEY_FILE_MODE,
    KEY_ID_LEN,
    _fsync_dir,
    key_id,
    load_or_create_image_key,
    parse_image_key,
)

ENTRY_PREFIX = "image-aes256gcm-"
ENTRY_SUFFIX = ".key"
ROTATION_FILE = "image-key-rotation.json"
_ENTRY_RE = re.compile(rf"{re.escape(ENTRY_PREFIX)}([0-9a-f]{{{2 * KEY_ID_LEN}}}){ENTRY_SUFFIX}")


def entry_path(keys_dir: Path, kid: bytes) -> Path:
    return keys_dir / f"{ENTRY_PREFIX}{kid.hex()}{ENTRY_SUFFIX}"


def write_key_file(path: Path, key: bytes) -> None:
    """Write ``key`` (base64) to ``path`` whole: private temporary file, fsync, rename.

    The file is 0600 from its creation, never briefly readable by others, and a
    crash leaves either the old file or the new one.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(key).decode("ascii") + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def read_entries(keys_dir: Path) -> dict[bytes, Path]:
    """Keyring entries by key id; an entry whose key does not match its name is refused."""
    found: dict[bytes, Path] = {}
    if not keys_dir.is_dir():
        return found
    for path in sorted(keys_dir.iterdir()):
        match = _ENTRY_RE.fullmatch(path.name)
        if match is None or not path.is_file():
            continue
        kid = bytes.fromhex(match.group(1))
        if key_id(_read_key(path)) != kid:
            raise ConfigurationError(
                f"keyring entry {path.name} holds another key than its name says",
                code="invalid_image_key",
            )
        found[kid] = path
    return found


def _read_key(path: Path) -> bytes:
    return parse_image_key(path.read_text(encoding="ascii"))


def remove_entry(keys_dir: Path, kid: bytes) -> None:
    entry_path(keys_dir, kid).unlink(missing_ok=True)
    _fsync_dir(keys_dir)


def install_current_key(keys_dir: Path, key: bytes) -> None:
    """Make ``key`` the current key of the key file (an atomic replace)."""
    write_key_file(keys_dir / IMAGE_KEY_FILE, key)


@dataclass(frozen=True)
class _Snapshot:
    stamp: tuple[int, ...]
    current: bytes
    keys: dict[bytes, bytes]  # key id -> key, the current key included


class ImageKeyring:
    """The current image key and the keyring entries, re-read when the key folder changes.

    ``env_key``: the key from ``FACELEAD_IMAGE_KEY``; it is then the current key
    and the key file is neither read nor created.
    """

    def __init__(self, keys_dir: Path, env_key: bytes | None = None) -> None:
        self.keys_dir = keys_dir
        self.env_key = env_key
        self._lock = threading.Lock()
        self._snapshot = self._load()

    @property
    def from_environment(self) -> bool:
        return self.env_key is not None

    def current(self) -> bytes:
        return self._fresh().current

    def key_for(self, kid: bytes) -> bytes | None:
        """The key with id ``kid``; an unknown id re-reads the folder once (a rotation may
        have added it a moment ago)."""
        key = self._fresh().keys.get(kid)
        if key is None:
            key = self._fresh(force=True).keys.get(kid)
        return key

    def known(self) -> dict[bytes, bytes]:
        """Every key this keyring holds, by id (the current key included)."""
        return dict(self._fresh(force=True).keys)

    def _stamp(self) -> tuple[int, ...]:
        """Changes whenever an entry or the key file is written, replaced or removed."""
        stamp: list[int] = []
        for path in (self.keys_dir, self.keys_dir / IMAGE_KEY_FILE):
            try:
                info = path.stat()
            except FileNotFoundError:
                stamp += [0, 0]
                continue
            stamp += [info.st_ino, info.st_mtime_ns]
        return tuple(stamp)

    def _fresh(self, *, force: bool = False) -> _Snapshot:
        snapshot = self._snapshot
        if force or snapshot.stamp != self._stamp():
            with self._lock:
                self._snapshot = snapshot = self._load()
        return snapshot

    def _load(self) -> _Snapshot:
        stamp = self._stamp()
        if self.env_key is not None:
            current = self.env_key
        else:
            current = load_or_create_image_key(self.keys_dir / IMAGE_KEY_FILE)
        keys = {kid: _read_key(path) for kid, path in read_entries(self.keys_dir).items()}
        keys[key_id(current)] = current
        return _Snapshot(stamp, current, keys)


# --- the record of a rotation in progress ---------------------------------------------


def read_rotation(keys_dir: Path) -> bytes | None:
    """Id of the key an unfinished rotation seals under; None when none is in progress."""
    try:
        record = json.loads((keys_dir / ROTATION_FILE).read_text(encoding="utf-8"))
        return bytes.fromhex(str(record["to"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(
            f"{ROTATION_FILE} is unreadable: restore it from a backup or remove it and "
            "run the rotation again",
            code="image_key_rotation_corrupt",
        ) from None


def write_rotation(keys_dir: Path, old_id: bytes, new_id: bytes) -> None:
    """Record that a rotation from key id ``old_id`` to ``new_id`` has begun."""
    record = {
        "from": old_id.hex(),
        "to": new_id.hex(),
        "started_at": dt.datetime.now(dt.UTC).isoformat(),
    }
    path = keys_dir / ROTATION_FILE
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(keys_dir)


def clear_rotation(keys_dir: Path, new_id: bytes) -> None:
    """Mark the rotation to key id ``new_id`` finished (a record naming another is left)."""
    if read_rotation(keys_dir) == new_id:
        (keys_dir / ROTATION_FILE).unlink(missing_ok=True)
        _fsync_dir(keys_dir)


@contextlib.contextmanager
def rotation_lock(keys_dir: Path) -> Iterator[None]:
    """Hold the key folder exclusively (flock); another rotation running is a refusal."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(keys_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise ConflictError(
                "another image key rotation or retirement is running",
                code="image_key_rotation_busy",
            ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
