"""Exact inner-product search over float16 templates, at memory-bandwidth speed.

Layout (one model, one generation, all memory-mapped on load; see ``files.py``):

* ``vectors``  float16 (n, d): the exact templates; only a shortlist is read per search.
* ``codes``    int8 (n, d) and ``scales`` float32 (n,): row ``r`` is approximately
  ``scales[r] * codes[r]``. Every search scans these (half the bytes of float16).
* ``deleted``  a bitmap (``np.packbits``): deleting or sealing a template flips a
  bit and rewrites only this small file; deleted rows are never returned.
* ``photo_ids``, ``subject_ids``, ``template_ids`` int64 (n,).

Search stays exact: the int8 error of row ``r`` is bounded by
``eps_r = scales[r] * C(q)`` (:meth:`FlatIndex.eps_factor`), so the exact score
lies in ``[approx - eps, approx + eps]``. Rows whose upper bound falls below the
k-th subject's guaranteed lower bound cannot be any top-k subject's best photo;
every other row is re-scored exactly (float64 over the float16 template) and
ranked as a brute-force scan ranks it. The int8 pass is a compiled kernel
(``_scan.py``, numba) run on one contiguous row range per thread; it also keeps
the bookkeeping that proves the shortlist, so no second pass over n rows is
needed (docs/scale.md has the proof). The scan and the shortlist live in
``flat_scan.py`` (the :class:`FlatScan` mixin); this module keeps the data, the
deletion bitmap, exact scoring, ranking and persistence.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.index import files
from facelead.index.files import check_model_id, collect_rows
from facelead.index.flat_scan import FlatScan
from facelead.index.scan_setup import BLOCK_ROWS, Hit, default_threads, quantise
from facelead.index.scan_setup import exact as _exact


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel a search uses, on a toy index:
    a serving worker calls this at start so no request pays the compilation."""
    rng = np.random.default_rng(0)
    toy = FlatIndex("warm-up", 0, rng.standard_normal((8, 4)), np.arange(8), np.arange(8) // 2)
    toy.search(rng.standard_normal(4), 2, threads=1)


class FlatIndex(FlatScan):
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
        self._local = threading.local()
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

    def scores(self, query: NDArray[Any]) -> NDArray[np.float64]:
        """Exact inner products with every stored row (deleted ones: -inf): brute force."""
        q = self._query(query)
        out = np.empty(self.rows, dtype=np.float64)
        for start in range(0, self.rows, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, self.rows)
            _exact(np.asarray(self.vectors[start:stop]), q, out[start:stop])
        out[self._deleted_rows] = -np.inf
        return out

    def exact_rows(self, rows: NDArray[np.intp], q: NDArray[np.float32]) -> NDArray[np.float64]:
        """Exact scores of the given rows, computed exactly as :meth:`scores` computes them."""
        out = np.empty(rows.shape[0], dtype=np.float64)
        for start in range(0, rows.shape[0], BLOCK_ROWS):
            part = rows[start : start + BLOCK_ROWS]
            _exact(self.vectors[part], q, out[start : start + len(part)])
        return out

    # -- ranking ----------------------------------------------------------------------------
    def rank(self, rows: NDArray[np.intp], row_scores: NDArray[Any], k: int) -> list[Hit]:
        """Best photo per subject among ``rows``; ties go to the lower photo id."""
        pids = self.all_photo_ids[rows]
        order = np.lexsort((pids, -row_scores))
        _, first = np.unique(self.all_subject_ids[rows][order], return_index=True)
        best = order[np.sort(first)][:k]
        return [
            Hit(int(pids[i]), int(self.all_subject_ids[rows[i]]), float(row_scores[i]))
            for i in best
        ]

    def search(self, query: NDArray[Any], k: int, threads: int | None = None) -> list[Hit]:
        """Top-k subjects by their best photo, exactly as a brute-force scan ranks them.

        One int8 pass (both cores) yields per thread the best lower bounds and the rows
        whose upper bound reached the running threshold; ``T`` is the k-th subject's
        best lower bound. If ``T`` is at least every thread's final threshold, the
        collected rows hold every row with upper bound ``>= T``, hence every top-k
        subject's best photo (its exact score is ``>= S_k >= T``); otherwise (a few
        subjects own all the best rows, or a candidate buffer overflowed) the general
        numpy shortlist over all approximate scores is used. Either way the shortlist
        is re-scored exactly and ranked as :meth:`search_reference` ranks."""
        if k < 1:
            raise ValueError("k must be at least 1")
        if self._live_count == 0:
            return []
        q = self._query(query)
        approx, parts = self._scan(q, k, threads)
        rows = self._fast_shortlist(parts, approx, q, k)
        if rows is None:
            live_rows = np.flatnonzero(self._live) if self._deleted_rows.size else None
            if live_rows is None:
                live_rows = np.arange(self.rows)
            rows = self.shortlist(live_rows, approx[live_rows], q, k)
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
        """Build from ``(template_id, photo_id, subject_id, vector)`` rows, chunk by chunk."""
        tids, pids, sids, vectors = collect_rows(rows, dim)
        return cls(model_id, generation, vectors, pids, sids, template_ids=tids)

    def save(self, directory: Path) -> None:
        """Arrays under a fresh token, then the meta file: its rename is the commit point."""
        self.token = files.save_arrays(self, Path(directory))
        self.save_bitmap(directory)

    def save_bitmap(self, directory: Path, generation: int | None = None) -> None:
        """Persist the deletion bitmap (and a new generation): a few bytes per 8 rows,
        then the meta rename commits both. The big arrays are not touched."""
        if self.token is None:
            raise ValueError("save() the index before saving its bitmap")
        if generation is not None:
            self.generation = int(generation)
        files.save_bitmap(self, Path(directory), self.token)

    @staticmethod
    def read_meta(directory: Path, model_id: str) -> dict[str, Any]:
        """Raises FileNotFoundError when no index was saved for this model."""
        return files.read_meta(Path(directory), model_id)

    @classmethod
    def load(cls, directory: Path, model_id: str) -> FlatIndex:
        """Every large array is memory-mapped: opening costs no copy and no rebuild."""
        meta, arrays, deleted = files.load_arrays(Path(directory), model_id)
        index = cls(
            model_id,
            int(meta["generation"]),
            arrays["vectors"],
            np.asarray(arrays["photo_ids"]),
            np.asarray(arrays["subject_ids"]),
            template_ids=np.asarray(arrays["template_ids"]),
            deleted=deleted,
            codes=arrays["codes"],
            scales=np.asarray(arrays["scales"]),
        )
        index.token = str(meta["token"])
        return index

    token: str | None = None


def _gather(arr: NDArray[Any], rows: NDArray[np.intp]) -> Any:
    out = np.empty((rows.shape[0], *arr.shape[1:]), dtype=arr.dtype)
    for start in range(0, rows.shape[0], BLOCK_ROWS):
        out[start : start + BLOCK_ROWS] = arr[rows[start : start + BLOCK_ROWS]]
    return out
