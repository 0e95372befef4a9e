"""How each face detector's box should be cropped so faces look like the training faces.

    python bench/framing.py --model runs/fast/model.onnx

For every true face in ../shared/data/photos/youtube that a detector finds, the ideal crop is the
square whose 96x96 resampling puts the true keypoints closest (scale and shift, least squares) to
the mean shape of the training labels. The median ideal crop relative to the box, fitted on half
of the people, is that detector's framing. The other half of the people and the dlib group photos
then give the NME (per cent of the eye distance) of: the naive crop (the box itself), the fitted
framing, and the fitted framing 10% tighter and looser. Writes bench/results/framing.csv.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from common import FACES, PHOTOS, RESULTS, write_table


def mean_shape() -> np.ndarray:
    from facekeypoints.data import load_training
    from facekeypoints.keypoints import unscale

    faces = load_training(FACES / "training.csv.gz")
    return np.nanmean(unscale(faces.y), axis=0).reshape(-1, 2)


def ideal_framing(points: np.ndarray, shape: np.ndarray, box) -> tuple[float, float, float]:
    """Scale s and shift t with s * p + t ~ shape (crop pixels), as (scale, dx, dy) of the box."""
    from facekeypoints.photos.framing import align_transform

    matrix = align_transform(points, shape)
    s, t = matrix[0, 0], matrix[:, 2]
    side = 96 / s
    centre = (47.5 - t) / s + 0.5  # crop_transform's centre, in its own convention
    bx, by = box.left + box.width / 2, box.top + box.height / 2
    return side / box.width, (centre[0] - bx) / box.width, (centre[1] - by) / box.width


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--detectors", nargs="+", default=["haar", "hog"])
    parser.add_argument("--out", default=str(RESULTS / "framing.csv"))
    args = parser.parse_args()

    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline, read_photo
    from facekeypoints.photos.detectors import find_faces, make_detector
    from facekeypoints.photos.framing import Framing
    from facekeypoints.photos.scores import evaluate_photos, load_truth, match

    model = loading.load(args.model)
    shape = mean_shape()
    truths = load_truth(PHOTOS / "youtube" / "keypoints15.csv")
    people = sorted({t.file.rsplit("_", 1)[0] for t in truths})
    fit_people = set(people[::2])
    rows = []
    for name in args.detectors:
        detector = make_detector(name)
        ideal = []
        for t in truths:
            if t.file.rsplit("_", 1)[0] not in fit_people:
                continue
            import cv2

            grey = cv2.cvtColor(read_photo(PHOTOS / "youtube" / t.file), cv2.COLOR_RGB2GRAY)
            boxes = find_faces(detector, grey)
            j = match([t], boxes)[0]
            if j is not None:
                ideal.append(ideal_framing(t.points, shape, boxes[j]))
        fitted = Framing(*np.round(np.median(np.array(ideal), axis=0), 3))
        print(f"{name}: fitted on {len(ideal)} faces of {len(fit_people)} people: {fitted}")
        held_out = [t for t in truths if t.file.rsplit("_", 1)[0] not in fit_people]
        truth_file = Path(args.out).with_name(f"heldout_{name}.csv")
        _write_truth(held_out, truth_file)
        candidates = {"naive box": (Framing(1.0, 0.0, 0.0), 0), "fitted": (fitted, 0),
                      "fitted, 10% tighter": (Framing(fitted.scale * 0.9, fitted.dx, fitted.dy), 0),
                      "fitted, 10% looser": (Framing(fitted.scale * 1.1, fitted.dx, fitted.dy), 0),
                      "fitted + re-framed on own keypoints": (fitted, 1),
                      "fitted + re-framed twice": (fitted, 2)}
        for label, (framing, refine) in candidates.items():
            pipeline = FacePipeline(model, name, framing, refine=refine)
            yt = evaluate_photos(pipeline, PHOTOS / "youtube", truth_file)
            group = evaluate_photos(pipeline, PHOTOS / "dlib", PHOTOS / "dlib" / "keypoints15.csv")
            rows.append({"detector": name, "framing": label, "refine": refine,
                         "scale": round(framing.scale, 3),
                         "dx": framing.dx, "dy": framing.dy,
                         "youtube_heldout_nme_pct": round(100 * yt.nme, 2),
                         "youtube_detection_pct": round(100 * yt.detection_rate, 1),
                         "dlib_nme_pct": round(100 * group.nme, 2),
                         "dlib_detection_pct": round(100 * group.detection_rate, 1),
                         "ms_per_face": round(yt.ms_per_face, 1)})
            print(rows[-1], flush=True)
        truth_file.unlink()
    write_table(rows, args.out)


def _write_truth(truths, path: Path) -> None:
    from facekeypoints.keypoints import COLUMNS

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", *COLUMNS])
        for t in truths:
            writer.writerow([t.file, *(f"{v:.2f}" for v in t.points.reshape(-1))])


if __name__ == "__main__":
    main()
