"""Optional approximate search with FAISS: small compressed codes, then an exact re-rank.

Off by default: nothing in the serving path builds one, and ``faiss`` (the
``ann`` extra, ``faiss-cpu``) is imported only here. The FAISS index is named
by a factory string over ``x - mean``; the default (:func:`default_factory`)
is a PCA to 128 dimensions and an exhaustive 4-bit product-quantiser fast scan
of them (``PCAR128,PQ64x4fs``: 32 bytes a template at any dimension, a
twentieth of the int8 scan at 640-d); an ``IVF{nlist},...`` string adds
inverted lists with ``nprobe``. A query takes the ``rerank`` best rows by
their compressed scores, scores those rows from the flat index's int8 codes
(a compiled gather), lets the flat index's provable shortlist pick the few
that need their float16 rows, and ranks subjects exactly as the flat index
does. Only rows below the re-rank cut (or in unvisited lists) can be missed,
so recall is measured against exact search on every build that is given
probes (:meth:`ApproxIndex.calibrate` raises ``rerank`` or ``nprobe`` until
the target is met), never assumed.

Why the reduction: a fast scan costs time in proportion to its code bytes, and
a compressed score only has to put the true top rows inside a re-rank of a
few thousand, which the int8 gather makes cheap. Face templates vary in
comparatively few directions (the top 128 hold 93 % of the variance of the
fused LFW templates); the PCA keeps those, a random rotation spreads them
evenly over the sub-quantisers, and the exact re-rank restores the dropped
directions' part of the score. Measured with fusion-v3 (640-d, LFW-fitted
galleries, docs/scale.md): at 1M, ``PQ320x4fs`` (160 bytes) needed 1,024
re-ranked rows for recall@50 0.997 and ``PCAR128,PQ64x4fs`` needed 2,048 for
0.991 at a fifth of the bytes; at 10M it reached 0.995 with 8,192 rows in
16 ms (bench/results/search.json). Smaller codes need far larger re-ranks
(``PCAR96,PQ48x4fs``: 32,768 rows for 0.990 at 10M).

Why not IVF by default: apart from the mate, the top 50 subjects of a probe
are impostors from a dense band of scores spread over all of the space, and
IVF lists do not localise them: at 1M ``PCAR128,IVF1024,PQ64x4fs`` reached
recall@50 0.973 with half of the lists probed (0.864 with a quarter).

The codes are of ``x - mean`` (face templates share a common component a
quantiser would spend its codes on): for a fixed query ``q . x = q . mean +
q . (x - mean)``, so the ranking is unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from facelead.index.flat import FlatIndex
from facelead.index.scan_setup import BLOCK_ROWS, Hit, default_threads

NPROBES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
"""The ``nprobe`` values :meth:`ApproxIndex.calibrate` tries for an IVF index, in order."""
SHARD_MIN_ROWS = 65_536
"""Below this many rows an exhaustive index stays in one shard."""
RERANKS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)
"""The ``rerank`` values it tries for an exhaustive one."""
REDUCED_DIM = 128
"""Dimensions the default factory's PCA keeps (chosen at 1M and 10M: docs/scale.md)."""


@njit(nogil=True, fastmath=True, cache=True, boundscheck=False)  # type: ignore[misc]
def _gather_dots(codes: Any, scales: Any, rows: Any, q: Any, out: Any) -> None:  # pragma: no cover
    """``out[i] = scales[r] * (codes[r] . q)`` for ``r = rows[i]``, float32 in any order (the
    flat index's error bound allows it). Reads only the re-ranked rows' int8 codes: a
    numpy gather would first copy them and widen the copy to float32."""
    d = codes.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        acc = np.float32(0.0)
        for j in range(d):
            acc += np.float32(codes[r, j]) * q[j]
        out[i] = scales[r] * acc


def _faiss() -> Any:
    import faiss

    return faiss


def _copy(faiss: Any, index: Any) -> Any:
    """A trained, empty copy; through serialisation for the index types that
    ``clone_index`` does not know (RaBitQ fast scan)."""
    try:
        return faiss.clone_index(index)
    except RuntimeError:
        return faiss.deserialize_index(faiss.serialize_index(index))


def _shard(faiss: Any, trained: Any, n: int, threads: int, ivf: bool) -> list[Any]:
    """``(index, first row, end row)`` per shard: an exhaustive fast scan answers one
    query on one thread, so it is split into one contiguous shard per thread, searched
    in parallel (``IndexShards``, ids offset in order: still row numbers). IVF indexes
    split the lists of one query across threads themselves: one shard."""
    count = 1 if ivf or n < SHARD_MIN_ROWS else max(1, threads)
    per = -(-n // count)
    parts = [trained] + [_copy(faiss, trained) for _ in range(count - 1)]
    return [(part, i * per, min(n, (i + 1) * per)) for i, part in enumerate(parts)]


def default_nlist(n: int) -> int:
    """About ``1.3 sqrt(n)`` lists, a power of two (4096 at 10M, 1024 at 1M)."""
    return int(max(1, min(n, 2 ** round(np.log2(max(1.0, 1.3 * np.sqrt(n)))))))


def default_factory(dim: int) -> str:
    """PCA to at most ``REDUCED_DIM`` dimensions (then a random rotation, which spreads
    their variance evenly over the sub-quantisers), then a 4-bit PQ fast scan of two
    dimensions per sub-quantiser: ``PCAR128,PQ64x4fs``, 32 bytes a template, at 640-d.
    The scan's cost is its code bytes; the directions PCA drops hold little of the
    templates' variance, and the exact re-rank restores their part of the score."""
    kept = min(dim, REDUCED_DIM) // 2 * 2
    return f"PCAR{kept},PQ{kept // 2}x4fs" if kept >= 2 else "SQ8"


@dataclass(frozen=True, slots=True)
class Calibration:
    nprobe: int
    rerank: int
    recall: float
    p50_ms: float
    tried: tuple[tuple[int, int, float, float], ...]  # (nprobe, rerank, recall, p50 ms)


class ApproxIndex:
    """A FAISS index of ``x - mean`` whose ids are flat-index rows; the flat index keeps
    the float16 vectors (exact re-rank) and the deletion bitmap."""

    def __init__(self, flat: FlatIndex, index: Any, mean: NDArray[np.float32], factory: str):
        self.flat = flat
        self.index = index
        self.mean = mean
        self.factory = factory
        self.nprobe = 1
        self.rerank = 2048
        self.build_seconds = 0.0
        self.calibration: Calibration | None = None
        self.parts: list[Any] = [index]

    @property
    def nlist(self) -> int:
        """Inverted lists (0 for an exhaustive index), also behind a transform (``PCAR..``)."""
        ivf = _faiss().try_extract_index_ivf(self.parts[0] if self.parts else self.index)
        return 0 if ivf is None else int(ivf.nlist)

    @classmethod
    def build(
        cls,
        flat: FlatIndex,
        factory: str | None = None,
        *,
        sample: int = 200_000,
        seed: int = 0,
        threads: int | None = None,
    ) -> ApproxIndex:
        """Train on a sample of ``x - mean``, then add every row in chunks (float16 to
        float32 one chunk at a time: peak memory is the codes plus one chunk)."""
        faiss = _faiss()
        faiss.omp_set_num_threads(threads or default_threads())
        started = time.perf_counter()
        n, d = flat.rows, flat.dim
        factory = factory or default_factory(d)
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n, size=min(n, sample), replace=False))
        train = np.asarray(flat.vectors[pick], dtype=np.float32)
        mean = train.mean(axis=0).astype(np.float32)
        train -= mean
        index = faiss.index_factory(d, factory, faiss.METRIC_INNER_PRODUCT)
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.cp.spherical = True
            ivf.cp.seed = seed
            ivf.parallel_mode = 1  # one query at a time: split its lists across threads
        index.train(train)
        del train
        shards = _shard(faiss, index, n, threads or default_threads(), ivf is not None)
        for part, lo, hi in shards:
            for start in range(lo, hi, BLOCK_ROWS):
                stop = min(start + BLOCK_ROWS, hi)
                block = np.asarray(flat.vectors[start:stop], dtype=np.float32)
                block -= mean
                part.add(block)  # ids are row numbers: rows are added in order
        top = index if len(shards) == 1 else faiss.IndexShards(d, True, True)
        for part, _, _ in shards if len(shards) > 1 else []:
            top.add_shard(part)
        approx = cls(flat, top, mean, factory)
        approx.parts = [part for part, _, _ in shards]  # faiss does not own its shards
        approx.build_seconds = time.perf_counter() - started
        return approx

    def candidate_rows(self, q: NDArray[np.float32], nprobe: int, rerank: int) -> Any:
        """The ``rerank`` best live rows by their compressed scores."""
        if self.nlist:
            faiss = _faiss()
            for part in self.parts:
                faiss.extract_index_ivf(part).nprobe = max(1, min(nprobe, self.nlist))
        _, ids = self.index.search(q[None, :], min(rerank, self.flat.rows))
        rows = ids[0][ids[0] >= 0]
        if self.flat.deleted.any():
            rows = rows[~self.flat.deleted[rows]]
        return rows.astype(np.intp)

    def search(
        self, query: NDArray[Any], k: int, nprobe: int | None = None, rerank: int | None = None
    ) -> list[Hit]:
        """Approximate top-k subjects; every returned score is exact."""
        if k < 1:
            raise ValueError("k must be at least 1")
        flat = self.flat
        if len(flat) == 0:
            return []
        q = flat._query(query)
        rows = self.candidate_rows(q, nprobe or self.nprobe, max(rerank or self.rerank, k))
        if rows.size == 0:
            return []
        rows.sort()  # the int8 rows are then read in file order
        approx = np.empty(rows.shape[0], dtype=np.float32)
        _gather_dots(np.asarray(flat.codes), np.asarray(flat.scales), rows, q, approx)
        short = flat.shortlist(rows, approx, q, k)  # int8 bound: few float16 rows read
        return flat.rank(short, flat.exact_rows(short, q), k)

    def _settings(self) -> list[tuple[int, int]]:
        if self.nlist:
            probes = sorted({min(p, self.nlist) for p in NPROBES})
            return [(p, self.rerank) for p in probes]
        rows = self.flat.rows
        return [(1, r) for r in RERANKS if r < rows] + ([(1, rows)] if rows <= RERANKS[-1] else [])

    def calibrate(
        self,
        queries: NDArray[Any],
        k: int,
        *,
        target: float = 0.99,
        exact: Sequence[Sequence[Hit]] | None = None,
    ) -> Calibration:
        """Raise ``nprobe`` (IVF) or ``rerank`` until recall@k against exact search reaches
        ``target`` on ``queries`` (real probes); keeps and returns the first setting that
        does (or the largest tried), with its recall and median latency."""
        want = list(exact) if exact is not None else [self.flat.search(q, k) for q in queries]
        tried: list[tuple[int, int, float, float]] = []
        for nprobe, rerank in self._settings():
            times, got = [], []
            for q in queries:
                start = time.perf_counter()
                got.append(self.search(q, k, nprobe=nprobe, rerank=rerank))
                times.append(time.perf_counter() - start)
            recall = recall_at_k(want, got, k)
            tried.append((nprobe, rerank, recall, float(np.median(times)) * 1e3))
            if recall >= target:
                break
        nprobe, rerank, recall, p50 = tried[-1]
        self.nprobe, self.rerank = nprobe, rerank
        self.calibration = Calibration(nprobe, rerank, recall, p50, tuple(tried))
        return self.calibration


def recall_at_k(exact: Sequence[Sequence[Hit]], approx: Sequence[Sequence[Hit]], k: int) -> float:
    """Mean fraction of the exact top-k subjects that the approximate list also names."""
    if not exact:
        return 1.0
    total = 0.0
    for want, got in zip(exact, approx, strict=True):
        want_ids = {h.subject_id for h in list(want)[:k]}
        got_ids = {h.subject_id for h in list(got)[:k]}
        total += len(want_ids & got_ids) / max(1, len(want_ids))
    return total / len(exact)
