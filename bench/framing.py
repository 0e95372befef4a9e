"""How each face detector's box (or points) should be cropped so faces look like the training
faces.

    python bench/framing.py --model runs/fast/model.onnx
    python bench/framing.py --detectors blazeface     # the built-in model

For every true face in ../shared/data/photos/youtube that a detector finds, the ideal crop is the
square whose 96x96 resampling puts the true keypoints closest (scale and shift, least squares) to
the mean shape of the training labels. The median ideal crop relative to the box, fitted on half
of the people, is that detector's framing. The other half of the people and the dlib group photos
then give the NME (per cent of the eye distance) of: the naive crop (the box itself), the fitted
framing, and the fitted framing 10% tighter and looser. For BlazeFace, which gives eyes and a
mouth with its box, the same half of the people also gives where those points sit in a face
framed upright on its true keypoints (their median: `POINTS_TEMPLATE`), and the crops framed on
them are scored beside the box's. Writes bench/results/framing.csv.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from common import FACES, PHOTOS, RESULTS, BoxesOnly, write_table


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
    parser.add_argument("--model", help="default: the built-in model")
    parser.add_argument("--detectors", nargs="+", default=["haar", "hog", "blazeface"])
    parser.add_argument("--out", default=str(RESULTS / "framing.csv"))
    args = parser.parse_args()

    from facekeypoints import geometry
    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline, read_photo
    from facekeypoints.photos.detectors import find_faces, make_detector
    from facekeypoints.photos.framing import EYES_AND_MOUTH, Framing, align_transform
    from facekeypoints.photos.scores import evaluate_photos, load_truth, match

    model = loading.load(args.model)
    shape = mean_shape()
    truths = load_truth(PHOTOS / "youtube" / "keypoints15.csv")
    people = sorted({t.file.rsplit("_", 1)[0] for t in truths})
    fit_people = set(people[::2])
    rows = []
    for name in args.detectors:
        detector = make_detector(name)
        ideal, placed = [], []
        for t in truths:
            if t.file.rsplit("_", 1)[0] not in fit_people:
                continue
            boxes = find_faces(detector, read_photo(PHOTOS / "youtube" / t.file))
            j = match([t], boxes)[0]
            if j is not None:
                ideal.append(ideal_framing(t.points, shape, boxes[j]))
                if boxes[j].points is not None:
                    # on the shape the pipeline re-frames faces on (keypoints.MEAN_SHAPE)
                    upright = align_transform(t.points, upright=True)
                    placed.append(geometry.apply(upright, boxes[j].points[EYES_AND_MOUTH]))
        fitted = Framing(*np.round(np.median(np.array(ideal), axis=0), 3))
        print(f"{name}: fitted on {len(ideal)} faces of {len(fit_people)} people: {fitted}")
        if placed:
            template = np.round(np.median(np.array(placed), axis=0), 2)
            print(f"{name}: its eyes and mouth in a face framed upright (POINTS_TEMPLATE): "
                  f"{template.tolist()}")
        held_out = [t for t in truths if t.file.rsplit("_", 1)[0] not in fit_people]
        truth_file = Path(args.out).with_name(f"heldout_{name}.csv")
        _write_truth(held_out, truth_file)
        candidates = {"naive box": (Framing(1.0, 0.0, 0.0), 0), "fitted": (fitted, 0),
                      "fitted, 10% tighter": (Framing(fitted.scale * 0.9, fitted.dx, fitted.dy), 0),
                      "fitted, 10% looser": (Framing(fitted.scale * 1.1, fitted.dx, fitted.dy), 0),
                      "fitted + re-framed on own keypoints": (fitted, 1),
                      "fitted + re-framed twice": (fitted, 2)}
        if placed:
            candidates |= {"detector's eyes and mouth": (fitted, 0),
                           "eyes and mouth + re-framed on own keypoints": (fitted, 1)}
        for label, (framing, refine) in candidates.items():
            pipeline = FacePipeline(model, name, framing, refine=refine)
            if placed and "eyes and mouth" not in label:  # frame on the box alone
                pipeline.detector = BoxesOnly(pipeline.detector)
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
