"""Exact and approximate 1:N search latency against the machine's memory bandwidth.

For each gallery size the script writes a float16 matrix in chunks (synthetic
identity clusters fitted to real LFW fused templates, with every real LFW
template planted), builds the index (int8 scan codes + bitmap + ids), saves it,
re-opens it through the memory map, then times real LFW probes whose mates are
planted: exact search on both cores, and the IVF approximate mode with its
recall@50 against exact. Read bandwidth is measured in the same run.

    .venv/bin/python bench/search.py [--sizes 10000 100000 1000000] [--queries 30]

Writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap
from numpy.typing import NDArray

from facelead.index.flat import FlatIndex
from facelead.index.ivf import IVFIndex, recall_at_k

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "facelead-eval"
LFW = Path("/work/shared/data/lfw")
FACE_KEY = "faces@yunet-2023mar+centre+0.6-0.3-0.1+q1"
# fusion-v1 layout: SFace 128 | FaceNet 512 | dlib 128. No SFace templates are
# cached, so the dlib-v2 (hog box + flip) templates stand in for the first slot.
SLOTS = (
    ("emb@dlib-v2@resnet-v1+hogbox1+flip1+" + FACE_KEY, 128),
    ("emb@facenet@20180402-114759+" + FACE_KEY, 512),
    ("emb@dlib@resnet-v1+" + FACE_KEY, 128),
)
PHOTOS_PER_SUBJECT = 3
K = 50
CHUNK = 100_000


def _load_cache(key: str) -> dict[str, NDArray[np.float32]]:
    out: dict[str, NDArray[np.float32]] = {}
    for shard in sorted((CACHE / key).glob("shard-*.npz")):
        with np.load(shard, allow_pickle=False) as data:
            for sha, vec in zip(data["sha256"], data["v"], strict=True):
                out[str(sha)] = vec.astype(np.float32)
    return out


def real_templates() -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Fused 768-d LFW templates (each slot L2-normalised, weight 1/3) and identity numbers."""
    caches = [_load_cache(key) for key, _ in SLOTS]
    common = set(caches[0]).intersection(*caches[1:])
    vectors, labels = [], []
    names: dict[str, int] = {}
    with (LFW / "metadata.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            sha = hashlib.sha256((LFW / row["path"]).read_bytes()).hexdigest()
            if sha not in common:
                continue
            parts = [c[sha] / max(float(np.linalg.norm(c[sha])), 1e-12) for c in caches]
            vectors.append(np.concatenate(parts) / np.sqrt(len(parts)))
            labels.append(names.setdefault(row["identity"], len(names)))
    return np.asarray(vectors, np.float32), np.asarray(labels, np.int64)


def cosine_stats(v: NDArray[np.float32], labels: NDArray[np.int64]) -> dict[str, float]:
    sims = v @ v.T
    same = labels[:, None] == labels[None, :]
    upper = np.triu(np.ones_like(same), 1)
    intra, inter = sims[same & upper], sims[~same & upper]
    return {
        "intra_mean": float(intra.mean()),
        "intra_std": float(intra.std()),
        "inter_mean": float(inter.mean()),
        "inter_std": float(inter.std()),
    }


class Synth:
    """x = normalise(c_subject + e). Subject centres c are drawn from a Gaussian
    fitted to the real templates (their mean and full covariance, through an SVD),
    so the synthetic gallery has the real anisotropy and large shared component;
    isotropic noise e is sized so the mean intra-class cosine matches the real one."""

    def __init__(self, real: NDArray[np.float32], stats: dict[str, float], seed: int) -> None:
        d = real.shape[1]
        self.mean = real.mean(axis=0).astype(np.float32)
        _, s, vt = np.linalg.svd(real - self.mean, full_matrices=False)
        trace = float(np.sum(s**2) / len(real))
        # |x|^2 = M + A + E; inter = M / T and intra = (M + A) / T solve for A and E.
        m2 = float(self.mean @ self.mean)
        total = m2 / stats["inter_mean"]
        spread = max(stats["intra_mean"] * total - m2, 1e-9)
        alpha = np.sqrt(spread / trace)
        self.basis = (alpha * (s / np.sqrt(len(real)))[:, None] * vt).astype(np.float32)
        self.se = float(np.sqrt((1.0 - stats["intra_mean"]) * total / d))
        self.rng = np.random.default_rng(seed)
        self.d = d

    def chunk(self, subjects: int) -> NDArray[np.float32]:
        z = self.rng.standard_normal((subjects, self.basis.shape[0]), dtype=np.float32)
        centres = z @ self.basis + self.mean
        rows = np.repeat(centres, PHOTOS_PER_SUBJECT, axis=0)
        rows += self.rng.standard_normal(rows.shape, dtype=np.float32) * self.se
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        return rows


def read_bandwidth(gib: float = 1.0, repeats: int = 5) -> float:
    """Best GB/s of an XOR-reduce over a buffer far larger than the caches, 1 and 2 threads."""
    buf = np.ones(int(gib * (1 << 30)) // 8, dtype=np.uint64)
    halves = np.array_split(buf, 2)
    best = 0.0
    with ThreadPoolExecutor(2) as pool:
        for _ in range(repeats):
            start = time.perf_counter()
            np.bitwise_xor.reduce(buf)
            best = max(best, buf.nbytes / (time.perf_counter() - start))
            start = time.perf_counter()
            list(pool.map(np.bitwise_xor.reduce, halves))
            best = max(best, buf.nbytes / (time.perf_counter() - start))
    return best / 1e9


def pct(values: list[float], p: float) -> float:
    return float(np.percentile(np.asarray(values) * 1e3, p))


def run_size(
    n: int,
    real: NDArray[np.float32],
    labels: NDArray[np.int64],
    stats: dict[str, float],
    queries: int,
    workdir: Path,
    bandwidth: float,
    approx: bool = True,
) -> dict[str, Any]:
    # Probes: one held-out image of each real identity that has two or more.
    rng = np.random.default_rng(n)
    probe_idx: list[int] = []
    for ident in rng.permutation(np.unique(labels)):
        members = np.flatnonzero(labels == ident)
        if members.size >= 2:
            probe_idx.append(int(members[0]))
        if len(probe_idx) >= queries:
            break
    planted = np.setdiff1d(np.arange(len(real)), probe_idx)
    planted = planted[: min(planted.size, n // 2)]
    synth_rows = n - planted.size
    path = workdir / f"gallery-{n}.npy"
    t0 = time.perf_counter()
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
    photo_ids = np.arange(1, n + 1, dtype=np.int64)
    gen_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    built = FlatIndex("bench", 1, vectors, photo_ids, subject_ids)
    index_dir = workdir / f"index-{n}"
    built.save(index_dir)
    build_s = time.perf_counter() - t0
    del built, vectors
    path.unlink()
    t0 = time.perf_counter()
    index = FlatIndex.load(index_dir, "bench")
    load_s = time.perf_counter() - t0

    probes = real[probe_idx]
    index.search(probes[0], K)  # page in
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
    mate_rank1 = float(
        np.mean(
            [
                bool(hits) and hits[0].subject_id == labels[i]
                for hits, i in zip(exact, probe_idx, strict=True)
            ]
        )
    )

    tried: dict[int, tuple[float, float]] = {}
    chosen, nlist, ivf_build_s = None, None, None
    if approx:
        t0 = time.perf_counter()
        ivf = IVFIndex.build(
            index, nlist=max(16, int(np.sqrt(n))), sample=min(n, 50_000), iterations=8
        )
        ivf_build_s = round(time.perf_counter() - t0, 2)
        nlist = ivf.nlist
        for nprobe in (8, 16, 32, 64, 128, 256, 512):
            if nprobe > ivf.nlist:
                break
            a_times, approx_hits = [], []
            for q in probes:
                start = time.perf_counter()
                approx_hits.append(ivf.search(q, K, nprobe=nprobe))
                a_times.append(time.perf_counter() - start)
            recall = recall_at_k(exact, approx_hits, K)
            tried[nprobe] = (recall, pct(a_times, 50))
            print(
                f"  n={n} IVF nlist={ivf.nlist} nprobe={nprobe}: recall@{K}={recall:.4f} "
                f"p50={pct(a_times, 50):.1f} ms",
                flush=True,
            )
            chosen = nprobe
            if recall >= 0.99:
                break
    bytes_per = index.dim * index.codes.itemsize + index.scales.itemsize
    floor_ms = n * bytes_per / (bandwidth * 1e9) * 1e3
    disk = sum(p.stat().st_size for p in index_dir.iterdir())
    shutil.rmtree(index_dir)
    result = {
        "n": n,
        "bytes_per_template": bytes_per,
        "exact_p50_ms": round(pct(times, 50), 2),
        "exact_p95_ms": round(pct(times, 95), 2),
        "floor_ms": round(floor_ms, 2),
        "ratio_to_floor": round(pct(times, 50) / floor_ms, 2),
        "approx_p50_ms": round(tried[chosen][1], 2) if chosen else None,
        "approx_recall_at_50": round(tried[chosen][0], 4) if chosen else None,
        "build_s": round(build_s, 2),
        "generate_s": round(gen_s, 2),
        "load_s": round(load_s, 3),
        "disk_bytes_per_template": round(disk / n, 1),
        "exact_p50_1thread_ms": round(pct(one_thread, 50), 2),
        "mate_rank1": round(mate_rank1, 3),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
        "ivf_nlist": nlist,
        "ivf_nprobe": chosen,
        "ivf_build_s": ivf_build_s,
    }
    print(json.dumps(result), flush=True)
    return result


DOC = ROOT / "docs" / "scale.md"
BEGIN, END = "<!-- search-table:begin -->", "<!-- search-table:end -->"


def render_table(payload: dict[str, Any]) -> str:
    """Markdown table of search.json, for docs/scale.md (numbers only from the JSON)."""
    head = (
        "| n | bytes/template scanned | build s | exact p50 ms | exact p95 ms | "
        "exact p50 1 thread ms | floor ms | ratio to floor | approx p50 ms | "
        "approx recall@50 | IVF lists / probed | load s |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = "".join(
        f"| {r['n']:,} | {r['bytes_per_template']} | {r['build_s']} | {r['exact_p50_ms']} | "
        f"{r['exact_p95_ms']} | {r['exact_p50_1thread_ms']} | {r['floor_ms']} | "
        f"{r['ratio_to_floor']} | {r['approx_p50_ms']} | {r['approx_recall_at_50']} | "
        f"{r['ivf_nlist']} / {r['ivf_nprobe']} | {r['load_s']} |\n"
        for r in (
            {k: ("—" if v is None else v) for k, v in row.items()} for row in payload["sizes"]
        )
    )
    stats = payload.get("lfw_stats", {})
    return (
        f"Measured read bandwidth: **{payload['bandwidth_gbps']} GB/s** "
        f"({payload.get('cpus')} CPUs). Real LFW fused templates planted: "
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
        "--approx-max-n", type=int, default=None, help="skip the IVF build above this size"
    )
    parser.add_argument(
        "--append", action="store_true", help="keep the sizes already in --out (other n)"
    )
    parser.add_argument(
        "--render-only", action="store_true", help="only rewrite the docs table from the JSON"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search.json")
    args = parser.parse_args()
    if args.render_only:
        update_doc(json.loads(args.out.read_text()))
        return
    real, labels = real_templates()
    stats = cosine_stats(real, labels)
    print(
        f"real LFW fused templates: {len(real)} of {labels.max() + 1} identities; {stats}",
        flush=True,
    )
    check = Synth(real, stats, seed=0)
    sample = check.chunk(1000)
    print(
        f"synthetic check: {cosine_stats(sample, np.arange(3000) // PHOTOS_PER_SUBJECT)}",
        flush=True,
    )
    bandwidth = read_bandwidth()
    print(f"read bandwidth: {bandwidth:.1f} GB/s", flush=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="facelead-bench-"))
    sizes: list[dict[str, Any]] = []
    if args.append and args.out.exists():
        sizes = [r for r in json.loads(args.out.read_text())["sizes"] if r["n"] not in args.sizes]
    try:
        for n in args.sizes:
            approx = args.approx_max_n is None or n <= args.approx_max_n
            sizes.append(run_size(n, real, labels, stats, args.queries, workdir, bandwidth, approx))
            sizes.sort(key=lambda r: r["n"])
            args.out.parent.mkdir(parents=True, exist_ok=True)
            payload = {
                "bandwidth_gbps": round(bandwidth, 2),
                "sizes": sizes,
                "cpus": os.cpu_count(),
                "lfw_templates": len(real),
                "lfw_stats": {k: round(v, 4) for k, v in stats.items()},
            }
            args.out.write_text(json.dumps(payload, indent=2) + "\n")
            update_doc(payload)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
