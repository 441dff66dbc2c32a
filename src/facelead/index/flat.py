"""Exact inner-product search over float16 templates, at memory-bandwidth speed.

Layout (one model, one generation, all memory-mapped on load):

* ``vectors``  float16 (n, d): the exact templates; only a shortlist is read per search.
* ``codes``    int8 (n, d) and ``scales`` float32 (n,): row ``r`` is approximately
  ``scales[r] * codes[r]``. Every search scans these (half the bytes of float16;
  numpy converts int8 to float32 about ten times faster than float16 here).
* ``deleted``  a bitmap (``np.packbits``): deleting or sealing a template flips a
  bit and rewrites only this small file; deleted rows are never returned.
* ``photo_ids``, ``subject_ids``, ``template_ids`` int64 (n,).

Search stays exact: the int8 error of row ``r`` is bounded by
``eps_r = scales[r] * ||q||_1 * (0.5 + float32 slack)``, so the true (float16)
score lies in ``[approx - eps, approx + eps]``. Rows whose upper bound falls below
the k-th subject's guaranteed lower bound cannot be any top-k subject's best
photo; every other row is re-scored from the float16 matrix and ranked exactly
as a brute-force float16 scan would rank it. The int8 scan is split into blocks
across threads (numpy releases the GIL in casts and BLAS calls).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

BLOCK_ROWS = 65_536
"""Rows per chunk when building from rows and when computing full float16 scores."""
SCAN_ROWS = 512
"""Rows per int8 block: 512 x 768 float32 = 1.5 MB, inside a 2 MB L2 cache."""
FORMAT_VERSION = 2
_MODEL_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_ARRAYS = ("vectors", "codes", "scales", "photo_ids", "subject_ids", "template_ids")
_POOLS: dict[int, ThreadPoolExecutor] = {}


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _pool(threads: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="facelead-scan")
    return pool


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


_PRIMARY = ("vectors", "photo_ids", "subject_ids")


def _array_path(directory: Path, model_id: str, token: str, name: str) -> Path:
    """The format-1 arrays keep ``.npy``; derived ones (int8 codes, bitmap) use ``.bin``
    (same ``np.save`` format) so tools that count the primary arrays are unaffected."""
    suffix = "npy" if name in _PRIMARY else "bin"
    return directory / f"{model_id}.{token}.{name}.{suffix}"


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


def quantise(vectors: NDArray[Any]) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """Per-row symmetric int8: ``x ~ scale * code`` with ``|x - scale*code| <= scale/2``."""
    out_codes = np.empty(vectors.shape, dtype=np.int8)
    out_scales = np.empty(vectors.shape[0], dtype=np.float32)
    for start in range(0, vectors.shape[0], BLOCK_ROWS):
        block = np.asarray(vectors[start : start + BLOCK_ROWS], dtype=np.float32)
        peak = np.max(np.abs(block), axis=1) if block.shape[1] else np.zeros(len(block))
        scale = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        codes = np.rint(block / scale[:, None])
        out_codes[start : start + len(block)] = np.clip(codes, -127, 127).astype(np.int8)
        out_scales[start : start + len(block)] = scale
    return out_codes, out_scales


class FlatIndex:
    """Immutable snapshot of one model's templates at one generation (bitmap aside)."""

    def __init__(
        self,
        model_id: str,
        generation: int,
        vectors: NDArray[Any],
        photo_ids: NDArray[Any],
        subject_ids: NDArray[Any],
        *,
        template_ids: NDArray[Any] | None = None,
        deleted: NDArray[Any] | None = None,
        codes: NDArray[np.int8] | None = None,
        scales: NDArray[np.float32] | None = None,
        threads: int | None = None,
    ) -> None:
        vecs = np.asanyarray(vectors)  # keeps np.memmap: no copy of a mapped matrix
        if vecs.ndim != 2:
            raise ValueError("vectors must be a 2-D array (n, d)")
        if vecs.dtype != np.float16:
            vecs = vecs.astype(np.float16)
        pids = np.ascontiguousarray(photo_ids, dtype=np.int64).reshape(-1)
        sids = np.ascontiguousarray(subject_ids, dtype=np.int64).reshape(-1)
        tids = pids if template_ids is None else np.ascontiguousarray(template_ids, np.int64)
        n = vecs.shape[0]
        if not (n == pids.shape[0] == sids.shape[0] == tids.shape[0]):
            raise ValueError("vectors, photo_ids and subject_ids must have the same length")
        if codes is None or scales is None:
            if n and not np.all(np.isfinite(vecs[: min(n, BLOCK_ROWS)])):
                raise ValueError("vectors contain NaN or infinity")
            codes, scales = quantise(vecs)
        if codes.shape != vecs.shape or scales.shape != (n,):
            raise ValueError("int8 codes do not match the vectors")
        self.model_id = check_model_id(model_id)
        self.generation = int(generation)
        self.vectors: NDArray[np.float16] = vecs
        self.codes: NDArray[np.int8] = codes
        self.scales: NDArray[np.float32] = scales
        self.all_photo_ids: NDArray[np.int64] = pids
        self.all_subject_ids: NDArray[np.int64] = sids
        self.template_ids: NDArray[np.int64] = tids
        mask = np.zeros(n, dtype=bool) if deleted is None else np.asarray(deleted, dtype=bool)
        if mask.shape != (n,):
            raise ValueError("deletion bitmap does not match the vectors")
        self.deleted: NDArray[np.bool_] = mask.copy()
        self.threads = threads or default_threads()
        self._refresh_live()

    def _refresh_live(self) -> None:
        self._deleted_rows = np.flatnonzero(self.deleted)
        self._live = ~self.deleted
        self._live_count = int(self._live.sum())

    # -- public views: live (not deleted) rows only -------------------------------------
    @property
    def photo_ids(self) -> NDArray[np.int64]:
        return self.all_photo_ids[self._live] if self._deleted_rows.size else self.all_photo_ids

    @property
    def subject_ids(self) -> NDArray[np.int64]:
        return self.all_subject_ids[self._live] if self._deleted_rows.size else self.all_subject_ids

    def __len__(self) -> int:
        return self._live_count

    @property
    def rows(self) -> int:
        """Rows stored, deleted ones included."""
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    # -- deletion bitmap --------------------------------------------------------------------
    def mark_deleted(
        self,
        *,
        template_ids: NDArray[Any] | list[int] | None = None,
        photo_ids: NDArray[Any] | list[int] | None = None,
        subject_ids: NDArray[Any] | list[int] | None = None,
        deleted: bool = True,
    ) -> int:
        """Flip the bitmap for every row matching any given id; returns rows changed."""
        hit = np.zeros(self.rows, dtype=bool)
        for ids, column in (
            (template_ids, self.template_ids),
            (photo_ids, self.all_photo_ids),
            (subject_ids, self.all_subject_ids),
        ):
            if ids is not None:
                hit |= np.isin(column, np.asarray(ids, dtype=np.int64))
        changed = int(np.count_nonzero(self.deleted[hit] != deleted))
        self.deleted[hit] = deleted
        self._refresh_live()
        return changed

    def compacted(self, generation: int | None = None) -> FlatIndex:
        """A copy without the deleted rows (no re-quantising, no database read).

        Sealing must leave no biometric residue on disk, so a saved index never
        keeps a deleted row's vector: the bitmap hides it at once, compaction
        erases it."""
        keep = np.flatnonzero(self._live)
        return FlatIndex(
            self.model_id,
            self.generation if generation is None else generation,
            _gather(self.vectors, keep),
            self.all_photo_ids[keep],
            self.all_subject_ids[keep],
            template_ids=self.template_ids[keep],
            codes=_gather(self.codes, keep),
            scales=np.asarray(self.scales)[keep],
            threads=self.threads,
        )

    # -- scoring ----------------------------------------------------------------------------
    def _query(self, query: NDArray[Any]) -> NDArray[np.float32]:
        q = np.asarray(query, dtype=np.float32).reshape(-1)
        if q.shape[0] != self.dim:
            raise ValueError(f"query has {q.shape[0]} dimensions, index has {self.dim}")
        if not np.all(np.isfinite(q)):
            raise ValueError("query contains NaN or infinity")
        return q

    def scores(self, query: NDArray[Any]) -> NDArray[np.float32]:
        """Exact float16 inner products with every stored row (deleted ones: -inf)."""
        q = self._query(query)
        out = np.empty(self.rows, dtype=np.float32)
        for start in range(0, self.rows, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, self.rows)
            block = self.vectors[start:stop].astype(np.float32)
            np.matmul(block, q, out=out[start:stop])
        out[self._deleted_rows] = -np.inf
        return out

    def exact_rows(self, rows: NDArray[np.intp], q: NDArray[np.float32]) -> NDArray[np.float32]:
        """Float16 scores of the given rows, computed as :meth:`scores` computes them."""
        out = np.empty(rows.shape[0], dtype=np.float32)
        for start in range(0, rows.shape[0], BLOCK_ROWS):
            part = rows[start : start + BLOCK_ROWS]
            np.matmul(self.vectors[part].astype(np.float32), q, out=out[start : start + len(part)])
        return out

    def _scan(self, q: NDArray[np.float32], lo: int, hi: int, out: NDArray[np.float32]) -> None:
        buf = np.empty((SCAN_ROWS, self.dim), dtype=np.float32)
        for start in range(lo, hi, SCAN_ROWS):
            stop = min(start + SCAN_ROWS, hi)
            block = buf[: stop - start]
            block[...] = self.codes[start:stop]
            np.matmul(block, q, out=out[start:stop])

    def approx_scores(self, query: NDArray[Any], threads: int | None = None) -> NDArray[np.float32]:
        """``scales * (codes @ q)`` for every row, the scan split across threads."""
        q = self._query(query)
        n = self.rows
        out = np.empty(n, dtype=np.float32)
        workers = max(1, threads or self.threads)
        per = -(-n // workers) if n else 0
        per = -(-per // SCAN_ROWS) * SCAN_ROWS
        ranges = [(lo, min(lo + per, n)) for lo in range(0, n, per)] if n else []
        if len(ranges) <= 1:
            for lo, hi in ranges:
                self._scan(q, lo, hi, out)
        else:
            futures = [_pool(workers).submit(self._scan, q, lo, hi, out) for lo, hi in ranges]
            for future in futures:
                future.result()
        out *= self.scales
        return out

    def error_bounds(self, q: NDArray[np.float32], rows: NDArray[Any] | None = None) -> Any:
        """Upper bound of ``|approx - exact|`` per row (quantisation plus float32 rounding)."""
        slack = 0.5 + 2.0 * self.dim * 1.2e-7 * 127.0
        scales = self.scales if rows is None else self.scales[rows]
        return scales * np.float32(float(np.abs(q).sum()) * slack * 1.001 + 1e-7)

    # -- ranking ----------------------------------------------------------------------------
    def _candidate_rows(self, scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
        """Rows that must contain the top-k subjects' best photos; avoids a full sort.

        Every row scoring at least the threshold is kept (ties included), so each
        kept subject's best row is kept too; once k subjects are present, no
        subject outside the set can outrank them. Rows scored -inf (deleted) never.
        """
        n = scores.shape[0]
        m = min(n, max(8 * k, 4096))
        while m < n:
            threshold = np.partition(scores, n - m)[n - m]
            if threshold == -np.inf:
                break
            rows = np.flatnonzero(scores >= threshold)
            if np.unique(self.all_subject_ids[rows]).size >= k:
                return rows
            m *= 4
        return np.flatnonzero(scores > -np.inf)

    def rank(self, rows: NDArray[np.intp], row_scores: NDArray[np.float32], k: int) -> list[Hit]:
        """Best photo per subject among ``rows``; ties go to the lower photo id."""
        pids = self.all_photo_ids[rows]
        order = np.lexsort((pids, -row_scores))
        _, first = np.unique(self.all_subject_ids[rows][order], return_index=True)
        best = order[np.sort(first)][:k]
        return [
            Hit(int(pids[i]), int(self.all_subject_ids[rows[i]]), float(row_scores[i]))
            for i in best
        ]

    def shortlist(
        self, rows: NDArray[np.intp], approx: NDArray[np.float32], q: NDArray[np.float32], k: int
    ) -> NDArray[np.intp]:
        """Of ``rows`` (live, with int8 scores ``approx``), those that may hold a top-k
        subject's best photo: upper bound at least the k-th subject's lower bound."""
        eps = self.error_bounds(q, rows)
        lower = approx - eps
        cand = self._candidate_rows_sub(rows, lower, k)
        sids = self.all_subject_ids[rows[cand]]
        order = np.argsort(-lower[cand], kind="stable")
        _, first = np.unique(sids[order], return_index=True)
        best_lower = np.sort(lower[cand][order][first])[::-1]
        if best_lower.size < k:
            return rows
        threshold = best_lower[k - 1]
        kept: NDArray[np.intp] = rows[(approx + eps) >= threshold]
        return kept

    def _candidate_rows_sub(
        self, rows: NDArray[np.intp], scores: NDArray[np.float32], k: int
    ) -> NDArray[np.intp]:
        n = scores.shape[0]
        m = min(n, max(8 * k, 4096))
        while m < n:
            threshold = np.partition(scores, n - m)[n - m]
            sel = np.flatnonzero(scores >= threshold)
            if np.unique(self.all_subject_ids[rows[sel]]).size >= k:
                return sel
            m *= 4
        return np.arange(n)

    def search(self, query: NDArray[Any], k: int, threads: int | None = None) -> list[Hit]:
        """Top-k subjects by their best photo, exactly as a float16 brute-force scan ranks them."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if self._live_count == 0:
            return []
        q = self._query(query)
        approx = self.approx_scores(q, threads)
        if self._deleted_rows.size:
            live_rows = np.flatnonzero(self._live)
            approx = approx[live_rows]
        else:
            live_rows = np.arange(self.rows)
        rows = self.shortlist(live_rows, approx, q, k)
        return self.rank(rows, self.exact_rows(rows, q), k)

    def search_reference(self, query: NDArray[Any], k: int) -> list[Hit]:
        """Full float16 scan without the int8 shortlist (slow; for tests and benchmarks)."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if self._live_count == 0:
            return []
        scores = self.scores(query)
        rows = self._candidate_rows(scores, k)
        return self.rank(rows, scores[rows], k)

    # -- building and persistence -----------------------------------------------------------
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
        tids: list[int] = []
        pids: list[int] = []
        sids: list[int] = []
        buffer: list[NDArray[Any]] = []
        for template_id, photo_id, subject_id, vector in rows:
            vec = np.asarray(vector, dtype=np.float32).reshape(-1)
            if dim is None:
                dim = int(vec.shape[0])
            elif vec.shape[0] != dim:
                raise ValueError(f"template of photo {photo_id} has {vec.shape[0]} dims, not {dim}")
            buffer.append(vec)
            tids.append(int(template_id))
            pids.append(int(photo_id))
            sids.append(int(subject_id))
            if len(buffer) >= BLOCK_ROWS:
                chunks.append(np.stack(buffer).astype(np.float16))
                buffer = []
        if buffer:
            chunks.append(np.stack(buffer).astype(np.float16))
        width = dim or 0
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, width), dtype=np.float16)
        return cls(
            model_id,
            generation,
            vectors,
            np.array(pids),
            np.array(sids),
            template_ids=np.array(tids),
        )

    def save(self, directory: Path) -> None:
        """Arrays under a fresh token, then the meta file: its rename is the commit point."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        arrays = {
            "vectors": self.vectors,
            "codes": self.codes,
            "scales": self.scales,
            "photo_ids": self.all_photo_ids,
            "subject_ids": self.all_subject_ids,
            "template_ids": self.template_ids,
        }
        for name, arr in arrays.items():
            target = _array_path(directory, self.model_id, token, name)
            _atomic_write(target, lambda h, a=arr: _save_chunked(h, a))
        self.token = token
        self.save_bitmap(directory)

    def save_bitmap(self, directory: Path, generation: int | None = None) -> None:
        """Persist the deletion bitmap (and a new generation): a few bytes per 8 rows,
        then the meta rename commits both. The big arrays are not touched."""
        directory = Path(directory)
        token = getattr(self, "token", None)
        if token is None:
            raise ValueError("save() the index before saving its bitmap")
        if generation is not None:
            self.generation = int(generation)
        bitmap_token = secrets.token_hex(8)
        packed = np.packbits(self.deleted)
        target = _array_path(directory, self.model_id, token, f"deleted-{bitmap_token}")
        _atomic_write(target, lambda h: np.save(h, packed))
        meta = {
            "format": FORMAT_VERSION,
            "model_id": self.model_id,
            "generation": self.generation,
            "dim": self.dim,
            "count": self.rows,
            "live": len(self),
            "dtype": "float16",
            "token": token,
            "bitmap": bitmap_token,
        }
        payload = json.dumps(meta, sort_keys=True).encode()
        _atomic_write(_meta_path(directory, self.model_id), lambda h: h.write(payload))
        self._remove_stale_files(directory, token, f"deleted-{bitmap_token}")

    def _remove_stale_files(self, directory: Path, keep_token: str, keep_bitmap: str) -> None:
        for path in directory.glob(f"{self.model_id}.*"):
            parts = path.name[len(self.model_id) + 1 :].split(".")
            if len(parts) != 3 or parts[2] not in ("npy", "bin"):
                continue
            if parts[0] != keep_token or (
                parts[1].startswith("deleted-") and parts[1] != keep_bitmap
            ):
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
        """Every large array is memory-mapped: opening costs no copy and no rebuild."""
        directory = Path(directory)
        meta = cls.read_meta(directory, model_id)
        token = str(meta["token"])
        arrays = {
            name: np.load(_array_path(directory, model_id, token, name), mmap_mode="r")
            for name in _ARRAYS
        }
        packed = np.load(_array_path(directory, model_id, token, f"deleted-{meta['bitmap']}"))
        count, dim = int(meta["count"]), int(meta["dim"])
        vectors = arrays["vectors"]
        if vectors.dtype != np.float16 or vectors.shape != (count, dim):
            raise ValueError(f"index vectors do not match meta ({count}, {dim}) float16")
        if arrays["codes"].dtype != np.int8 or arrays["scales"].dtype != np.float32:
            raise ValueError("index int8 codes have the wrong dtype")
        index = cls(
            model_id,
            int(meta["generation"]),
            vectors,
            np.asarray(arrays["photo_ids"]),
            np.asarray(arrays["subject_ids"]),
            template_ids=np.asarray(arrays["template_ids"]),
            deleted=np.unpackbits(packed, count=count).astype(bool),
            codes=arrays["codes"],
            scales=np.asarray(arrays["scales"]),
        )
        index.token = token
        return index

    token: str | None = None


def _gather(arr: NDArray[Any], rows: NDArray[np.intp]) -> Any:
    out = np.empty((rows.shape[0], *arr.shape[1:]), dtype=arr.dtype)
    for start in range(0, rows.shape[0], BLOCK_ROWS):
        out[start : start + BLOCK_ROWS] = arr[rows[start : start + BLOCK_ROWS]]
    return out


def _save_chunked(handle: Any, arr: NDArray[Any]) -> None:
    """``np.save`` header, then the data in chunks (no full in-memory copy of an mmap)."""
    from numpy.lib import format as npformat

    npformat.write_array_header_1_0(
        handle,
        {"descr": npformat.dtype_to_descr(arr.dtype), "fortran_order": False, "shape": arr.shape},
    )
    step = max(1, (64 << 20) // max(1, arr.itemsize * (arr.shape[1] if arr.ndim == 2 else 1)))
    for start in range(0, arr.shape[0], step):
        handle.write(np.ascontiguousarray(arr[start : start + step]).tobytes())
