"""Our photo pipeline against dlib's 68-point shape predictor and MediaPipe's face mesh, on the
same photos and the same 15 points.

    pip install dlib-bin face_recognition_models    # the dlib reference (not a dependency)
    python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21
    python bench/photos_vs_dlib.py --mediapipe /tmp/mpvenv/bin/python     # the built-in model
    python bench/photos_vs_dlib.py --model runs/photos/model.onnx runs/mesh

On ../shared/data/photos (youtube: 40 people, one face each; dlib: group photos), each model
(default: the built-in one) runs as `detect` runs it with each detector: BlazeFace (the
default), dlib's HOG (upsampled once; OpenCV's cascade where HOG finds none) and the cascade
alone, and with BlazeFace and `--fast`. dlib's 68-point predictor runs on the HOG boxes; its
points are mapped to Kaggle's 15 as ../shared/data/README.md describes (eye centres = mean of the
six eye points; the rest the matching iBUG-68 point). MediaPipe runs its own pipeline, whole
photo in, in its own virtual environment (bench/mediapipe_anchor.py, once a round; its brow
points follow another convention). Scores: detection rate, NME (% of the eye distance) per
keypoint and overall, ms per face with detection included: the median of --repeats runs, every
method once per round, and its ratio to the first row's and to MediaPipe's (this 2-core
machine varies by a fifth from run to run). Writes bench/results/photos_vs_dlib.csv.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import PHOTOS, RESULTS, write_table


def to_15(points68: np.ndarray) -> np.ndarray:
    """Kaggle's 15 from iBUG's 68 points (the ibug68 scheme's [kaggle15] table)."""
    from facekeypoints.schemes import builtin

    scheme = builtin("ibug68")
    return scheme.to_kaggle15(points68.reshape(1, -1), scheme.columns)[0].reshape(-1, 2)


class DlibLandmarks:
    """dlib's HOG boxes + 68-point shape predictor, mapped to the 15 points (or, with
    `points68`, all 68 as they come): the reference."""

    def __init__(self, points68: bool = False) -> None:
        self.points68 = points68
        import dlib
        import face_recognition_models

        model = face_recognition_models.pose_predictor_model_location()
        self.predictor = dlib.shape_predictor(model)
        self.rectangle = dlib.rectangle

    def __call__(self, rgb: np.ndarray, boxes) -> list[np.ndarray]:
        import cv2

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        out = []
        for b in boxes:
            rect = self.rectangle(int(b.left), int(b.top), int(b.left + b.width),
                                  int(b.top + b.height))
            shape = self.predictor(grey, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], float)
            out.append(points if self.points68 else to_15(points))
        return out


def pipeline_faces(pipeline):
    """A FacePipeline as `score` takes a method: the boxes and keypoints of a photo."""
    def faces(rgb, name):
        found = pipeline.faces_in(rgb)
        return [f.box for f in found], [f.keypoints for f in found]
    return faces


def dlib_faces(points68: bool = False):
    """dlib's HOG boxes (upsampled once, the cascade where HOG finds none) and its 68-point
    predictor on them, as `score` takes a method."""
    from facekeypoints.photos.detectors import HogDetector, find_faces

    hog, landmarks = HogDetector(), DlibLandmarks(points68)

    def faces(rgb, name):
        boxes = find_faces(hog, rgb)
        return boxes, landmarks(rgb, boxes)
    return faces


def score(folder: Path, truth_csv: Path, predict_faces) -> dict:
    from facekeypoints.photos import read_photo
    from facekeypoints.photos.scores import load_truth, match

    truths = load_truth(truth_csv)
    by_file: dict[str, list] = {}
    for t in truths:
        by_file.setdefault(t.file, []).append(t)
    errors, seconds, found_faces = [], 0.0, 0
    for name, faces in by_file.items():
        rgb = read_photo(folder / name)
        start = time.perf_counter()
        boxes, points, *took = predict_faces(rgb, name)
        seconds += took[0] if took else time.perf_counter() - start  # its own clock if given
        found_faces += len(boxes)
        for t, j in zip(faces, match(faces, boxes), strict=True):
            if j is not None:
                errors.append(np.linalg.norm(points[j] - t.points, axis=1) / t.interocular)
    e = np.array(errors)
    total = sum(len(f) for f in by_file.values())
    return {"faces": total, "detected_pct": round(100 * len(errors) / total, 1),
            "nme_pct": round(100 * float(e.mean()), 2),
            "per_keypoint": 100 * e.mean(axis=0),
            "ms_per_face": round(1000 * seconds / max(found_faces, 1), 1)}


def mediapipe_faces(python: str, folder: Path):
    """MediaPipe's faces for every photo of `folder`, run once in its own environment."""
    import json
    import subprocess

    from facekeypoints.geometry import Box

    files = sorted(str(p) for p in folder.glob("*.jpg"))
    script = Path(__file__).with_name("mediapipe_anchor.py")
    done = subprocess.run([python, str(script), *files], capture_output=True, text=True,
                          check=True)
    found = {Path(k).name: v for k, v in json.loads(done.stdout).items()}

    def faces(rgb, name: str):
        record = found[name]
        boxes = [Box(*f["box"], 1.0) for f in record["faces"]]
        return boxes, [np.array(f["points"]) for f in record["faces"]], record["seconds"]

    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=[None], help="default: the built-in one")
    parser.add_argument("--mediapipe", metavar="PYTHON",
                        help="the python of a virtual environment with mediapipe==0.10.21")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "photos_vs_dlib.csv"))
    args = parser.parse_args()

    from facekeypoints.inference import loading
    from facekeypoints.keypoints import KEYPOINTS
    from facekeypoints.photos import FacePipeline
    def name_of(m: str | None) -> str:
        return "built-in" if m is None else Path(m).name if Path(m).is_dir() \
            else Path(m).parent.name

    methods = {}
    for m in args.model:
        model = loading.load(m, prefer_onnx=True)
        for detector, fast in [("blazeface", False), ("blazeface", True), ("hog", False),
                               ("haar", False)]:
            label = f"facekeypoints {name_of(m)}, {detector}{' --fast' if fast else ''}"
            methods[label] = FacePipeline(model, detector, fast=fast)
    rows = []
    for folder in ("youtube", "dlib"):
        fns = {label: pipeline_faces(p) for label, p in methods.items()}
        fns["dlib 68-point, hog"] = dlib_faces()
        rounds = []
        for _ in range(args.repeats):
            if args.mediapipe:  # run afresh each round, beside ours: the machine's load varies
                fns["MediaPipe face mesh"] = mediapipe_faces(args.mediapipe, PHOTOS / folder)
            rounds.append({label: score(PHOTOS / folder, PHOTOS / folder / "keypoints15.csv",
                                        fn) for label, fn in fns.items()})
        first = None
        medians = {label: float(np.median([r[label]["ms_per_face"] for r in rounds]))
                   for label in fns}
        mediapipe = medians.get("MediaPipe face mesh")
        for label in fns:
            s = rounds[0][label]
            ms = medians[label]
            first = first or ms
            rows.append({"photos": folder, "method": label, "faces": s["faces"],
                         "detected_pct": s["detected_pct"], "nme_pct": s["nme_pct"],
                         "ms_per_face": round(ms, 1), "time_vs_first": round(ms / first, 2),
                         **({"time_vs_mediapipe": round(ms / mediapipe, 2)} if mediapipe else {}),
                         **{k: round(v, 2) for k, v in zip(KEYPOINTS, s["per_keypoint"],
                                                           strict=True)}})
            print({k: rows[-1][k] for k in list(rows[-1])[:7]}, flush=True)
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
