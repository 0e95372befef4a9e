"""A small, seeded set of SYNTHETIC cartoon faces with exact keypoints, in Kaggle's file formats.

It lets the whole pipeline run where no real data is given (the README's first command, the
demo, fast tests). Every file and picture made from it says "synthetic".
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np

from ..files import atomic_write_text
from ..keypoints import COLUMNS, IMAGE_SIZE, KEYPOINTS

# A symmetric version of the mean shape of Kaggle's real labels (pixels).
MEAN_SHAPE = {
    "left_eye_center": (65.5, 38.0),
    "right_eye_center": (29.5, 38.0),
    "left_eye_inner_corner": (58.5, 38.0),
    "left_eye_outer_corner": (72.5, 38.0),
    "right_eye_inner_corner": (36.5, 38.0),
    "right_eye_outer_corner": (22.5, 38.0),
    "left_eyebrow_inner_end": (55.5, 29.5),
    "left_eyebrow_outer_end": (79.5, 30.0),
    "right_eyebrow_inner_end": (39.5, 29.5),
    "right_eyebrow_outer_end": (15.5, 30.0),
    "nose_tip": (47.5, 62.5),
    "mouth_left_corner": (62.5, 76.0),
    "mouth_right_corner": (32.5, 76.0),
    "mouth_center_top_lip": (47.5, 72.5),
    "mouth_center_bottom_lip": (47.5, 79.5),
}
PARTIAL = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")
PIVOT = (IMAGE_SIZE - 1) / 2
SUBPIXEL = 4  # cv2 drawing with 4 fractional bits


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * 2**SUBPIXEL)), int(round(p[1] * 2**SUBPIXEL))


def _draw(kp: dict[str, np.ndarray], skin: float, background: float, angle: float, scale: float,
          rng: np.random.Generator) -> np.ndarray:
    img = np.full((IMAGE_SIZE, IMAGE_SIZE), background, np.float32)
    img += cv2.resize(rng.normal(0, 25, (6, 6)).astype(np.float32), img.shape)
    aa, sh = cv2.LINE_AA, SUBPIXEL
    centre = (kp["nose_tip"] + (kp["left_eye_center"] + kp["right_eye_center"]) / 2) / 2
    deg = math.degrees(angle)
    axes = (int(34 * scale * 2**sh), int(44 * scale * 2**sh))
    cv2.ellipse(img, _pt(centre + [0, 4 * scale]), axes, deg, 0, 360, skin, -1, aa, sh)
    dark = max(skin - 90, 10)
    for side in ("left", "right"):
        inner, outer = kp[f"{side}_eyebrow_inner_end"], kp[f"{side}_eyebrow_outer_end"]
        cv2.line(img, _pt(inner), _pt(outer), dark, max(2, int(3 * scale)), aa, sh)
        a, b = kp[f"{side}_eye_inner_corner"], kp[f"{side}_eye_outer_corner"]
        half = np.linalg.norm(b - a) / 2
        eye_axes = (int(half * 2**sh), int(half * 0.45 * 2**sh))
        cv2.ellipse(img, _pt((a + b) / 2), eye_axes, deg, 0, 360, min(skin + 60, 250), -1, aa, sh)
        cv2.circle(img, _pt(kp[f"{side}_eye_center"]), int(2.6 * scale * 2**sh), dark - 5, -1,
                   aa, sh)
    nose = kp["nose_tip"]
    bridge = (kp["left_eye_inner_corner"] + kp["right_eye_inner_corner"]) / 2
    cv2.line(img, _pt(bridge), _pt(nose), skin - 35, max(1, int(2 * scale)), aa, sh)
    cv2.circle(img, _pt(nose), int(2.5 * scale * 2**sh), skin - 55, -1, aa, sh)
    left, right = kp["mouth_left_corner"], kp["mouth_right_corner"]
    top, bottom = kp["mouth_center_top_lip"], kp["mouth_center_bottom_lip"]
    mouth = np.array([right, top, left, bottom])
    cv2.fillPoly(img, [np.round(mouth * 2**sh).astype(np.int32)], dark + 20, aa, sh)
    img += rng.normal(0, 6, img.shape)
    img = cv2.GaussianBlur(img, (3, 3), 0.7)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_faces(n: int, seed: int = 0, people: int | None = None,
               frames: int = 8) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images (n, 96, 96) uint8, keypoints (n, 30) pixels, source name of each face)."""
    rng = np.random.default_rng(seed)
    people = people or max(1, math.ceil(n / frames))
    canon = np.array([MEAN_SHAPE[k] for k in KEYPOINTS])
    identity = [(rng.normal(0, 1.5, canon.shape), rng.uniform(120, 220), rng.uniform(20, 110))
                for _ in range(people)]
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    keypoints = np.empty((n, len(COLUMNS)), np.float32)
    sources = []
    for i in range(n):
        person = i % people
        offsets, skin, background = identity[person]
        angle = rng.uniform(-0.18, 0.18)
        scale = rng.uniform(0.85, 1.08)
        shift = rng.uniform(-4, 4, 2)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        pts = PIVOT + scale * (canon + offsets - PIVOT) @ rot.T + shift
        kp = {k: pts[j] for j, k in enumerate(KEYPOINTS)}
        images[i] = _draw(kp, skin, background, angle, scale, rng)
        keypoints[i] = np.clip(pts, 0, IMAGE_SIZE).reshape(-1)
        sources.append(f"synthetic_person_{person:03d}_{i // people:02d}.png")
    return images, keypoints, sources


def _pixels(image: np.ndarray) -> str:
    return " ".join(map(str, image.reshape(-1).tolist()))


def write_kaggle_files(folder: str | Path, n_train: int = 600, n_test: int = 100,
                       seed: int = 0, partial: float = 0.6) -> dict[str, Path]:
    """training.csv, test.csv, IdLookupTable.csv, solution.csv and training_sources.csv."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    images, kps, sources = make_faces(n_train, seed)
    test_images, test_kps, _ = make_faces(n_test, seed + 1000)  # other people
    images, kps = np.concatenate([images, test_images]), np.concatenate([kps, test_kps])
    paths = {name: folder / name for name in (
        "training.csv", "test.csv", "IdLookupTable.csv", "solution.csv", "training_sources.csv")}

    rows = [",".join([*COLUMNS, "Image"])]
    keep_partial = [c for k in PARTIAL for c in (f"{k}_x", f"{k}_y")]
    for i in range(n_train):
        values = [f"{v:.4f}" for v in kps[i]]
        if rng.random() < partial:  # Kaggle's pattern: most rows have only four keypoints
            values = [v if c in keep_partial else "" for v, c in zip(values, COLUMNS,
                                                                     strict=True)]
        rows.append(",".join([*values, _pixels(images[i])]))
    atomic_write_text(paths["training.csv"], "\n".join(rows) + "\n")
    atomic_write_text(paths["training_sources.csv"], "row,source_file\n" + "".join(
        f"{i},{sources[i]}\n" for i in range(n_train)))

    test = ["ImageId,Image"] + [f"{j + 1},{_pixels(images[n_train + j])}" for j in range(n_test)]
    atomic_write_text(paths["test.csv"], "\n".join(test) + "\n")
    lookup, solution, row_id = ["RowId,ImageId,FeatureName,Location"], ["RowId,Location"], 0
    for j in range(n_test):
        asked = COLUMNS if rng.random() > partial else keep_partial
        for c in asked:
            row_id += 1
            lookup.append(f"{row_id},{j + 1},{c},")
            solution.append(f"{row_id},{kps[n_train + j, COLUMNS.index(c)]:.4f}")
    atomic_write_text(paths["IdLookupTable.csv"], "\n".join(lookup) + "\n")
    atomic_write_text(paths["solution.csv"], "\n".join(solution) + "\n")
    return paths
