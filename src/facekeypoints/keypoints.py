"""The 15 Kaggle keypoints, their 30 columns, and the left/right pairing that flips need.

Pairs are derived from the names ("left_*" <-> "right_*"), so any subset of columns flips
correctly without hand-typed index lists. "Left" is the subject's left (the image's right).
"""

from __future__ import annotations

import numpy as np

KEYPOINTS: tuple[str, ...] = (
    "left_eye_center",
    "right_eye_center",
    "left_eye_inner_corner",
    "left_eye_outer_corner",
    "right_eye_inner_corner",
    "right_eye_outer_corner",
    "left_eyebrow_inner_end",
    "left_eyebrow_outer_end",
    "right_eyebrow_inner_end",
    "right_eyebrow_outer_end",
    "nose_tip",
    "mouth_left_corner",
    "mouth_right_corner",
    "mouth_center_top_lip",
    "mouth_center_bottom_lip",
)

COLUMNS: tuple[str, ...] = tuple(f"{k}_{axis}" for k in KEYPOINTS for axis in ("x", "y"))

# Mean position of each keypoint over Kaggle's real labels (pixels of the 96x96 face): the faces
# are framed so that their keypoints sit close to this shape.
MEAN_SHAPE = np.array([
    (66.4, 37.7), (30.3, 38.0), (59.2, 37.9), (73.3, 37.7), (36.7, 38.0), (22.4, 38.0),
    (56.1, 29.3), (79.5, 29.7), (39.3, 29.5), (15.9, 30.4), (48.4, 62.7), (63.3, 76.0),
    (32.9, 76.2), (48.0, 72.9), (48.6, 79.0),
])

IMAGE_SIZE = 96
PIXELS = IMAGE_SIZE * IMAGE_SIZE

# A pixel's coordinate is its centre, so column i mirrors to column (IMAGE_SIZE - 1 - i).
MIRROR_X = IMAGE_SIZE - 1


def mirror_name(column: str) -> str:
    """The column a value moves to when the face is flipped left to right."""
    swap = {"left": "right", "right": "left"}
    return "_".join(swap.get(token, token) for token in column.split("_"))


def mirror_keypoints(y, perm: np.ndarray, is_x: np.ndarray, xp=np, axis=MIRROR_X):
    """Scaled keypoints ((pixel - 48) / 48) of the mirrored face: x -> axis - x, then left and
    right swap columns. `axis` is MIRROR_X where labels follow the pixel-centre convention, or
    one value per column (after the swap) for labels that sit off it (`mesh.mirror_axis`).
    `xp` is numpy or keras.ops, so training graphs and the TensorFlow-free ONNX path share it."""
    centre = IMAGE_SIZE / 2
    swapped = xp.take(y, perm, axis=1)
    return xp.where(is_x, (np.asarray(axis, np.float32) - 2 * centre) / centre - swapped,
                    swapped)


def x_mask(columns: list[str] | tuple[str, ...]) -> np.ndarray:
    """True where a column holds an x coordinate."""
    return np.array([c.endswith("_x") for c in columns])


def keypoint_names(columns: list[str] | tuple[str, ...]) -> list[str]:
    """Keypoint names of an x/y column list, in order, each once."""
    names: list[str] = []
    for c in columns:
        name = c[:-2]
        if name not in names:
            names.append(name)
    return names


def columns_of(keypoints: list[str] | tuple[str, ...]) -> list[str]:
    return [f"{k}_{axis}" for k in keypoints for axis in ("x", "y")]


# ----------------------------------------------------------------------------- units

CENTRE = IMAGE_SIZE / 2


def scale(y_pixels: np.ndarray) -> np.ndarray:
    """Pixels of the 96x96 face -> the units the nets learn, (y - 48) / 48, in [-1, 1]."""
    return ((np.asarray(y_pixels, dtype=np.float32) - CENTRE) / CENTRE).astype(np.float32)


def unscale(y_scaled: np.ndarray) -> np.ndarray:
    return np.asarray(y_scaled, dtype=np.float32) * CENTRE + CENTRE


def rmse_pixels(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """RMSE in pixels over the labels present (scaled units times 48); NaN with none."""
    present = ~np.isnan(y_true)
    if not present.any():
        return float("nan")
    err = (y_pred - np.nan_to_num(y_true))[present]
    return float(np.sqrt(np.mean(err**2)) * CENTRE)
