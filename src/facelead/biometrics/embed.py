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

from facelead.biometrics.align import arcface_crop, box_crop, dlib_detector_box, margin_crop
from facelead.biometrics.centre import (
    CENTRE_LFW_V1,
    CENTRE_LFW_V2,
    CentreFile,
    centred,
    load_centres,
)
from facelead.biometrics.types import Face, RGBImage, Vector
from facelead.biometrics.weights import (
    DLIB_RESNET,
    DLIB_SHAPE5,
    FACENET,
    SFACE,
    WeightFile,
    verified_path,
)
from facelead.errors import ModelIntegrityError


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

    weights: tuple[WeightFile, ...]

    def _model(self) -> Any:
        """Keyed by weight files, so every variant of one network shares one copy."""
        key = "+".join(weight.relpath for weight in self.weights)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = (self._build(), threading.Lock())
            return self._cache[key]

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

    flip = False

    def embed(self, image: RGBImage, face: Face) -> Vector:
        model, lock = self._model()
        crop = cv2.cvtColor(arcface_crop(image, face), cv2.COLOR_RGB2BGR)
        crops = [crop, np.ascontiguousarray(crop[:, ::-1])] if self.flip else [crop]
        with lock:
            features = [l2_normalise(model.feature(c)) for c in crops]
        return l2_normalise(np.sum(features, axis=0))


class SFaceFlipEmbedder(SFaceEmbedder):
    """SFace with flip test-time augmentation: the mean of the crop's and its mirror's
    normalised features. A face is nearly symmetric, so the mirror is a second view
    of the same person; averaging cancels some pose and lighting asymmetry.
    """

    name = "sface-flip"
    version = "2021dec+flip1"
    flip = True


class FaceNetEmbedder(_LazyModel):
    """FaceNet Inception-ResNet-v1 (CASIA-WebFace, 20180408-102900): 512-d, 160 px crop.

    The version strings below say 20180402-114759 (the VGGFace2 checkpoint): that
    was a wrong reading of the package, whose README names 20180408-102900. They
    are kept because a version string is the identity of every stored template
    and cached vector; renaming it would orphan them without changing a number.
    """

    name = "facenet"
    version = "20180402-114759"
    dim = 512
    weights: tuple[WeightFile, ...] = (FACENET,)
    margin = 0.25
    flip = False

    def _build(self) -> Any:
        return cv2.dnn.readNetFromTensorflow(str(verified_path(FACENET)))

    def crop(self, image: RGBImage, face: Face) -> RGBImage:
        return margin_crop(image, face, 160, self.margin)

    def standardise(self, crop: np.ndarray) -> np.ndarray:
        """FaceNet's "prewhiten": per-image standardisation (the 2017 models' input)."""
        std = max(float(crop.std()), 1.0 / np.sqrt(crop.size))
        standardised: np.ndarray = (crop - crop.mean()) / std
        return standardised

    def embed(self, image: RGBImage, face: Face) -> Vector:
        model, lock = self._model()
        crop = self.crop(image, face).astype(np.float32)
        views = [crop, crop[:, ::-1]] if self.flip else [crop]
        outputs = []
        with lock:  # one view per forward pass: the graph's batch size is fixed at 1
            for view in views:
                blob = self.standardise(view).transpose(2, 0, 1)[np.newaxis]
                model.setInput(np.ascontiguousarray(blob, dtype=np.float32))
                outputs.append(l2_normalise(model.forward()))
        return l2_normalise(np.sum(outputs, axis=0))


class FaceNetV2Embedder(FaceNetEmbedder):
    """FaceNet as its authors trained and validated their 2018 models.

    * Fixed standardisation (x - 127.5) / 128: the 2018 models were trained
      with it (``--use_fixed_image_standardization``), not with prewhitening.
    * MTCNN-style crop (:func:`~facelead.biometrics.align.box_crop`): the face box
      grown by 27% of its width, resized to 160 x 160 *without* keeping the aspect
      ratio, as in training. On a development subset of LFW (1,150 images of 450
      people) this raised TAR at FMR 1e-3 from 0.90 (aspect-preserving five-point
      crops, best of eight geometries) to 0.95; a square box scored 0.88.
    * Flipped-image averaging (``--use_flipped_images`` in the authors' script).
    """

    name = "facenet-v2"
    version = "20180402-114759+fixedstd+box27+flip1"
    flip = True
    margin = 0.27

    def crop(self, image: RGBImage, face: Face) -> RGBImage:
        return box_crop(image, face.box, 160, self.margin)

    def standardise(self, crop: np.ndarray) -> np.ndarray:
        return (crop - 127.5) / 128.0


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

    flip = False

    def box(self, face: Face) -> tuple[float, float, float, float]:
        return face.box

    def embed(self, image: RGBImage, face: Face) -> Vector:
        (dlib, shape, net), lock = self._model()
        x, y, w, h = self.box(face)
        rect = dlib.rectangle(round(x), round(y), round(x + w), round(y + h))
        with lock:
            landmarks = shape(image, rect)
            chip = dlib.get_face_chip(image, landmarks, size=150, padding=0.25)
            chips = [chip, np.ascontiguousarray(chip[:, ::-1])] if self.flip else [chip]
            descriptors = net.compute_face_descriptor(chips)
        return l2_normalise(np.sum([l2_normalise(np.array(d)) for d in descriptors], axis=0))


class DlibV2Embedder(DlibEmbedder):
    """dlib with the box convention its shape predictor was trained on, and flip TTA.

    See :func:`facelead.biometrics.align.dlib_detector_box`: YuNet's tall box made
    the 5-point predictor place its landmarks, and so the chip, off its training
    geometry.
    """

    name = "dlib-v2"
    version = "resnet-v1+hogbox1+flip1"
    flip = True

    def box(self, face: Face) -> tuple[float, float, float, float]:
        return dlib_detector_box(face)


class CentredEmbedder:
    """A base embedder's vector measured from a shipped centre (biometrics/centre.py).

    ``derive`` turns a base vector into this member's vector without the image, so
    an evaluation reuses the base model's cached templates instead of re-embedding.
    """

    def __init__(self, base: Embedder, centre: CentreFile, name: str) -> None:
        self.base, self.centre_file, self.name = base, centre, name
        self.version = f"{base.version}+centre-{centre.name}-{centre.sha256[:12]}"
        self.dim = base.dim
        self.weights = base.weights

    def load(self) -> None:
        self.base.load()
        self.centre()

    def centre(self) -> Vector:
        centres = load_centres(self.centre_file)
        if self.base.name not in centres:
            raise ModelIntegrityError(
                f"{self.centre_file.name} has no centre for {self.base.name}",
                code="model_integrity",
            )
        return centres[self.base.name]

    def derive(self, base_vector: Vector) -> Vector:
        return centred(base_vector, self.centre())

    def embed(self, image: RGBImage, face: Face) -> Vector:
        return self.derive(self.base.embed(image, face))


EMBEDDERS: dict[str, Callable[[], Embedder]] = {
    "sface": SFaceEmbedder,
    "facenet": FaceNetEmbedder,
    "dlib": DlibEmbedder,
    "sface-flip": SFaceFlipEmbedder,
    "facenet-v2": FaceNetV2Embedder,
    "dlib-v2": DlibV2Embedder,
    "sface-flip-c1": lambda: CentredEmbedder(SFaceFlipEmbedder(), CENTRE_LFW_V1, "sface-flip-c1"),
    "facenet-v2-c1": lambda: CentredEmbedder(FaceNetV2Embedder(), CENTRE_LFW_V1, "facenet-v2-c1"),
    "sface-flip-c2": lambda: CentredEmbedder(SFaceFlipEmbedder(), CENTRE_LFW_V2, "sface-flip-c2"),
    "facenet-v2-c2": lambda: CentredEmbedder(FaceNetV2Embedder(), CENTRE_LFW_V2, "facenet-v2-c2"),
}


def base_member(name: str) -> str:
    """The embedder that computes member *name*'s vectors from a photo: a centred member's
    base model, any other member itself. What an evaluation extracts and caches."""
    embedder = EMBEDDERS[name]()
    return embedder.base.name if isinstance(embedder, CentredEmbedder) else name
