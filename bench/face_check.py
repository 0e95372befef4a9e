"""The face check for models with no face score of their own: what it removes, what it costs.

A CNN run (`photos`, `fast`) places 15 points on whatever box the detector gives, a shirt
collar included. The photo pipeline asks the face mesh's face score for each find BlazeFace
scores below CHECK_BELOW (every find of HOG or the cascade). This prints, on the shared photos:
every BlazeFace find with its own score and the mesh's, which the mesh rejects, the share of
finds under the threshold, faces found against the truth with and without the check, and ms
per face, the two pipelines alternating in one process (medians of three rounds).

    python bench/face_check.py runs/photos/model.onnx
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import cv2
import numpy as np
from common import PHOTOS, RESULTS, write_table

from facekeypoints.inference.loading import load
from facekeypoints.mesh.backbone import FaceMesh
from facekeypoints.photos import FacePipeline, read_photo
from facekeypoints.photos.detectors import find_faces
from facekeypoints.photos.framing import crop_face, first_transform
from facekeypoints.photos.pipeline import CHECK_BELOW, FACE_SCORE
from facekeypoints.photos.scores import load_truth


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model with no face score: a CNN run or its .onnx")
    parser.add_argument("--out", default=str(RESULTS / "face_check.csv"))
    args = parser.parse_args()
    model = load(args.model, prefer_onnx=True)
    checked, unchecked = FacePipeline(model), FacePipeline(model, face_check=False)
    assert checked.checker is not None, f"{args.model} scores faces itself: nothing to check"
    mesh, rows = FaceMesh(), []
    for folder in ("youtube", "dlib"):
        files = sorted((PHOTOS / folder).glob("*.jpg"))
        photos = {f.name: read_photo(f) for f in files}
        truth = Counter(t.file for t in load_truth(PHOTOS / folder / "keypoints15.csv"))
        scores = []
        for rgb in photos.values():
            boxes = find_faces(checked.detector, rgb)
            if boxes:
                grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
                crops = np.stack([crop_face(grey, first_transform(b, checked.framing))
                                  for b in boxes])[..., None]
                scores += zip([b.score for b in boxes], mesh(crops)[1], strict=True)
        blaze, meshed = np.array(scores).T
        rejected = np.sort(blaze[meshed < FACE_SCORE])
        found = {}
        times: dict[str, list[float]] = {"check": [], "no check": []}
        for _ in range(3):
            for name, pipeline in (("check", checked), ("no check", unchecked)):
                start, faces = time.perf_counter(), {}
                for file, rgb in photos.items():
                    faces[file] = len(pipeline.faces_in(rgb))
                times[name].append((time.perf_counter() - start) / sum(faces.values()) * 1000)
                found[name] = faces
        extra = {k: sum(max(0, n - truth[f]) for f, n in v.items()) for k, v in found.items()}
        missed = {k: sum(max(0, truth[f] - n) for f, n in v.items()) for k, v in found.items()}
        rows.append({
            "photos": folder, "finds": len(blaze), "true_faces": sum(truth.values()),
            "mesh_rejects": len(rejected),
            "their_blazeface_scores": " ".join(f"{s:.2f}" for s in rejected),
            "share_checked": round(float((blaze < CHECK_BELOW["blazeface"]).mean()), 3),
            "extra_faces_unchecked": extra["no check"], "extra_faces_checked": extra["check"],
            "missed_unchecked": missed["no check"], "missed_checked": missed["check"],
            "ms_per_face_unchecked": round(statistics.median(times["no check"]), 2),
            "ms_per_face_checked": round(statistics.median(times["check"]), 2)})
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
