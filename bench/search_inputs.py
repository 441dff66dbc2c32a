"""Inputs of bench/search.py: real LFW fused templates, the synthetic gallery fitted to them,
and the machine's read bandwidth (the floor exact search is compared with).

The templates come from the eval cache that ``facelead eval lfw`` writes (one folder per
member embedder); ``Synth`` draws identity clusters with their statistics.
"""

from __future__ import annotations

import csv
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.embed import EMBEDDERS, CentredEmbedder, Embedder, base_member
from facelead.biometrics.fusion import model_config

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "facelead-eval"
LFW = Path("/work/shared/data/lfw")
PHOTOS_PER_SUBJECT = 3


def _load_cache(folder: Path) -> dict[str, NDArray[np.float32]]:
    out: dict[str, NDArray[np.float32]] = {}
    for shard in sorted(folder.glob("shard-*.npz")):
        with np.load(shard, allow_pickle=False) as data:
            for sha, vec in zip(data["sha256"], data["v"], strict=True):
                out[str(sha)] = vec.astype(np.float32)
    return out


def member_folders(model_id: str) -> list[tuple[Path, float, Embedder]]:
    """The eval cache folder of each member of ``model_id``, its weight and its embedder.

    Folders are named ``emb@<embedder>@<version>+<face policy>``; the newest one of
    each embedder is taken (the running evaluation writes the current version). A
    centred member has no folder of its own: its base model's is read and centred."""
    out = []
    for name, weight in model_config(model_id).members:
        base = base_member(name)
        found = sorted(CACHE.glob(f"emb@{base}@*"), key=lambda p: p.stat().st_mtime)
        if not found:
            raise SystemExit(f"no cached {base} templates under {CACHE}: run facelead eval lfw")
        out.append((found[-1], weight, EMBEDDERS[name]()))
    return out


def _member_vector(vector: NDArray[np.float32], embedder: Embedder) -> NDArray[np.float32]:
    if isinstance(embedder, CentredEmbedder):
        return embedder.derive(vector)
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def real_templates(model_id: str) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Fused LFW templates of ``model_id`` (each member L2-normalised, or centred, and
    scaled by the square root of its weight, as biometrics/fusion.py fuses) and identity
    numbers."""
    members = member_folders(model_id)
    caches = [_load_cache(folder) for folder, _, _ in members]
    common = set(caches[0]).intersection(*caches[1:])
    vectors, labels = [], []
    names: dict[str, int] = {}
    with (LFW / "metadata.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            sha = hashlib.sha256((LFW / row["path"]).read_bytes()).hexdigest()
            if sha not in common:
                continue
            parts = [
                np.sqrt(w) * _member_vector(c[sha], embedder)
                for c, (_, w, embedder) in zip(caches, members, strict=True)
            ]
            vectors.append(np.concatenate(parts))
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


def _read_kernel() -> Any:
    """A numba loop that only loads and adds int64 words (vectorised: AVX loads)."""
    from numba import njit

    @njit(nogil=True, fastmath=True)  # type: ignore[misc]
    def total(words: Any) -> Any:
        acc = 0
        for i in range(words.shape[0]):
            acc += words[i]
        return acc

    return total


def read_bandwidth(gib: float = 1.0, repeats: int = 5) -> dict[str, float]:
    """Best read GB/s over a buffer far larger than the caches, 1 and 2 threads, two ways
    (numpy XOR-reduce and a compiled load-and-add loop); the floor uses the best of all,
    so a slow reduction can never make the floor look easy."""
    buf = np.ones(int(gib * (1 << 30)) // 8, dtype=np.uint64)
    halves = np.array_split(buf, 2)
    kernel = _read_kernel()
    kernel(halves[0][:1000])
    best: dict[str, float] = {}
    with ThreadPoolExecutor(2) as pool:
        for name, fn in (("numpy_xor", np.bitwise_xor.reduce), ("numba_sum", kernel)):
            for threads in (1, 2):
                for _ in range(repeats):
                    start = time.perf_counter()
                    if threads == 1:
                        fn(buf)
                    else:
                        list(pool.map(fn, halves))
                    gbps = buf.nbytes / (time.perf_counter() - start) / 1e9
                    key = f"{name}_{threads}t"
                    best[key] = max(best.get(key, 0.0), round(gbps, 2))
    return best
