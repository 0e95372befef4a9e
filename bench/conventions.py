"""Do the two photo sets' truths place the keypoints alike? Our model on the group photos
(dlib's examples, iBUG convention) against dlib's 68-point predictor on the youtube photos (the
convention of our training labels), keypoint by keypoint.

    pip install dlib-bin face_recognition_models    # the dlib reference
    python bench/conventions.py --model runs/mesh

Mean signed error per keypoint in per cent of the eye distance (x right, y down) of each, on
the same HOG boxes as bench/photos_vs_dlib.py. Where the truths differ in convention the two
columns mirror each other. Then our NME on the group photos with our keypoints moved by dlib's
mean offsets on youtube (fitted there, never on the group photos). Writes
bench/results/conventions.csv.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import PHOTOS, RESULTS, write_table
from photos_vs_dlib import DlibLandmarks


def signed_errors(folder, landmarks) -> tuple[np.ndarray, list]:
    """(faces, 15, 2) errors / eye distance, and (prediction, truth) pairs, for found faces."""
    import cv2

    from facekeypoints.photos import read_photo
    from facekeypoints.photos.detectors import find_faces, make_detector
    from facekeypoints.photos.scores import load_truth, match

    detector = make_detector("hog")
    by_file: dict[str, list] = {}
    for t in load_truth(folder / "keypoints15.csv"):
        by_file.setdefault(t.file, []).append(t)
    errors, pairs = [], []
    for name, truths in by_file.items():
        grey = cv2.cvtColor(read_photo(folder / name), cv2.COLOR_RGB2GRAY)
        boxes = find_faces(detector, grey)
        points = landmarks(grey, boxes)
        for t, j in zip(truths, match(truths, boxes), strict=True):
            if j is not None:
                errors.append((points[j] - t.points) / t.interocular)
                pairs.append((points[j], t))
    return np.array(errors), pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--out", default=str(RESULTS / "conventions.csv"))
    args = parser.parse_args()

    import cv2

    from facekeypoints.inference import loading
    from facekeypoints.keypoints import KEYPOINTS
    from facekeypoints.photos import FacePipeline

    pipeline = FacePipeline(loading.load(args.model, prefer_onnx=True), "hog")

    def ours(grey, boxes):
        faces = pipeline.faces_in(cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB), boxes)
        return [f.keypoints for f in faces]

    on_groups, pairs = signed_errors(PHOTOS / "dlib", ours)
    dlib_on_youtube, _ = signed_errors(PHOTOS / "youtube", DlibLandmarks())
    offset = dlib_on_youtube.mean(axis=0)  # dlib's convention minus ours, per eye distance
    rows = [{"keypoint": k,
             "ours_on_groups_dx": round(100 * on_groups[:, i, 0].mean(), 2),
             "ours_on_groups_dy": round(100 * on_groups[:, i, 1].mean(), 2),
             "dlib_on_youtube_dx": round(100 * offset[i, 0], 2),
             "dlib_on_youtube_dy": round(100 * offset[i, 1], 2)}
            for i, k in enumerate(KEYPOINTS)]

    def nme(shift: np.ndarray) -> float:
        return 100 * float(np.mean([
            np.linalg.norm(p + shift * np.linalg.norm(p[0] - p[1]) - t.points, axis=1).mean()
            / t.interocular for p, t in pairs]))

    rows.append({"keypoint": "NME % on the group photos",
                 "ours_on_groups_dx": round(nme(0 * offset), 2),
                 "dlib_on_youtube_dx": round(nme(offset), 2)})
    print(f"{args.model} on the group photos: NME {rows[-1]['ours_on_groups_dx']}%, moved to "
          f"dlib's convention {rows[-1]['dlib_on_youtube_dx']}%")
    write_table(rows, args.out)


if __name__ == "__main__":
    main()
