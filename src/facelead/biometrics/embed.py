"""Face embedders. Each is a small class: ``load()`` once, then ``embed()``.

Every embedder aligns the face itself, because each model was trained on its
own crop geometry; all return L2-normalised float32 vectors so that a cosine
similarity is a plain inner product.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import cv2
import numpy as np

from facelead.biometrics.align import arcface_crop, margin_crop
from facelead.biometrics.types import Face, RGBImage, Vector
from facelead.biometrics.weights import (
    DLIB_RESNET,
    DLIB_SHAPE5,
    FACENET,
    SFACE,
    WeightFile,
    verified_path,
)


class Embedder(Protocol):
    name: str
    version: str
    dim: int
    weights: tuple[WeightFile, ...]

    def load(self) -> None: ...

    def embed(self, image: RGBImage, face: Face) -> Vector: ...


def l2_normalise(vector: np.ndarray) -> Vector:
    flat = np.asarray(vector, dtype=np.float32).reshape(-1)
    norm = float(np.linalg.norm(flat))
    return flat / norm if norm > 0 else flat


class _LazyModel:
    """Loads weights on first use, once per process, and serialises inference.

    OpenCV DNN nets and dlib models are not safe to share between threads
    while running; one lock per model keeps the API server correct.
    """

    _cache: ClassVar[dict[str, Any]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    name: str

    def _model(self) -> Any:
        with self._lock:
            if self.name not in self._cache:
                self._cache[self.name] = (self._build(), threading.Lock())
            return self._cache[self.name]

    def _build(self) -> Any:
        raise NotImplementedError

    def load(self) -> None:
        self._model()


class SFaceEmbedder(_LazyModel):
    """SFace (OpenCV Zoo, 2021dec): 128-d, 112 px five-point crop, Apache-2.0."""

    name = "sface"
    version = "2021dec"
    dim = 128
    weights: tuple[WeightFile, ...] = (SFACE,)

    def _build(self) -> Any:
        return cv2.FaceRecognizerSF.create(str(verified_path(SFACE)), "")

    def embed(self, image: RGBImage, face: Face) -> Vector:
        model, lock = self._model()
        crop = cv2.cvtColor(arcface_crop(image, face), cv2.COLOR_RGB2BGR)
        with lock:
            feature = model.feature(crop)
        return l2_normalise(feature)


class FaceNetEmbedder(_LazyModel):
    """FaceNet Inception-ResNet-v1 (VGGFace2, 20180402): 512-d, 160 px margin crop."""

    name = "facenet"
    version = "20180402-114759"
    dim = 512
    weights: tuple[WeightFile, ...] = (FACENET,)
    margin = 0.25

    def _build(self) -> Any:
        return cv2.dnn.readNetFromTensorflow(str(verified_path(FACENET)))

    def embed(self, image: RGBImage, face: Face) -> Vector:
        model, lock = self._model()
        crop = margin_crop(image, face, 160, self.margin).astype(np.float32)
        # FaceNet's "prewhiten": per-image standardisation, as in training.
        std = max(float(crop.std()), 1.0 / np.sqrt(crop.size))
        blob = ((crop - crop.mean()) / std).transpose(2, 0, 1)[np.newaxis]
        with lock:
            model.setInput(np.ascontiguousarray(blob, dtype=np.float32))
            output = model.forward()
        return l2_normalise(output)


class DlibEmbedder(_LazyModel):
    """dlib ResNet-34 (v1): 128-d, 150 px chip from dlib's own 5-point landmarks, CC0.

    Only the 5-point shape predictor is used: the 68-point model's licence
    forbids commercial use.
    """

    name = "dlib"
    version = "resnet-v1"
    dim = 128
    weights: tuple[WeightFile, ...] = (DLIB_RESNET, DLIB_SHAPE5)

    def _build(self) -> Any:
        import dlib  # deferred: importing dlib costs time and memory

        shape = dlib.shape_predictor(str(verified_path(DLIB_SHAPE5)))
        net = dlib.face_recognition_model_v1(str(verified_path(DLIB_RESNET)))
        return (dlib, shape, net)

    def embed(self, image: RGBImage, face: Face) -> Vector:
        (dlib, shape, net), lock = self._model()
        x, y, w, h = face.box
        rect = dlib.rectangle(round(x), round(y), round(x + w), round(y + h))
        with lock:
            landmarks = shape(image, rect)
            chip = dlib.get_face_chip(image, landmarks, size=150, padding=0.25)
            descriptor = net.compute_face_descriptor(chip)
        return l2_normalise(np.array(descriptor))


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "sface": SFaceEmbedder,
    "facenet": FaceNetEmbedder,
    "dlib": DlibEmbedder,
}
