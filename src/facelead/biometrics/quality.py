"""Face quality measures and the floor below which a face is not searched.

A low-quality probe is flagged, not searched (DESIGN.md principle 6): poor
probes are where false leads come from, and they fail unevenly across groups.
Each floor is documented in docs/quality.md with its rationale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from facelead.biometrics.align import arcface_crop
from facelead.biometrics.types import Face, QualityReport, RGBImage


@dataclass(frozen=True)
class QualityFloor:
    """Thresholds; a measure outside its bound is a named failure."""

    min_eye_distance_px: float = 24.0
    min_detector_score: float = 0.75
    min_sharpness: float = 20.0
    max_abs_yaw_deg: float = 45.0
    max_abs_roll_deg: float = 45.0
    min_brightness: float = 35.0
    max_brightness: float = 225.0
    max_clipped_fraction: float = 0.35


def eye_distance(face: Face) -> float:
    return float(np.linalg.norm(face.landmarks[0] - face.landmarks[1]))


def pose_from_landmarks(face: Face) -> tuple[float, float]:
    """Approximate (yaw, roll) in degrees from the five landmarks.

    Roll is the eye-line angle. Yaw comes from how far the nose tip sits from
    the eye midpoint, relative to half the eye distance, after removing roll;
    it is a coarse estimate, good enough to tell frontal from profile.
    """
    right_eye, left_eye, nose = face.landmarks[0], face.landmarks[1], face.landmarks[2]
    dx, dy = float(left_eye[0] - right_eye[0]), float(left_eye[1] - right_eye[1])
    roll = math.degrees(math.atan2(dy, dx))
    half = max(math.hypot(dx, dy) / 2.0, 1e-6)
    mid = (right_eye + left_eye) / 2.0
    cos_r, sin_r = math.cos(math.radians(roll)), math.sin(math.radians(roll))
    offset = float(nose[0] - mid[0]) * cos_r + float(nose[1] - mid[1]) * sin_r
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, offset / half))))
    return yaw, roll


def image_measures(crop: RGBImage) -> dict[str, float]:
    """Sharpness (variance of the Laplacian) and exposure on the aligned face."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    inner = gray[16:104, 16:96]  # the face, not the background corners
    sharpness = float(cv2.Laplacian(inner, cv2.CV_64F).var())
    clipped = float(np.mean((inner <= 5) | (inner >= 250)))
    return {"sharpness": sharpness, "brightness": float(inner.mean()), "clipped": clipped}


def assess(image: RGBImage, face: Face, floor: QualityFloor | None = None) -> QualityReport:
    floor = floor or QualityFloor()
    yaw, roll = pose_from_landmarks(face)
    measures = {
        "eye_distance_px": eye_distance(face),
        "detector_score": face.score,
        "yaw_deg": yaw,
        "roll_deg": roll,
        **image_measures(arcface_crop(image, face)),
    }
    checks = {
        "eye_distance_px": measures["eye_distance_px"] >= floor.min_eye_distance_px,
        "detector_score": measures["detector_score"] >= floor.min_detector_score,
        "sharpness": measures["sharpness"] >= floor.min_sharpness,
        "yaw_deg": abs(yaw) <= floor.max_abs_yaw_deg,
        "roll_deg": abs(roll) <= floor.max_abs_roll_deg,
        "brightness": floor.min_brightness <= measures["brightness"] <= floor.max_brightness,
        "clipped": measures["clipped"] <= floor.max_clipped_fraction,
    }
    rounded = {key: round(value, 3) for key, value in measures.items()}
    return QualityReport(rounded, tuple(key for key, ok in checks.items() if not ok))
