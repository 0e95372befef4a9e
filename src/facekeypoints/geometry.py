"""Boxes and 2-D similarity transforms (scale, rotation and shift), in one place for everything
that frames a face: crops cut from photos, faces followed through video, detections matched to
the truth, and the mesh's photo head. Transforms are 2x3 affine matrices, one per face, or a
stack of them (N, 2, 3) for a batch."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np


@dataclass
class Box:
    """A face detector's box, in pixels, and its score; `points` are the landmarks the detector
    gives with it, where it gives any (BlazeFace: eyes, nose tip, mouth, ears), in pixels."""

    left: float
    top: float
    width: float
    height: float
    score: float
    points: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def centre(self) -> np.ndarray:
        return np.array([self.left + self.width / 2, self.top + self.height / 2])

    def contains(self, point) -> bool:
        x, y = point
        return bool(self.left <= x <= self.left + self.width
                    and self.top <= y <= self.top + self.height)

    def scaled(self, factor: float) -> Box:
        return Box(self.left * factor, self.top * factor, self.width * factor,
                   self.height * factor, self.score,
                   None if self.points is None else self.points * factor)

    def moved(self, dx: float, dy: float) -> Box:
        return Box(self.left + dx, self.top + dy, self.width, self.height, self.score,
                   None if self.points is None else self.points + (dx, dy))


def fit_similarity(points: np.ndarray, target: np.ndarray, rotate: bool = True) -> np.ndarray:
    """The transform that puts `points` closest to `target` in least squares: a similarity, or
    with `rotate=False` a scale and shift only. (P, 2) points give a (2, 3) matrix; a batch
    (N, P, 2) gives (N, 2, 3), each face fitted on its own to the same `target`.

    As complex numbers z, the best a in |a (z - mean z) - (w - mean w)|^2 is a rotation and a
    scale; with `rotate=False` a is real."""
    p = np.asarray(points, np.float64)
    q = np.broadcast_to(np.asarray(target, np.float64), p.shape)
    p_mean, q_mean = p.mean(axis=-2), q.mean(axis=-2)
    pc, qc = p - p_mean[..., None, :], q - q_mean[..., None, :]
    zp, zq = pc[..., 0] + 1j * pc[..., 1], qc[..., 0] + 1j * qc[..., 1]
    norm = (np.abs(zp) ** 2).sum(axis=-1)
    a = (np.conj(zp) * zq).sum(axis=-1) / norm if rotate else \
        (pc * qc).sum(axis=(-2, -1)) / norm + 0j
    linear = np.stack([np.stack([a.real, -a.imag], axis=-1),
                       np.stack([a.imag, a.real], axis=-1)], axis=-2)
    shift = q_mean - np.einsum("...ij,...j->...i", linear, p_mean)
    return np.concatenate([linear, shift[..., None]], axis=-1)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., P, 2) through the transform(s) (..., 2, 3)."""
    matrix = np.asarray(matrix)
    return np.einsum("...ij,...pj->...pi", matrix[..., :2], points) + matrix[..., None, :, 2]


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse transform(s), (..., 2, 3)."""
    matrix = np.asarray(matrix, np.float64)
    linear = np.linalg.inv(matrix[..., :2])
    shift = -np.einsum("...ij,...j->...i", linear, matrix[..., 2])
    return np.concatenate([linear, shift[..., None]], axis=-1)


def scale_of(matrix: np.ndarray) -> float:
    """How much a similarity enlarges: its output units per input unit."""
    return float(np.hypot(matrix[0, 0], matrix[1, 0]))


def crop(grey: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The size x size crop that `matrix` maps the image onto, in [0, 1]: area-averaged when
    shrinking, edges replicated."""
    s = scale_of(matrix)
    if s < 0.5:  # shrink in steps, so the crop is averaged, not aliased
        pre = max(1, int(1 / s) // 2)
        small = cv2.resize(grey, None, fx=1 / pre, fy=1 / pre, interpolation=cv2.INTER_AREA)
        matrix = matrix @ np.array([[pre, 0, (pre - 1) / 2], [0, pre, (pre - 1) / 2], [0, 0, 1]])
        grey = small
    out = cv2.warpAffine(grey, matrix, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return out.astype(np.float32) / 255.0
