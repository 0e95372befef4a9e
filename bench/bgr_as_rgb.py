"""How far OpenCV's BGR taken as RGB moves the keypoints: each youtube photo of
../shared/data/photos through `fk.Landmarker` as RGB and with its channels swapped, the mean
distance between the two results' points where both find the one face.

    python bench/bgr_as_rgb.py                 # the built-in model
    python bench/bgr_as_rgb.py --model builtin68

Writes bench/results/bgr_as_rgb.csv.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import PHOTOS, RESULTS, write_table
from PIL import Image

import facekeypoints as fk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    landmarker = fk.Landmarker(args.model)
    moved, lost = [], 0
    files = sorted((PHOTOS / "youtube").glob("*.jpg"))
    for path in files:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        right, swapped = landmarker.detect(rgb), landmarker.detect(rgb[..., ::-1])
        if len(right) == len(swapped) == 1:
            moved.append(float(np.linalg.norm(right.points - swapped.points, axis=-1).mean()))
        else:
            lost += 1
    moved_px = np.array(moved)
    write_table([{"model": args.model or "builtin", "photos": len(files),
                  "compared": len(moved), "faces_differ": lost,
                  "mean_px": round(float(moved_px.mean()), 3),
                  "median_px": round(float(np.median(moved_px)), 3),
                  "p90_px": round(float(np.percentile(moved_px, 90)), 3)}],
                 RESULTS / "bgr_as_rgb.csv")


if __name__ == "__main__":
    main()
