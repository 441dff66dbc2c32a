"""Alignment: each embedder gets the crop geometry it was trained on."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from facelead.biometrics.types import Face, RGBImage

ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""Canonical five-point template of 112x112 crops (InsightFace; used by SFace)."""


def similarity_transform(
    src: NDArray[np.floating], dst: NDArray[np.floating]
) -> NDArray[np.float64]:
    """Least-squares similarity (rotation, uniform scale, shift) mapping src onto dst.

    Umeyama (1991), closed form: deterministic, unlike RANSAC-based estimators,
    so the same photo always yields the same template.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    rotation = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / src_c.var(axis=0).sum())
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def warp_to_template(
    image: RGBImage, face: Face, template: NDArray[np.float64], size: int
) -> RGBImage:
    """Warp the face so its landmarks land on ``template`` in a size x size crop."""
    matrix = similarity_transform(face.landmarks, template)
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return np.ascontiguousarray(warped, dtype=np.uint8)


def arcface_crop(image: RGBImage, face: Face) -> RGBImage:
    """112x112 five-point crop (SFace's training geometry)."""
    return warp_to_template(image, face, ARCFACE_112, 112)


def margin_crop(image: RGBImage, face: Face, size: int, margin: float) -> RGBImage:
    """The five-point crop zoomed out by ``margin``, at ``size`` pixels.

    FaceNet (davidsandberg) was trained on MTCNN boxes enlarged by a margin
    and resized to 160 px. Deriving that crop from landmarks instead of from
    YuNet's box (whose convention differs from MTCNN's) keeps the geometry the
    model saw in training and removes in-plane rotation as well.
    """
    template = (ARCFACE_112 - 56.0) / (1.0 + margin) * (size / 112.0) + size / 2.0
    return warp_to_template(image, face, template, size)


def dlib_detector_box(face: Face) -> tuple[float, float, float, float]:
    """YuNet's box re-expressed in the convention of dlib's HOG face detector.

    dlib's 5-point shape predictor was trained on boxes from dlib's own HOG
    detector: square, tighter at the forehead and lower at the chin. YuNet's
    box is taller than wide (forehead to chin). On 298 LFW images where both
    found the face, the HOG box was square with side 1.136 x YuNet's width and
    centred 0.027 w left of and 0.039 h below YuNet's centre (medians); feeding
    the predictor a box of its own convention makes its landmarks, and so the
    150 px chip, the ones the recogniser was trained with.
    """
    x, y, w, h = face.box
    side = 1.136 * w
    cx = x + w / 2.0 - 0.027 * w
    cy = y + h / 2.0 + 0.039 * h
    return (cx - side / 2.0, cy - side / 2.0, side, side)


def box_crop(
    image: RGBImage, box: tuple[float, float, float, float], size: int, margin: float
) -> RGBImage:
    """The face box grown by ``margin`` x its width (the same number of pixels on both
    axes), resized to ``size`` x ``size`` without keeping the aspect ratio.

    This is how FaceNet's authors cropped their training and LFW images (MTCNN box
    plus a fixed 32 px margin, resized to 160 x 160): a face box taller than wide is
    stretched sideways, and the network learnt faces that way. Neither a square crop
    nor a rotation-normalised five-point crop reproduces it; both scored worse.
    """
    x, y, w, h = box
    grow = margin * w
    left, top = x - grow / 2.0, y - grow / 2.0
    width, height = w + grow, h + grow
    src = np.array([[left, top], [left + width, top], [left, top + height]], np.float32)
    dst = np.array([[0, 0], [size, 0], [0, size]], np.float32)
    matrix = cv2.getAffineTransform(src, dst)
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR)
    return np.ascontiguousarray(warped, dtype=np.uint8)
