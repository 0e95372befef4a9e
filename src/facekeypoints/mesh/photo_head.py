"""The photo head, fitted one way for every run that has one: a `mesh` run reads it off the
frozen mesh's points, a `mesh-tuned` run off its tuned body's. Faces cut from photographs are
framed by a detector, not onto the mean shape as the Kaggle faces were, so the head learns
from copies of each training face re-framed as loosely as a detector frames faces, and from
their mirror images about the axis this head measures (docs/mesh.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..keypoints import MIRROR_X, unscale
from ..keypoints import scale as scale_keypoints
from ..schemes import Scheme
from .heads import PhotoHead
from .mirror import LOOSE_FRAMING, PHOTO_COPIES, mirror_axis, mirrored_labels, reframe

# (N, 96, 96, 1) faces and what they are, for progress bars -> (N, 468, 2) points in the crop
PointsOf = Callable[[np.ndarray, str], np.ndarray]


def fit_photo_head(points_of: PointsOf, faces, columns: list[str], ridge: float, seed: int,
                   scheme: Scheme | None = None, *, framing: dict | None = None,
                   flip: bool = True, measured: bool = True, cache: Path | None = None,
                   log: Callable[[str], None] = print, name: str = "") -> PhotoHead:
    """A `PhotoHead` on `faces` (scaled labels, NaN where missing). `framing`: rotate (degrees),
    shift (px) and zoom (relative) of the re-framed copies, LOOSE_FRAMING unless given; all
    zero keeps the faces as they are, once. `flip` adds the mirror images, `measured` measures
    their axis (else the pixel-centre axis). `cache` keeps the points and labels, so that a
    resumed run does not compute them again."""
    framing = LOOSE_FRAMING if framing is None else framing
    points, y = _read(cache) if cache is not None and cache.is_file() else (None, None)
    if points is None:
        copies = PHOTO_COPIES if any(framing.values()) else 1
        X, y = reframe(np.concatenate([faces.X] * copies),
                       np.concatenate([unscale(faces.y)] * copies),
                       np.random.default_rng(seed), **framing)
        y = scale_keypoints(y)
        log(f"{name}: the photo head, on {copies} loosely framed copies of each training face "
            + (f"(rotate {framing['rotate']:g} degrees, shift {framing['shift']:g} px, zoom "
               f"{framing['zoom']:g})" if copies > 1 else "(as they are)")
            + (" and their mirror images" if flip else ""))
        points = points_of(X, "photo head's copies")
        if flip:
            points = np.concatenate([points, points_of(np.ascontiguousarray(X[:, :, ::-1, :]),
                                                       "photo head's copies, mirrored")])
        if cache is not None:
            atomic_write(cache, lambda tmp: np.savez(tmp, points=points, y=y), suffix=".npz")
    axis = np.full(len(columns), float(MIRROR_X))
    if flip:
        half = len(y)
        if measured:
            axis = mirror_axis(PhotoHead, points[:half], y, points[half:], columns, ridge,
                               scheme)
        y = np.concatenate([y, mirrored_labels(y, columns, axis, scheme)])
    return PhotoHead.fit(points, y, ridge, axis)


def _read(cache: Path) -> tuple[np.ndarray, np.ndarray]:
    with np.load(cache) as f:
        return f["points"], f["y"]
