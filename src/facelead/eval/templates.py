"""Detect and embed a list of image files for an evaluation, through the template cache.

Evaluation detection differs from enrolment on purpose. Enrolment refuses a
photo with two comparable faces; an LFW image often shows bystanders, and its
labelled person is the one in the centre. So here the face nearest the image
centre is taken, and if YuNet finds no face at its normal threshold the
search is retried at lower ones. Images still without a face are *failures to
enrol / acquire* (FTE / FTA): reported, and scored as the protocol says (a
failed probe is a miss, a failed gallery image is absent), never dropped
silently. The quality gate is not applied (NIST evaluations search every
probe), but each face's quality failures are recorded so a report can say how
many probes the production gate would have flagged.
"""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.decode import DecodeLimits, decode_image
from facelead.biometrics.detect import YuNetDetector
from facelead.biometrics.embed import CentredEmbedder, Embedder
from facelead.biometrics.quality import QualityFloor, assess
from facelead.biometrics.types import Face, RGBImage
from facelead.eval.cache import TemplateCache

FOUND, FOUND_ON_RETRY, NO_FACE = 0, 1, 2
QUALITY_CHECKS = (
    "eye_distance_px",
    "detector_score",
    "sharpness",
    "yaw_deg",
    "roll_deg",
    "brightness",
    "clipped",
)
"""Bit i of a face record's ``quality`` mask is set when QUALITY_CHECKS[i] fails its floor."""

CHUNK = 32
FLUSH_EVERY = 512
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class DetectionPolicy:
    """YuNet thresholds tried in order; the face nearest the image centre is kept."""

    thresholds: tuple[float, ...] = (0.6, 0.3, 0.1)

    @property
    def key(self) -> str:
        levels = "-".join(f"{t:g}" for t in self.thresholds)
        return f"faces@{YuNetDetector.name}+centre+{levels}+q1"


def embedder_key(embedder: Embedder, policy: DetectionPolicy) -> str:
    return f"emb@{embedder.name}@{embedder.version}+{policy.key}"


def centre_face(faces: Sequence[Face], width: int, height: int) -> Face | None:
    """The face whose box centre is nearest the image centre (LFW centres its subject)."""
    if not faces:
        return None
    cx, cy = width / 2.0, height / 2.0

    def distance(face: Face) -> float:
        x, y, w, h = face.box
        return float((x + w / 2 - cx) ** 2 + (y + h / 2 - cy) ** 2)

    return min(faces, key=distance)


def detect_with_retry(
    image: RGBImage, detectors: Sequence[YuNetDetector]
) -> tuple[int, Face | None]:
    """(status, face): FOUND at the first threshold, FOUND_ON_RETRY later, or NO_FACE."""
    height, width = image.shape[:2]
    for level, detector in enumerate(detectors):
        face = centre_face(detector.predict(image), width, height)
        if face is not None:
            return (FOUND if level == 0 else FOUND_ON_RETRY), face
    return NO_FACE, None


def quality_mask(image: RGBImage, face: Face) -> int:
    failures = assess(image, face, QualityFloor()).failures
    return sum(1 << i for i, name in enumerate(QUALITY_CHECKS) if name in failures)


def face_fields(status: int, face: Face | None, quality: int) -> dict[str, NDArray[np.generic]]:
    """One face record as cache fields (zeros where no face was found)."""
    box = np.zeros(4, np.float32) if face is None else np.asarray(face.box, np.float32)
    marks = np.zeros((5, 2), np.float32) if face is None else face.landmarks
    return {
        "status": np.array(status, np.int8),
        "box": box,
        "landmarks": np.asarray(marks, np.float32),
        "score": np.array(0.0 if face is None else face.score, np.float32),
        "quality": np.array(quality, np.int16),
    }


def face_from_fields(record: dict[str, NDArray[np.generic]]) -> Face | None:
    if int(record["status"]) == NO_FACE:
        return None
    box = tuple(float(v) for v in np.asarray(record["box"]))
    landmarks = np.asarray(record["landmarks"], np.float32)
    return Face((box[0], box[1], box[2], box[3]), landmarks, float(record["score"]))


# --------------------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


def _worker_init(policy: DetectionPolicy) -> None:
    """One detector set per process; OpenCV's own threads off (we parallelise by process)."""
    import cv2

    cv2.setNumThreads(1)
    _WORKER["detectors"] = [YuNetDetector(score_threshold=t) for t in policy.thresholds]


@dataclass
class _Job:
    path: str
    sha: str
    face: dict[str, NDArray[np.generic]] | None  # cached face record, None: detect
    embedders: list[Embedder] = field(default_factory=list)


@dataclass
class _Done:
    sha: str
    face: dict[str, NDArray[np.generic]] | None  # new face record, None if it was cached
    vectors: dict[str, NDArray[np.float32]]


def _decode(path: str) -> RGBImage:
    limits = DecodeLimits(max_bytes=64 * 1024 * 1024, max_pixels=80_000_000)
    return decode_image(Path(path).read_bytes(), limits).pixels


def _run_job(job: _Job) -> _Done:
    image = _decode(job.path)
    new_record = None
    record = job.face
    if record is None:
        status, found = detect_with_retry(image, _WORKER["detectors"])
        quality = 0 if found is None else quality_mask(image, found)
        record = new_record = face_fields(status, found, quality)
    face = face_from_fields(record)
    vectors: dict[str, NDArray[np.float32]] = {}
    if face is not None:
        for embedder in job.embedders:
            vectors[embedder.name] = embedder.embed(image, face)
    return _Done(job.sha, new_record, vectors)


def _run_chunk(jobs: list[_Job]) -> list[_Done]:
    return [_run_job(job) for job in jobs]


# --------------------------------------------------------------------------- main side


@dataclass
class Templates:
    """Per input path (same order): face record and one vector per embedder (None: no face)."""

    paths: list[Path]
    shas: list[str]
    faces: list[dict[str, NDArray[np.generic]]]
    vectors: dict[str, list[NDArray[np.float32] | None]]
    computed: int = 0  # images decoded in this run (the rest came from the cache)

    @cached_property
    def status(self) -> NDArray[np.int8]:
        return np.array([int(f["status"]) for f in self.faces], dtype=np.int8)

    @cached_property
    def quality(self) -> NDArray[np.int16]:
        return np.array([int(f["quality"]) for f in self.faces], dtype=np.int16)

    def matrix(self, name: str) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """(n x dim vectors with zero rows where no face, mask of rows that have a face)."""
        rows = self.vectors[name]
        dim = next((len(v) for v in rows if v is not None), 1)
        out = np.zeros((len(rows), dim), dtype=np.float32)
        ok = np.zeros(len(rows), dtype=bool)
        for i, vector in enumerate(rows):
            if vector is not None:
                out[i], ok[i] = vector, True
        return out, ok


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Writer:
    """Buffers results and flushes them as cache shards every FLUSH_EVERY images."""

    def __init__(self, cache: TemplateCache, face_key: str, emb_keys: dict[str, str]) -> None:
        self.cache, self.face_key, self.emb_keys = cache, face_key, emb_keys
        self.faces: list[tuple[str, dict[str, NDArray[np.generic]]]] = []
        self.vectors: dict[str, list[tuple[str, NDArray[np.float32]]]] = {
            name: [] for name in emb_keys
        }

    def add(self, done: _Done) -> None:
        if done.face is not None:
            self.faces.append((done.sha, done.face))
        for name, vector in done.vectors.items():
            self.vectors[name].append((done.sha, vector))
        if len(self.faces) >= FLUSH_EVERY or any(
            len(v) >= FLUSH_EVERY for v in self.vectors.values()
        ):
            self.flush()

    def flush(self) -> None:
        if self.faces:
            fields = {k: np.stack([r[k] for _, r in self.faces]) for k in self.faces[0][1]}
            self.cache.append(self.face_key, [s for s, _ in self.faces], fields)
            self.faces = []
        for name, rows in self.vectors.items():
            if rows:
                vectors = np.stack([v for _, v in rows]).astype(np.float32)
                self.cache.append(self.emb_keys[name], [s for s, _ in rows], {"v": vectors})
                self.vectors[name] = []


def _plan(
    shas: list[str],
    paths: list[Path],
    embedders: Sequence[Embedder],
    faces: dict[str, dict[str, NDArray[np.generic]]],
    stored: dict[str, dict[str, dict[str, NDArray[np.generic]]]],
) -> list[_Job]:
    jobs: dict[str, _Job] = {}
    for sha, path in zip(shas, paths, strict=True):
        if sha in jobs:
            continue
        record = faces.get(sha)
        if record is not None and int(record["status"]) == NO_FACE:
            continue
        missing = [e for e in embedders if sha not in stored[e.name]]
        if record is None or missing:
            jobs[sha] = _Job(str(path), sha, record, missing)
    return list(jobs.values())


def extract(
    paths: Sequence[Path],
    embedders: Sequence[Embedder],
    cache: TemplateCache,
    policy: DetectionPolicy | None = None,
    workers: int = 2,
    progress: Progress | None = None,
) -> Templates:
    """Faces and templates of *paths* under every embedder, computing only what is missing.

    A centred embedder's vectors are derived from its base model's (cached) ones: a
    new centre costs seconds, not another pass over every photo.
    """
    derived = [e for e in embedders if isinstance(e, CentredEmbedder)]
    direct = {e.name: e for e in embedders if not isinstance(e, CentredEmbedder)}
    direct |= {e.base.name: e.base for e in derived if e.base.name not in direct}
    templates = _extract_direct(paths, list(direct.values()), cache, policy, workers, progress)
    for embedder in derived:
        base = templates.vectors[embedder.base.name]
        templates.vectors[embedder.name] = [None if v is None else embedder.derive(v) for v in base]
    return templates


def _extract_direct(
    paths: Sequence[Path],
    embedders: Sequence[Embedder],
    cache: TemplateCache,
    policy: DetectionPolicy | None,
    workers: int,
    progress: Progress | None,
) -> Templates:
    policy = policy or DetectionPolicy()
    paths = list(paths)
    shas = [file_sha256(p) for p in paths]
    emb_keys = {e.name: embedder_key(e, policy) for e in embedders}
    faces = cache.load(policy.key)
    stored = {name: cache.load(key) for name, key in emb_keys.items()}
    jobs = _plan(shas, paths, embedders, faces, stored)
    if jobs:
        _execute(jobs, cache, policy, emb_keys, workers, progress)
        faces = cache.load(policy.key)
        stored = {name: cache.load(key) for name, key in emb_keys.items()}
    vectors: dict[str, list[NDArray[np.float32] | None]] = {
        name: [_vector(stored[name].get(sha)) for sha in shas] for name in emb_keys
    }
    return Templates(paths, shas, [faces[sha] for sha in shas], vectors, len(jobs))


def _vector(record: dict[str, NDArray[np.generic]] | None) -> NDArray[np.float32] | None:
    return None if record is None else np.asarray(record["v"], dtype=np.float32)


def _execute(
    jobs: list[_Job],
    cache: TemplateCache,
    policy: DetectionPolicy,
    emb_keys: dict[str, str],
    workers: int,
    progress: Progress | None,
) -> None:
    """Run *jobs* in a process pool (or in-process for workers <= 1), flushing as it goes."""
    writer = _Writer(cache, policy.key, emb_keys)
    chunks = [jobs[i : i + CHUNK] for i in range(0, len(jobs), CHUNK)]
    done = 0
    try:
        if workers <= 1:
            _worker_init(policy)
            results = map(_run_chunk, chunks)
            for batch in results:
                done = _collect(writer, batch, done, len(jobs), progress)
        else:
            context = multiprocessing.get_context("spawn")
            with context.Pool(workers, _worker_init, (policy,)) as pool:
                for batch in pool.imap_unordered(_run_chunk, chunks):
                    done = _collect(writer, batch, done, len(jobs), progress)
    finally:
        writer.flush()


def _collect(
    writer: _Writer, batch: list[_Done], done: int, total: int, progress: Progress | None
) -> int:
    for item in batch:
        writer.add(item)
    done += len(batch)
    if progress is not None:
        progress(done, total)
    return done
