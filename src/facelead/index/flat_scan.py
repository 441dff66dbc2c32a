"""The int8 scan and the provable shortlist of :class:`~facelead.index.flat.FlatIndex`.

A mixin rather than free functions, so that the index keeps one method namespace:
:mod:`facelead.index.ivf` calls ``shortlist`` on a flat index, and the tests patch the
scan constants here (``SMALL_SCAN``, ``SCAN_ROWS``, ``MAX_HEAP``), where they are read.
The proof that the shortlist holds every top-k subject's best photo is in the
docstring of ``flat.py`` and in docs/scale.md.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from facelead.index.scan_setup import MAX_HEAP, PIECES_PER_THREAD, SCAN_ROWS, SMALL_SCAN
from facelead.index.scan_setup import Part as _Part
from facelead.index.scan_setup import kernels as _kernels
from facelead.index.scan_setup import scan_pool as _pool

if TYPE_CHECKING:
    import threading


class FlatScan:
    """Scan and shortlist methods; :class:`FlatIndex` supplies the arrays they read."""

    if TYPE_CHECKING:
        codes: NDArray[np.int8]
        scales: NDArray[np.float32]
        deleted: NDArray[np.bool_]
        all_subject_ids: NDArray[np.int64]
        threads: int
        _local: threading.local

        @property
        def rows(self) -> int: ...

        @property
        def dim(self) -> int: ...

        def _query(self, query: NDArray[Any]) -> NDArray[np.float32]: ...

    # -- the int8 pass ----------------------------------------------------------------------
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

    # -- its error bound --------------------------------------------------------------------
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

    # -- shortlists: rows that may hold a top-k subject's best photo ------------------------
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
