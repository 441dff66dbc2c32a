"""The index on disk: ``np.save`` arrays under a token, a bitmap, and a meta file.

Every file is written to a temporary name, fsynced and renamed; the meta file
is renamed last and names the array token and the bitmap token, so a reader
never sees arrays and bitmap of different versions, and a crash leaves the
previous index whole. Large arrays are memory-mapped on load.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from facelead.index.flat import FlatIndex

FORMAT_VERSION = 2
CHUNK_ROWS = 65_536
_MODEL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ARRAYS = ("vectors", "codes", "scales", "photo_ids", "subject_ids", "template_ids")
_PRIMARY = ("vectors", "photo_ids", "subject_ids")


def check_model_id(model_id: str) -> str:
    """Model ids become file names, so only a safe alphabet is accepted."""
    if _MODEL_ID_RE.fullmatch(model_id) is None:
        raise ValueError(f"unsafe model id for an index file name: {model_id!r}")
    return model_id


def meta_path(directory: Path, model_id: str) -> Path:
    return directory / f"{model_id}.meta.json"


def array_path(directory: Path, model_id: str, token: str, name: str) -> Path:
    """The format-1 arrays keep ``.npy``; derived ones (int8 codes, bitmap) use ``.bin``
    (same ``np.save`` format) so tools that count the primary arrays are unaffected."""
    suffix = "npy" if name in _PRIMARY else "bin"
    return directory / f"{model_id}.{token}.{name}.{suffix}"


def atomic_write(target: Path, write: Any) -> None:
    """Temp file in the same directory, fsync, then rename: readers never see a partial file."""
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_chunked(handle: Any, arr: NDArray[Any]) -> None:
    """``np.save`` header, then the data in chunks (no full in-memory copy of an mmap)."""
    from numpy.lib import format as npformat

    npformat.write_array_header_1_0(
        handle,
        {"descr": npformat.dtype_to_descr(arr.dtype), "fortran_order": False, "shape": arr.shape},
    )
    step = max(1, (64 << 20) // max(1, arr.itemsize * (arr.shape[1] if arr.ndim == 2 else 1)))
    for start in range(0, arr.shape[0], step):
        handle.write(np.ascontiguousarray(arr[start : start + step]).tobytes())


def save_arrays(index: FlatIndex, directory: Path) -> str:
    """Write every array of ``index`` under a fresh token; returns the token."""
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    arrays = {
        "vectors": index.vectors,
        "codes": index.codes,
        "scales": index.scales,
        "photo_ids": index.all_photo_ids,
        "subject_ids": index.all_subject_ids,
        "template_ids": index.template_ids,
    }
    for name, arr in arrays.items():
        target = array_path(directory, index.model_id, token, name)
        atomic_write(target, lambda h, a=arr: save_chunked(h, a))
    return token


def save_bitmap(index: FlatIndex, directory: Path, token: str) -> None:
    """The bitmap under a fresh bitmap token, then the meta (the commit), then cleanup."""
    bitmap_token = secrets.token_hex(8)
    packed = np.packbits(index.deleted)
    target = array_path(directory, index.model_id, token, f"deleted-{bitmap_token}")
    atomic_write(target, lambda h: np.save(h, packed))
    meta = {
        "format": FORMAT_VERSION,
        "model_id": index.model_id,
        "generation": index.generation,
        "dim": index.dim,
        "count": index.rows,
        "live": len(index),
        "dtype": "float16",
        "token": token,
        "bitmap": bitmap_token,
    }
    payload = json.dumps(meta, sort_keys=True).encode()
    atomic_write(meta_path(directory, index.model_id), lambda h: h.write(payload))
    remove_stale_files(directory, index.model_id, token, f"deleted-{bitmap_token}")


def remove_stale_files(directory: Path, model_id: str, keep_token: str, keep_bitmap: str) -> None:
    for path in directory.glob(f"{model_id}.*"):
        parts = path.name[len(model_id) + 1 :].split(".")
        if len(parts) != 3 or parts[2] not in ("npy", "bin"):
            continue
        if parts[0] != keep_token or (parts[1].startswith("deleted-") and parts[1] != keep_bitmap):
            path.unlink(missing_ok=True)


def read_meta(directory: Path, model_id: str) -> dict[str, Any]:
    """Raises FileNotFoundError when no index was saved for this model."""
    path = meta_path(directory, check_model_id(model_id))
    meta: dict[str, Any] = json.loads(path.read_text())
    if meta.get("format") != FORMAT_VERSION or meta.get("model_id") != model_id:
        raise ValueError(f"index meta {path} does not describe a {model_id} index")
    return meta


def load_arrays(
    directory: Path, model_id: str
) -> tuple[dict[str, Any], dict[str, Any], NDArray[np.bool_]]:
    """(meta, memory-mapped arrays, deletion bitmap), checked against the meta."""
    meta = read_meta(directory, model_id)
    token = str(meta["token"])
    arrays = {
        name: np.load(array_path(directory, model_id, token, name), mmap_mode="r")
        for name in ARRAYS
    }
    packed = np.load(array_path(directory, model_id, token, f"deleted-{meta['bitmap']}"))
    count, dim = int(meta["count"]), int(meta["dim"])
    vectors = arrays["vectors"]
    if vectors.dtype != np.float16 or vectors.shape != (count, dim):
        raise ValueError(f"index vectors do not match meta ({count}, {dim}) float16")
    if arrays["codes"].dtype != np.int8 or arrays["scales"].dtype != np.float32:
        raise ValueError("index int8 codes have the wrong dtype")
    return meta, arrays, np.unpackbits(packed, count=count).astype(bool)


def collect_rows(
    rows: Iterator[tuple[int, int, int, NDArray[Any]]], dim: int | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float16]]:
    """Template ids, photo ids, subject ids and float16 vectors of streamed rows.

    Vectors go to float16 as they arrive (a block of float32 at a time), so peak
    memory stays near the final index size, never a list of row objects."""
    chunks: list[NDArray[np.float16]] = []
    ids: list[tuple[int, int, int]] = []
    buffer: list[NDArray[Any]] = []
    for template_id, photo_id, subject_id, vector in rows:
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if dim is None:
            dim = int(vec.shape[0])
        elif vec.shape[0] != dim:
            raise ValueError(f"template of photo {photo_id} has {vec.shape[0]} dims, not {dim}")
        buffer.append(vec)
        ids.append((int(template_id), int(photo_id), int(subject_id)))
        if len(buffer) >= CHUNK_ROWS:
            chunks.append(np.stack(buffer).astype(np.float16))
            buffer = []
    if buffer:
        chunks.append(np.stack(buffer).astype(np.float16))
    vectors = np.concatenate(chunks) if chunks else np.zeros((0, dim or 0), dtype=np.float16)
    table = np.array(ids, dtype=np.int64).reshape(-1, 3)
    return table[:, 0].copy(), table[:, 1].copy(), table[:, 2].copy(), vectors
