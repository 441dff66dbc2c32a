"""What the exact scan runs on: thread pools, the numba kernels, per-thread scan state
and the int8 quantiser, kept apart from the index itself (``flat.py``).

The kernels are compiled (or loaded from numba's cache) on first use, never at
import time, so importing the index costs nothing until the first search.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

BLOCK_ROWS = 65_536
"""Rows per chunk when building from rows and when computing full float16 scores."""
SCAN_ROWS = 512
"""Thread ranges start at multiples of this (a multiple of the kernel's 4-row unroll)."""
MAX_HEAP = 16_384
"""Most best-lower-bound rows a scan thread keeps (2 k photos-per-subject, at least 64)."""
SMALL_SCAN = 32_768
"""Below this many rows a scan runs on the calling thread."""
PIECES_PER_THREAD = 4
"""Row ranges per scan thread on large indexes (dynamic hand-out)."""
CANDIDATES = 65_536
"""Candidate rows a scan thread may collect before the general shortlist takes over."""
_POOLS: dict[int, ThreadPoolExecutor] = {}


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def scan_pool(threads: int) -> ThreadPoolExecutor:
    pool = _POOLS.get(threads)
    if pool is None:
        pool = _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="facelead-scan")
    return pool


def kernels() -> Any:
    """The numba kernels, imported (and compiled or loaded from cache) on first use."""
    _prefer_wide_vectors()
    from facelead.index import _scan

    return _scan


def _prefer_wide_vectors() -> None:
    """Let LLVM use 512-bit vectors on AVX-512 CPUs (its default tuning for them stops at
    256), halving the scan's vector instructions per byte. Measured effect: within the
    noise of this shared machine (docs/scale.md); the published benchmarks ran with it.
    It applies to numba's process-wide code generator, so it only takes effect before
    numba's first compilation in the process, and never overrides an explicit
    ``NUMBA_CPU_FEATURES``; it changes no result (the error bound holds for any
    summation order)."""
    from numba.core import config

    current = config.CPU_FEATURES  # type: ignore[attr-defined]
    if current is None and not os.environ.get("NUMBA_CPU_FEATURES"):
        import llvmlite.binding as llvm

        features = llvm.get_host_cpu_features().flatten()
        if "+avx512f" in features.split(","):
            config.CPU_FEATURES = features + ",-prefer-256-bit"  # type: ignore[attr-defined]


def exact(block: NDArray[Any], q: NDArray[np.float32], out: NDArray[np.float64]) -> None:
    """Exact float64 scores of float16 rows (see ``_scan.exact_dots``)."""
    kernels().exact_dots(np.asarray(block, dtype=np.float64), q.astype(np.float64), out)


@dataclass(slots=True)
class Part:
    """One scan thread's row range and its outputs (heap of best lower bounds, candidates)."""

    lo: int
    hi: int
    heap: int
    heap_vals: NDArray[np.float32] = field(init=False)
    heap_rows: NDArray[np.int64] = field(init=False)
    cand: NDArray[np.int64] = field(init=False)
    state: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self.heap_vals = np.empty(self.heap, dtype=np.float32)
        self.heap_rows = np.empty(self.heap, dtype=np.int64)
        self.cand = np.empty(CANDIDATES, dtype=np.int64)
        self.state = np.zeros(3, dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Hit:
    photo_id: int
    subject_id: int
    score: float


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
