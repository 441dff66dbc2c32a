"""Which full-scan kernel reads templates fastest? The options for the exact scan, measured.

(a) numba: the production kernel (``FlatIndex`` int8 scan with its heap and
    candidate bookkeeping, float32 lanes, 4 rows a pass), 1 and 2 threads;
(b) FAISS: IndexScalarQuantizer 8-bit (trained ranges, and direct signed),
    float16, and IndexFlatIP float32, top-50 search (OpenMP threads);
(c) numpy: float16 or int8 blocks converted to float32, then BLAS sgemv.

Each row reports the median latency of one query over ``n`` unit vectors of
the default model's dimension and the bytes that option reads per query
divided by that latency (GB/s), so options with different storage compare by
how close they come to the memory bandwidth.

    .venv/bin/python bench/scan_kernels.py [--n 1000000]

Writes bench/results/scan_kernels.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.embed import EMBEDDERS
from facelead.biometrics.fusion import model_config
from facelead.config import Settings
from facelead.index.flat import FlatIndex

if TYPE_CHECKING:
    import faiss

ROOT = Path(__file__).resolve().parent.parent
BLOCK = 512


def _median_ms(fn: Callable[[NDArray[np.float32]], Any], queries: NDArray[np.float32]) -> float:
    fn(queries[0])
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def _numpy_scan(matrix: NDArray[Any], threads: int, pool: ThreadPoolExecutor) -> Callable[..., Any]:
    n, d = matrix.shape

    def part(q: NDArray[np.float32], lo: int, hi: int, out: NDArray[np.float32]) -> None:
        buf = np.empty((BLOCK, d), np.float32)
        for s in range(lo, hi, BLOCK):
            e = min(s + BLOCK, hi)
            buf[: e - s] = matrix[s:e]
            np.matmul(buf[: e - s], q, out=out[s:e])

    def run(q: NDArray[np.float32]) -> None:
        out = np.empty(n, np.float32)
        per = -(-n // threads)
        futures = [pool.submit(part, q, lo, min(lo + per, n), out) for lo in range(0, n, per)]
        for f in futures:
            f.result()

    return run


def measure(n: int, dim: int, queries: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    qs = x[rng.integers(0, n, queries)]
    rows: list[dict[str, Any]] = []

    def record(option: str, name: str, threads: int, ms: float, nbytes: int) -> None:
        rows.append(
            {
                "option": option,
                "kernel": name,
                "threads": threads,
                "p50_ms": round(ms, 3),
                "bytes_per_query": nbytes,
                "gbps": round(nbytes / ms / 1e6, 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)

    flat = FlatIndex("bench", 1, x.astype(np.float16), np.arange(n), np.arange(n) // 3)
    scanned = n * (dim + 4)
    for t in (1, 2):
        record(
            "a",
            "numba int8 scan + shortlist (production)",
            t,
            _median_ms(partial(flat.search, k=50, threads=t), qs),
            scanned,
        )
        record(
            "a",
            "numba int8 scan only",
            t,
            _median_ms(partial(flat.approx_scores, threads=t), qs),
            scanned,
        )
    codes, f16 = np.asarray(flat.codes), x.astype(np.float16)
    del flat
    with ThreadPoolExecutor(2) as pool:
        for t in (1, 2):
            record(
                "c",
                "numpy int8->f32 + sgemv",
                t,
                _median_ms(_numpy_scan(codes, t, pool), qs),
                codes.nbytes,
            )
            record(
                "c",
                "numpy f16->f32 + sgemv",
                t,
                _median_ms(_numpy_scan(f16, t, pool), qs),
                f16.nbytes,
            )
    del codes, f16
    rows.extend(_faiss_rows(x, qs, record))
    return rows


def _top50(index: faiss.Index) -> Callable[[NDArray[np.float32]], object]:
    """One query's top-50 search on ``index`` (FAISS takes a batch: one row)."""
    return lambda q: index.search(q[None], 50)


def _faiss_rows(x: NDArray[np.float32], qs: NDArray[np.float32], record: Any) -> list[Any]:
    import faiss

    n, d = x.shape
    sq = faiss.ScalarQuantizer
    options = (
        ("SQ8 (trained ranges)", sq.QT_8bit, n * d),
        ("SQ8 direct signed", sq.QT_8bit_direct_signed, n * d),
        ("SQfp16", sq.QT_fp16, 2 * n * d),
        ("FlatIP float32", None, 4 * n * d),
    )
    for name, qtype, nbytes in options:
        index: faiss.Index
        if qtype is None:
            index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexScalarQuantizer(d, qtype, faiss.METRIC_INNER_PRODUCT)
            index.train(x[: min(n, 100_000)])
        index.add(x)
        for t in (1, 2):
            faiss.omp_set_num_threads(t)
            record(
                "b",
                f"faiss {name}",
                t,
                _median_ms(_top50(index), qs),
                nbytes,
            )
        del index
    return []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results" / "scan_kernels.json"
    )
    args = parser.parse_args()
    model_id = Settings().model_id
    dim = sum(int(EMBEDDERS[name]().dim) for name in model_config(model_id).names)
    start_load = os.getloadavg()
    rows = measure(args.n, dim, args.queries)
    payload = {
        "n": args.n,
        "model_id": model_id,
        "dim": dim,
        "cpus": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in start_load],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "rows": rows,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
