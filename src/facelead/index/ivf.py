"""Optional approximate search: an inverted file (IVF) over a :class:`FlatIndex`.

Off by default; nothing in the serving path builds one. A spherical k-means
coarse quantiser splits the rows into ``nlist`` lists; a query visits the
``nprobe`` lists whose centroids score highest, scores those rows from the int8
codes and re-ranks a provably sufficient shortlist of them exactly in float16
(the same shortlist rule as the exact scan). Only rows in unvisited lists can be
missed, so recall is measured against exact search on every build
(:func:`recall_at_k`), never assumed. Pure numpy: no extra dependency.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.index.flat import BLOCK_ROWS, FlatIndex, Hit


def _normalise(m: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: NDArray[np.float32] = (m / norms).astype(np.float32)
    return out


class IVFIndex:
    """Coarse lists over a flat index's rows; the flat index keeps vectors and bitmap.

    Face templates share a large common component (mean inter-class cosine of
    fused LFW templates is about 0.6), which a plain k-means spends its
    centroids on. Clustering is therefore done on ``x - mean``: for a fixed
    query ``q . x = q . mean + q . (x - mean)``, so ranking is unchanged and the
    lists follow what actually separates identities.
    """

    def __init__(
        self,
        flat: FlatIndex,
        centroids: NDArray[np.float32],
        assign: NDArray[Any],
        mean: NDArray[np.float32] | None = None,
    ):
        self.flat = flat
        self.centroids = centroids
        self.mean = np.zeros(flat.dim, np.float32) if mean is None else mean
        order = np.argsort(assign, kind="stable")
        self.list_rows: NDArray[np.int64] = order.astype(np.int64)
        counts = np.bincount(assign, minlength=centroids.shape[0])
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.build_seconds = 0.0

    @property
    def nlist(self) -> int:
        return int(self.centroids.shape[0])

    @classmethod
    def build(
        cls,
        flat: FlatIndex,
        nlist: int | None = None,
        *,
        sample: int = 100_000,
        iterations: int = 10,
        seed: int = 0,
    ) -> IVFIndex:
        started = time.perf_counter()
        n = flat.rows
        nlist = nlist or max(1, int(4 * np.sqrt(max(n, 1))))
        nlist = max(1, min(nlist, n))
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(n, size=min(n, max(sample, nlist)), replace=False))
        raw = np.asarray(flat.vectors[pick], dtype=np.float32)
        mean = raw.mean(axis=0).astype(np.float32)
        train = _normalise(raw - mean)
        del raw
        centroids = train[rng.choice(train.shape[0], size=nlist, replace=False)].copy()
        for _ in range(iterations):
            labels = np.argmax(train @ centroids.T, axis=1)
            sums = np.zeros_like(centroids)
            np.add.at(sums, labels, train)
            empty = np.bincount(labels, minlength=nlist) == 0
            sums[empty] = train[rng.choice(train.shape[0], size=int(empty.sum()))]
            centroids = _normalise(sums)
        assign = np.empty(n, dtype=np.int64)
        for start in range(0, n, BLOCK_ROWS // 4):
            block = np.asarray(flat.vectors[start : start + BLOCK_ROWS // 4], dtype=np.float32)
            block -= mean
            assign[start : start + len(block)] = np.argmax(block @ centroids.T, axis=1)
        index = cls(flat, centroids, assign, mean)
        index.build_seconds = time.perf_counter() - started
        return index

    def probe_rows(self, q: NDArray[np.float32], nprobe: int) -> NDArray[np.int64]:
        nprobe = max(1, min(nprobe, self.nlist))
        lists = np.argpartition(-(self.centroids @ q), nprobe - 1)[:nprobe]
        parts = [self.list_rows[self.offsets[c] : self.offsets[c + 1]] for c in lists]
        rows = np.sort(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        if self.flat.deleted.any():
            rows = rows[~self.flat.deleted[rows]]
        return rows

    def search(self, query: NDArray[Any], k: int, nprobe: int = 32) -> list[Hit]:
        if k < 1:
            raise ValueError("k must be at least 1")
        if len(self.flat) == 0:
            return []
        flat = self.flat
        q = flat._query(query)
        rows = self.probe_rows(q, nprobe)
        if rows.size == 0:
            return []
        approx = np.asarray(flat.codes[rows], dtype=np.float32) @ q
        approx *= np.asarray(flat.scales)[rows]
        short = flat.shortlist(rows, approx, q, k)
        return flat.rank(short, flat.exact_rows(short, q), k)


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
