"""Heads: mesh points -> keypoints, by ridge regression fitted on the user's labels, each
keypoint on every row where it is labelled. The plain head reads points as the Kaggle faces
frame them; the photo head works in each face's own frame, for crops cut from photographs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .. import geometry
from ..errors import UserError
from ..files import atomic_write
from ..keypoints import MIRROR_X, unscale
from ..keypoints import scale as scale_keypoints


class MeshHead:
    """Mesh points -> keypoints: ridge regression per keypoint column on the standardised
    points, fitted on the rows where that column is labelled. `reference` is the mean mesh of
    the training faces: where training faces sit in their crops."""

    def __init__(self, reference: np.ndarray, mean: np.ndarray, scale: np.ndarray,
                 weights: np.ndarray, bias: np.ndarray, mirror_axis=MIRROR_X):
        self.reference, self.mean, self.scale = reference, mean, scale
        self.weights, self.bias = weights, bias
        self.mirror_axis = np.broadcast_to(np.asarray(mirror_axis, np.float64), bias.shape)

    @classmethod
    def fit(cls, points: np.ndarray, y: np.ndarray, alpha: float,
            mirror_axis=MIRROR_X) -> MeshHead:
        """`points` (N, 468, 2) crop pixels; `y` (N, C) scaled keypoints, NaN where missing;
        `mirror_axis`: where the labels `y` mirror (the flips they hold were made on it)."""
        F = _features(points)
        mean, scale = F.mean(axis=0), F.std(axis=0) + 1e-8
        A = (F - mean) / scale
        weights = np.zeros((F.shape[1], y.shape[1]))
        bias = np.zeros(y.shape[1])
        ridge = alpha * np.eye(F.shape[1])
        # columns labelled on the same rows share one system (68 points: one for all 136)
        masks, group = np.unique(~np.isnan(y).T, axis=0, return_inverse=True)
        for rows, columns in zip(masks, (np.flatnonzero(group == g) for g in range(len(masks))),
                                 strict=True):
            if rows.sum() < 2:
                raise UserError(f"column {columns[0]}: fewer than two labelled faces to fit the "
                                "head on")
            bias[columns] = y[np.ix_(rows, columns)].mean(axis=0)
            weights[:, columns] = np.linalg.solve(A[rows].T @ A[rows] + ridge,
                                                  A[rows].T @ (y[np.ix_(rows, columns)]
                                                               - bias[columns]))
        return cls(points.mean(axis=0), mean, scale, weights, bias, mirror_axis)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Scaled keypoints (N, C) for mesh points (N, 468, 2)."""
        return (((_features(points) - self.mean) / self.scale) @ self.weights
                + self.bias).astype(np.float32)

    def save(self, path: Path | io.BytesIO) -> None:
        """Into an .npz file (atomically), or into a buffer (an ONNX export carries it)."""
        def write(target) -> None:
            np.savez(target, reference=self.reference, mean=self.mean, scale=self.scale,
                     weights=self.weights, bias=self.bias, mirror_axis=self.mirror_axis)

        if isinstance(path, io.BytesIO):
            write(path)
        else:
            atomic_write(path, write, suffix=".npz")

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self.save(buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> MeshHead:
        return cls.load(io.BytesIO(data))

    @classmethod
    def load(cls, path: Path | io.BytesIO) -> MeshHead:
        with np.load(path) as f:  # runs from before the axis was measured mirror about MIRROR_X
            axis = f["mirror_axis"] if "mirror_axis" in f.files else MIRROR_X
            return cls(f["reference"], f["mean"], f["scale"], f["weights"], f["bias"], axis)


def _features(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points.reshape(len(points), int(np.prod(points.shape[1:])))  # none held out: 0 rows


class PhotoHead(MeshHead):
    """The head for faces cut from photographs. The Kaggle-format faces were each scaled and
    shifted onto the mean shape, so where a face sits in its crop tells the plain head about
    the labels; a detector's crop carries no such hint, and a face larger, smaller, turned or
    moved in it must move its keypoints along. This head works in the frame that puts each
    mesh on the reference mesh (a similarity per face), so it is equivariant by construction."""

    @classmethod
    def fit(cls, points: np.ndarray, y: np.ndarray, alpha: float,
            mirror_axis=MIRROR_X) -> PhotoHead:
        reference = points.mean(axis=0)
        frame = geometry.fit_similarity(points, reference)
        target = geometry.apply(frame, unscale(y).reshape(len(y), -1, 2)).reshape(len(y), -1)
        head = MeshHead.fit(geometry.apply(frame, points), scale_keypoints(target), alpha)
        return cls(reference, head.mean, head.scale, head.weights, head.bias, mirror_axis)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        frame = geometry.fit_similarity(points, self.reference)
        framed = unscale(super().__call__(geometry.apply(frame, points)))
        back = geometry.apply(geometry.invert(frame), framed.reshape(len(points), -1, 2))
        return scale_keypoints(back.reshape(len(points), -1))
