"""Augmentation moves keypoints exactly as it moves the pixels under them."""

import numpy as np
import pytest
from keras import ops

from facekeypoints.keypoints import COLUMNS, scale, unscale, x_mask
from facekeypoints.schemes import builtin
from facekeypoints.training.augment import Augment, flip_keypoints

POINTS = {"left_eye_center": (66.0, 37.0), "right_eye_center": (30.5, 39.0),
          "nose_tip": (50.0, 61.0), "mouth_center_bottom_lip": (47.0, 80.5)}
COLS = [f"{k}_{a}" for k in POINTS for a in "xy"]


def _blob_image(points, sigma=1.5):
    """A face of Gaussian blobs, each centred exactly on a keypoint, of distinct brightness."""
    yy, xx = np.mgrid[0:96, 0:96].astype(np.float32)
    img = np.zeros((96, 96), np.float32)
    for i, (x, y) in enumerate(points):
        img += (0.4 + 0.15 * i) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return img


def _centroid_near(img, x, y, radius=4):
    yy, xx = np.mgrid[0:96, 0:96]
    w = img * (((xx - x) ** 2 + (yy - y) ** 2) <= radius**2)
    return (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum(), img[int(round(y)), int(round(x))]


def test_flipped_keypoints_land_on_the_mirrored_features():
    points = list(POINTS.values())
    img = _blob_image(points)
    y = scale(np.array([[c for p in points for c in p]], np.float32))
    flipped_img = img[:, ::-1]
    perm = builtin("kaggle15").flip_permutation(COLS)
    flipped = unscale(np.asarray(flip_keypoints(y, perm, x_mask(COLS))))[0]
    named = dict(zip(COLS, flipped, strict=True))
    # The subject's left eye of the mirrored face is the mirror image of the right eye.
    assert named["left_eye_center_x"] == pytest.approx(95 - POINTS["right_eye_center"][0], abs=1e-4)
    for k in range(0, len(COLS), 2):
        cx, cy, _ = _centroid_near(flipped_img, flipped[k], flipped[k + 1])
        assert (cx, cy) == pytest.approx((flipped[k], flipped[k + 1]), abs=0.05)


def test_flip_mirrors_the_missing_label_mask():
    y = scale(np.array([[60.0, 40.0, np.nan, np.nan, 48, 60, 48, 80]], np.float32))
    out = np.asarray(flip_keypoints(y, builtin("kaggle15").flip_permutation(COLS), x_mask(COLS)))
    assert np.isnan(out[0, :2]).all() and not np.isnan(out[0, 2:]).any()


@pytest.mark.parametrize("settings", [
    {"rotate": 15.0}, {"shift": 5.0}, {"zoom": 0.15},
    {"rotate": 12.0, "shift": 4.0, "zoom": 0.1, "flip": True},
])
def test_geometric_augmentation_moves_points_with_pixels(settings):
    points = list(POINTS.values())
    img = np.stack([_blob_image(points)] * 8)[..., None]
    y = np.repeat(scale(np.array([[c for p in points for c in p]], np.float32)), 8, axis=0)
    layer = Augment(COLS, seed=7, **settings)
    out_img, out_y = layer(ops.convert_to_tensor(img), ops.convert_to_tensor(y))
    out_img, out_pts = np.asarray(out_img)[..., 0], unscale(np.asarray(out_y))
    assert not np.allclose(out_pts, unscale(y), atol=0.3)  # something moved
    for n in range(8):
        for k in range(0, len(COLS), 2):
            cx, cy, _ = _centroid_near(out_img[n], out_pts[n, k], out_pts[n, k + 1])
            assert (cx, cy) == pytest.approx((out_pts[n, k], out_pts[n, k + 1]), abs=0.25)


def test_photometric_augmentation_keeps_images_in_range_and_keypoints_fixed():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (6, 96, 96, 1)).astype(np.float32)
    y = rng.uniform(-0.5, 0.5, (6, 30)).astype(np.float32)
    out_img, out_y = Augment(list(COLUMNS), brightness=0.3, contrast=0.5, seed=1)(img, y)
    out_img = np.asarray(out_img)
    assert out_img.min() >= 0 and out_img.max() <= 1 and not np.allclose(out_img, img)
    assert np.array_equal(np.asarray(out_y), y)
