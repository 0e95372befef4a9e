"""68 points on photographs: our 68-point models against dlib's 68-point shape predictor, on the
same photos, every point scored.

    pip install dlib-bin face_recognition_models    # the dlib reference (not a dependency)
    python bench/landmarks68.py                     # the built-in 68-point model (builtin68)
    python bench/landmarks68.py --model builtin68 runs/fast68

On ../shared/data/photos (youtube: 487 faces of 40 people; dlib: 18 faces in group photos) with
`landmarks68.csv` as the truth: each model runs as `detect` runs it (BlazeFace, and dlib's HOG
boxes upsampled once); dlib's predictor runs on the HOG boxes. NME is the mean distance over all
68 points divided by the distance between the true eye centres, each the mean of its eye's six
points (evaluate-photos' normalisation for any scheme), and the same for the jaw (points 0-16)
and the inner face (17-67) apart. ms per face: the median of --repeats rounds, detection
included. Writes bench/results/landmarks68.csv.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import PHOTOS, RESULTS, write_table
from photos_vs_dlib import dlib_faces, pipeline_faces, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["builtin68"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "landmarks68.csv"))
    args = parser.parse_args()

    from facekeypoints.inference import loading
    from facekeypoints.photos import FacePipeline

    methods = {}
    for m in args.model:
        model = loading.load(m, prefer_onnx=True)
        for detector in ("blazeface", "hog"):
            pipeline = FacePipeline(model, detector)
            methods[f"facekeypoints {Path(m).name}, {detector}"] = pipeline
    rows = []
    for folder in ("youtube", "dlib"):
        fns = {label: pipeline_faces(p) for label, p in methods.items()}
        fns["dlib 68-point, hog"] = dlib_faces(points68=True)
        truth = PHOTOS / folder / "landmarks68.csv"
        rounds = [{label: score(PHOTOS / folder, truth, fn) for label, fn in fns.items()}
                  for _ in range(args.repeats)]
        for label in fns:
            s = rounds[0][label]
            per = s["per_keypoint"]
            rows.append({"photos": folder, "method": label, "faces": s["faces"],
                         "detected_pct": s["detected_pct"], "nme_pct": s["nme_pct"],
                         "jaw_nme_pct": round(float(per[:17].mean()), 2),
                         "inner_nme_pct": round(float(per[17:].mean()), 2),
                         "ms_per_face": round(float(np.median(
                             [r[label]["ms_per_face"] for r in rounds])), 1)})
            print(rows[-1], flush=True)
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
