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
needed (docs/scale.md has the proof).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.index import files
from facelead.index.files import check_model_id, collect_rows
from facelead.index.scan_setup import (
    BLOCK_ROWS,
    MAX_HEAP,
    PIECES_PER_THREAD,
    SCAN_ROWS,
    SMALL_SCAN,
    Hit,
    default_threads,
    quantise,
)
from facelead.index.scan_setup import Part as _Part
from facelead.index.scan_setup import exact as _exact
from facelead.index.scan_setup import kernels as _kernels
from facelead.index.scan_setup import scan_pool as _pool


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel a search uses, on a toy index:
    a serving worker calls this at start so no request pays the compilation."""
    rng = np.random.default_rng(0)
    toy = FlatIndex("warm-up", 0, rng.standard_normal((8, 4)), np.arange(8), np.arange(8) // 2)
    toy.search(rng.standard_normal(4), 2, threads=1)


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

    def _workers(self, threads: int | None) -> int:
        """Threads for one scan: one below ``SMALL_SCAN`` rows (a thread hand-off costs
        more than such a scan)."""
        return 1 if self.rows < SMALL_SCAN else max(1, threads or self.threads)

    def _ranges(self, workers: int) -> list[tuple[int, int]]:
        """Contiguous row ranges cut at multiples of ``SCAN_ROWS``: one per thread, or
        ``PIECES_PER_THREAD`` per thread on large indexes, handed out as threads free up,
        so a core taken by another process delays a piece, not half of the scan."""
        n = self.rows
        pieces = workers * (PIECES_PER_THREAD if n >= 8 * SMALL_SCAN and workers > 1 else 1)
        per = -(-n // pieces) if n else 0
        per = -(-per // SCAN_ROWS) * SCAN_ROWS
        return [(lo, min(lo + per, n)) for lo in range(0, n, per)] if n else []

    def _run(self, jobs: list[Any], workers: int) -> None:
        if workers == 1:
            for job in jobs:
                job()
            return
        futures = [_pool(workers).submit(job) for job in jobs]
        for future in futures:
            future.result()

    def _scan(
        self, q: NDArray[np.float32], k: int, threads: int | None
    ) -> tuple[NDArray[np.float32], list[_Part]]:
        """The int8 pass: approximate scores of every row plus, per thread, its heap of
        best lower bounds and its collected candidate rows (see ``_scan.scan_select``)."""
        kernels = _kernels()
        approx = self._scratch()
        factor = float(self.eps_factor(q))
        heap = int(min(max(64, 2 * k * self._photos_per_subject()), MAX_HEAP))
        workers = self._workers(threads)
        parts = [_Part(lo, hi, heap) for lo, hi in self._ranges(workers)]
        deleted = self.deleted.view(np.uint8)
        codes, scales = np.asarray(self.codes), np.asarray(self.scales)  # plain views of maps
        jobs = [
            partial(
                kernels.scan_select,
                codes,
                scales,
                deleted,
                q,
                factor,
                p.lo,
                p.hi,
                approx,
                p.heap_vals,
                p.heap_rows,
                p.cand,
                p.state,
            )
            for p in parts
        ]
        self._run(jobs, workers)
        return approx, parts

    def approx_scores(self, query: NDArray[Any], threads: int | None = None) -> NDArray[np.float32]:
        """``scales * (codes @ q)`` for every row, the scan split across threads."""
        return self._scan(self._query(query), 1, threads)[0].copy()

    def _scratch(self) -> NDArray[np.float32]:
        """This thread's approximate-score buffer, reused across its searches: a fresh
        40 MB array per query at 10M rows costs ten thousand page faults."""
        buffer: NDArray[np.float32] | None = getattr(self._local, "approx", None)
        if buffer is None or buffer.shape[0] != self.rows:
            buffer = self._local.approx = np.empty(self.rows, dtype=np.float32)
        return buffer

    def _photos_per_subject(self) -> int:
        """Rows per subject (rounded up), so the heap of best rows spans enough subjects."""
        if self._per_subject is None:
            subjects = max(1, np.unique(self.all_subject_ids).size)
            self._per_subject = max(1, -(-self.rows // subjects))
        return self._per_subject

    _per_subject: int | None = None

    def eps_factor(self, q: NDArray[np.float32]) -> np.float32:
        """``C`` with ``|approx_r - exact_r| <= scales[r] * C`` for every row ``r``.

        Quantisation: ``|x_j - s*c_j| <= s/2`` gives ``s/2 * ||q||_1``. Float32
        accumulation in any order adds at most ``(d+2) u * sum|s c_j q_j|`` with
        ``|c_j| <= 127``; the ``2 d 1.2e-7 * 127`` term covers it four times over, and
        the factor 1.001 covers the rounding of ``s*C`` and ``approx +- eps`` themselves.
        The exact side is float64 (error ~1e-16, far inside the margin)."""
        slack = 0.5 + 2.0 * self.dim * 1.2e-7 * 127.0
        return np.float32(float(np.abs(q).sum()) * slack * 1.001 + 1e-7)

    def error_bounds(self, q: NDArray[np.float32], rows: NDArray[Any] | None = None) -> Any:
        """Upper bound of ``|approx - exact|`` per row (quantisation plus float32 rounding)."""
        scales = self.scales if rows is None else self.scales[rows]
        return scales * self.eps_factor(q)

    # -- ranking ----------------------------------------------------------------------------
    def _candidate_rows(self, scores: NDArray[Any], k: int) -> NDArray[np.intp]:
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

    def _fast_shortlist(
        self, parts: list[_Part], approx: NDArray[np.float32], q: NDArray[np.float32], k: int
    ) -> NDArray[np.intp] | None:
        """Rows with upper bound ``>= T`` from the kernel's heaps and candidates, or None
        when the heaps do not prove the collected rows sufficient."""
        if any(p.state[2] for p in parts):
            return None
        top_rows = np.concatenate([p.heap_rows[: p.state[0]] for p in parts])
        top_low = np.concatenate([p.heap_vals[: p.state[0]] for p in parts])
        order = np.argsort(-top_low, kind="stable")
        _, first = np.unique(self.all_subject_ids[top_rows[order]], return_index=True)
        best = np.sort(top_low[order][first])[::-1]
        if best.size < k:  # proven only if no heap filled up: then every live row is here
            full = any(p.state[0] == p.heap_vals.shape[0] for p in parts)
            return None if full else self._all_candidates(parts)
        threshold = best[k - 1]
        for p in parts:
            if p.state[0] == p.heap_vals.shape[0] and p.heap_vals[0] > threshold:
                return None
        cand = self._all_candidates(parts)
        upper = approx[cand] + self.scales[cand] * self.eps_factor(q)
        kept: NDArray[np.intp] = cand[upper >= threshold]
        return kept

    def _all_candidates(self, parts: list[_Part]) -> NDArray[np.intp]:
        return np.concatenate([p.cand[: p.state[1]] for p in parts]).astype(np.intp)

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
