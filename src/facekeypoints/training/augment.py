"""Augmentation of whole batches inside the compiled training step, keypoints moved exactly.

Keypoints are in scaled units ((pixel - 48) / 48). Missing labels are NaN and stay NaN, so a
flipped row's missing-label mask is mirrored along with its keypoints.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ..keypoints import CENTRE, MIRROR_X, mirror_keypoints, x_mask
from ..schemes import Scheme, for_columns

# Pixel coordinates are pixel centres, so the image's centre of rotation sits at 47.5.
PIVOT = (MIRROR_X) / 2


def flip_keypoints(keypoints, perm: np.ndarray, is_x: np.ndarray, axis=MIRROR_X):
    """Keypoints of the mirrored face, inside the graph."""
    return mirror_keypoints(keypoints, perm, is_x, xp=ops, axis=axis)


class Augment(keras.layers.Layer):
    """Random flips, rotations, shifts, zooms, brightness and contrast for (images, keypoints)."""

    def __init__(self, columns: list[str], flip: bool = False, rotate: float = 0.0,
                 shift: float = 0.0, zoom: float = 0.0, brightness: float = 0.0,
                 contrast: float = 0.0, seed: int = 0, mirror_axis=MIRROR_X,
                 scheme: Scheme | None = None, **kwargs):
        super().__init__(dtype="float32", **kwargs)  # exact geometry, even under mixed precision
        self.columns = list(columns)
        self.flip, self.rotate, self.shift, self.zoom = flip, rotate, shift, zoom
        self.brightness, self.contrast = brightness, contrast
        # left and right swap places
        self.perm = (scheme or for_columns(self.columns)).flip_permutation(self.columns)
        self.is_x = x_mask(self.columns)
        self.mirror_axis = mirror_axis  # where the labels' x mirrors (keypoints.mirror_keypoints)
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def geometric(self) -> bool:
        return bool(self.rotate or self.shift or self.zoom)

    def call(self, images, keypoints):
        n = ops.shape(images)[0]
        if self.flip:
            images, keypoints = self._flip_half(images, keypoints, n)
        if self.geometric:
            images, keypoints = self._affine(images, keypoints, n)
        if self.brightness or self.contrast:
            images = self._photometric(images, n)
        return images, keypoints

    def _uniform(self, n, low, high):
        return keras.random.uniform((n,), low, high, seed=self.seed_generator)

    def _flip_half(self, images, keypoints, n):
        chosen = self._uniform(n, 0.0, 1.0) < 0.5
        images = ops.where(chosen[:, None, None, None], ops.flip(images, axis=2), images)
        flipped = flip_keypoints(keypoints, self.perm, self.is_x, self.mirror_axis)
        return images, ops.where(chosen[:, None], flipped, keypoints)

    def _affine(self, images, keypoints, n):
        angle = self._uniform(n, -self.rotate, self.rotate) * (math.pi / 180)
        scale = self._uniform(n, 1 - self.zoom, 1 + self.zoom)
        tx = self._uniform(n, -self.shift, self.shift)
        ty = self._uniform(n, -self.shift, self.shift)
        cos, sin = ops.cos(angle), ops.sin(angle)
        # Forward map of a point p: p' = pivot + scale * R (p - pivot) + t.
        # affine_transform wants the inverse, output pixel -> input pixel: R^T (p' - pivot - t) / s.
        a0, a1 = cos / scale, sin / scale
        b0, b1 = -sin / scale, cos / scale
        cx, cy = PIVOT + tx, PIVOT + ty
        a2 = PIVOT - (a0 * cx + a1 * cy)
        b2 = PIVOT - (b0 * cx + b1 * cy)
        zeros = ops.zeros_like(a0)
        transform = ops.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        images = ops.image.affine_transform(images, transform, interpolation="bilinear",
                                            fill_mode="nearest")
        # Keypoints: scaled units -> pixels -> forward map -> scaled units.
        px = keypoints[:, 0::2] * CENTRE + CENTRE - PIVOT
        py = keypoints[:, 1::2] * CENTRE + CENTRE - PIVOT
        s, c, sn = scale[:, None], cos[:, None], sin[:, None]
        qx = PIVOT + s * (c * px - sn * py) + tx[:, None]
        qy = PIVOT + s * (sn * px + c * py) + ty[:, None]
        moved = ops.reshape(ops.stack([qx, qy], axis=2), ops.shape(keypoints))
        return images, (moved - CENTRE) / CENTRE

    def _photometric(self, images, n):
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        factor = self._uniform(n, 1 - self.contrast, 1 + self.contrast)[:, None, None, None]
        offset = self._uniform(n, -self.brightness, self.brightness)[:, None, None, None]
        return ops.clip((images - mean) * factor + mean + offset, 0.0, 1.0)
