"""Framing: where in a photo the 96x96 face is cut, so that it looks like the training faces.

A detector's eyes and mouth (BlazeFace gives them) or else its box give the first crop, each
placed as measured per detector; each face is then re-framed on its own predicted keypoints,
placed on the training faces' mean shape."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import geometry
from ..geometry import Box
from ..keypoints import IMAGE_SIZE, MEAN_SHAPE


@dataclass(frozen=True)
class Framing:
    """The square crop around a detector box that matches how training faces are framed:
    side = scale * box width, centred at box centre + (dx, dy) * box width."""

    scale: float
    dx: float
    dy: float


# Measured on ../shared/data/photos (bench/framing.py): the median ideal crop per detector.
FRAMING = {"haar": Framing(1.037, 0.012, 0.006), "hog": Framing(1.141, 0.023, -0.059),
           "blazeface": Framing(1.188, 0.024, -0.114)}
NAIVE = Framing(1.0, 0.0, 0.0)

# Where BlazeFace's eyes and mouth centre (its points 0, 1 and 3) sit in a 96x96 face framed as
# the training faces are: their median on half of the people of ../shared/data/photos/youtube,
# each face placed by its true keypoints (bench/framing.py). Its nose and ears, which move with
# a turned head, frame worse (NME 7.4% with all six points against 6.1%, one pass, no flips).
EYES_AND_MOUTH = [0, 1, 3]
POINTS_TEMPLATE = np.array([[29.45, 38.70], [63.65, 38.24], [47.69, 75.79]])


def reframe_box(box: Box, framing: Framing, target: Framing) -> Box:
    """The box that `target` crops exactly as `framing` crops `box` (same side, same centre)."""
    width = box.width * framing.scale / target.scale
    cx = box.left + box.width / 2 + framing.dx * box.width - target.dx * width
    cy = box.top + box.height / 2 + framing.dy * box.width - target.dy * width
    return Box(cx - width / 2, cy - width / 2, width, width, 0.0)


def crop_transform(box: Box, framing: Framing) -> np.ndarray:
    """2x3 affine from photo pixels to the 96x96 crop's pixels (pixel centres at integers)."""
    side = framing.scale * box.width
    cx = box.left + box.width / 2 + framing.dx * box.width
    cy = box.top + box.height / 2 + framing.dy * box.width
    s = IMAGE_SIZE / side
    # Photo pixel centre p maps to crop coordinate (p + 0.5 - (c - side/2)) * s - 0.5.
    tx = (0.5 - (cx - side / 2)) * s - 0.5
    ty = (0.5 - (cy - side / 2)) * s - 0.5
    return np.array([[s, 0.0, tx], [0.0, s, ty]])


def points_transform(points: np.ndarray) -> np.ndarray:
    """2x3 similarity from photo pixels to the 96x96 crop that puts a detector's six BlazeFace
    points' eyes and mouth on POINTS_TEMPLATE: an upright crop with no keypoint pass before."""
    return geometry.fit_similarity(points[EYES_AND_MOUTH], POINTS_TEMPLATE)


def first_transform(box: Box, framing: Framing) -> np.ndarray:
    """The first crop of a detected face: from its points where the detector gives them."""
    return crop_transform(box, framing) if box.points is None else points_transform(box.points)


def align_transform(points: np.ndarray, shape: np.ndarray = MEAN_SHAPE,
                    upright: bool = False) -> np.ndarray:
    """2x3 affine that puts photo keypoints (15, 2) closest, in least squares, to `shape` in a
    96x96 crop: scale and shift only, as the training faces were framed, or with `upright` also
    the rotation (a similarity), so that a face that rolls is cropped upright."""
    return geometry.fit_similarity(points, shape, rotate=upright)


def crop_face(grey: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """The 96x96 face in [0, 1], area-averaged when shrinking, edges replicated."""
    return geometry.crop(grey, matrix, IMAGE_SIZE)
