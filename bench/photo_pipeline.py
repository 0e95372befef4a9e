"""Where a photo's milliseconds go, and which parts of the pipeline pay for themselves.

    python bench/photo_pipeline.py                  # the built-in model
    python bench/photo_pipeline.py --model runs/mesh

On ../shared/data/photos/youtube (487 faces, one per photo) and the group photos: for each
choice of detector, first crop (the detector's box, or BlazeFace's eyes and mouth), re-framing
passes and flip TTA, the faces found, NME (% of the eye distance) and ms per face with detection
included, the median of --repeats rounds (each round runs every choice once: this 2-core machine
varies by a fifth from run to run), and its time against the first row's, the pipeline as it was
(HOG, two re-framing passes, TTA). Then the stages of the default and of `--fast`, timed one by
one over the youtube photos: detection, cropping, the model, mapping back. Writes
bench/results/photo_pipeline.csv and photo_pipeline_stages.csv.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from common import PHOTOS, RESULTS, BoxesOnly, write_table

CHOICES = [  # (label, detector, first crop from points, re-framing passes, flip TTA)
    ("HOG box, re-framed twice, TTA (as before)", "hog", False, 2, True),
    ("HOG box, re-framed once, TTA", "hog", False, 1, True),
    ("HOG box, one pass, no TTA", "hog", False, 0, False),
    ("BlazeFace box, re-framed twice, TTA", "blazeface", False, 2, True),
    ("BlazeFace eyes and mouth, re-framed once, TTA", "blazeface", True, 1, True),
    ("BlazeFace eyes and mouth, one pass, TTA (the default)", "blazeface", True, 0, True),
    ("BlazeFace eyes and mouth, one pass, no TTA (--fast)", "blazeface", True, 0, False),
]


def pipeline_for(model, detector: str, points: bool, refine: int, tta: bool):
    from facekeypoints.photos import FacePipeline

    pipeline = FacePipeline(model, detector, refine=refine)
    pipeline.tta = tta
    if not points and detector == "blazeface":
        pipeline.detector = BoxesOnly(pipeline.detector)
    return pipeline


def stages(model, fast: bool) -> dict:
    """ms per youtube photo (one face each) in each stage of the pipeline, the median."""
    import cv2

    from facekeypoints import geometry
    from facekeypoints.photos import FacePipeline, read_photo
    from facekeypoints.photos.detectors import find_faces
    from facekeypoints.photos.framing import crop_face, first_transform

    pipeline = FacePipeline(model, fast=fast)
    times: dict[str, list[float]] = {k: [] for k in ("detector", "crop", "model", "map back")}
    for path in sorted((PHOTOS / "youtube").glob("*.jpg")):
        rgb = read_photo(path)
        t0 = time.perf_counter()
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        boxes = find_faces(pipeline.detector, rgb)
        t1 = time.perf_counter()
        matrices = [first_transform(b, pipeline.framing) for b in boxes]
        crops = np.stack([crop_face(grey, m) for m in matrices])[..., None]
        t2 = time.perf_counter()
        pred = pipeline.model.predict(crops, tta=pipeline.tta)
        t3 = time.perf_counter()
        [geometry.apply(geometry.invert(m), p.reshape(-1, 2)) for p, m in zip(pred, matrices,
                                                                             strict=True)]
        t4 = time.perf_counter()
        for key, a, b in zip(times, (t0, t1, t2, t3), (t1, t2, t3, t4), strict=True):
            times[key].append(1000 * (b - a))
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="default: the built-in model")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from facekeypoints.inference.loading import load
    from facekeypoints.photos.scores import evaluate_photos

    model = load(args.model, prefer_onnx=True)
    pipelines = {c[0]: pipeline_for(model, *c[1:]) for c in CHOICES}
    youtube, group = PHOTOS / "youtube", PHOTOS / "dlib"
    rounds = []
    for r in range(args.repeats):
        rounds.append({label: evaluate_photos(p, youtube, youtube / "keypoints15.csv")
                       for label, p in pipelines.items()})
        print(f"round {r + 1} of {args.repeats}", flush=True)
    rows, first = [], None
    for label, pipeline in pipelines.items():
        yt = rounds[0][label]
        ms = statistics.median(r[label].ms_per_face for r in rounds)
        first = first or ms
        g = evaluate_photos(pipeline, group, group / "keypoints15.csv")
        rows.append({"choice": label, "youtube_found": f"{yt.detected}/{yt.faces}",
                     "youtube_nme_pct": round(100 * yt.nme, 2),
                     "group_found": f"{g.detected}/{g.faces}",
                     "group_nme_pct": round(100 * g.nme, 2),
                     "youtube_ms_per_face": round(ms, 1), "time_vs_first": round(ms / first, 2)})
        print(rows[-1], flush=True)
    write_table(rows, RESULTS / "photo_pipeline.csv")
    parts = [{"pipeline": "--fast" if fast else "default", **stages(model, fast)}
             for fast in (False, True)]
    for row in parts:
        print(row)
    write_table(parts, RESULTS / "photo_pipeline_stages.csv")


if __name__ == "__main__":
    main()
