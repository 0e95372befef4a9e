"""docs/labelled-photos.png: one youtube photo through the labelled-photos path. (a) builtin68's
pre-labels on the photo (what `detect --format coco` writes), (b) the 96x96 crop training sees,
framed by BlazeFace as `detect` frames the face, with the face's true 68 points, (c) the crop
framed from those points themselves (placed on the mean shape: what .pts folders were cut by
before), which puts every face's points where the mean shape has them.

    PYTHONPATH=src python tools/make_labelled_figure.py
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

import facekeypoints as fk
from facekeypoints import geometry, schemes
from facekeypoints.data.labelled import LabelledFace
from facekeypoints.photos import read_photo
from facekeypoints.photos.labelled import frame_photo
from facekeypoints.photos.outputs import draw

ROOT = Path(__file__).resolve().parents[1]
YOUTUBE = ROOT.parent / "shared" / "data" / "photos" / "youtube"
SIDE = 240  # each panel's height


def _crop_panel(grey: np.ndarray, matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    crop = (geometry.crop(grey, matrix, 96) * 255).astype(np.uint8)
    big = cv2.cvtColor(cv2.resize(crop, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC),
                       cv2.COLOR_GRAY2BGR)
    for x, y in geometry.apply(matrix, points):
        cv2.circle(big, (int(round((x + 0.5) * SIDE / 96 - 0.5)),
                         int(round((y + 0.5) * SIDE / 96 - 0.5))), 3, (0, 200, 0), -1,
                   cv2.LINE_AA)
    return big


def main(name: str = "Lincoln_Chafee_52.jpg") -> None:
    truth = pd.read_csv(YOUTUBE / "landmarks68.csv").set_index("file").loc[name]
    points = truth.to_numpy(float).reshape(68, 2)
    rgb = read_photo(YOUTUBE / name)
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    photo = draw(rgb, fk.detect(YOUTUBE / name, "builtin68"))
    photo = cv2.resize(photo, (round(photo.shape[1] * SIDE / photo.shape[0]), SIDE))
    framed = frame_photo(YOUTUBE / name, [LabelledFace(YOUTUBE / name, points)])[0]
    own = geometry.fit_similarity(points, schemes.builtin("ibug68").mean_shape)
    panels = [photo, _crop_panel(grey, framed.matrix, points), _crop_panel(grey, own, points)]
    labels = ["(a) pre-labels (detect)", "(b) training crop: BlazeFace",
              "(c) crop by its own labels"]
    out = []
    for panel, label in zip(panels, labels, strict=True):
        band = np.full((28, panel.shape[1], 3), 255, np.uint8)
        cv2.putText(band, label, (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1,
                    cv2.LINE_AA)
        out.append(np.vstack([panel, band]))
        out.append(np.full((SIDE + 28, 8, 3), 255, np.uint8))
    cv2.imwrite(str(ROOT / "docs" / "labelled-photos.png"), np.hstack(out[:-1]))


if __name__ == "__main__":
    main()
