"""Content-addressed image store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from facelead.errors import InputError, NotFoundError
from facelead.store import ImageStore


def test_put_get_layout(image_store: ImageStore) -> None:
    data = b"\xff\xd8 not really a jpeg"
    sha = image_store.put(data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert image_store.path(sha) == image_store.root / sha[:2] / sha[2:4] / sha
    assert image_store.exists(sha)
    assert image_store.get(sha) == data


def test_write_is_atomic_no_temp_files_left(image_store: ImageStore) -> None:
    sha = image_store.put(b"abc")
    leftovers = [p for p in image_store.root.rglob("*") if p.is_file() and p.name != sha]
    assert leftovers == []


def test_failed_write_leaves_no_partial_file(
    image_store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        image_store.put(b"partial")
    sha = hashlib.sha256(b"partial").hexdigest()
    assert not image_store.exists(sha)
    assert [p for p in image_store.root.rglob("*") if p.is_file()] == []


def test_put_is_idempotent(image_store: ImageStore) -> None:
    """A second put keeps the file (same inode, same sealed bytes) and renews its time, so
    ``doctor --repair`` never takes a reused orphan for an old leftover."""
    sha = image_store.put(b"same")
    path = image_store.path(sha)
    before, raw = path.stat(), path.read_bytes()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns - 7_200 * 10**9))
    assert image_store.put(b"same") == sha
    after = path.stat()
    assert after.st_ino == before.st_ino and path.read_bytes() == raw
    assert after.st_mtime_ns >= before.st_mtime_ns


@pytest.mark.parametrize(
    "bad",
    [
        "../" + "a" * 61,
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "/etc/passwd",
        "..",
        "g" * 64,
        "a" * 63 + "\n",
    ],
)
def test_traversal_and_malformed_ids_refused(image_store: ImageStore, bad: str) -> None:
    for call in (image_store.path, image_store.get, image_store.exists, image_store.delete):
        with pytest.raises(InputError) as err:
            call(bad)
        assert err.value.code == "invalid_image_id"


def test_delete(image_store: ImageStore, tmp_path: Path) -> None:
    sha = image_store.put(b"to be purged")
    keep = image_store.put(b"kept")
    assert image_store.delete(sha) is True
    assert not image_store.exists(sha)
    assert image_store.delete(sha) is False
    assert image_store.get(keep) == b"kept"
    with pytest.raises(NotFoundError):
        image_store.get(sha)
    assert image_store.root.is_dir()
