"""Exact inner-product search over float16 templates.

Float16 halves memory against float32 and is ample for unit-norm embeddings;
scores are still accumulated in float32, block by block, so memory stays
bounded however large the gallery. Results are per subject: a candidate list
names people, each shown with their best-scoring photo.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

BLOCK_ROWS = 65_536
FORMAT_VERSION = 1
_MODEL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True, slots=True)
class Hit:
    photo_id: int
    subject_id: int
    score: float


def check_model_id(model_id: str) -> str:
    """Model ids become file names, so only a safe alphabet is accepted."""
    if _MODEL_ID_RE.fullmatch(model_id) is None:
        raise ValueError(f"unsafe model id for an index file name: {model_id!r}")
    return model_id


def _meta_path(directory: Path, model_id: str) -> Path:
    return directory / f"{model_id}.meta.json"


def _array_path(directory: Path, model_id: str, token: str, name: str) -> Path:
    return directory / f"{model_id}.{token}.{name}.npy"


def _atomic_write(target: Path, write: Any) -> None:
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


class FlatIndex:
    """Immutable snapshot of one model's searchable templates at one generation."""

    def __init__(
        self,
        model_id: str,
        generation: int,
        vectors: NDArray[Any],
        photo_ids: NDArray[Any],
        subject_ids: NDArray[Any],
    ) -> None:
        vecs = np.asarray(vectors)
        if vecs.ndim != 2:
            raise ValueError("vectors must be a 2-D array (n, d)")
        if vecs.dtype != np.float16:
            vecs = vecs.astype(np.float16)
        pids = np.ascontiguousarray(photo_ids, dtype=np.int64).reshape(-1)
        sids = np.ascontiguousarray(subject_ids, dtype=np.int64).reshape(-1)
        if not (vecs.shape[0] == pids.shape[0] == sids.shape[0]):
            raise ValueError("vectors, photo_ids and subject_ids must have the same length")
        self.model_id = check_model_id(model_id)
        self.generation = int(generation)
        self.vectors: NDArray[np.float16] = vecs
        self.photo_ids: NDArray[np.int64] = pids
        self.subject_ids: NDArray[np.int64] = sids

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def scores(self, query: NDArray[Any]) -> NDArray[np.float32]:
        """Inner products with every row, cast to float32 one block at a time."""
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} dimensions, index has {self.dim}")
        if not np.all(np.isfinite(q)):
            raise ValueError("query contains NaN or infinity")
        out = np.empty(len(self), dtype=np.float32)
        for start in range(0, len(self), BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, len(self))
            block = self.vectors[start:stop].astype(np.float32)
            np.matmul(block, q, out=out[start:stop])
        return out

    def _candidate_rows(self, scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
        """Rows that must contain the top-k subjects' best photos; avoids a full sort.

        Every row scoring at least the threshold is kept (ties included), so each
        kept subject's best row is kept too; once k subjects are present, no
        subject outside the set can outrank them.
        """
        n = scores.shape[0]
        m = min(n, max(8 * k, 4096))
        while m < n:
            threshold = np.partition(scores, n - m)[n - m]
            rows = np.flatnonzero(scores >= threshold)
            if np.unique(self.subject_ids[rows]).size >= k:
                return rows
            m *= 4
        return np.arange(n)

    def search(self, query: NDArray[Any], k: int) -> list[Hit]:
        """Top-k subjects by their best photo; ties go to the lower photo id."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if len(self) == 0:
            return []
        scores = self.scores(query)
        rows = self._candidate_rows(scores, k)
        cand_scores = scores[rows]
        order = rows[np.lexsort((self.photo_ids[rows], -cand_scores))]
        _, first = np.unique(self.subject_ids[order], return_index=True)
        best = order[np.sort(first)][:k]
        return [
            Hit(int(self.photo_ids[i]), int(self.subject_ids[i]), float(scores[i])) for i in best
        ]

    @classmethod
    def from_rows(
        cls,
        model_id: str,
        generation: int,
        rows: Iterator[tuple[int, int, int, NDArray[Any]]],
        dim: int | None = None,
    ) -> FlatIndex:
        """Build from ``(template_id, photo_id, subject_id, vector)`` rows, chunk by chunk.

        Vectors go to float16 as they arrive, so peak memory stays near the
        final index size rather than twice a float32 copy.
        """
        chunks: list[NDArray[np.float16]] = []
        pids: list[int] = []
        sids: list[int] = []
        buffer: list[NDArray[Any]] = []
        for _template_id, photo_id, subject_id, vector in rows:
            vec = np.asarray(vector, dtype=np.float32).reshape(-1)
            if dim is None:
                dim = int(vec.shape[0])
            elif vec.shape[0] != dim:
                raise ValueError(f"template of photo {photo_id} has {vec.shape[0]} dims, not {dim}")
            buffer.append(vec)
            pids.append(int(photo_id))
            sids.append(int(subject_id))
            if len(buffer) >= BLOCK_ROWS:
                chunks.append(np.stack(buffer).astype(np.float16))
                buffer = []
        if buffer:
            chunks.append(np.stack(buffer).astype(np.float16))
        width = dim or 0
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, width), dtype=np.float16)
        return cls(model_id, generation, vectors, np.array(pids), np.array(sids))

    def save(self, directory: Path) -> None:
        """Arrays under a fresh token, then the meta file: its rename is the commit point."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        arrays = {
            "vectors": self.vectors,
            "photo_ids": self.photo_ids,
            "subject_ids": self.subject_ids,
        }
        for name, arr in arrays.items():
            target = _array_path(directory, self.model_id, token, name)
            _atomic_write(target, lambda h, a=arr: np.save(h, np.ascontiguousarray(a)))
        meta = {
            "format": FORMAT_VERSION,
            "model_id": self.model_id,
            "generation": self.generation,
            "dim": self.dim,
            "count": len(self),
            "dtype": "float16",
            "token": token,
        }
        payload = json.dumps(meta, sort_keys=True).encode()
        _atomic_write(_meta_path(directory, self.model_id), lambda h: h.write(payload))
        self._remove_stale_files(directory, token)

    def _remove_stale_files(self, directory: Path, keep_token: str) -> None:
        for path in directory.glob(f"{self.model_id}.*.npy"):
            parts = path.name[len(self.model_id) + 1 :].split(".")
            if len(parts) == 3 and parts[0] != keep_token:
                path.unlink(missing_ok=True)

    @staticmethod
    def read_meta(directory: Path, model_id: str) -> dict[str, Any]:
        """Raises FileNotFoundError when no index was saved for this model."""
        path = _meta_path(Path(directory), check_model_id(model_id))
        meta: dict[str, Any] = json.loads(path.read_text())
        if meta.get("format") != FORMAT_VERSION or meta.get("model_id") != model_id:
            raise ValueError(f"index meta {path} does not describe a {model_id} index")
        return meta

    @classmethod
    def load(cls, directory: Path, model_id: str) -> FlatIndex:
        """Vectors are memory-mapped: opening a large index costs no copy."""
        directory = Path(directory)
        meta = cls.read_meta(directory, model_id)
        token = str(meta["token"])
        vectors = np.load(_array_path(directory, model_id, token, "vectors"), mmap_mode="r")
        photo_ids = np.load(_array_path(directory, model_id, token, "photo_ids"))
        subject_ids = np.load(_array_path(directory, model_id, token, "subject_ids"))
        count, dim = int(meta["count"]), int(meta["dim"])
        if vectors.dtype != np.float16 or vectors.shape != (count, dim):
            raise ValueError(f"index vectors do not match meta ({count}, {dim}) float16")
        return cls(model_id, int(meta["generation"]), vectors, photo_ids, subject_ids)
