"""Compiled scan kernels (numba), imported on the first search, never at package import.

numpy has no BLAS path for int8, so a numpy scan of the int8 codes pays an
int8-to-float32 conversion plus a matrix-vector call per block and reaches a
fraction of the memory bandwidth. These kernels stream the codes once: a dot
product per row (four rows per pass over the query, float32 lanes), the row
scale applied in place, and, in the same pass, the bookkeeping the exact
shortlist needs (a bounded heap of the best lower bounds, and every row whose
upper bound reaches the running heap threshold). ``nogil=True`` lets the
caller's threads run disjoint row ranges in parallel; numba's own threading
layer is not used (its default layer is not safe for concurrent callers,
and a server searches from several threads at once).

``cache=True`` keeps the compiled machine code next to this file (or in
numba's user cache directory when that is read-only), so only the first
search after an install pays the compilation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

UNROLL = 4
"""Rows per pass over the query. Callers cut ranges at multiples of this, so a row's
approximate score never depends on how the scan was split across threads."""


@intrinsic  # type: ignore[misc]
def _prefetch(typingctx: Any, arr: Any, offset: Any) -> Any:  # pragma: no cover
    """``llvm.prefetch`` of byte ``offset`` of a C-contiguous array (read, keep in cache)."""
    sig = types.void(arr, types.intp)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array = context.make_array(signature.args[0])(context, builder, args[0])
        base = builder.bitcast(array.data, ir.IntType(8).as_pointer())
        ptr = builder.gep(base, [args[1]])
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, fnty, "llvm.prefetch.p0"
        )
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, fastmath=True, cache=True, boundscheck=False)  # type: ignore[misc]
def _dots(codes: Any, q: Any, lo: int, hi: int, out: Any) -> None:  # pragma: no cover
    """``out[i] = codes[i] . q`` in float32 (any summation order: the error bound allows it).

    The next four rows are prefetched while four are computed: the interleaved
    reads of four rows defeat the hardware prefetcher enough that this alone made
    the scan of a 1M x 256 matrix from memory about 1.26 times faster (paired runs)."""
    d = codes.shape[1]
    n = codes.shape[0]
    i = lo
    while i + 4 <= hi:
        if i + 8 <= n:
            ahead = (i + 4) * d
            for off in range(0, 4 * d, 64):
                _prefetch(codes, ahead + off)  # type: ignore[call-arg]
        a0 = np.float32(0.0)
        a1 = np.float32(0.0)
        a2 = np.float32(0.0)
        a3 = np.float32(0.0)
        for j in range(d):
            qj = q[j]
            a0 += np.float32(codes[i, j]) * qj
            a1 += np.float32(codes[i + 1, j]) * qj
            a2 += np.float32(codes[i + 2, j]) * qj
            a3 += np.float32(codes[i + 3, j]) * qj
        out[i] = a0
        out[i + 1] = a1
        out[i + 2] = a2
        out[i + 3] = a3
        i += 4
    while i < hi:
        a = np.float32(0.0)
        for j in range(d):
            a += np.float32(codes[i, j]) * q[j]
        out[i] = a
        i += 1


@njit(nogil=True, cache=True, boundscheck=False)  # type: ignore[misc]
def _heap_push(vals: Any, rows: Any, size: int, value: float, row: int) -> int:  # pragma: no cover
    """Min-heap of the best ``len(vals)`` lower bounds; returns the new size."""
    cap = vals.shape[0]
    if size < cap:
        pos = size
        size += 1
    elif value > vals[0]:
        pos = 0
        while True:  # sift the new value down from the root
            left = 2 * pos + 1
            if left >= cap:
                break
            child = left
            if left + 1 < cap and vals[left + 1] < vals[left]:
                child = left + 1
            if vals[child] >= value:
                break
            vals[pos] = vals[child]
            rows[pos] = rows[child]
            pos = child
        vals[pos] = value
        rows[pos] = row
        return size
    else:
        return size
    while pos > 0:  # sift up
        parent = (pos - 1) // 2
        if vals[parent] <= value:
            break
        vals[pos] = vals[parent]
        rows[pos] = rows[parent]
        pos = parent
    vals[pos] = value
    rows[pos] = row
    return size


@njit(nogil=True, cache=True, boundscheck=False)  # type: ignore[misc]
def scan_select(  # pragma: no cover
    codes: Any,
    scales: Any,
    deleted: Any,
    q: Any,
    eps_factor: float,
    lo: int,
    hi: int,
    approx: Any,
    heap_vals: Any,
    heap_rows: Any,
    cand: Any,
    state: Any,
) -> None:
    """Scan rows ``[lo, hi)``: ``approx[i] = scales[i] * (codes[i] . q)``; for live rows,
    keep the ``len(heap_vals)`` best lower bounds ``approx - eps`` and append to ``cand``
    every row whose upper bound ``approx + eps`` reaches the heap's current minimum
    (minus infinity until the heap is full). ``eps = scales[i] * eps_factor``.

    ``state`` receives [heap size, candidates, overflowed (1 if ``cand`` filled up),
    final threshold bits unused]. The threshold only rises, so the collected rows
    include every row whose upper bound reaches the final threshold.
    """
    step = 256
    size = 0
    ncand = 0
    overflow = 0
    cap = cand.shape[0]
    full = heap_vals.shape[0]
    threshold = -np.inf  # the heap's minimum once it is full
    for b in range(lo, hi, step):
        e = min(b + step, hi)
        _dots(codes, q, b, e, approx)
        for i in range(b, e):
            s = scales[i]
            a = approx[i] * s
            approx[i] = a
            if deleted[i]:
                continue
            eps = s * eps_factor
            if size < full or a - eps > threshold:  # the common case skips the heap
                size = _heap_push(heap_vals, heap_rows, size, a - eps, i)
                if size == full:
                    threshold = heap_vals[0]
            if a + eps >= threshold:
                if ncand < cap:
                    cand[ncand] = i
                    ncand += 1
                else:
                    overflow = 1
    state[0] = size
    state[1] = ncand
    state[2] = overflow


@njit(nogil=True, cache=True, boundscheck=False)  # type: ignore[misc]
def exact_dots(block: Any, q: Any, out: Any) -> None:  # pragma: no cover
    """Float64 inner products in a fixed, sequential order: the exact score of a row is
    the same number whether it comes from a shortlist or a full brute-force scan."""
    d = block.shape[1]
    for i in range(block.shape[0]):
        acc = 0.0
        for j in range(d):
            acc += block[i, j] * q[j]
        out[i] = acc
