"""Exact and approximate 1:N search latency against the machine's memory bandwidth.

For each gallery size the script writes a float16 matrix in chunks (synthetic
identity clusters fitted to real LFW fused templates of the configured default
model, with every real LFW template planted), builds the index (int8 scan codes
+ bitmap + ids), saves it, re-opens it through the memory map, then times real
LFW probes whose mates are planted: exact search on both cores (and on one),
and the FAISS approximate mode (``ivf.default_factory``: PCA to 128 dimensions and
a 4-bit PQ fast scan, or ``--factory``) with exact re-rank, its re-ranked rows
raised until recall@50 against exact reaches ``TARGET`` on those probes, then
checked on ``--holdout`` probes that took no part in choosing it (their images are
not planted either; their mates are). Read bandwidth is measured in the same run.

    .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--queries 30]

Writes bench/results/search.json (``--append`` keeps the other sizes already there).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap
from numpy.typing import NDArray

from facelead.config import Settings
from facelead.index.flat import FlatIndex, warm_up
from facelead.index.ivf import ApproxIndex, recall_at_k
from search_inputs import PHOTOS_PER_SUBJECT, Synth, cosine_stats, read_bandwidth, real_templates

ROOT = Path(__file__).resolve().parent.parent
K = 50
TARGET = 0.995
"""Recall@50 the calibration aims for: a margin over the issue's 0.99, because the setting
is chosen on 30 probes and must also hold on the held-out ones."""
CHUNK = 100_000


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, p))


def choose_probes(labels: NDArray[np.int64], queries: int, seed: int) -> list[int]:
    """One held-out image of each real identity that has two or more (its mates stay)."""
    rng = np.random.default_rng(seed)
    probe_idx: list[int] = []
    for ident in rng.permutation(np.unique(labels)):
        members = np.flatnonzero(labels == ident)
        if members.size >= 2:
            probe_idx.append(int(members[0]))
        if len(probe_idx) >= queries:
            break
    return probe_idx


def write_gallery(
    n: int,
    real: NDArray[np.float32],
    labels: NDArray[np.int64],
    stats: dict[str, float],
    probe_idx: list[int],
    path: Path,
) -> tuple[Any, NDArray[np.int64]]:
    """Float16 gallery on disk, written chunk by chunk (10M never sits in memory)."""
    planted = np.setdiff1d(np.arange(len(real)), probe_idx)
    planted = planted[: min(planted.size, n // 2)]
    synth_rows = n - planted.size
    vectors = open_memmap(path, mode="w+", dtype=np.float16, shape=(n, real.shape[1]))
    synth = Synth(real, stats, seed=n)
    done = 0
    while done < synth_rows:
        take = min(CHUNK, synth_rows - done)
        block = synth.chunk(-(-take // PHOTOS_PER_SUBJECT))[:take]
        vectors[done : done + take] = block.astype(np.float16)
        done += take
    vectors[synth_rows:] = real[planted].astype(np.float16)
    vectors.flush()
    subject_ids = np.empty(n, np.int64)
    subject_ids[:synth_rows] = np.arange(synth_rows) // PHOTOS_PER_SUBJECT + 1_000_000
    subject_ids[synth_rows:] = labels[planted]
    return vectors, subject_ids


def time_exact(index: FlatIndex, probes: NDArray[np.float32]) -> dict[str, Any]:
    index.search(probes[0], K)  # page in, compile or load the kernels
    times, exact = [], []
    for q in probes:
        start = time.perf_counter()
        exact.append(index.search(q, K))
        times.append(time.perf_counter() - start)
    one_thread = []
    for q in probes[: max(3, len(probes) // 3)]:
        start = time.perf_counter()
        index.search(q, K, threads=1)
        one_thread.append(time.perf_counter() - start)
    checks = 3 if index.rows <= 1_000_000 else 1
    same = all(index.search_reference(q, K) == exact[i] for i, q in enumerate(probes[:checks]))
    return {
        "times": times,
        "one_thread": one_thread,
        "hits": exact,
        "brute_force_checks": checks,
        "matches_brute_force": same,
    }


def holdout_recall(ann: ApproxIndex, index: FlatIndex, held: NDArray[np.float32]) -> float | None:
    """Recall@50 of the calibrated setting on probes the calibration never saw: the
    calibration's own figure is measured on the probes that chose the setting."""
    if not len(held):
        return None
    exact = [index.search(q, K) for q in held]
    return round(recall_at_k(exact, [ann.search(q, K) for q in held], K), 4)


def time_approx(
    index: FlatIndex,
    probes: NDArray[np.float32],
    exact: list[Any],
    factory: str | None,
    held: NDArray[np.float32],
) -> dict[str, Any]:
    """Build the FAISS index and raise rerank (or nprobe) until recall@50 reaches
    ``TARGET``, then check the chosen setting on held-out probes."""
    t0 = time.perf_counter()
    ann = ApproxIndex.build(index, factory, sample=min(index.rows, 200_000))
    build_s = time.perf_counter() - t0
    cal = ann.calibrate(probes, K, target=TARGET, exact=exact)
    for nprobe, rerank, recall, p50 in cal.tried:
        print(
            f"  n={index.rows} {ann.factory} nprobe={nprobe} rerank={rerank}: "
            f"recall@{K}={recall:.4f} p50={p50:.1f} ms",
            flush=True,
        )
    times = []
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    for q in probes:  # the chosen setting, timed again on its own
        start = time.perf_counter()
        ann.search(q, K)
        times.append(time.perf_counter() - start)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults
    out = {
        "approx_p50_ms": round(pct(times, 50), 2),
        "approx_p95_ms": round(pct(times, 95), 2),
        "approx_major_faults": faults,  # re-ranked rows read from disk, not page cache
        "approx_recall_at_50": round(cal.recall, 4),
        "approx_recall_at_50_holdout": holdout_recall(ann, index, held),
        "holdout_queries": len(held),
        "approx_index": ann.factory,
        "approx_nlist": ann.nlist,
        "approx_nprobe": cal.nprobe,
        "approx_rerank": cal.rerank,
        "approx_build_s": round(build_s, 2),
        "approx_tried": [list(t) for t in cal.tried],
    }
    del ann
    return out


def run_size(
    n: int,
    real: NDArray[np.float32],
    labels: NDArray[np.int64],
    stats: dict[str, float],
    queries: int,
    workdir: Path,
    bandwidth: float,
    approx: bool = True,
    factory: str | None = None,
    holdout: int = 0,
) -> dict[str, Any]:
    chosen = choose_probes(labels, queries + holdout, seed=n)  # none of them planted
    probe_idx, held_idx = chosen[:queries], chosen[queries:]
    path = workdir / f"gallery-{n}.npy"
    t0 = time.perf_counter()
    vectors, subject_ids = write_gallery(n, real, labels, stats, chosen, path)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    built = FlatIndex("bench", 1, vectors, np.arange(1, n + 1, dtype=np.int64), subject_ids)
    index_dir = workdir / f"index-{n}"
    built.save(index_dir)
    build_s = time.perf_counter() - t0
    del built, vectors
    path.unlink()
    t0 = time.perf_counter()
    index = FlatIndex.load(index_dir, "bench")
    load_s = time.perf_counter() - t0

    probes = real[probe_idx]
    ex = time_exact(index, probes)
    mate_rank1 = float(
        np.mean(
            [
                bool(h) and h[0].subject_id == labels[i]
                for h, i in zip(ex["hits"], probe_idx, strict=True)
            ]
        )
    )
    bytes_per = index.dim * index.codes.itemsize + index.scales.itemsize
    floor_ms = n * bytes_per / (bandwidth * 1e9) * 1e3
    result: dict[str, Any] = {
        "n": n,
        "bytes_per_template": bytes_per,
        "exact_p50_ms": round(pct(ex["times"], 50), 2),
        "exact_p95_ms": round(pct(ex["times"], 95), 2),
        "floor_ms": round(floor_ms, 2),
        "ratio_to_floor": round(pct(ex["times"], 50) / floor_ms, 2),
        "approx_p50_ms": None,
        "approx_recall_at_50": None,
        "build_s": round(build_s, 2),
        "generate_s": round(gen_s, 2),
        "load_s": round(load_s, 3),
        "disk_bytes_per_template": round(sum(p.stat().st_size for p in index_dir.iterdir()) / n, 1),
        "exact_p50_1thread_ms": round(pct(ex["one_thread"], 50), 2),
        "exact_matches_brute_force": ex["matches_brute_force"],
        "brute_force_checks": ex["brute_force_checks"],
        "mate_rank1": round(mate_rank1, 3),
        "queries": len(probes),
    }
    if approx:
        result.update(time_approx(index, probes, ex["hits"], factory, real[held_idx]))
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    del index
    shutil.rmtree(index_dir)
    print(json.dumps({k: v for k, v in result.items() if k != "approx_tried"}), flush=True)
    return result


DOC = ROOT / "docs" / "scale.md"
DEFAULT_OUT = ROOT / "bench" / "results" / "search.json"
BEGIN, END = "<!-- search-table:begin -->", "<!-- search-table:end -->"


def render_table(payload: dict[str, Any]) -> str:
    """Markdown table of search.json, for docs/scale.md (numbers only from the JSON)."""
    head = (
        "| n | bytes/template scanned | build s | exact p50 ms | exact p95 ms | "
        "exact p50 1 thread ms | floor ms | ratio to floor | approx p50 ms | approx p95 ms | "
        "approx recall@50 | held-out recall@50 | approx index / re-ranked rows | load s |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = "".join(
        f"| {r['n']:,} | {r['bytes_per_template']} | {r['build_s']} | {r['exact_p50_ms']} | "
        f"{r['exact_p95_ms']} | {r['exact_p50_1thread_ms']} | {r['floor_ms']} | "
        f"{r['ratio_to_floor']} | {r['approx_p50_ms']} | {r.get('approx_p95_ms', '—')} | "
        f"{r['approx_recall_at_50']} | {r.get('approx_recall_at_50_holdout', '—')} | "
        f"{r.get('approx_index', '—')} / {r.get('approx_rerank', '—')} | {r['load_s']} |\n"
        for r in (
            {k: ("—" if v is None else v) for k, v in row.items()} for row in payload["sizes"]
        )
    )
    stats = payload.get("lfw_stats", {})
    return (
        f"Model {payload.get('model_id')} ({payload.get('dim')}-d). Measured read bandwidth: "
        f"**{payload['bandwidth_gbps']} GB/s** ({payload.get('cpus')} CPUs; "
        f"{payload.get('bandwidth_methods')}). Real LFW fused templates planted: "
        f"{payload.get('lfw_templates')}; their cosine statistics: {stats}.\n\n" + head + rows
    )


def update_doc(payload: dict[str, Any], doc: Path = DOC) -> None:
    if not doc.exists():
        return
    text = doc.read_text()
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        _, after = rest.split(END, 1)
        doc.write_text(f"{before}{BEGIN}\n{render_table(payload)}{END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument(
        "--approx-max-n", type=int, default=None, help="skip the approximate index above this size"
    )
    parser.add_argument(
        "--append", action="store_true", help="keep the sizes already in --out (other n)"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="only rewrite the docs table from the JSON"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--factory", default=None, help="FAISS factory string (default: ivf.default_factory)"
    )
    parser.add_argument(
        "--holdout", type=int, default=30, help="probes kept out of calibration (recall check)"
    )
    parser.add_argument(
        "--note", default="", help="conditions of the run (load, other jobs), kept in the JSON"
    )
    args = parser.parse_args()
    if args.render_only:
        update_doc(json.loads(args.out.read_text()))
        return
    model_id = Settings().model_id
    real, labels = real_templates(model_id)
    stats = cosine_stats(real, labels)
    print(
        f"{model_id}: {real.shape[1]}-d real LFW fused templates: {len(real)} of "
        f"{labels.max() + 1} identities; {stats}",
        flush=True,
    )
    check = Synth(real, stats, seed=0)
    sample = check.chunk(1000)
    print(
        f"synthetic check: {cosine_stats(sample, np.arange(3000) // PHOTOS_PER_SUBJECT)}",
        flush=True,
    )
    warm_up()  # compile the scan first: it sets numba's vector width for the process
    methods = read_bandwidth()
    bandwidth = max(methods.values())
    print(f"read bandwidth: {bandwidth:.1f} GB/s {methods}", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="facelead-bench-"))
    sizes: list[dict[str, Any]] = []
    if args.append and args.out.exists():
        sizes = [r for r in json.loads(args.out.read_text())["sizes"] if r["n"] not in args.sizes]
    try:
        for n in args.sizes:
            approx = args.approx_max_n is None or n <= args.approx_max_n
            sizes.append(
                run_size(
                    n,
                    real,
                    labels,
                    stats,
                    args.queries,
                    workdir,
                    bandwidth,
                    approx,
                    args.factory,
                    args.holdout,
                )
            )
            sizes.sort(key=lambda r: r["n"])
            args.out.parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "bandwidth_gbps": round(bandwidth, 2),
                "bandwidth_methods": methods,
                "sizes": sizes,
                "model_id": model_id,
                "dim": int(real.shape[1]),
                "cpus": os.cpu_count(),
                "lfw_templates": len(real),
                "lfw_stats": {k: round(v, 4) for k, v in stats.items()},
                "note": args.note,
            }
            args.out.write_text(json.dumps(payload, indent=2) + "\n")
            if args.out == DEFAULT_OUT:  # a trial run elsewhere leaves the docs alone
                update_doc(payload)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
