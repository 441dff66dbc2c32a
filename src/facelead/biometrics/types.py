"""Value types shared by the biometric stages."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

RGBImage = NDArray[np.uint8]
"""H x W x 3, 8-bit RGB, EXIF orientation already applied."""

Vector = NDArray[np.float32]


@dataclass(frozen=True)
class Face:
    """One detected face: box (x, y, w, h), five landmarks and detector score.

    Landmark order follows YuNet: right eye, left eye (from the subject's
    view: image-left first), nose tip, right mouth corner, left mouth corner.
    """

    box: tuple[float, float, float, float]
    landmarks: NDArray[np.float32]  # shape (5, 2), image coordinates
    score: float

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    def as_dict(self) -> dict[str, object]:
        return {
            "box": [round(float(v), 1) for v in self.box],
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.landmarks],
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class QualityReport:
    """Measured face quality; ``failures`` names each measure below its floor."""

    measures: dict[str, float]
    failures: tuple[str, ...] = field(default=())

    @property
    def acceptable(self) -> bool:
        return not self.failures
